"""Walk the latent space between two points: `python -m jax_gan.interpolate`.

The tutorial's last figure: G along a straight line between two latents.
`--slerp` follows the great circle instead, which keeps Gaussian latents at a
typical norm all the way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from gan_core.cli import add_debug_flag, add_scale_flag, check_out, main_guard
from gan_core.errors import UserError
from gan_core.images import write_images
from gan_core.latent import interpolate, latent_points
from jax_gan import backend
from jax_gan.generator_checkpoint import load_generator
from jax_gan.train_step import generate


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jax_gan.interpolate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint")
    p.add_argument("--steps", type=int, default=10, help="images along the path, ends included (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="draws both endpoints (default: 0)")
    p.add_argument("--from-seed", type=int, help="seed of the first endpoint (overrides --seed)")
    p.add_argument("--to-seed", type=int, help="seed of the second endpoint (overrides --seed)")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear")
    p.add_argument("--out", required=True, help=".png (a strip) or .npy (raw array)")
    add_scale_flag(p)
    add_debug_flag(p)
    return p


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    backend.platform()
    if not 2 <= args.steps <= 10_000:
        raise UserError(f"--steps must be in [2, 10000], got {args.steps}")
    out = check_out(args.out, args.steps, args.image_scale,
                    {"--seed": args.seed, "--from-seed": args.from_seed, "--to-seed": args.to_seed})
    generator = load_generator(args.checkpoint)
    config = generator.config
    z0, z1 = latent_points(args.seed, 2, config.latent_dim)
    if args.from_seed is not None:
        z0 = latent_points(args.from_seed, 1, config.latent_dim)[0]
    if args.to_seed is not None:
        z1 = latent_points(args.to_seed, 1, config.latent_dim)[0]
    path = interpolate(z0, z1, args.steps, slerp=args.slerp)
    images = np.asarray(generate(generator.params, jnp.asarray(path), config))
    write_images(out, images, strip=True, scale=args.image_scale)
    kind = "spherical" if args.slerp else "linear"
    print(f"wrote a {args.steps}-step {kind} interpolation to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
