"""A run's output directory: who owns it, what it holds, and the files written as training goes.

A run directory belongs to one process at a time (`RunLock`), is marked as a
jax-gan run before anything else is written (`MARKER`), and `--overwrite`
removes only what a run writes, never a user's own files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gan_core.config import Config
from gan_core.errors import UserError

MARKER = ".jax-gan-run"  # Written first: "this folder is a jax-gan run".
LOCK = ".jax-gan.lock"
# What a run writes in its output directory, besides MARKER and LOCK.
RUN_FILES = ("metrics.jsonl", "checkpoint.pth", "best.pth", "losses.png", "interpolation.png", "samples.png",
             "progress.gif", "config.json", "sweep.json", "summary.json", "summary.md", "contact_sheet.png")
SWEEP_PLAN = "sweep.json"  # What makes a folder a sweep's rather than a single run's.
BEST = "best"  # jax_gan's best-FID checkpoint folder (--eval-every); the reference writes best.pth.
SAMPLE_NAME = re.compile(r"step_\d{7}\.png")
CHECKPOINT_NAME = re.compile(r"\d+(\.orbax-checkpoint-tmp.*)?")


def holds_previous_run(out_dir: Path) -> bool:
    names = (MARKER, "checkpoints", "samples", BEST, *RUN_FILES)
    return out_dir.is_dir() and any((out_dir / name).exists() for name in names)


def require_previous_run(out_dir: Path) -> None:
    if not checked(lambda: holds_previous_run(out_dir), out_dir):
        raise UserError(f"--resume: no previous run in {out_dir}")


def refuse_sweep(out_dir: Path, program: str) -> None:
    """A single run's command never resumes or replaces a sweep's folder, nor one of its members':
    the sweep resumes its members from its own checkpoint, so the two would mix."""
    if checked(lambda: (out_dir / SWEEP_PLAN).exists(), out_dir):
        raise UserError(f"{out_dir} holds a sweep, not a run of python -m {program}; resume it with "
                        f"python -m jax_gan.sweep --out-dir {out_dir} --resume")
    try:
        sweep = json.loads((out_dir / "config.json").read_text()).get("sweep")
    except (OSError, ValueError, AttributeError):
        return
    if sweep:
        raise UserError(f"{out_dir} is a member of the sweep in {sweep}; resume the sweep with "
                        f"python -m jax_gan.sweep --out-dir {sweep} --resume (sample, evaluate and "
                        "convert read a member as they read any run)")


def checked(probe, path: Path):
    """`probe()`, with any OSError from looking at `path` (a name too long, a loop) as one line."""
    try:
        return probe()
    except OSError as e:
        raise UserError(f"cannot use {path}: {e.strerror or e}") from e


class RunLock:
    """An exclusive lock on a run directory, held for the life of the run.

    `fcntl.flock` on a file inside it: the kernel drops the lock when the process
    ends, however it ends (kill -9 included), so a lock is never stale. The
    holder writes its PID into the file, so a refused start can say who holds it.
    """

    def __init__(self, out_dir: Path, name: str = LOCK):
        self.path = out_dir / name
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot lock {self.path.parent}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"run directory {self.path.parent} is in use by process {holder}; "
                            "wait for it to finish, or stop it first") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:  # A full disk: leave no lock file behind.
            os.close(fd)
            if not existed:
                self.path.unlink(missing_ok=True)
            raise UserError(f"cannot lock {self.path.parent}: {e.strerror or e}") from e
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # Closing the descriptor drops the flock.
            self.fd = None


@contextmanager
def claim(out_dir: Path, name: str = LOCK) -> Iterator[RunLock | None]:
    """Hold the lock of an existing run directory (None when there is none yet).

    Taken before a resume reads the checkpoints, so a second process is refused
    before it reads, truncates or deletes anything. `name` is another lock file
    in it (a sweep's other processes each lock their own).
    """
    if not checked(out_dir.is_dir, out_dir):
        yield None
        return
    lock = RunLock(out_dir, name).acquire()
    try:
        yield lock
    finally:
        lock.release()


def prepare_out_dir(out_dir: str | Path, *, resume: bool, overwrite: bool,
                    lock: RunLock | None = None) -> tuple[Path, RunLock]:
    """Lock, check and mark the output directory; never silently overwrite a run or a user file.

    Returns the directory and its held lock (`lock`, if the caller holds it
    already); release it when the run ends.
    """
    out = Path(out_dir)
    if checked(lambda: out.exists() and not out.is_dir(), out):
        raise UserError(f"--out-dir {out} exists and is not a directory")
    if resume:
        require_previous_run(out)
    elif checked(lambda: holds_previous_run(out), out):
        if not overwrite:
            raise UserError(f"{out} already holds a run; pass --resume to continue it or "
                            f"--overwrite to replace it (or choose another --out-dir)")
        if not (out / MARKER).exists():
            raise UserError(f"{out} is not a jax-gan run (it has no {MARKER} marker); --overwrite "
                            "only replaces runs, so move its files away yourself")
    created = not checked(out.exists, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write to --out-dir {out}: {e.strerror or e}") from e
    try:
        lock = lock or RunLock(out).acquire()
    except UserError:
        if created:  # Nothing of a run is left where it could not start.
            shutil.rmtree(out, ignore_errors=True)
        raise
    try:
        if overwrite and not resume:
            remove_run_outputs(out)
        (out / MARKER).write_text(json.dumps({"project": "jax-gan"}) + "\n")
        for folder in (out, out / "samples", out / "checkpoints"):
            folder.mkdir(exist_ok=True)
            probe_writable(folder)
    except OSError as e:
        lock.release()
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise UserError(f"cannot write to --out-dir {out}: {e.strerror or e}") from e
    except BaseException:
        lock.release()
        raise
    return out, lock


def probe_writable(folder: Path) -> None:
    """Fail now, not after an hour of training, if `folder` cannot take new files."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
        pass


def remove_run_outputs(out: Path) -> None:
    """Delete what a run writes, and nothing else: a user's own files stay."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for folder, pattern in ((out / "samples", SAMPLE_NAME), (out / "checkpoints", CHECKPOINT_NAME),
                            (out / BEST, CHECKPOINT_NAME)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if pattern.fullmatch(path.name):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def remove_run(out: Path, lock: RunLock) -> None:
    """Remove a run whose lock the caller holds: what it wrote, its marker, and its folder if
    nothing else is left."""
    try:
        remove_run_outputs(out)
        (out / MARKER).unlink(missing_ok=True)
    finally:
        lock.release()
    (out / LOCK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        out.rmdir()


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[Any]:
    """Write `path` through a temporary file renamed over it: readers never see half a file.

    On failure (a full disk) the temporary file is removed and the old `path`
    is left as it was; the error names `path`.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise write_failure(path, e) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_failure(path: Path, error: OSError) -> UserError:
    """One line for a failed write, with a hint for a full disk."""
    hint = "; free some space and resume" if error.errno == errno.ENOSPC else ""
    return UserError(f"cannot write {path}: {error.strerror or error}{hint}")


def save_config(out_dir: Path, config: Config, extra: dict[str, Any] | None = None) -> None:
    payload = {**config.to_dict(), **(extra or {})}
    with atomic_write(out_dir / "config.json") as f:
        f.write(json.dumps(payload, indent=2) + "\n")


def read_config(out_dir: Path) -> dict[str, Any]:
    """The config a run saved when it started (for a run stopped before its first checkpoint)."""
    path = out_dir / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"--resume: {path} is missing or damaged, and the run has no checkpoint; "
                        "start it again with --overwrite") from e


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step, appended as training goes."""

    def __init__(self, path: Path, resume_step: int = 0):
        self.path = path
        if resume_step and path.exists():
            # Drop lines logged after the checkpoint we resume from: they will be redone.
            records, torn = parse_metrics(path.read_text())
            if torn:
                print(f"warning: {path}: dropped a torn last line (a crash while writing it)",
                      file=sys.stderr)
            with atomic_write(path) as f:
                f.writelines(json.dumps(r) + "\n" for r in records if r["step"] < resume_step)
        elif path.exists():
            path.unlink()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        try:
            with self.path.open("a") as f:
                f.write("".join(json.dumps(record) + "\n" for record in records))
        except OSError as e:
            raise write_failure(self.path, e) from e


def parse_metrics(text: str) -> tuple[list[dict[str, Any]], bool]:
    """The records of a metrics.jsonl, and whether its last line was torn (cut mid-write)."""
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                return records, True
            raise UserError(f"metrics.jsonl line {i + 1} is not JSON; the log is damaged") from None
    return records, False


def loss_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training steps' lines of a metrics.jsonl (losses)."""
    return [r for r in records if "loss_g" in r]


def quality_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `--eval-every` lines of a metrics.jsonl (FID and the other quality metrics)."""
    return [r for r in records if "fid" in r]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return parse_metrics(path.read_text())[0]
