"""The generator of any checkpoint a user can name: what `sample`, `interpolate` and `evaluate` draw from.

The three commands accept the same paths, read the same way: a jax_gan run
(or its `checkpoints/`), a run's `best/`, a torch_reference run, or a `.pth`
(the reference's, its `best.pth`, or the tutorial's own), converted in memory
as `jax_gan.convert` imports it. Nothing is written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

from gan_core import rundir
from gan_core.config import Config
from gan_core.errors import CheckpointError, UserError
from gan_core.tutorial_checkpoint import FILENAME, checkpoint_path
from jax_gan import checkpoint

RUN_LAYOUT = f"a run directory with checkpoints/ (jax_gan) or {FILENAME} (torch_reference)"
NOT_META = ("checksums", "torch_rng_state")  # A .pth's entries that are neither weights nor metadata.


@dataclasses.dataclass(frozen=True)
class TrainedGenerator:
    """G's weights and what the commands report about them."""

    params: Any  # G's Flax params, for `jax_gan.train_step.generate`.
    config: Config
    meta: dict[str, Any]  # Saved beside the weights: "dataset_used", "epoch", ...
    step: int
    framework: str  # "jax_gan" or "torch_reference": the trainer that wrote it.


def load_generator(path: str | Path) -> TrainedGenerator:
    """G of the checkpoint at `path`, verified; a missing, damaged or unknown one is a one-line error."""
    path = Path(path)
    if not rundir.checked(path.exists, path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    framework = run_framework(path)
    if framework == "jax":
        state, config, meta = checkpoint.load(path)
        generator = TrainedGenerator(state.params_g, config, meta, int(state.step), "jax_gan")
    elif framework == "torch":  # A .pth's weights are checked as it is read, D's and Adam's too.
        generator = _from_pth(checkpoint_path(path))
    else:
        raise CheckpointError(f"{path} holds no checkpoint: expected {RUN_LAYOUT}")
    check_finite(generator, path)
    return generator


def check_finite(generator: TrainedGenerator, path: Path) -> None:
    """Refuse weights that would draw NaN images (a diverged or damaged checkpoint), whatever wrote them."""
    flat = traverse_util.flatten_dict(generator.params, sep="/")
    bad = {name: int(np.size(v) - np.count_nonzero(np.isfinite(v))) for name, v in flat.items()}
    name = next((k for k, count in bad.items() if count), None)
    if name is not None:
        raise CheckpointError(f"{path}: the generator's {name} holds {bad[name]} value(s) that are not "
                              "finite (NaN or infinite); it would draw NaN images")


def _from_pth(path: Path) -> TrainedGenerator:
    from jax_gan import convert  # It imports torch: only a .pth pays for that.

    if convert.torch is None:
        raise UserError(f"{path} is a torch_reference checkpoint; reading it needs PyTorch: "
                        "pip install 'jax-gan[torch]'")
    payload, config = convert.read_pth(path)
    state = convert.checkpoint_to_state(payload, config)
    meta = {k: v for k, v in payload.items() if not k.endswith("_state_dict") and k not in NOT_META}
    return TrainedGenerator(state.params_g, config, meta, int(state.step), "torch_reference")


def run_framework(path: Path) -> str | None:
    """"jax" or "torch" for a run directory (or a checkpoint in one), None when neither.

    Both trainers create `checkpoints/`, so an Orbax step inside it marks a
    jax_gan run and a `checkpoint.pth` beside it a torch_reference run; where a
    run holds both (a converted one), its config.json says which trained it.
    """
    if path.is_file():
        return "torch" if path.suffix == ".pth" else None
    if path.name == "checkpoints" or _orbax_steps(path):  # checkpoints/, or a run's best/.
        return "jax"
    folder = path / "checkpoints"
    orbax = _orbax_steps(folder)
    torch = (path / FILENAME).is_file()
    if orbax and torch:
        try:
            saved = json.loads((path / "config.json").read_text()).get("framework")
        except (OSError, ValueError, AttributeError):
            saved = None
        return "torch" if saved == "torch" else "jax"
    if torch:
        return "torch"
    return "jax" if folder.is_dir() else None  # An empty checkpoints/: "no checkpoint in ...".


def _orbax_steps(folder: Path) -> bool:
    return folder.is_dir() and any(child.name.isdigit() and child.is_dir() for child in folder.iterdir())
