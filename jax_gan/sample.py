"""Generate images from a checkpoint: `python -m jax_gan.sample`.

`.png` writes a grid, `.npy` the raw float32 generator output (N, 28, 28).
The generator runs with dropout off; z comes from a NumPy seed, so the
reference's `torch_reference.sample` with the same seed uses the same z.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import jax.numpy as jnp

from gan_core.cli import check_out, main_guard, sample_parser
from gan_core.images import write_images
from gan_core.latent import latent_points
from jax_gan import backend
from jax_gan.generator_checkpoint import load_generator
from jax_gan.train_step import generate


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = sample_parser("python -m jax_gan.sample").parse_args(argv)
    backend.platform()
    out = check_out(args.out, args.num, args.image_scale, {"--seed": args.seed})
    generator = load_generator(args.checkpoint)
    z = latent_points(args.seed, args.num, generator.config.latent_dim)
    write_images(out, generate(generator.params, jnp.asarray(z), generator.config), scale=args.image_scale)
    print(f"wrote {args.num} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
