"""The command-line contract shared by `jax_gan.train` and `torch_reference.train`.

Both trainers take the same flags and write the same outputs, so a run of one
can be read beside a run of the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jax_gan.config import DATASETS, STRUCTURAL_FIELDS, Config
from jax_gan.data import Dataset, load_dataset
from jax_gan.errors import UserError

# What a previous run leaves in its output directory.
RUN_OUTPUTS = ("metrics.jsonl", "checkpoints", "checkpoint.pth", "samples", "losses.png",
               "interpolation.png", "samples.png", "config.json")


def build_parser(prog: str, description: str, default_out_dir: str) -> argparse.ArgumentParser:
    """Flags default to None so a resumed run can tell which ones the user gave."""
    d = Config()
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, help=f"dataset (default: {d.dataset})")
    p.add_argument("--data-dir", help=f"where IDX files live, torchvision layout (default: {d.data_dir})")
    p.add_argument("--epochs", type=int, help=f"epochs to train (default: {d.epochs})")
    p.add_argument("--max-steps", type=int, help="stop after this many train steps in all")
    p.add_argument("--batch-size", type=int, help=f"batch size (default: {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default: {d.lr})")
    p.add_argument("--seed", type=int, help=f"random seed (default: {d.seed})")
    p.add_argument("--sample-every", type=int,
                   help=f"save a 5x5 sample grid every this many batches (default: {d.sample_every})")
    p.add_argument("--log-every", type=int,
                   help=f"write metrics every this many steps (default: {d.log_every})")
    p.add_argument("--checkpoint-every", type=int,
                   help=f"save a checkpoint every this many epochs (default: {d.checkpoint_every})")
    p.add_argument("--init", choices=("torch", "flax"),
                   help="weight init: torch.nn.Linear's uniform (default) or Flax's defaults "
                        "(JAX only; the reference always uses torch's)")
    p.add_argument("--seed-normalization", action="store_const", const=True,
                   help="keep the tutorial's no-op Normalize: real images in [0, 1], not [-1, 1]")
    p.add_argument("--no-download", dest="download", action="store_const", const=False,
                   help="never try to download MNIST")
    p.add_argument("--out-dir", default=default_out_dir, help="where the run's outputs go")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its latest checkpoint")
    group.add_argument("--overwrite", action="store_true",
                       help="delete a previous run's outputs in --out-dir and start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def resolve_config(args: argparse.Namespace, saved: dict[str, Any] | None = None) -> Config:
    """Flags over the saved config of a resumed run, over the defaults."""
    overrides = given_overrides(args)
    if saved is None:
        config = dataclasses.replace(Config(), **overrides)
    else:
        base = Config.from_dict(saved)
        changed = [k for k in STRUCTURAL_FIELDS if k in overrides and overrides[k] != getattr(base, k)]
        if changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise UserError(f"cannot change {flags} when resuming; start a new run in another "
                            f"--out-dir instead")
        config = dataclasses.replace(base, **overrides)
    config.validate()
    return config


def holds_previous_run(out_dir: Path) -> bool:
    return out_dir.is_dir() and any((out_dir / name).exists() for name in RUN_OUTPUTS)


def prepare_out_dir(out_dir: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """Create or check the output directory; never silently overwrite a run."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out-dir {out} exists and is not a directory")
    if resume:
        if not holds_previous_run(out):
            raise UserError(f"--resume: no previous run in {out}")
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
        raise UserError(f"cannot write to --out-dir {out}: {e.strerror or e}") from None
    return out


def require_previous_run(out_dir: Path) -> None:
    if not holds_previous_run(out_dir):
        raise UserError(f"--resume: no previous run in {out_dir}")


def prepare_run(args: argparse.Namespace, saved: dict[str, Any] | None,
                framework: str) -> tuple[Config, Dataset, Path]:
    """Config, data and output directory of a run, all checked before anything is written.

    `saved` is a resumed run's metadata: its `config` and the `dataset_used`.
    """
    config = resolve_config(args, saved["config"] if saved else None)
    dataset = load_dataset(config.dataset, config.data_dir,
                           seed_normalization=config.seed_normalization,
                           allow_download=config.download)
    used = saved.get("dataset_used") if saved else None
    if used not in (None, dataset.name):
        raise UserError(f"this run trained on {used} but {config.dataset} now loads "
                        f"{dataset.name}; cannot resume on different data")
    check_batch_size(config, len(dataset), dataset.name)
    out_dir = prepare_out_dir(args.out_dir, resume=args.resume, overwrite=args.overwrite)
    save_config(out_dir, config, {"dataset_used": dataset.name, "framework": framework})
    return config, dataset, out_dir


def check_batch_size(config: Config, num_examples: int, dataset: str) -> None:
    if config.batch_size > num_examples:
        raise UserError(f"--batch-size {config.batch_size} is larger than {dataset} "
                        f"({num_examples} images)")


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


def main_guard(main: Callable[[Sequence[str] | None], int | None]) -> Callable:
    """Turn `UserError` into one line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    return wrapper
