"""Train the tutorial's GAN in JAX: `python -m jax_gan.train`.

The run itself (flags, data, logging, pictures, checkpoints, signals) is
`gan_core.driver`'s, shared with the PyTorch reference; this file says how
JAX does each part. An epoch is one compiled call (`train_step.train_epoch`);
between calls the host logs, saves sample grids and checkpoints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_core import driver, rundir
from gan_core.cli import main_guard
from gan_core.config import Config
from gan_core.data import Dataset
from gan_core.epoch import EpochResult
from jax_gan import backend
from jax_gan.checkpoint import Checkpointer
from jax_gan.train_step import TrainState, create_train_state, generate, train_epoch


class JaxTrainer(driver.Trainer):
    """jax_gan's side of a run: state is a `TrainState` pytree on the device."""

    framework = "jax"
    program = "jax_gan.train"
    description = "Train the tutorial's MLP GAN in JAX."

    def __init__(self) -> None:
        self.checkpointer: Checkpointer | None = None
        self.best: Checkpointer | None = None
        self.resumed: tuple[TrainState, dict[str, Any]] | None = None

    def device(self) -> str:
        return backend.platform()

    def check(self, config: Config, dataset: Dataset) -> None:
        backend.platform()  # Every valid config runs, where JAX has a backend.

    def saved_meta(self, out_dir: Path) -> dict[str, Any] | None:
        """The newest checkpoint that verifies (kept for `start`): damaged ones are skipped."""
        if self.resumed is None:
            self.resumed = restore_latest_good(Path(out_dir) / "checkpoints")
        return self.resumed[1] if self.resumed else None

    def best_meta(self, out_dir: Path) -> dict[str, Any] | None:
        return read_best_meta(out_dir)

    def start(self, runs: Sequence[driver.Run], dataset: Dataset, resume: bool) -> TrainState:
        [(self.config, out_dir)] = runs
        self.images = jax.device_put(jnp.asarray(dataset.images))
        self.fixed_z = jnp.asarray(driver.fixed_latents(self.config))
        self.checkpointer = Checkpointer(out_dir / "checkpoints", keep=self.config.keep_checkpoints)
        self.out_dir = out_dir
        if not resume:
            return create_train_state(self.config)
        return (self.resumed or restore_latest_good(out_dir / "checkpoints"))[0]

    def step_of(self, state: TrainState) -> int:
        return int(state.step)

    def train_epoch(self, state: TrainState, start: int, stop: int) -> EpochResult:
        result = train_epoch(state, self.images, self.fixed_z, config=self.config, start=start, stop=stop)
        return as_rows(result)

    def generate(self, state: TrainState, z: np.ndarray, run: int = 0) -> np.ndarray:
        return np.asarray(generate(state.params_g, jnp.asarray(z), self.config))

    def save(self, state: TrainState, metas: Mapping[int, dict[str, Any]]) -> None:
        if metas:
            self.checkpointer.save(state, metas[0])

    def save_best(self, state: TrainState, meta: dict[str, Any], run: int = 0) -> None:
        if self.best is None:  # <out>/best: one Orbax checkpoint, read like checkpoints/.
            self.best = Checkpointer(self.out_dir / rundir.BEST, keep=1)
        self.best.save(state, meta)

    def close(self) -> None:
        for checkpointer in (self.checkpointer, self.best):
            if checkpointer is not None:
                checkpointer.close()


def as_rows(result: EpochResult) -> EpochResult:
    """A single run's epoch on the host, with the driver's leading run axis."""
    metrics = {k: np.asarray(v)[None] for k, v in jax.device_get(result.metrics).items()}
    return EpochResult(result.state, metrics, np.asarray(result.samples)[None], int(result.num_samples),
                       np.asarray([bool(result.params_finite)]))


def restore_latest_good(folder: Path) -> tuple[TrainState, dict[str, Any]] | None:
    """The newest checkpoint in `folder` that verifies; None when it holds none."""
    return read_checkpoints(folder, Checkpointer.restore_latest_good)


def read_best_meta(out_dir: Path) -> dict[str, Any] | None:
    """The metadata of a run's best-FID checkpoint (`RUN/best`); None when it has none."""
    return read_checkpoints(Path(out_dir) / rundir.BEST, Checkpointer.restore_meta)


def read_checkpoints(folder: Path, read: Callable[[Checkpointer], Any]) -> Any:
    """`read(checkpointer)` over the checkpoints in `folder`; None when it holds none."""
    if not folder.is_dir() or not any(p.name.isdigit() for p in folder.iterdir()):
        return None
    checkpointer = Checkpointer(folder, create=False)
    try:
        return read(checkpointer)
    finally:
        checkpointer.close()


def train(config: Config, out_dir: str | Path, resume: bool = False, *, overwrite: bool = False,
          quiet: bool = True) -> int:
    """Train (or, with `resume`, continue) a run in `out_dir`; returns the exit status."""
    return driver.train(JaxTrainer(), config, out_dir, resume=resume, overwrite=overwrite, quiet=quiet)


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return driver.main(JaxTrainer(), argv)


if __name__ == "__main__":
    sys.exit(main())
