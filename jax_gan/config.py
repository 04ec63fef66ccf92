"""The one configuration both frameworks train from.

Defaults are the tutorial's recipe: a 100-256-256-784 MLP generator, a
784-256-256-1 MLP discriminator, Dropout(0.1), Adam(2e-4), batch 64,
200 epochs and a sample grid every 400 batches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

DATASETS = ("mnist", "fashion-mnist", "mnist-sample")
DROPOUT_MASKS = ("hash", "threefry")  # See jax_gan/dropout.py.

# Fields that fix the shapes, the data or the random streams of a run: they
# may not change when a run is resumed.
STRUCTURAL_FIELDS = (
    "latent_dim",
    "hidden_dim",
    "image_size",
    "dropout_rate",
    "leaky_slope",
    "init",
    "dropout_masks",
    "batch_size",
    "dataset",
    "seed_normalization",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class Config:
    # Model.
    latent_dim: int = 100
    hidden_dim: int = 256
    image_size: int = 28
    dropout_rate: float = 0.1
    leaky_slope: float = 0.01  # torch.nn.LeakyReLU's default, which the tutorial used.
    init: str = "torch"  # "torch": torch.nn.Linear's uniform init; "flax": Flax's defaults.
    # JAX only: "hash" masks (fast, see jax_gan/dropout.py) or "threefry" (flax's nn.Dropout).
    dropout_masks: str = "hash"
    # Optimisation.
    lr: float = 2e-4
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    batch_size: int = 64
    epochs: int = 200
    max_steps: int | None = None
    seed: int = 0
    # Data.
    dataset: str = "mnist"
    data_dir: str = "data"
    seed_normalization: bool = False  # The tutorial's no-op Normalize: real images in [0, 1].
    download: bool = True
    # Outputs.
    sample_every: int = 400
    log_every: int = 10
    checkpoint_every: int = 5  # Epochs; a run also saves at its end and on Ctrl-C.
    keep_checkpoints: int = 3

    @property
    def image_dim(self) -> int:
        return self.image_size * self.image_size

    def steps_per_epoch(self, num_examples: int) -> int:
        """Like DataLoader(drop_last=False): the last, partial batch is a step too."""
        return -(-num_examples // self.batch_size)

    def total_steps(self, num_examples: int) -> int:
        total = self.epochs * self.steps_per_epoch(num_examples)
        return min(total, self.max_steps) if self.max_steps else total

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def validate(self) -> None:
        """Raise `UserError` for values no run can use."""
        from jax_gan.errors import UserError

        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        positive = {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "lr": self.lr,
            "sample_every": self.sample_every,
            "log_every": self.log_every,
            "keep_checkpoints": self.keep_checkpoints,
            "checkpoint_every": self.checkpoint_every,
            "latent_dim": self.latent_dim,
            "hidden_dim": self.hidden_dim,
        }
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        for name, value in positive.items():
            if not value > 0:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} must be positive, got {value}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise UserError(f"dropout rate must be in [0, 1), got {self.dropout_rate}")
        if self.init not in ("torch", "flax"):
            raise UserError(f"--init must be 'torch' or 'flax', got {self.init!r}")
        if self.dropout_masks not in DROPOUT_MASKS:
            raise UserError(f"--dropout-masks must be one of {', '.join(DROPOUT_MASKS)}, "
                            f"got {self.dropout_masks!r}")
