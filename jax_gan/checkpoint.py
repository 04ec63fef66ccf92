"""Orbax checkpoints of the whole train state, with the run's config beside it.

Orbax writes each step to a temporary directory and renames it when complete,
so a crash mid-save never leaves a half checkpoint as the latest one. Each
checkpoint also stores a SHA-256 of every array: a restore checks the arrays'
shapes against the saved config and their bytes against the checksums, so a
damaged checkpoint is reported, never silently loaded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import sys
import unittest.mock
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flax.serialization
import flax.traverse_util
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint._src.multihost import multihost as orbax_multihost

from gan_core import rundir
from gan_core.config import Config
from gan_core.digest import file_sha256, tree_sha256
from gan_core.errors import CheckpointError, first_line
from jax_gan.train_step import TrainState, create_train_state

FILE_SUMS = "files.sha256.json"


@contextlib.contextmanager
def quiet_absl(level: int = logging.ERROR) -> Iterator[None]:
    """Raise absl's log threshold for a block, and put it back."""
    logger = logging.getLogger("absl")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def checkpoint_dir(path: str | Path) -> Path:
    """Accept a run directory or its `checkpoints/` directory."""
    path = Path(path)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


@contextlib.contextmanager
def as_sole_process() -> Iterator[None]:
    """Let this process write a checkpoint of its own inside a multi-process program.

    Orbax writes NumPy arrays from process 0 only (its `NumpyHandler`), so a
    sweep's other processes would save their members' checkpoints without
    their arrays. Within this block Orbax sees the process as process 0;
    each `Checkpointer` also limits its barriers to itself, so no other
    process is waited for.
    """
    if jax.process_count() == 1 or jax.process_index() == 0:
        yield
        return
    with (unittest.mock.patch.object(orbax_multihost, "process_index", lambda: 0),
          unittest.mock.patch.object(jax, "process_index", lambda: 0)):
        yield


def _sole(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with as_sole_process():
            return method(*args, **kwargs)
    return wrapper


class Checkpointer:
    """One run's checkpoints, written and read by this process alone (also in a multi-process sweep)."""

    @_sole
    def __init__(self, directory: str | Path, keep: int = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"no checkpoint directory at {directory}")
        if create:  # A save cut short by a crash or kill -9 left its temporary folder.
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CheckpointError(f"cannot create {self.directory}: {e.strerror or e}") from e
            for tmp in self.directory.glob("*.orbax-checkpoint-tmp*"):
                shutil.rmtree(tmp, ignore_errors=True)
        alone = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                                   active_processes={jax.process_index()})
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep), create=False,
            enable_async_checkpointing=False, multiprocessing_options=alone)
        handlers = {"state": ocp.StandardCheckpointHandler(multiprocessing_options=alone),
                    "meta": ocp.JsonCheckpointHandler(multiprocessing_options=alone)}
        try:
            self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        except Exception as e:  # noqa: BLE001 - Orbax raises many types here.
            raise CheckpointError(f"cannot open checkpoints in {directory}: {e}") from e

    @_sole
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    @_sole
    def save(self, state: TrainState, meta: dict[str, Any]) -> int:
        """Save `state` as its step; on failure (a full disk) nothing half-written is left.

        Free space is checked first: Orbax's writer threads report a full disk
        with pages of tracebacks, after the fact.
        """
        step = int(state.step)
        tree = flax.serialization.to_state_dict(jax.device_get(state))
        meta = {**meta, "checksums": tree_sha256(tree)}
        need = sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree)) * 1.1 + 2**20
        free = shutil.disk_usage(self.directory).free
        if need > free:
            raise CheckpointError(f"cannot save checkpoint {step} in {self.directory}: No space left on "
                                  f"device (needs {need / 2**20:.1f} MB, {free / 2**20:.1f} MB free); "
                                  "earlier checkpoints are kept")
        try:
            if step in self.manager.all_steps():  # A damaged one a resume skipped, redone now.
                self.manager.delete(step)
            with quiet_absl():  # Orbax's notes about its multi-process layout, for a one-process save.
                self.manager.save(step, args=ocp.args.Composite(
                    state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)), force=True)
            self.manager.wait_until_finished()
            write_file_sums(self.directory / str(step))
        except Exception as e:  # noqa: BLE001 - Orbax wraps OSError in several types.
            for tmp in self.directory.glob("*.orbax-checkpoint-tmp*"):
                shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointError(f"cannot save checkpoint {step} in {self.directory}: "
                                  f"{first_line(e)}; earlier checkpoints are kept") from e
        return step

    @_sole
    def restore_meta(self, step: int | None = None) -> dict[str, Any]:
        """The metadata saved with `step` (default: the latest): config, dataset, epoch."""
        step = self._step(step)
        with self._unless_removed(step):
            check_file_sums(self.directory / str(step))
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            # Runs saved before `dropout_masks` existed drew flax's threefry masks:
            # keep drawing them, so a resumed run continues the same random stream.
            meta["config"].setdefault("dropout_masks", "threefry")
            config = Config.from_dict(meta["config"])
            config.validate()
        except Exception as e:  # noqa: BLE001 - a corrupt checkpoint fails in many ways.
            self._raise_if_removed(step, e)
            raise self._corrupt(step, e) from e
        return meta

    @_sole
    def restore(self, step: int | None = None) -> tuple[TrainState, dict[str, Any]]:
        """The state and metadata of `step` (default: the latest), verified."""
        step = self._step(step)
        meta = self.restore_meta(step)
        template = jax.eval_shape(lambda: create_train_state(Config.from_dict(meta["config"])))
        expected = flax.traverse_util.flatten_dict(flax.serialization.to_state_dict(template), sep="/")
        try:
            tree = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
        except Exception as e:  # noqa: BLE001 - a corrupt checkpoint fails in many ways.
            self._raise_if_removed(step, e)
            raise self._corrupt(step, e) from e
        where = self.directory / str(step)
        saved = flax.traverse_util.flatten_dict(tree, sep="/")
        for name, spec in expected.items():
            array = saved.get(name)
            if array is None or np.shape(array) != spec.shape or np.asarray(array).dtype != spec.dtype:
                got = "missing" if array is None else f"{np.asarray(array).dtype}{list(np.shape(array))}"
                raise CheckpointError(f"checkpoint {where}: {name} is {got}, but its config needs "
                                      f"{spec.dtype}{list(spec.shape)}; the checkpoint does not match "
                                      "its own config")
        if "checksums" in meta:
            bad = [k for k, v in tree_sha256(tree).items() if meta["checksums"].get(k) != v]
            if bad:
                raise CheckpointError(f"checkpoint {where} is corrupt: {len(bad)} array(s) fail their "
                                      f"SHA-256 check, e.g. {bad[0]}")
        nonfinite = [k for k, v in saved.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
                     and not np.isfinite(v).all()]
        if nonfinite:
            raise CheckpointError(f"checkpoint {where} holds values that are not finite (e.g. "
                                  f"{nonfinite[0]}); a run never saves them, so it was changed after "
                                  "it was written")
        return flax.serialization.from_state_dict(template, jax.device_put(tree)), meta

    def restore_latest_good(self) -> tuple[TrainState, dict[str, Any]]:
        """The newest checkpoint that verifies; says so when it has to skip a damaged one."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        errors = []
        for step in steps:
            try:
                state, meta = self.restore(step)
            except CheckpointChanged:  # Rotated away by the run that writes them: not damage.
                continue
            except CheckpointError as e:
                print(f"warning: {e}", file=sys.stderr)
                errors.append(e)
                continue
            if errors:
                print(f"warning: resuming from checkpoint {step}, the newest that verifies",
                      file=sys.stderr)
            return state, meta
        raise CheckpointError(f"no checkpoint in {self.directory} verifies ({errors[0]})")

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return step

    @contextlib.contextmanager
    def _unless_removed(self, step: int) -> Iterator[None]:
        try:
            yield
        except CheckpointError as e:
            self._raise_if_removed(step, e)
            raise

    def _raise_if_removed(self, step: int, error: Exception) -> None:
        """A checkpoint that vanished while it was read was rotated away by a live run, not damaged."""
        if not (self.directory / str(step)).exists():
            raise CheckpointChanged(f"checkpoint {self.directory / str(step)} was removed while it was "
                                    "read (a running trainer keeps only its newest checkpoints)") from error

    def _corrupt(self, step: int, error: Exception) -> CheckpointError:
        return CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt or incompatible: "
                               f"{first_line(error)}")

    @_sole
    def close(self) -> None:
        self.manager.close()


def write_file_sums(folder: Path) -> None:
    """SHA-256 of every file of a saved checkpoint, beside them: `check_file_sums` reads it.

    Checked before Orbax opens anything, so damaged bytes are reported as such
    instead of surfacing as decoder errors from Orbax's reader threads.
    """
    sums = {str(p.relative_to(folder)): file_sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != FILE_SUMS}
    with rundir.atomic_write(folder / FILE_SUMS) as f:
        json.dump(sums, f, indent=0)


def check_file_sums(folder: Path) -> None:
    """Refuse a checkpoint whose files differ from what was saved (no-op for older checkpoints)."""
    listing = folder / FILE_SUMS
    if not listing.exists():
        return
    try:
        sums = json.loads(listing.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {folder} is corrupt: its {FILE_SUMS} is unreadable") from e
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {FILE_SUMS}
    if present != set(sums):
        raise CheckpointError(f"checkpoint {folder} is corrupt: files are missing or were added")
    bad = [name for name, digest in sums.items() if file_sha256(folder / name) != digest]
    if bad:
        raise CheckpointError(f"checkpoint {folder} is corrupt: {len(bad)} file(s) fail their SHA-256 "
                              f"check, e.g. {bad[0]}")



class CheckpointChanged(CheckpointError):
    """The checkpoint being read was replaced meanwhile: read the newest again."""


def load(path: str | Path, tries: int = 5) -> tuple[TrainState, Config, dict[str, Any]]:
    """The latest checkpoint under a run or checkpoints directory.

    A live run may rotate the checkpoint away while it is read: then the
    newest is read again, `tries` times in all.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    changed = None
    for _ in range(tries):
        checkpointer = Checkpointer(checkpoint_dir(path), create=False)
        try:
            state, meta = checkpointer.restore()
            return state, Config.from_dict(meta["config"]), meta
        except CheckpointChanged as e:
            changed = e
        finally:
            checkpointer.close()
    raise CheckpointError(f"{path} changed while it was read, {tries} times; its run is saving "
                          "checkpoints: try again") from changed
