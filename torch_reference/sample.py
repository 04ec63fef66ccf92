"""Generate images from a reference checkpoint: `python -m torch_reference.sample`.

Dropout is off (eval mode); the tutorial drew its figures in training mode.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from jax_gan.cli import main_guard
from jax_gan.errors import UserError
from jax_gan.latent import latent_points
from jax_gan.sample import check_out, sample_parser, write_output
from torch_reference import checkpoint
from torch_reference.models import make_models
from torch_reference.train_step import generate


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = sample_parser("python -m torch_reference.sample").parse_args(argv)
    out = check_out(args.out, args.num)
    payload = checkpoint.load(args.checkpoint)
    config = checkpoint.config_of(payload)
    g, _ = make_models(config)
    try:
        g.load_state_dict(payload["model_G_state_dict"])
    except RuntimeError as e:
        raise UserError(f"generator weights do not fit the model: {str(e).splitlines()[0]}") from None
    z = torch.from_numpy(latent_points(args.seed, args.num, config.latent_dim))
    write_output(out, generate(g, z).numpy())
    print(f"wrote {args.num} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
