"""The tutorial's checkpoint: its five keys, plus what a resume needs.

Written to a temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from jax_gan.config import Config
from jax_gan.errors import CheckpointError

SEED_KEYS = ("epoch", "model_G_state_dict", "model_D_state_dict",
             "optimizer_G_state_dict", "optimizer_D_state_dict")
FILENAME = "checkpoint.pth"


def checkpoint_path(path: str | Path) -> Path:
    """Accept a run directory or the .pth file itself."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def save(path: Path, models, optimizers, *, epoch: int, step: int, config: Config,
         extra: dict[str, Any] | None = None) -> None:
    g, d = models
    opt_g, opt_d = optimizers
    payload = {
        "epoch": epoch,
        "model_G_state_dict": g.state_dict(),
        "model_D_state_dict": d.state_dict(),
        "optimizer_G_state_dict": opt_g.state_dict(),
        "optimizer_D_state_dict": opt_d.state_dict(),
        "step": step,
        "config": config.to_dict(),
        "torch_rng_state": torch.get_rng_state(),
        **(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint dict, checked for the tutorial's keys."""
    path = checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {reason}") from None
    if not isinstance(payload, dict) or not all(k in payload for k in SEED_KEYS[1:3]):
        raise CheckpointError(f"{path} lacks the generator/discriminator state dicts")
    return payload


def config_of(payload: dict[str, Any]) -> Config:
    return Config.from_dict(payload.get("config", {}))
