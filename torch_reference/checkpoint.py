"""The tutorial's checkpoint: its five keys, plus what a resume needs.

Mirrors jax_gan/checkpoint.py: a `Checkpointer` that saves and restores a
run's state with its metadata. One `.pth` file per run, written to a
temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gan_core.errors import CheckpointError, first_line
from gan_core.rundir import atomic_write
from gan_core.tutorial_checkpoint import FILENAME, check_payload, checkpoint_path, tensor_checksums
from torch_reference.train_step import TrainState, create_train_state


def save(path: Path, state: TrainState, meta: dict[str, Any]) -> None:
    """The tutorial's five keys, then `step`, the run's metadata and torch's RNG state."""
    payload = {
        "epoch": meta.get("epoch", 0),
        "model_G_state_dict": state.g.state_dict(),
        "model_D_state_dict": state.d.state_dict(),
        "optimizer_G_state_dict": state.opt_g.state_dict(),
        "optimizer_D_state_dict": state.opt_d.state_dict(),
        "step": state.step,
        **meta,
        "torch_rng_state": torch.get_rng_state(),
    }
    payload["checksums"] = tensor_checksums(payload)
    buffer = io.BytesIO()  # Serialized first: a full disk is then an OSError naming the file.
    torch.save(payload, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getbuffer())


def load(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint dict, checked for the tutorial's keys and its config's shapes."""
    path = checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as e:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {first_line(e)}") from e
    check_payload(payload, str(path))
    return payload


def restore_state(payload: dict[str, Any], device: torch.device | str = "cpu") -> TrainState:
    """A TrainState holding a checkpoint's weights, Adam states and step."""
    config = check_payload(payload, "checkpoint")
    state = create_train_state(config, device)
    state.g.load_state_dict(payload["model_G_state_dict"])
    state.d.load_state_dict(payload["model_D_state_dict"])
    state.opt_g.load_state_dict(payload["optimizer_G_state_dict"])
    state.opt_d.load_state_dict(payload["optimizer_D_state_dict"])
    state.step = int(payload["step"])
    return state


BEST_FILENAME = "best.pth"  # The best-FID state of a run with --eval-every.


class Checkpointer:
    """The run's `checkpoint.pth`: saved over at each checkpoint, as the tutorial did."""

    def __init__(self, out_dir: str | Path, device: torch.device | str = "cpu", filename: str = FILENAME):
        self.path = Path(out_dir) / filename
        self.device = device

    def save(self, state: TrainState, meta: dict[str, Any]) -> None:
        save(self.path, state, meta)

    def restore_meta(self) -> dict[str, Any]:
        return self._meta(load(self.path, self.device))

    def restore(self) -> tuple[TrainState, dict[str, Any]]:
        payload = load(self.path, self.device)
        meta = self._meta(payload)
        state = restore_state(payload, self.device)
        torch.set_rng_state(payload["torch_rng_state"].cpu())
        return state, meta

    def _meta(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not all(k in payload for k in ("config", "step", "torch_rng_state")):
            raise CheckpointError(f"{self.path} has no config, step and RNG state (the tutorial's "
                                  "own checkpoints have none); cannot resume it")
        return {k: v for k, v in payload.items()
                if not k.endswith("state_dict") and k != "torch_rng_state"}

    def close(self) -> None:
        pass
