"""Host-side pieces of a training run that both trainers share.

Signals, metric records, sample-grid bookkeeping and the closing pictures; no
JAX or torch here, so the two trainers differ only in the step itself.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jax_gan import images as pictures
from jax_gan.cli import read_metrics
from jax_gan.config import Config
from jax_gan.latent import interpolate, latent_points

EXIT_NONFINITE = 3
NUM_SAMPLES = 25  # The tutorial's 5x5 grid.


class GracefulStop:
    """SIGINT/SIGTERM ask the run to stop at the next safe point (after a save).

    A second Ctrl-C aborts at once.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint after the current "
              "chunk of steps (Ctrl-C again aborts without saving)", file=sys.stderr)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


def checkpoint_due(step: int, steps_per_epoch: int, total: int, config: Config) -> bool:
    """At the end of the run, and after every `checkpoint_every`-th epoch."""
    epoch_done = step % steps_per_epoch == 0
    return step == total or (epoch_done and (step // steps_per_epoch) % config.checkpoint_every == 0)


def print_resume_hint(step: int, program: str, out_dir: Path) -> None:
    print(f"stopped at step {step}; checkpoint saved. Resume with:\n"
          f"  python -m {program} --out-dir {out_dir} --resume", file=sys.stderr)


def fixed_latents(config: Config) -> np.ndarray:
    """The z every sample grid of a run is drawn from, so frames are comparable."""
    return latent_points(config.seed, NUM_SAMPLES, config.latent_dim)


def interpolation_latents(config: Config, steps: int = 10) -> np.ndarray:
    """The tutorial's figure: 10 points on the line between two random latents."""
    z = latent_points(config.seed + 1, 2, config.latent_dim)
    return interpolate(z[0], z[1], steps)


def sample_steps(first: int, count: int, every: int) -> list[int]:
    """Steps in [first, first+count) at which a sample grid is due."""
    return [s for s in range(first, first + count) if s % every == 0]


def metric_records(first: int, metrics: Mapping[str, Sequence[float]], steps_per_epoch: int,
                   log_every: int, last_step: int) -> list[dict[str, Any]]:
    """metrics.jsonl lines for the logged steps among [first, first+len)."""
    names = list(metrics)
    count = len(metrics[names[0]])
    records = []
    for i in range(count):
        step = first + i
        if step % log_every and step != last_step:
            continue
        record = {"step": step, "epoch": step // steps_per_epoch}
        record.update({k: float(metrics[k][i]) for k in names})
        records.append(record)
    return records


def first_nonfinite(metrics: Mapping[str, Sequence[float]]) -> int | None:
    bad = ~(np.isfinite(metrics["loss_g"]) & np.isfinite(metrics["loss_d"]))
    return int(np.argmax(bad)) if bad.any() else None


def save_sample_grid(out_dir: Path, step: int, images: np.ndarray) -> Path:
    path = out_dir / "samples" / f"step_{step:07d}.png"
    pictures.save_grid(path, images, nrow=5)
    return path


def finish_run(out_dir: Path, framework: str, final_samples: np.ndarray,
               interpolation: np.ndarray) -> None:
    """losses.png, samples.png and interpolation.png, from the run's outputs."""
    records = read_metrics(out_dir / "metrics.jsonl")
    if records:
        pictures.save_losses(out_dir / "losses.png", records, f"{framework}: GAN losses")
    pictures.save_grid(out_dir / "samples.png", final_samples, nrow=5)
    pictures.save_strip(out_dir / "interpolation.png", interpolation,
                        title="latent interpolation (linear)")


def describe(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "no steps logged"
    last = records[-1]
    return f"step {last['step']}: loss_G {last['loss_g']:.4f}, loss_D {last['loss_d']:.4f}"


def epochs_label(step: int, steps_per_epoch: int, epochs: int) -> str:
    return f"epoch {min(step // steps_per_epoch + 1, epochs)}/{epochs}"
