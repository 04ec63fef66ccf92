"""Quality parity: are the JAX port's samples as good as the reference's?

The step-level checks prove the two compute the same functions; this one
asks the question a user asks. Both trainers run the same recipe and budget
on the offline `mnist-sample` digits for several seeds, each scored the same
way at its end (`--eval-every`: the same scorer program for both). The seeds give
different runs in each framework (their random streams differ), so the
measure is statistical: per metric, the gap between the frameworks' means
must not exceed the seed-to-seed spread (the larger of the two frameworks'
ranges, max - min over seeds).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from gan_core import rundir
from gan_core.config import Config
from parity_tests.checks import Check, one_torch_thread

SEEDS = (0, 1, 2)
EPOCHS = 40  # 3,160 steps of the tutorial's recipe on mnist-sample's 5,000 digits: several classes drawn.
METRICS = ("fid", "coverage", "class_entropy")


def train_and_score(framework: str, config: Config, out_dir: Path) -> dict[str, float]:
    """Train one run with `config` (its eval_every set) and return its last quality record."""
    if framework == "jax":
        from jax_gan.train import train
    else:
        from torch_reference.train import train
    with one_torch_thread():  # The reference trained 5x faster so on a busy 2-core machine.
        code = train(config, out_dir)
    if code != 0:
        raise RuntimeError(f"{framework} run {out_dir} exited with {code}")
    return rundir.quality_records(rundir.read_metrics(out_dir / "metrics.jsonl"))[-1]


def quality_runs(data_dir: str | os.PathLike, seeds: tuple[int, ...] = SEEDS, epochs: int = EPOCHS,
                 **overrides) -> dict[str, list[dict[str, float]]]:
    """framework -> one final quality record per seed."""
    base = Config(dataset="mnist-sample", data_dir=str(data_dir), epochs=epochs, eval_every=epochs,
                  sample_every=10**6, checkpoint_every=epochs, **overrides)
    runs: dict[str, list[dict[str, float]]] = {"jax": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for framework in runs:
            for seed in seeds:
                config = dataclasses.replace(base, seed=seed)
                runs[framework].append(train_and_score(framework, config, Path(tmp) / f"{framework}-{seed}"))
    return runs


def check_quality(data_dir: str | os.PathLike, seeds: tuple[int, ...] = SEEDS, epochs: int = EPOCHS,
                  runs: dict[str, list[dict[str, float]]] | None = None) -> list[Check]:
    """Per metric: |mean JAX - mean torch| against the seed-to-seed range."""
    runs = runs or quality_runs(data_dir, seeds, epochs)
    checks = []
    for metric in METRICS:
        j = np.array([r[metric] for r in runs["jax"]])
        t = np.array([r[metric] for r in runs["torch"]])
        spread = max(np.ptp(j), np.ptp(t))
        checks.append(Check(
            f"quality after {epochs} epochs on mnist-sample, {len(j)} seeds: gap in mean {metric}, JAX vs "
            "torch (tolerance: seed range)", float(abs(j.mean() - t.mean())), float(spread),
            f"JAX {_values(j)}, torch {_values(t)}"))
    return checks


def _values(x: np.ndarray) -> str:
    return f"mean {x.mean():.3f} (" + ", ".join(f"{v:.3f}" for v in x) + ")"
