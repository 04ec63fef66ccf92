"""Train the tutorial's GAN in PyTorch: `python -m torch_reference.train`.

The run itself (flags, data, logging, pictures, checkpoints, signals) is
`gan_core.driver`'s, shared with jax_gan; this file says how PyTorch does
each part. Two data paths: `--loader tensor` (default) trains on the shared
data layer's arrays, held on the device; `--loader tutorial` is the
tutorial's own torchvision.datasets.MNIST + DataLoader(shuffle=True)
pipeline, over the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core import driver
from gan_core.cli import main_guard
from gan_core.config import Config
from gan_core.data import Dataset
from gan_core.epoch import EpochResult
from gan_core.errors import UserError
from torch_reference.checkpoint import BEST_FILENAME, Checkpointer
from torch_reference.train_step import TrainState, create_train_state, generate, train_epoch, tutorial_dataset


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchTrainer(driver.Trainer):
    """torch_reference's side of a run: state is modules and optimizers on the device."""

    framework = "torch"
    program = "torch_reference.train"
    description = "Train the tutorial's MLP GAN in PyTorch (the reference)."

    def __init__(self, device: torch.device | None = None) -> None:
        self.torch_device = device or default_device()

    def device(self) -> str:
        return str(self.torch_device)

    def check(self, config: Config, dataset: Dataset) -> None:
        if config.loader == "tutorial":
            if dataset.name != "mnist":
                raise UserError("--loader tutorial reads MNIST through torchvision; it needs the MNIST "
                                f"files under {config.data_dir}/MNIST/raw (this run has {dataset.name})")
            tutorial_dataset(config)

    def saved_meta(self, out_dir: Path) -> dict[str, Any] | None:
        checkpointer = Checkpointer(out_dir, self.torch_device)
        return checkpointer.restore_meta() if checkpointer.path.exists() else None

    def start(self, runs: Sequence[driver.Run], dataset: Dataset, resume: bool) -> TrainState:
        [(self.config, out_dir)] = runs
        self.images = torch.from_numpy(dataset.images).unsqueeze(1).to(self.torch_device)  # NCHW
        self.fixed_z = torch.from_numpy(driver.fixed_latents(self.config)).to(self.torch_device)
        self.checkpointer = Checkpointer(out_dir, self.torch_device)
        if resume:
            return self.checkpointer.restore()[0]
        return create_train_state(self.config, self.torch_device)

    def step_of(self, state: TrainState) -> int:
        return state.step

    def train_epoch(self, state: TrainState, start: int, stop: int) -> EpochResult:
        """The epoch with the driver's leading run axis (this trainer trains one run)."""
        result = train_epoch(state, self.images, self.fixed_z, self.config, start=start, stop=stop)
        return EpochResult(result.state, {k: v.numpy()[None] for k, v in result.metrics.items()},
                           result.samples.cpu().numpy()[None], result.num_samples,
                           np.asarray([result.params_finite]))

    def generate(self, state: TrainState, z: np.ndarray, run: int = 0) -> np.ndarray:
        return generate(state.g, torch.from_numpy(z).to(self.torch_device)).cpu().numpy()

    def save(self, state: TrainState, metas: Mapping[int, dict[str, Any]]) -> None:
        if metas:
            self.checkpointer.save(state, metas[0])

    def save_best(self, state: TrainState, meta: dict[str, Any], run: int = 0) -> None:
        Checkpointer(self.checkpointer.path.parent, self.torch_device, BEST_FILENAME).save(state, meta)

    def best_meta(self, out_dir: Path) -> dict[str, Any] | None:
        best = Checkpointer(out_dir, "cpu", BEST_FILENAME)  # Only its metadata is read.
        return best.restore_meta() if best.path.exists() else None



def train(config: Config, out_dir: str | Path, resume: bool = False, *, overwrite: bool = False,
          quiet: bool = True) -> int:
    """Train (or, with `resume`, continue) a run in `out_dir`; returns the exit status."""
    return driver.train(TorchTrainer(), config, out_dir, resume=resume, overwrite=overwrite, quiet=quiet)


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return driver.main(TorchTrainer(), argv)


if __name__ == "__main__":
    sys.exit(main())
