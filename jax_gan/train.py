"""Train the tutorial's GAN in JAX: `python -m jax_gan.train`.

Each epoch is one compiled call (see `train_step.train_epoch`); between calls
the host logs, saves sample grids and checkpoints, and watches for Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jax_gan import cli, loop
from jax_gan.checkpoint import Checkpointer
from jax_gan.config import DROPOUT_MASKS, Config
from jax_gan.train_step import TrainState, create_train_state, generate, train_epoch


def train(config: Config, out_dir: Path, state: TrainState, images: np.ndarray,
          checkpointer: Checkpointer, *, dataset_name: str, quiet: bool = False) -> int:
    """Run from `state` to the configured number of steps; returns an exit status."""
    n = len(images)
    per_epoch = config.steps_per_epoch(n)
    total = config.total_steps(n)
    step = int(state.step)
    meta = {"config": config.to_dict(), "dataset_used": dataset_name, "framework": "jax"}
    log = cli.MetricsLog(out_dir / "metrics.jsonl", resume_step=step)
    device_images = jax.device_put(jnp.asarray(images))
    fixed_z = jnp.asarray(loop.fixed_latents(config))
    last_saved = step

    bar = tqdm(total=total, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    with loop.GracefulStop() as stop:
        while step < total and not stop.requested:
            epoch, offset = divmod(step, per_epoch)
            end = min(per_epoch, total - epoch * per_epoch)
            new_state, metrics, grids, count = train_epoch(
                state, device_images, fixed_z, config=config, start=offset, stop=end)
            metrics = jax.device_get(metrics)
            bad = loop.first_nonfinite(metrics)
            if bad is not None:
                bar.close()
                log.write(loop.metric_records(step, {k: v[:bad] for k, v in metrics.items()},
                                              per_epoch, config.log_every, total - 1))
                print(f"error: non-finite loss at step {step + bad}; stopped. The last good "
                      f"checkpoint (step {last_saved}) is kept in {checkpointer.directory}",
                      file=sys.stderr)
                return loop.EXIT_NONFINITE
            state = new_state
            due = loop.sample_steps(step, end - offset, config.sample_every)
            for s, grid in zip(due, np.asarray(grids[: int(count)]), strict=True):
                loop.save_sample_grid(out_dir, s, grid)
            records = loop.metric_records(step, metrics, per_epoch, config.log_every, total - 1)
            log.write(records)
            step += end - offset
            bar.update(end - offset)
            bar.set_description(loop.epochs_label(step - 1, per_epoch, config.epochs))
            bar.set_postfix(loss_g=f"{metrics['loss_g'][-1]:.4f}",
                            loss_d=f"{metrics['loss_d'][-1]:.4f}")
            if stop.requested or loop.checkpoint_due(step, per_epoch, total, config):
                checkpointer.save(state, {**meta, "epoch": step // per_epoch})
                last_saved = step
    bar.close()
    if stop.requested:
        loop.print_resume_hint(step, "jax_gan.train", out_dir)
        return stop.exit_code

    final = np.asarray(generate(state.params_g, fixed_z, config))
    strip = np.asarray(generate(state.params_g, jnp.asarray(loop.interpolation_latents(config)),
                                config))
    loop.finish_run(out_dir, "jax_gan", final, strip)
    print(f"done: {loop.describe(cli.read_metrics(out_dir / 'metrics.jsonl'))}; "
          f"outputs in {out_dir}")
    return 0


@cli.main_guard
def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.build_parser("python -m jax_gan.train", "Train the MLP GAN in JAX.",
                              "runs/jax_gan")
    parser.add_argument("--dropout-masks", choices=DROPOUT_MASKS,
                        help="dropout's random bits: 'hash' (default; a keyed counter hash, "
                             "fast on CPU) or 'threefry' (flax.linen.Dropout)")
    args = parser.parse_args(argv)
    state = checkpointer = meta = None
    if args.resume:
        cli.require_previous_run(Path(args.out_dir))
        checkpointer = Checkpointer(Path(args.out_dir) / "checkpoints", create=False)
        state, meta = checkpointer.restore()
    config, dataset, out_dir = cli.prepare_run(args, meta, "jax")
    if state is None:
        state = create_train_state(config)
        checkpointer = Checkpointer(out_dir / "checkpoints", keep=config.keep_checkpoints)
    print(f"jax_gan: {dataset.name} ({len(dataset)} images from {dataset.source}), "
          f"{config.total_steps(len(dataset))} steps, device {jax.devices()[0].platform}",
          file=sys.stderr)
    try:
        return train(config, out_dir, state, dataset.images, checkpointer,
                     dataset_name=dataset.name, quiet=args.quiet)
    finally:
        checkpointer.close()


if __name__ == "__main__":
    sys.exit(main())
