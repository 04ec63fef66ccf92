"""Orbax checkpoints of the whole train state, with the run's config beside it.

Orbax writes each step to a temporary directory and renames it when complete,
so a crash mid-save never leaves a half checkpoint as the latest one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flax.serialization
import jax
import orbax.checkpoint as ocp

from gan_core.config import Config
from gan_core.errors import CheckpointError
from jax_gan.train_step import TrainState, create_train_state


def checkpoint_dir(path: str | Path) -> Path:
    """Accept a run directory or its `checkpoints/` directory."""
    path = Path(path)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"no checkpoint directory at {directory}")
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep), create=create,
            enable_async_checkpointing=False)
        try:
            self.manager = ocp.CheckpointManager(self.directory, options=options)
        except Exception as e:  # noqa: BLE001 - Orbax raises many types here.
            raise CheckpointError(f"cannot open checkpoints in {directory}: {e}") from e

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state: TrainState, meta: dict[str, Any]) -> int:
        step = int(state.step)
        tree = flax.serialization.to_state_dict(jax.device_get(state))
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()
        return step

    def restore_meta(self, step: int | None = None) -> dict[str, Any]:
        """The metadata saved with `step` (default: the latest): config, dataset, epoch."""
        step = self._step(step)
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            # Runs saved before `dropout_masks` existed drew flax's threefry masks:
            # keep drawing them, so a resumed run continues the same random stream.
            meta["config"].setdefault("dropout_masks", "threefry")
        except Exception as e:  # noqa: BLE001 - a corrupt checkpoint fails in many ways.
            raise self._corrupt(step, e) from e
        return meta

    def restore(self, step: int | None = None) -> tuple[TrainState, dict[str, Any]]:
        """The state and metadata of `step` (default: the latest)."""
        step = self._step(step)
        meta = self.restore_meta(step)
        try:
            config = Config.from_dict(meta["config"])
            template = jax.eval_shape(lambda: create_train_state(config))
            tree = flax.serialization.to_state_dict(template)
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract))).state
            state = flax.serialization.from_state_dict(template, restored)
        except Exception as e:  # noqa: BLE001 - a corrupt checkpoint fails in many ways.
            raise self._corrupt(step, e) from e
        return state, meta

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return step

    def _corrupt(self, step: int, error: Exception) -> CheckpointError:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt or incompatible: "
                               f"{reason}")

    def close(self) -> None:
        self.manager.close()


def load(path: str | Path) -> tuple[TrainState, Config, dict[str, Any]]:
    """The latest checkpoint under a run or checkpoints directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    checkpointer = Checkpointer(checkpoint_dir(path), create=False)
    try:
        state, meta = checkpointer.restore()
    finally:
        checkpointer.close()
    return state, Config.from_dict(meta["config"]), meta
