"""The training loop, the one every run goes through: `python -m jax_gan.train`,
`python -m torch_reference.train`, and each member of `python -m jax_gan.sweep`.

A framework supplies a `Trainer`: how to start or restore its state, how to
run steps `start..stop` of an epoch, how to draw images and how to save
checkpoints. A trainer trains one or more runs at once (a sweep trains its
members, those this process holds, as one program). Everything else about a
run lives here, once, and holds for every run a trainer trains: flags and
config, data, the output directories and their locks, the progress bar,
metrics lines, sample grids, the checkpoint schedule, quality scores and the
best checkpoint, the non-finite stop, signals and the final pictures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

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


class Run(NamedTuple):
    """One run a trainer trains: its config and its own output directory."""

    config: Config
    out_dir: Path


@dataclasses.dataclass
class RunProgress:
    """What the loop knows of one run as it trains."""

    index: int  # The run's row in a trainer's EpochResult.
    config: Config
    out_dir: Path
    log: rundir.MetricsLog | None = None
    last_saved: int | None = None  # The step of its newest checkpoint.
    best_fid: float = math.inf
    diverged_at: int | None = None  # The first step that went non-finite (never applied or saved).
    last: dict[str, float] = dataclasses.field(default_factory=dict)  # The last logged metrics.
    scores: dict[str, Any] = dataclasses.field(default_factory=dict)  # The last quality scores.


class Trainer(Protocol):
    """One framework's side of the runs it trains; see jax_gan/train.py, torch_reference/train.py
    and jax_gan/sweep.py. Methods with a body here are what a trainer of one run needs of them."""

    framework: str  # "jax" or "torch": recorded in config.json and checkpoints.
    program: str  # The module users run, for help and the resume hint.
    description: str
    population: bool = False  # Several runs at once: one diverging does not stop the others.

    def device(self) -> str:
        """Where it trains, in words, for the start line."""

    def check(self, config: Config, dataset: Dataset) -> None:
        """Refuse, before anything is written, what this framework cannot run."""

    def saved_meta(self, out_dir: Path) -> dict[str, Any] | None:
        """A run's checkpoint metadata to resume from (`config`, `dataset_used`, ...); None if none."""

    def best_meta(self, out_dir: Path) -> dict[str, Any] | None:
        """A run's best-FID checkpoint metadata (its `quality` scores among them); None if none."""

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Check and create what the trainer writes beside its runs; called after every check."""

    def start(self, runs: Sequence[Run], dataset: Dataset, resume: bool) -> Any:
        """The state to train from: restored from the runs' checkpoints or fresh."""

    def step_of(self, state: Any) -> int: ...

    def train_epoch(self, state: Any, start: int, stop: int) -> EpochResult:
        """Steps `start..stop` of the current epoch, as NumPy, each field with a leading run axis."""

    def agree(self, stop: int, done: bool) -> tuple[int, bool]:
        """The signal any process stops on (0: none) and whether every run is done everywhere
        (one process: as given)."""
        return stop, done

    def generate(self, state: Any, z: np.ndarray, run: int) -> np.ndarray:
        """G(z) of run `run` with dropout off, as NumPy images."""

    def save(self, state: Any, metas: Mapping[int, dict[str, Any]]) -> None:
        """Checkpoint the runs named in `metas` (every one still training), with their metadata."""

    def save_best(self, state: Any, meta: dict[str, Any], run: int) -> None:
        """Save run `run` as its best-FID checkpoint (`--eval-every`), replacing the previous one."""

    def finish(self, runs: Sequence[RunProgress], step: int, stopped: bool) -> None:
        """After the last epoch, a stop or a divergence: what the trainer writes of all its runs."""

    def close(self) -> None: ...


# --- entry points ------------------------------------------------------------------------------

def main(trainer: Trainer, argv: Sequence[str] | None = None) -> int:
    """Parse the command line, resolve the config (over a resumed run's) and train."""
    with GracefulStop() as stop:
        parser = cli.train_parser(trainer.framework, f"python -m {trainer.program}",
                                  trainer.description, f"runs/{trainer.program.split('.')[0]}")
        args = parser.parse_args(argv)
        out_dir = Path(args.out_dir)
        rundir.refuse_sweep(out_dir, trainer.program)
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
    return train_runs(trainer, [Run(config, out_dir)], out_dir, resume=resume, overwrite=overwrite,
                      quiet=quiet, stop=stop, locks=[lock] if lock else None)


def train_runs(trainer: Trainer, runs: Sequence[Run], home: Path, *, resume: bool = False,
               overwrite: bool = False, quiet: bool = True, stop: GracefulStop | None = None,
               locks: Sequence[rundir.RunLock | None] | None = None) -> int:
    """Every run of `trainer`, each checked as a single run is; returns the exit status.

    `home` is the folder a resume names (a single run's own, a sweep's).
    Each run's directory is locked before a resume reads it (`locks`: those
    the caller holds already).
    """
    with contextlib.ExitStack() as cleanup:
        if stop is None:
            stop = cleanup.enter_context(GracefulStop())
        if locks is None:
            locks = [cleanup.enter_context(rundir.claim(run.out_dir)) for run in runs]
        return _checked_run(trainer, list(runs), home, resume, overwrite, quiet, stop, list(locks))


def _checked_run(trainer: Trainer, runs: list[Run], home: Path, resume: bool, overwrite: bool,
                 quiet: bool, stop: GracefulStop, locks: list[rundir.RunLock | None]) -> int:
    for run in runs:
        run.config.validate()
        if not trainer.population:
            rundir.refuse_sweep(run.out_dir, trainer.program)
    saved = [trainer.saved_meta(run.out_dir) for run in runs] if resume else [{} for _ in runs]
    resume_state = resume
    if resume and all(meta is None for meta in saved):  # Stopped before its first checkpoint.
        print(f"note: {home} has no checkpoint yet; starting it again from step 0", file=sys.stderr)
        for run in runs:
            cli.check_resumable(Config.from_dict(rundir.read_config(run.out_dir)), run.config.to_dict())
        saved, resume_state = [{} for _ in runs], False
    elif resume:
        for run, meta in zip(runs, saved, strict=True):
            if meta is None:
                raise UserError(f"--resume: {run.out_dir} has no checkpoint, unlike the other runs")
            cli.check_resumable(Config.from_dict(meta["config"]), run.config.to_dict())
    config = runs[0].config  # The runs share their data and schedule: only seeds and optimizers differ.
    dataset = load_dataset(config.dataset, config.data_dir,
                           tutorial_normalization=config.tutorial_normalization,
                           allow_download=config.download)
    for meta in saved:
        if meta.get("dataset_used") not in (None, dataset.name):
            raise UserError(f"this run trained on {meta['dataset_used']} but {config.dataset} now loads "
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
        trainer.prepare(resume, overwrite)
        for i, run in enumerate(runs):
            _, locks[i] = rundir.prepare_out_dir(run.out_dir, resume=resume, overwrite=overwrite,
                                                 lock=locks[i])
            workers.callback(locks[i].release)
        meta = {"dataset_used": dataset.name, "framework": trainer.framework}
        for run in runs:
            home_meta = {"sweep": str(home)} if run.out_dir != home else {}
            rundir.save_config(run.out_dir, run.config, {**meta, **home_meta})
        state = trainer.start(runs, dataset, resume_state)
        try:
            progress = [RunProgress(i, run.config, run.out_dir,
                                    diverged_at=(saved[i] or {}).get("diverged_at_step"))
                        for i, run in enumerate(runs)]
            print(f"{trainer.program.split('.')[0]}: {dataset.name} ({len(dataset)} images from "
                  f"{dataset.source}), {config.total_steps(len(dataset))} steps, device "
                  f"{trainer.device()}", file=sys.stderr)
            return train_loop(trainer, state, progress, home, len(dataset), meta, stop, quiet, scorer)
        finally:
            trainer.close()


# --- the loop ----------------------------------------------------------------------------------

def train_loop(trainer: Trainer, state: Any, runs: list[RunProgress], home: Path, num_examples: int,
        meta: dict[str, Any], stop: GracefulStop, quiet: bool,
        scorer: quality.QualityWorker | None = None) -> int:
    """From `state` to the configured number of steps, one epoch (or its rest) per call.

    With a `scorer` (`--eval-every`), quality is scored at the due epochs and
    each run's best-FID state so far is kept as its `best` checkpoint.
    """
    config = runs[0].config
    per_epoch = config.steps_per_epoch(num_examples)
    total = config.total_steps(num_examples)
    step = trainer.step_of(state)
    for r in runs:
        r.log = rundir.MetricsLog(r.out_dir / "metrics.jsonl", resume_step=step)
        r.last_saved = step if step else None
        if scorer is not None and step:
            r.best_fid = best_so_far(trainer, r.out_dir, step, r.config)
    last_saved = step if step else None
    postfix: dict[str, str] = {}

    def save() -> None:
        nonlocal last_saved
        live = {r.index: {"config": r.config.to_dict(), **meta, "epoch": step // per_epoch}
                for r in runs if r.diverged_at is None}
        trainer.save(state, live)
        for r in runs:
            if r.index in live:
                r.last_saved = step
        last_saved = step

    def evaluate() -> None:
        nonlocal scorer
        try:
            for r in runs:
                if r.diverged_at is None:
                    score_run(trainer, state, r, step, per_epoch, scorer, meta)
        except UserError as e:  # Scoring is an extra: the training it watches goes on.
            print(f"\nwarning: {e}; training goes on without quality scores", file=sys.stderr)
            scorer = None
            return
        fids = [r.scores["fid"] for r in runs if r.diverged_at is None and "fid" in r.scores]
        if fids:
            postfix["fid"] = f"{min(fids):.1f}"

    bar = tqdm(total=total, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    while True:
        stopping, finished = trainer.agree(stop.signum or 0, all(r.diverged_at is not None for r in runs))
        if stopping or finished or step >= total:
            break
        epoch, offset = divmod(step, per_epoch)
        end = min(per_epoch, total - epoch * per_epoch)
        result = trainer.train_epoch(state, offset, end)
        state = result.state
        due = sample_steps(step, end - offset, config.sample_every)
        for r in runs:
            if r.diverged_at is None:
                record_epoch(trainer, r, result, step, due, per_epoch, total)
        step += end - offset
        bar.update(end - offset)
        label = epochs_label(step - 1, per_epoch, config.epochs)
        if trainer.population:
            label = f"{sum(r.diverged_at is None for r in runs)}/{len(runs)} training, {label}"
        bar.set_description(label)
        if epoch_due(step, per_epoch, total, config.checkpoint_every):
            save()  # Before scoring: a scorer that fails or is killed never costs a checkpoint.
        if scorer is not None and epoch_due(step, per_epoch, total, config.eval_every):
            evaluate()
        losses = [r.last for r in runs if r.diverged_at is None and r.last]
        if losses:
            bar.set_postfix(loss_g=f"{min(x['loss_g'] for x in losses):.4f}",
                            loss_d=f"{min(x['loss_d'] for x in losses):.4f}", **postfix)
    bar.close()
    if stopping and last_saved != step:
        save()
    if not stopping and not finished:
        for r in runs:
            if r.diverged_at is None:
                finish_run(r.out_dir, lambda z, r=r: trainer.generate(state, z, r.index), r.config,
                           trainer.program)
    trainer.finish(runs, step, stopped=stopping)
    if stopping:
        print_resume_hint(step, trainer.program, home)
        return 128 + stopping
    if finished:
        if trainer.population:
            print(f"error: every run stopped on non-finite values; see {home}", file=sys.stderr)
        return EXIT_NONFINITE
    if not trainer.population:
        print(f"done: {describe(rundir.read_metrics(home / 'metrics.jsonl'))}; outputs in {home}")
    return 0


def record_epoch(trainer: Trainer, r: RunProgress, result: EpochResult, step: int, due: list[int],
                 per_epoch: int, total: int) -> None:
    """One run's row of an epoch: its metrics lines and sample grids, up to a non-finite step."""
    metrics = {k: np.asarray(v[r.index]) for k, v in result.metrics.items()}
    count = len(metrics["loss_g"])
    bad, what = first_bad(metrics, bool(result.params_finite[r.index]), step)
    good = count if bad is None else bad
    kept = {k: v[:good] for k, v in metrics.items() if k != "alive"}
    for s, grid in zip(due[: int(result.num_samples)], result.samples[r.index], strict=False):
        if bad is None or s <= step + bad:  # Drawn before the bad step's update.
            save_sample_grid(r.out_dir, s, grid, r.config.image_scale)
    r.log.write(metric_records(step, kept, per_epoch, r.config.log_every, total - 1))
    if good:
        r.last = {k: float(v[-1]) for k, v in kept.items()}
    if bad is None:
        return
    r.diverged_at = step + bad
    r.scores = {}  # Its scores were of weights it no longer has.
    where = (f"the last good checkpoint (step {r.last_saved}) is kept" if r.last_saved is not None
             else "no checkpoint had been saved")
    if trainer.population:
        print(f"\nwarning: {r.out_dir.name}: {what}; it stops there, the others go on ({where})",
              file=sys.stderr)
    else:
        print(f"\nerror: {what}; stopped. {where} in {r.out_dir}", file=sys.stderr)


def first_bad(metrics: Mapping[str, np.ndarray], params_finite: bool, step: int) -> tuple[int | None, str]:
    """The index of an epoch's first step that must not count, and why; (None, "") if none.

    A step whose losses are not finite, a step a guarded trainer refused
    (`alive` false), or, when only the weights at the end are not finite, the
    end of the epoch.
    """
    losses_ok = np.isfinite(metrics["loss_g"]) & np.isfinite(metrics["loss_d"])
    ok = losses_ok & metrics["alive"] if "alive" in metrics else losses_ok
    if not ok.all():
        k = int(np.argmax(~ok))
        if not losses_ok[k]:
            return k, f"non-finite loss at step {step + k}"
        return k, f"non-finite weights after step {step + k}"
    if not params_finite:
        count = len(ok)
        return count, f"non-finite weights after step {step + count - 1}"
    return None, ""


def score_run(trainer: Trainer, state: Any, r: RunProgress, step: int, per_epoch: int,
              scorer: quality.QualityWorker, meta: dict[str, Any]) -> None:
    """Score one run's samples into its metrics.jsonl; keep its best-FID state."""
    scores = score_quality(lambda z: trainer.generate(state, z, r.index), r.config, scorer)
    r.log.write([{"step": step - 1, "epoch": (step - 1) // per_epoch, **scores}])
    r.scores = scores
    if scores["fid"] < r.best_fid:
        r.best_fid = scores["fid"]
        trainer.save_best(state, {"config": r.config.to_dict(), **meta, "epoch": step // per_epoch,
                                  "step": step, "quality": scores}, r.index)


def score_quality(generate: Callable[[np.ndarray], np.ndarray], config: Config,
                  scorer: quality.QualityWorker) -> dict[str, Any]:
    """The quality metrics of `config.eval_num` samples, G(z) with dropout off, for the same z each
    time; `eval_seconds` is the whole cost, drawing the samples included."""
    start = time.perf_counter()
    z = latent_points(config.seed + EVAL_SEED_OFFSET, config.eval_num, config.latent_dim)
    images = quality.as_eval_range(np.concatenate([
        generate(z[i:i + EVAL_BATCH]) for i in range(0, len(z), EVAL_BATCH)]),
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

def epoch_due(step: int, steps_per_epoch: int, total: int, every: int) -> bool:
    """Whether a per-epoch job (a checkpoint, a quality score) is due after `step` steps: at the
    end of the run, and after every `every`-th epoch."""
    epoch_done = step % steps_per_epoch == 0
    return step == total or (epoch_done and (step // steps_per_epoch) % every == 0)


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


def finish_run(out_dir: Path, generate: Callable[[np.ndarray], np.ndarray], config: Config,
               program: str) -> None:
    """losses.png, samples.png, interpolation.png and progress.gif."""
    records = rundir.read_metrics(out_dir / "metrics.jsonl")
    if rundir.loss_records(records):
        images.save_losses(out_dir / "losses.png", records, f"{program}: GAN losses")
    scale = config.image_scale
    images.save_grid(out_dir / "samples.png", generate(fixed_latents(config)), nrow=5, scale=scale)
    images.save_strip(out_dir / "interpolation.png", generate(interpolation_latents(config)), scale=scale)
    grid_side = 2 * (5 * (config.image_size + 2) + 2)  # A 5x5 grid with 2-pixel gaps, doubled.
    images.save_progress_gif(out_dir / "progress.gif", sorted((out_dir / "samples").glob("step_*.png")),
                             side=grid_side)
