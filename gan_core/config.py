"""The one configuration both frameworks train from, each field declared once.

Defaults are the tutorial's recipe: a 100-256-256-784 MLP generator, a
784-256-256-1 MLP discriminator, Dropout(0.1), Adam(2e-4), batch 64,
200 epochs and a sample grid every 400 batches.

Each field carries its help text, its valid range and whether a resumed run
may change it; `gan_core.cli` derives the flags from these, `Config.validate`
the checks, and `structural_fields` the set a resume must keep. Adding a
hyperparameter is one `option(...)` line.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gan_core.errors import UserError

DATASETS = ("mnist", "fashion-mnist", "mnist-sample")
DROPOUT_MASKS = ("hash", "threefry")  # See jax_gan/dropout.py.
INITS = ("torch", "flax")
LOADERS = ("tensor", "tutorial")
MAX_SEED = 2**32 - 1
MAX_STEP = 2**31 - 1  # The step counter is an int32 on the device.

# Keys of config dicts saved by earlier versions, and their current names.
RENAMED = {"seed_normalization": "tutorial_normalization"}


def option(default: Any, help: str, *, structural: bool = False, low: float | None = None,
           high: float | None = None, above: float | None = None, choices: tuple | None = None,
           only: str | None = None, flag: bool = True) -> Any:
    """A config field and everything the CLI and validation need to know about it.

    `low`/`high` bound the value inclusively, `above` exclusively from below;
    `structural` fields fix the shapes, the data or the random streams of a run,
    so a resume may not change them; `only` names the one framework that reads
    the field ("jax" or "torch"); `flag=False` keeps it off the command line.
    """
    meta = {"help": help, "structural": structural, "low": low, "high": high, "above": above,
            "choices": choices, "only": only, "flag": flag}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Config:
    # Model.
    latent_dim: int = option(100, "size of the generator's input z", structural=True, low=1, high=4096)
    hidden_dim: int = option(256, "width of both hidden layers of G and D", structural=True,
                             low=1, high=8192)
    image_size: int = option(28, "side of the square images (fixed by the data)", structural=True,
                             choices=(28,), flag=False)
    dropout_rate: float = option(0.1, "dropout after each hidden layer of G and D", structural=True,
                                 low=0.0, high=0.99)
    leaky_slope: float = option(0.01, "negative slope of D's LeakyReLU (torch's default)",
                                structural=True, low=0.0, high=1.0)
    init: str = option("torch", "weight init: torch.nn.Linear's uniform, or Flax's defaults",
                       structural=True, choices=INITS, only="jax")
    dropout_masks: str = option("hash", "dropout's random bits: a keyed counter hash (fast on CPU) "
                                "or threefry (flax.linen.Dropout's own)", structural=True,
                                choices=DROPOUT_MASKS, only="jax")
    # Optimisation.
    lr: float = option(2e-4, "Adam learning rate", above=0.0)
    b1: float = option(0.9, "Adam beta1", low=0.0, high=0.999999)
    b2: float = option(0.999, "Adam beta2", low=0.0, high=0.999999)
    eps: float = option(1e-8, "Adam epsilon", above=0.0, high=1.0)
    batch_size: int = option(64, "images per train step", structural=True, low=1, high=2**20)
    epochs: int = option(200, "epochs to train", low=1, high=10**6)
    max_steps: int | None = option(None, "stop after this many train steps in all", low=1,
                                   high=MAX_STEP)
    seed: int = option(0, "random seed: initial weights, data order, z and dropout", structural=True,
                       low=0, high=MAX_SEED)
    # Data.
    dataset: str = option("mnist", "dataset to train on", structural=True, choices=DATASETS)
    data_dir: str = option("data", "where IDX files live, in torchvision's layout (<dir>/MNIST/raw)")
    tutorial_normalization: bool = option(
        False, "keep the tutorial's no-op Normalize: real images in [0, 1], not [-1, 1]",
        structural=True)
    download: bool = option(True, "download MNIST when it is not on disk")
    loader: str = option("tensor", "tensor: the data layer's arrays, held on the device (fast); "
                         "tutorial: the tutorial's torchvision DataLoader (MNIST only)",
                         choices=LOADERS, only="torch")
    # Outputs.
    sample_every: int = option(400, "save a 5x5 sample grid every this many steps", low=1, high=MAX_STEP)
    log_every: int = option(10, "write metrics every this many steps", low=1, high=MAX_STEP)
    checkpoint_every: int = option(5, "save a checkpoint every this many epochs (and at the end, "
                                   "and on Ctrl-C)", low=1, high=10**6)
    keep_checkpoints: int = option(3, "how many recent checkpoints to keep", low=1, high=1000)
    image_scale: int = option(4, "enlarge saved pictures this many times (nearest neighbour)",
                              low=1, high=16)
    # Sample quality (python -m jax_gan.evaluate's metrics, in a worker process).
    eval_every: int = option(0, "score sample quality (FID, precision/recall, density/coverage, "
                             "classes) every this many epochs and at the end, into metrics.jsonl; "
                             "a trainer also keeps the best-FID state (RUN/best, RUN/best.pth); "
                             "0: never", low=0, high=10**6)
    eval_num: int = option(10_000, "samples drawn for each quality score (at least 129: FID's 128 "
                           "features need more samples than dimensions)", low=129, high=100_000)

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
        """A config saved by this or an earlier version; unknown keys are ignored."""
        values = {RENAMED.get(k, k): v for k, v in values.items()}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def validate(self) -> None:
        """Raise `UserError` for the first value no run can use, naming its flag."""
        for f in dataclasses.fields(self):
            problem = field_problem(f, getattr(self, f.name))
            if problem:
                raise UserError(f"{flag_name(f.name)} {problem}")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_problem(f: dataclasses.Field, value: Any) -> str | None:
    """Why `value` is not valid for field `f`, or None."""
    meta = f.metadata
    if value is None:
        return None if f.default is None else "must be given"
    kind = field_type(f)
    if kind is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is str:
        if not isinstance(value, str):
            return f"must be a string, got {value!r}"
    elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be an integer, got {value!r}"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be finite, got {value}"
    if meta["choices"] is not None and value not in meta["choices"]:
        return f"must be one of {', '.join(map(str, meta['choices']))}, got {value!r}"
    if meta["above"] is not None and not value > meta["above"]:
        return "must be positive, got " + str(value) if meta["above"] == 0 else \
            f"must be above {meta['above']}, got {value}"
    low, high = meta["low"], meta["high"]
    if (low is not None and value < low) or (high is not None and value > high):
        if low == 1 and kind is int and value < 1:
            return f"must be positive, got {value}"
        return f"must be in [{_number(low)}, {_number(high)}], got {value}"
    return None


def _number(x: float | None) -> str:
    if x is None:
        return "inf"
    return f"{x:,}".replace(",", "_") if isinstance(x, int) and x > 10**5 else f"{x:g}"


def field_type(f: dataclasses.Field) -> type:
    """The value type of a field (`int | None` is int), from its annotation."""
    annotation = str(f.type)
    for kind in (bool, int, float, str):
        if annotation.split("|")[0].strip() == kind.__name__:
            return kind
    raise TypeError(f"Config.{f.name}: unsupported annotation {annotation}")


def structural_fields() -> tuple[str, ...]:
    """Fields a resumed run may not change: shapes, data and random streams."""
    return tuple(f.name for f in dataclasses.fields(Config) if f.metadata["structural"])
