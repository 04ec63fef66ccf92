"""Generate images from a checkpoint: `python -m jax_gan.sample`.

`.png` writes a grid, `.npy` the raw float32 generator output (N, 28, 28).
The generator runs with dropout off; z comes from a NumPy seed, so the
reference's `torch_reference.sample` with the same seed uses the same z.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from jax_gan.cli import main_guard
from jax_gan.errors import UserError


def sample_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Generate images from a checkpoint.")
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint")
    p.add_argument("--num", type=int, default=25, help="how many images")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent batch")
    p.add_argument("--out", required=True, help="output file: .png (grid) or .npy (raw array)")
    return p


def check_out(path: str, num: int) -> Path:
    if num <= 0:
        raise UserError(f"--num must be positive, got {num}")
    out = Path(path)
    if out.suffix not in (".png", ".npy"):
        raise UserError(f"--out must end in .png or .npy, got {out.name}")
    if not out.parent.is_dir():
        raise UserError(f"directory {out.parent} does not exist")
    return out


def write_output(out: Path, images, *, title: str | None = None) -> None:
    """`.npy`: the raw (N, 28, 28) float32 array; `.png`: a grid, or a strip when titled."""
    from jax_gan.images import save_images, save_strip

    try:
        if title is not None and out.suffix == ".png":
            save_strip(out, images, title=title)
        else:
            save_images(out, images)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = sample_parser("python -m jax_gan.sample").parse_args(argv)
    out = check_out(args.out, args.num)
    import jax.numpy as jnp

    from jax_gan import checkpoint
    from jax_gan.latent import latent_points
    from jax_gan.train_step import generate

    state, config, _ = checkpoint.load(args.checkpoint)
    z = latent_points(args.seed, args.num, config.latent_dim)
    write_output(out, generate(state.params_g, jnp.asarray(z), config))
    print(f"wrote {args.num} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
