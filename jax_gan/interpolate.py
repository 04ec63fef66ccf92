"""Walk the latent space between two points: `python -m jax_gan.interpolate`.

The tutorial's last figure: G along a straight line between two latents.
`--slerp` follows the great circle instead, which keeps Gaussian latents at a
typical norm all the way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jax_gan.cli import main_guard
from jax_gan.errors import UserError
from jax_gan.sample import check_out, write_output


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jax_gan.interpolate", description=__doc__)
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint")
    p.add_argument("--steps", type=int, default=10, help="images along the path, ends included")
    p.add_argument("--seed", type=int, default=0, help="draws both endpoints")
    p.add_argument("--from-seed", type=int, help="seed of the first endpoint (overrides --seed)")
    p.add_argument("--to-seed", type=int, help="seed of the second endpoint (overrides --seed)")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear")
    p.add_argument("--out", required=True, help=".png (a strip) or .npy (raw array)")
    args = p.parse_args(argv)
    if args.steps < 2:
        raise UserError(f"--steps must be at least 2, got {args.steps}")
    out = check_out(args.out, args.steps)
    import jax.numpy as jnp
    import numpy as np

    from jax_gan import checkpoint
    from jax_gan.latent import interpolate, latent_points
    from jax_gan.train_step import generate

    state, config, _ = checkpoint.load(args.checkpoint)
    z0, z1 = latent_points(args.seed, 2, config.latent_dim)
    if args.from_seed is not None:
        z0 = latent_points(args.from_seed, 1, config.latent_dim)[0]
    if args.to_seed is not None:
        z1 = latent_points(args.to_seed, 1, config.latent_dim)[0]
    path = interpolate(z0, z1, args.steps, slerp=args.slerp)
    images = np.asarray(generate(state.params_g, jnp.asarray(path), config))
    kind = "spherical" if args.slerp else "linear"
    write_output(out, images, title=f"latent interpolation ({kind})")
    print(f"wrote a {args.steps}-step {kind} interpolation to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
