"""A run's output directory: what it holds, and the files written as training goes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gan_core.config import Config
from gan_core.errors import UserError

# What a run leaves in its output directory.
RUN_OUTPUTS = ("metrics.jsonl", "checkpoints", "checkpoint.pth", "samples", "losses.png",
               "interpolation.png", "samples.png", "progress.gif", "config.json")


def holds_previous_run(out_dir: Path) -> bool:
    return out_dir.is_dir() and any((out_dir / name).exists() for name in RUN_OUTPUTS)


def require_previous_run(out_dir: Path) -> None:
    if not holds_previous_run(out_dir):
        raise UserError(f"--resume: no previous run in {out_dir}")


def prepare_out_dir(out_dir: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """Create or check the output directory; never silently overwrite a run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} exists and is not a directory")
    if resume:
        require_previous_run(out)
    elif holds_previous_run(out):
        if not overwrite:
            raise UserError(f"{out} already holds a run; pass --resume to continue it or "
                            f"--overwrite to replace it (or choose another --out-dir)")
        for name in RUN_OUTPUTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    try:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to --out-dir {out}: {e.strerror or e}") from e
    return out


def save_config(out_dir: Path, config: Config, extra: dict[str, Any] | None = None) -> None:
    payload = {**config.to_dict(), **(extra or {})}
    (out_dir / "config.json").write_text(json.dumps(payload, indent=2) + "\n")


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step, appended as training goes."""

    def __init__(self, path: Path, resume_step: int = 0):
        self.path = path
        if resume_step and path.exists():
            # Drop lines logged after the checkpoint we resume from: they will be redone.
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] < resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        elif path.exists():
            path.unlink()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        with self.path.open("a") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
