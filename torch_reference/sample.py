"""Generate images from a reference checkpoint: `python -m torch_reference.sample`.

Dropout is off (eval mode); the tutorial drew its figures in training mode.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from gan_core.cli import check_out, main_guard, sample_parser
from gan_core.images import write_images
from gan_core.latent import latent_points
from gan_core.tutorial_checkpoint import config_of
from torch_reference import checkpoint
from torch_reference.models import make_models
from torch_reference.train_step import generate


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    args = sample_parser("python -m torch_reference.sample").parse_args(argv)
    out = check_out(args.out, args.num, args.image_scale, {"--seed": args.seed})
    payload = checkpoint.load(args.checkpoint)  # Keys, shapes and checksums checked.
    config = config_of(payload)
    g, _ = make_models(config)  # Only G draws: no optimizer state to restore.
    g.load_state_dict(payload["model_G_state_dict"])
    z = torch.from_numpy(latent_points(args.seed, args.num, config.latent_dim))
    write_images(out, generate(g, z).numpy(), scale=args.image_scale)
    print(f"wrote {args.num} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
