"""The training run both trainers share: `python -m jax_gan.train` and `python -m torch_reference.train`.

A framework supplies a `Trainer`: how to start or restore its state, how to
run steps `start..stop` of an epoch, how to draw images and how to save a
checkpoint. Everything else about a run lives here, once: flags and config,
data, the output directory, the progress bar, metrics lines, sample grids,
the checkpoint schedule, the non-finite stop, signals and the final pictures.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from gan_core import cli, images, quality, rundir
from gan_core.config import MAX_STEP, Config
from gan_core.data import Dataset, load_dataset
from gan_core.epoch import EpochResult
from gan_core.errors import UserError
from gan_core.latent import interpolate, latent_points

EXIT_NONFINITE = 3
NUM_SAMPLES = 25  # The tutorial's 5x5 grid.
EVAL_SEED_OFFSET = 2  # Quality z: seed + 2 (seed and seed + 1 draw the grids' and interpolation's z).
EVAL_BATCH = 10_000  # Samples generated per call while scoring.


class Trainer(Protocol):
    """One framework's side of a run; see jax_gan/train.py and torch_reference/train.py."""

    framework: str  # "jax" or "torch": recorded in config.json and checkpoints.
    program: str  # The module users run, for help and the resume hint.
    description: str

    def check(self, config: Config, dataset: Dataset) -> None:
        """Refuse, before anything is written, what this framework cannot run."""

    def saved_meta(self, out_dir: Path) -> dict[str, Any] | None:
        """The latest checkpoint's metadata (`config`, `dataset_used`, ...); None if it has none."""

    def start(self, config: Config, train_images: np.ndarray, out_dir: Path, resume: bool) -> Any:
        """The state to train from: restored from `out_dir` or fresh."""

    def step_of(self, state: Any) -> int: ...

    def train_epoch(self, state: Any, start: int, stop: int) -> EpochResult:
        """Steps `start..stop` of the current epoch; metrics and samples as NumPy arrays."""

    def generate(self, state: Any, z: np.ndarray) -> np.ndarray:
        """G(z) with dropout off, as NumPy images."""

    def save(self, state: Any, meta: dict[str, Any]) -> None: ...

    def save_best(self, state: Any, meta: dict[str, Any]) -> None:
        """Save `state` as the run's best-FID checkpoint (`--eval-every`), replacing the previous one."""

    def best_meta(self, out_dir: Path) -> dict[str, Any] | None:
        """The best-FID checkpoint's metadata (its `quality` scores among them); None if it has none."""

    def close(self) -> None: ...


# --- entry points ------------------------------------------------------------------------------

def main(trainer: Trainer, argv: Sequence[str] | None = None) -> int:
    """Parse the command line, resolve the config (over a resumed run's) and train."""
    with GracefulStop() as stop:
        parser = cli.train_parser(trainer.framework, f"python -m {trainer.program}",
                                  trainer.description, f"runs/{trainer.program.split('.')[0]}")
        args = parser.parse_args(argv)
        out_dir = Path(args.out_dir)
        with rundir.claim(out_dir) as lock:
            saved = None
            if args.resume:
                rundir.require_previous_run(out_dir)
                meta = trainer.saved_meta(out_dir)
                saved = meta["config"] if meta else rundir.read_config(out_dir)
            config = cli.resolve_config(cli.given_overrides(args), saved)
            return train(trainer, config, out_dir, resume=args.resume, overwrite=args.overwrite,
                         quiet=args.quiet, stop=stop, lock=lock)


def train(trainer: Trainer, config: Config, out_dir: str | Path, *, resume: bool = False,
          overwrite: bool = False, quiet: bool = True, stop: GracefulStop | None = None,
          lock: rundir.RunLock | None = None) -> int:
    """A whole run, checked before anything is written; returns its exit status.

    `lock` is the run directory's lock when the caller holds it already.
    """
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as cleanup:
        if stop is None:
            stop = cleanup.enter_context(GracefulStop())
        if lock is None:
            lock = cleanup.enter_context(rundir.claim(out_dir))
        return _checked_run(trainer, config, out_dir, resume, overwrite, quiet, stop, lock)


def _checked_run(trainer: Trainer, config: Config, out_dir: Path, resume: bool, overwrite: bool,
                 quiet: bool, stop: GracefulStop, lock: rundir.RunLock | None) -> int:
    config.validate()
    saved = trainer.saved_meta(out_dir) if resume else {}
    if resume and saved is None:  # Stopped before its first checkpoint: nothing to continue from.
        print(f"note: {out_dir} has no checkpoint yet; starting it again from step 0", file=sys.stderr)
        cli.check_resumable(Config.from_dict(rundir.read_config(out_dir)), config.to_dict())
        saved, resume_state = {}, False
    else:
        resume_state = resume
        if resume:
            cli.check_resumable(Config.from_dict(saved["config"]), config.to_dict())
    dataset = load_dataset(config.dataset, config.data_dir,
                           tutorial_normalization=config.tutorial_normalization,
                           allow_download=config.download)
    if saved.get("dataset_used") not in (None, dataset.name):
        raise UserError(f"this run trained on {saved['dataset_used']} but {config.dataset} now loads "
                        f"{dataset.name}; cannot resume on different data")
    if config.batch_size > len(dataset):
        raise UserError(f"--batch-size {config.batch_size} is larger than {dataset.name} "
                        f"({len(dataset)} images)")
    if config.total_steps(len(dataset)) > MAX_STEP:
        raise UserError(f"--epochs {config.epochs} at --batch-size {config.batch_size} is "
                        f"{config.total_steps(len(dataset)):,} steps; a run counts at most {MAX_STEP:,}")
    trainer.check(config, dataset)
    with contextlib.ExitStack() as workers:
        scorer = None
        if config.eval_every and not stop.requested:  # Data and classifier checked before any write.
            scorer = workers.enter_context(quality.QualityWorker(dataset.name, config.data_dir))
        if stop.requested:
            print("stopped before the run started; nothing was written", file=sys.stderr)
            return stop.exit_code
        out_dir, lock = rundir.prepare_out_dir(out_dir, resume=resume, overwrite=overwrite, lock=lock)
        try:
            meta = {"dataset_used": dataset.name, "framework": trainer.framework}
            rundir.save_config(out_dir, config, meta)
            state = trainer.start(config, dataset.images, out_dir, resume_state)
            try:
                print(f"{trainer.program.split('.')[0]}: {dataset.name} ({len(dataset)} images from "
                      f"{dataset.source}), {config.total_steps(len(dataset))} steps, device "
                      f"{trainer.device()}", file=sys.stderr)
                return run(trainer, state, config, out_dir, len(dataset), meta, stop, quiet, scorer)
            finally:
                trainer.close()
        finally:
            lock.release()


# --- the loop ----------------------------------------------------------------------------------

def run(trainer: Trainer, state: Any, config: Config, out_dir: Path, num_examples: int,
        meta: dict[str, Any], stop: GracefulStop, quiet: bool,
        scorer: quality.QualityWorker | None = None) -> int:
    """From `state` to the configured number of steps, one epoch (or its rest) per call.

    With a `scorer` (`--eval-every`), quality is scored at the due epochs and
    the best-FID state so far is kept as the `best` checkpoint.
    """
    per_epoch = config.steps_per_epoch(num_examples)
    total = config.total_steps(num_examples)
    step = trainer.step_of(state)
    log = rundir.MetricsLog(out_dir / "metrics.jsonl", resume_step=step)
    last_saved = step if step else None
    best_fid = best_so_far(trainer, out_dir, step, config) if scorer is not None and step else math.inf
    postfix: dict[str, str] = {}

    def save() -> None:
        nonlocal last_saved
        trainer.save(state, {"config": config.to_dict(), **meta, "epoch": step // per_epoch})
        last_saved = step

    def evaluate() -> None:
        nonlocal best_fid, scorer
        try:
            scores = score_quality(trainer, state, config, scorer)
        except UserError as e:  # Scoring is an extra: the training it watches goes on.
            print(f"\nwarning: {e}; training goes on without quality scores", file=sys.stderr)
            scorer = None
            return
        log.write([{"step": step - 1, "epoch": (step - 1) // per_epoch, **scores}])
        postfix["fid"] = f"{scores['fid']:.1f}"
        if scores["fid"] < best_fid:
            best_fid = scores["fid"]
            trainer.save_best(state, {"config": config.to_dict(), **meta, "epoch": step // per_epoch,
                                      "step": step, "quality": scores})

    bar = tqdm(total=total, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    while step < total and not stop.requested:
        epoch, offset = divmod(step, per_epoch)
        end = min(per_epoch, total - epoch * per_epoch)
        result = trainer.train_epoch(state, offset, end)
        bad = first_nonfinite(result.metrics)
        what = f"non-finite loss at step {step + bad}" if bad is not None else ""
        if bad is None and not result.params_finite:  # The last update broke the weights.
            bad = end - offset
            what = f"non-finite weights after step {step + bad - 1}"
        if bad is not None:
            bar.close()
            good = {k: v[:bad] for k, v in result.metrics.items()}
            log.write(metric_records(step, good, per_epoch, config.log_every, total - 1))
            kept = (f"the last good checkpoint (step {last_saved}) is kept" if last_saved is not None
                    else "no checkpoint had been saved")
            print(f"error: {what}; stopped. {kept} in {out_dir}", file=sys.stderr)
            return EXIT_NONFINITE
        state = result.state
        due = sample_steps(step, end - offset, config.sample_every)
        for s, grid in zip(due, result.samples[: int(result.num_samples)], strict=True):
            save_sample_grid(out_dir, s, grid, config.image_scale)
        log.write(metric_records(step, result.metrics, per_epoch, config.log_every, total - 1))
        step += end - offset
        bar.update(end - offset)
        bar.set_description(epochs_label(step - 1, per_epoch, config.epochs))
        if checkpoint_due(step, per_epoch, total, config):
            save()  # Before scoring: a scorer that fails or is killed never costs a checkpoint.
        if scorer is not None and eval_due(step, per_epoch, total, config):
            evaluate()
        bar.set_postfix(loss_g=f"{result.metrics['loss_g'][-1]:.4f}",
                        loss_d=f"{result.metrics['loss_d'][-1]:.4f}", **postfix)
    bar.close()
    if stop.requested:
        if last_saved != step:
            save()
        print_resume_hint(step, trainer.program, out_dir)
        return stop.exit_code
    finish_run(out_dir, trainer, state, config)
    print(f"done: {describe(rundir.read_metrics(out_dir / 'metrics.jsonl'))}; outputs in {out_dir}")
    return 0


def score_quality(trainer: Trainer, state: Any, config: Config,
                  scorer: quality.QualityWorker) -> dict[str, Any]:
    """The quality metrics of `config.eval_num` samples, G(z) with dropout off, for the same z each
    time; `eval_seconds` is the whole cost, drawing the samples included."""
    start = time.perf_counter()
    z = latent_points(config.seed + EVAL_SEED_OFFSET, config.eval_num, config.latent_dim)
    images = quality.as_eval_range(np.concatenate([
        trainer.generate(state, z[i:i + EVAL_BATCH]) for i in range(0, len(z), EVAL_BATCH)]),
        config.tutorial_normalization)
    scores = scorer.score(images.reshape(len(z), config.image_size, config.image_size), seed=config.seed)
    return {**scores, "num_samples": len(z), "eval_seconds": round(time.perf_counter() - start, 3)}


def best_so_far(trainer: Trainer, out_dir: Path, step: int, config: Config) -> float:
    """The FID a resumed run must beat to replace its best checkpoint.

    inf (the next score replaces it) when there is none, when it does not
    verify, when it is from a step after the one resumed from (a crash before
    the next checkpoint: that future is trained again) or when it was scored
    on another number of samples (FID depends on it).
    """
    try:
        best = trainer.best_meta(out_dir)
    except UserError as e:
        print(f"warning: {e}; the next quality score replaces it", file=sys.stderr)
        return math.inf
    if not best or best.get("step", math.inf) > step or best["config"].get("eval_num") != config.eval_num:
        return math.inf
    return float(best["quality"]["fid"])


class GracefulStop:
    """SIGINT/SIGTERM ask the run to stop at the next safe point (after a save).

    A second Ctrl-C aborts at once. Outside the main thread (where Python
    allows no signal handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
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
        print(f"\n{signal.Signals(signum).name}: stopping after the current epoch and saving a "
              "checkpoint (Ctrl-C again aborts without saving)", file=sys.stderr)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


# --- schedule and records ----------------------------------------------------------------------

def eval_due(step: int, steps_per_epoch: int, total: int, config: Config) -> bool:
    """At the end of the run, and after every `eval_every`-th epoch."""
    epoch_done = step % steps_per_epoch == 0
    return step == total or (epoch_done and (step // steps_per_epoch) % config.eval_every == 0)


def checkpoint_due(step: int, steps_per_epoch: int, total: int, config: Config) -> bool:
    """At the end of the run, and after every `checkpoint_every`-th epoch."""
    epoch_done = step % steps_per_epoch == 0
    return step == total or (epoch_done and (step // steps_per_epoch) % config.checkpoint_every == 0)


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


def describe(records: Sequence[dict[str, Any]]) -> str:
    losses, scores = rundir.loss_records(records), rundir.quality_records(records)
    if not losses:
        return "no steps logged"
    last = losses[-1]
    text = f"step {last['step']}: loss_G {last['loss_g']:.4f}, loss_D {last['loss_d']:.4f}"
    scores = [r for r in scores if math.isfinite(r["fid"])]
    if scores:
        best = min(scores, key=lambda r: r["fid"])
        text += f"; FID {scores[-1]['fid']:.1f} (best {best['fid']:.1f} after step {best['step']})"
    return text


def epochs_label(step: int, steps_per_epoch: int, epochs: int) -> str:
    return f"epoch {min(step // steps_per_epoch + 1, epochs)}/{epochs}"


def print_resume_hint(step: int, program: str, out_dir: Path) -> None:
    print(f"stopped at step {step}; checkpoint saved. Resume with:\n"
          f"  python -m {program} --out-dir {out_dir} --resume", file=sys.stderr)


# --- pictures ----------------------------------------------------------------------------------

def fixed_latents(config: Config) -> np.ndarray:
    """The z every sample grid of a run is drawn from, so frames are comparable."""
    return latent_points(config.seed, NUM_SAMPLES, config.latent_dim)


def interpolation_latents(config: Config, steps: int = 10) -> np.ndarray:
    """The tutorial's figure: 10 points on the line between two random latents."""
    z = latent_points(config.seed + 1, 2, config.latent_dim)
    return interpolate(z[0], z[1], steps)


def save_sample_grid(out_dir: Path, step: int, grid: np.ndarray, scale: int = 1) -> Path:
    path = out_dir / "samples" / f"step_{step:07d}.png"
    images.save_grid(path, grid, nrow=5, scale=scale)
    return path


def finish_run(out_dir: Path, trainer: Trainer, state: Any, config: Config) -> None:
    """losses.png, samples.png, interpolation.png and progress.gif."""
    records = rundir.read_metrics(out_dir / "metrics.jsonl")
    if rundir.loss_records(records):
        images.save_losses(out_dir / "losses.png", records, f"{trainer.program}: GAN losses")
    scale = config.image_scale
    images.save_grid(out_dir / "samples.png", trainer.generate(state, fixed_latents(config)),
                     nrow=5, scale=scale)
    images.save_strip(out_dir / "interpolation.png",
                      trainer.generate(state, interpolation_latents(config)), scale=scale)
    grid_side = 2 * (5 * (config.image_size + 2) + 2)  # A 5x5 grid with 2-pixel gaps, doubled.
    images.save_progress_gif(out_dir / "progress.gif", sorted((out_dir / "samples").glob("step_*.png")),
                             side=grid_side)
