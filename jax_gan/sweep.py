"""Many GANs as one program: `python -m jax_gan.sweep --seeds 0,1,2,3 --lr 1e-4,2e-4`.

The members are every combination of the listed seeds, learning rates and
Adam b1s; everything else is shared and takes `jax_gan.train`'s flags. The
whole population trains as one compiled epoch: `train_step.train_epoch`
vmapped over a leading member axis of the train state, that axis sharded
over every device of every process (`jax.make_mesh`, `NamedSharding`). Each
member draws its data order, z and dropout masks exactly as the single run
with its seed does. A member whose loss or weights go non-finite is frozen
inside the program and reported as diverged; the others go on.

Across machines, start one process per machine with `--coordinator-address
HOST:PORT --num-processes N --process-id I` (or let `jax.distributed`
detect a cluster such as SLURM); each process writes the run directories of
the members it holds, and the sweep's own checkpoint is Orbax's multi-process
save of the sharded population.

Outputs in `--out-dir`: one ordinary run directory per member (config.json,
metrics.jsonl, sample grids, a checkpoint `jax_gan.sample`/`interpolate`/
`convert` accept, written at the end or on a stop), `summary.json`,
`summary.md`, `contact_sheet.png`, and `checkpoints/` for `--resume`.

`--eval-every K` scores every member's samples as `jax_gan.train` does
(each process scores the members it holds) into its metrics.jsonl, and the
last scores go into the summary; a sweep keeps no per-member `best`
checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image, ImageDraw
from tqdm import tqdm

from gan_core import cli, driver, images, quality, rundir
from gan_core.config import Config
from gan_core.data import load_dataset
from gan_core.errors import UserError
from jax_gan import backend
from jax_gan.checkpoint import Checkpointer
from jax_gan.train_step import (
    TrainState,
    all_finite,
    create_train_state,
    generate,
    make_optimizer,
    train_epoch,
    train_step,
)

AXIS = "members"
SWEPT = ("seed", "lr", "b1")  # The config fields a sweep lists; the rest are shared.


class Member(NamedTuple):
    index: int
    config: Config
    run_dir: str  # Relative to the sweep's --out-dir.


# --- the plan ------------------------------------------------------------------------------------

def plan(base: Config, seeds: Sequence[int], lrs: Sequence[float], b1s: Sequence[float]) -> list[Member]:
    """Every combination of the lists, in a fixed order; each member validated as a run."""
    members = []
    for index, (seed, lr, b1) in enumerate(itertools.product(seeds, lrs, b1s)):
        config = dataclasses.replace(base, seed=seed, lr=lr, b1=b1)
        config.validate()
        name = f"seed{seed}-lr{lr:g}" + (f"-b1{b1:g}" if len(b1s) > 1 else "")
        members.append(Member(index, config, name))
    if len({m.run_dir for m in members}) != len(members):
        raise UserError("--seeds, --lr and --b1 list the same member twice")
    return members


def slots_for(count: int, devices: int) -> int:
    """Members padded to a multiple of the device count (the padding members never train)."""
    return -(-count // devices) * devices


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jax_gan.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    members = p.add_argument_group("members (every combination of these lists)")
    members.add_argument("--seeds", dest="seed_list", type=_list(int), default=[0], metavar="S,S,...",
                         help="random seeds (default: 0)")
    members.add_argument("--lr", dest="lr_list", type=_list(float), default=[Config.lr], metavar="X,X,...",
                         help=f"Adam learning rates (default: {Config.lr})")
    members.add_argument("--b1", dest="b1_list", type=_list(float), default=[Config.b1], metavar="X,X,...",
                         help=f"Adam b1s (default: {Config.b1})")
    cli.add_config_flags(p, "jax", exclude=SWEPT)
    run = p.add_argument_group("run")
    run.add_argument("--out-dir", default="runs/sweep", metavar="DIR",
                     help="where the sweep and its members' runs go (default: runs/sweep)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the sweep in --out-dir")
    mode.add_argument("--overwrite", action="store_true", help="replace a previous sweep in --out-dir")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    cli.add_debug_flag(run)
    hosts = p.add_argument_group(
        "processes (one per machine; a member count that does not divide the device count is "
        "padded with members that never train)")
    hosts.add_argument("--coordinator-address", metavar="HOST:PORT",
                       help="process 0's address; with it, jax.distributed.initialize is called")
    hosts.add_argument("--num-processes", type=int, metavar="N", help="processes in all")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    return p


def _list(kind: type):
    def parse(text: str) -> list:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected a comma list of {kind.__name__}s, "
                                             f"got {text!r}") from e
        if not values:
            raise argparse.ArgumentTypeError("the list is empty")
        return values
    return parse


# --- the population on the devices ---------------------------------------------------------------

@flax.struct.dataclass
class MemberState(TrainState):
    """A member's `TrainState`, with what only a population needs."""

    alive: jax.Array  # bool: false once a step went non-finite; the state stays at the last good one.
    hyper: dict  # The swept Adam hyperparameters (float32), traced: one program for every value.


def guarded_step(state: MemberState, real: jax.Array, config: Config) -> tuple[MemberState, dict]:
    """`train_step` with the member's own Adam; a step that goes non-finite is not applied."""
    new, metrics = train_step(state, real, config, tx=make_optimizer(config, **state.hyper))
    ok = state.alive & jnp.isfinite(metrics["loss_g"]) & jnp.isfinite(metrics["loss_d"]) & all_finite(new)
    new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
    return new.replace(alive=ok), {**metrics, "alive": ok}


class Population(NamedTuple):
    state: TrainState  # Every leaf has a leading member axis, sharded over the mesh.
    alive: jax.Array  # bool[members]: false once a member diverged (and for padding).
    hyper: dict  # The swept Adam hyperparameters, float32[members].
    fixed_z: jax.Array  # float32[members, 25, latent]: each member's sample-grid z.


def mesh_sharding() -> tuple[jax.sharding.Mesh, NamedSharding, NamedSharding]:
    # Auto axes: XLA propagates the member sharding through the vmapped epoch by itself
    # (explicit axes would put it in every array's type, which lax.cond inside vmap rejects).
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
    return mesh, NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())


def global_array(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A sharded array from the same host array in every process (each keeps its slices)."""
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def initial_population(members: list[Member], slots: int, sharding: NamedSharding,
                       swept: tuple[str, ...]) -> Population:
    """Each member's fresh state, exactly as `create_train_state` makes it for its seed."""
    padded = [members[i] if i < len(members) else members[0] for i in range(slots)]
    base = members[0].config
    seeds = jnp.asarray([m.config.seed for m in padded], jnp.uint32)
    host = jax.device_get(jax.vmap(lambda s: create_train_state(base, seed=s))(seeds))
    return Population(
        state=jax.tree.map(lambda x: global_array(np.asarray(x), sharding), host),
        alive=global_array(np.arange(slots) < len(members), sharding),
        hyper={k: global_array(np.asarray([getattr(m.config, k) for m in padded], np.float32), sharding)
               for k in swept},
        fixed_z=global_array(np.stack([driver.fixed_latents(m.config) for m in padded]), sharding))


def population_epoch(population: Population, images: jax.Array, config: Config, start: int,
                     stop: int) -> tuple[Population, dict, jax.Array, jax.Array]:
    """One compiled epoch for every member: `train_epoch` vmapped over the member axis."""
    member = MemberState(**vars(population.state), alive=population.alive, hyper=population.hyper)
    member, metrics, samples, count, _ = vmapped_epoch(member, population.fixed_z, images,
                                                       config=config, start=start, stop=stop)
    state = TrainState(**{f: getattr(member, f) for f in vars(population.state)})
    return population._replace(state=state, alive=member.alive), metrics, samples, count


@functools.partial(jax.jit, static_argnames=("config", "start", "stop"), donate_argnames=("state",))
def vmapped_epoch(state: MemberState, fixed_z: jax.Array, images: jax.Array, config: Config, start: int,
                  stop: int):
    def one(state, fixed_z):
        return train_epoch(state, images, fixed_z, config=config, start=start, stop=stop, step=guarded_step)

    return jax.vmap(one)(state, fixed_z)


def local_rows(array: jax.Array) -> dict[int, np.ndarray]:
    """The rows (members) of a member-sharded array held by this process, by member index."""
    rows = {}
    for shard in array.addressable_shards:
        first = shard.index[0].start or 0
        data = np.asarray(shard.data)
        for offset in range(data.shape[0]):
            rows[first + offset] = data[offset]
    return rows


def member_state(state: TrainState, index: int, rows: dict) -> TrainState:
    """One member's TrainState, from `local_rows` of every leaf."""
    leaves, treedef = jax.tree.flatten(state)
    return jax.tree.unflatten(treedef, [rows[id(leaf)][index] for leaf in leaves])


def local_state_rows(state: TrainState) -> dict:
    return {id(leaf): local_rows(leaf) for leaf in jax.tree.leaves(state)}


# --- the run -------------------------------------------------------------------------------------

def main_body(argv: Sequence[str] | None) -> int:
    with driver.GracefulStop() as stop:
        args = parser().parse_args(argv)
        distributed(args)
        backend.platform()
        out_dir = Path(args.out_dir)
        lock_ctx = rundir.claim(out_dir) if jax.process_index() == 0 else contextlib.nullcontext()
        with lock_ctx as lock:
            saved = read_sweep(out_dir) if args.resume else None
            overrides = cli.given_overrides(args)
            if saved:
                base = Config.from_dict(saved["base"])
                cli.check_resumable(base, overrides)
                base = dataclasses.replace(base, **overrides)
                seeds, lrs, b1s = saved["seeds"], saved["lr"], saved["b1"]
            else:
                base = cli.resolve_config(overrides)
                seeds, lrs, b1s = args.seed_list, args.lr_list, args.b1_list
            members = plan(base, seeds, lrs, b1s)
            return run_sweep(members, base, out_dir, args, stop, lock, {"seeds": seeds, "lr": lrs,
                                                                      "b1": b1s})


def distributed(args: argparse.Namespace) -> None:
    """`jax.distributed.initialize` from the flags, or from the cluster's environment."""
    given = [args.coordinator_address, args.num_processes, args.process_id]
    if all(v is None for v in given):
        return
    if any(v is None for v in given):
        raise UserError("--coordinator-address, --num-processes and --process-id go together")
    if not 0 <= args.process_id < args.num_processes:
        raise UserError(f"--process-id must be in [0, {args.num_processes - 1}], got {args.process_id}")
    jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def read_sweep(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "sweep.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--resume: no sweep in {out_dir} ({path.name} is missing or damaged)") from e


def run_sweep(members: list[Member], base: Config, out_dir: Path, args: argparse.Namespace,
              stop: driver.GracefulStop, lock, lists: dict) -> int:
    dataset = load_dataset(base.dataset, base.data_dir, tutorial_normalization=base.tutorial_normalization,
                           allow_download=base.download)
    if base.batch_size > len(dataset):
        raise UserError(f"--batch-size {base.batch_size} is larger than {dataset.name} "
                        f"({len(dataset)} images)")
    main_process = jax.process_index() == 0
    with contextlib.ExitStack() as workers:
        scorer = None
        if base.eval_every:  # Started before anything is written; each process scores its members.
            scorer = workers.enter_context(quality.QualityWorker(dataset.name, base.data_dir))
        if main_process:
            out_dir, lock = rundir.prepare_out_dir(out_dir, resume=args.resume, overwrite=args.overwrite,
                                                   lock=lock)
            with contextlib.suppress(OSError):  # Grids go to the members' folders, not the sweep's.
                (out_dir / "samples").rmdir()
        try:
            return train_population(members, base, dataset, out_dir, args, stop, lists, scorer)
        finally:
            if main_process:
                lock.release()


def train_population(members: list[Member], base: Config, dataset, out_dir: Path,
                     args: argparse.Namespace, stop: driver.GracefulStop, lists: dict,
                     scorer: quality.QualityWorker | None = None) -> int:
    mesh, member_sharding, replicated = mesh_sharding()
    slots = slots_for(len(members), jax.device_count())
    swept = tuple(k for k in ("lr", "b1") if len(lists[k]) > 1)  # Lists of one stay Python floats.
    sweep_meta = {"base": base.to_dict(), **lists, "dataset_used": dataset.name, "framework": "jax",
                  "members": [m.run_dir for m in members], "slots": slots}
    if jax.process_index() == 0:
        with rundir.atomic_write(out_dir / "sweep.json") as f:
            json.dump(sweep_meta, f, indent=2)
    population = initial_population(members, slots, member_sharding, swept)
    print(f"jax_gan.sweep: {len(members)} members ({slots} slots) on {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s) in {jax.process_count()} process(es); {dataset.name}, "
          f"{base.total_steps(len(dataset))} steps each", file=sys.stderr)
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.LatestN(n=base.keep_checkpoints),
        enable_async_checkpointing=False)
    manager = ocp.CheckpointManager((out_dir / "checkpoints").absolute(), options=options)
    try:
        if args.resume and manager.latest_step() is not None:
            population = restore_population(manager, population)
        local = sorted(i for i in local_rows(population.alive) if i < len(members))
        for i in local:
            run_dir = out_dir / members[i].run_dir
            (run_dir / "samples").mkdir(parents=True, exist_ok=True)
            (run_dir / rundir.MARKER).write_text(json.dumps({"project": "jax-gan"}) + "\n")
            rundir.save_config(run_dir, members[i].config, {"dataset_used": dataset.name,
                                                            "framework": "jax", "sweep": str(out_dir)})
        return loop(members, local, population, base, dataset, out_dir, manager, replicated, stop,
                    args.quiet, scorer)
    finally:
        manager.close()


def restore_population(manager: ocp.CheckpointManager, template: Population) -> Population:
    tree = {"state": flax.serialization.to_state_dict(template.state), "alive": template.alive}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
    state = flax.serialization.from_state_dict(template.state, restored["state"])
    return template._replace(state=state, alive=restored["alive"])


def loop(members: list[Member], local: list[int], population: Population, base: Config, dataset,
         out_dir: Path, manager: ocp.CheckpointManager, replicated: NamedSharding,
         stop: driver.GracefulStop, quiet: bool, scorer: quality.QualityWorker | None = None) -> int:
    images_ = global_array(dataset.images, replicated)
    n = len(dataset)
    per_epoch, total = base.steps_per_epoch(n), base.total_steps(n)
    step = int(manager.latest_step() or 0)  # Restored from it on --resume; 0 for a new sweep.
    logs = {i: rundir.MetricsLog(out_dir / members[i].run_dir / "metrics.jsonl", resume_step=step)
            for i in local}
    diverged: dict[int, int] = {}
    last: dict[int, dict[str, float]] = {}
    # The latest quality scores (--eval-every) of each live member; a resume starts from its log.
    scored = {i: {k: r[k] for k in quality.KEYS}
              for i in local for r in rundir.quality_records(rundir.read_metrics(logs[i].path))[-1:]}
    bar = tqdm(total=total, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    while step < total and not stop.requested:
        epoch, offset = divmod(step, per_epoch)
        end = min(per_epoch, total - epoch * per_epoch)
        population, metrics, samples, count = population_epoch(population, images_, base, offset, end)
        rows = {k: local_rows(v) for k, v in metrics.items()}
        sample_rows, count_rows = local_rows(samples), local_rows(count)
        due = driver.sample_steps(step, end - offset, base.sample_every)
        for i in local:
            alive = rows["alive"][i]
            good = int(alive.sum()) if not alive.all() else len(alive)
            if good < len(alive) and i not in diverged:
                diverged[i] = step + good
                scored.pop(i, None)  # Its scores were of weights it no longer has.
            records = {k: v[i][:good] for k, v in rows.items() if k != "alive"}
            logs[i].write(driver.metric_records(step, records, per_epoch, base.log_every, total - 1))
            if good:
                last[i] = {k: float(v[-1]) for k, v in records.items()}
            for s, grid in zip(due[: int(count_rows[i])], sample_rows[i], strict=False):
                if i not in diverged or s < diverged[i]:
                    driver.save_sample_grid(out_dir / members[i].run_dir, s, grid, base.image_scale)
        step += end - offset
        bar.update(end - offset)
        losses = [last[i]["loss_g"] for i in local if i in last and i not in diverged] or [float("nan")]
        bar.set_description(f"{len(members)} members, "
                            + driver.epochs_label(step - 1, per_epoch, base.epochs))
        if driver.checkpoint_due(step, per_epoch, total, base):
            save_population(manager, population, step)  # Before scoring, as a single run does.
        fids = {}
        if scorer is not None and driver.eval_due(step, per_epoch, total, base):
            try:
                fresh = score_members(members, local, diverged, population.state, base, scorer)
            except UserError as e:  # No collective inside: the other processes go on too.
                print(f"\nwarning: {e}; training goes on without quality scores", file=sys.stderr)
                scorer, fresh = None, {}
            scored.update(fresh)
            for i, scores in fresh.items():
                logs[i].write([{"step": step - 1, "epoch": (step - 1) // per_epoch, **scores}])
            fids = {"fid": f"best {min(s['fid'] for s in fresh.values()):.1f}"} if fresh else {}
        bar.set_postfix(alive=f"{len(local) - len(diverged)}/{len(local)}",
                        loss_g=f"best {min(losses):.3f} worst {max(losses):.3f}", **fids)
    bar.close()
    if stop.requested:
        save_population(manager, population, step)
    write_summary(out_dir, member_rows(members, local, diverged, last, step, scored),
                  process=jax.process_index())
    states = gather_members(population.state, len(members))  # Also a barrier: every part is written.
    if jax.process_index() == 0:
        rows = read_summaries(members, out_dir, jax.process_count())
        write_members(members, states, rows, out_dir, per_epoch, base, dataset.name, stop.requested)
        merge_summaries(rows, out_dir, step)
    if stop.requested:
        driver.print_resume_hint(step, "jax_gan.sweep", out_dir)
        return stop.exit_code
    print(f"done: {len(members) - len(diverged)} of {len(members)} members trained {step} steps; "
          f"summary in {out_dir / 'summary.md'}")
    return 0


def save_population(manager: ocp.CheckpointManager, population: Population, step: int) -> None:
    tree = {"state": flax.serialization.to_state_dict(population.state), "alive": population.alive}
    try:
        manager.save(step, args=ocp.args.StandardSave(tree), force=True)
        manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001 - Orbax wraps OSError in several types.
        raise UserError(f"cannot save the sweep's checkpoint {step}: {str(e).splitlines()[0]}") from e


def gather_members(state: TrainState, count: int) -> dict[int, TrainState]:
    """Every member's state on process 0 ({} on the others): a collective, so all must call it."""
    if jax.process_count() == 1:
        rows = local_state_rows(state)
        return {i: member_state(state, i, rows) for i in range(count)}
    host = multihost_utils.process_allgather(state, tiled=True)
    if jax.process_index() != 0:
        return {}
    return {i: jax.tree.map(lambda x, i=i: np.asarray(x[i]), host) for i in range(count)}


def write_members(members: list[Member], states: dict[int, TrainState], rows: list[dict[str, Any]],
                  out_dir: Path, per_epoch: int, base: Config, dataset_name: str, stopped: bool) -> None:
    """Each member as an ordinary run: its checkpoint, final pictures and progress.gif.

    Process 0 writes them for every member: Orbax saves from one process at a time.
    """
    diverged = {r["run_dir"] for r in rows if r["status"] == "diverged"}
    for i, member in enumerate(members):
        run_dir = out_dir / member.run_dir
        state = jax.device_put(states[i])
        checkpointer = Checkpointer(run_dir / "checkpoints", keep=base.keep_checkpoints)
        try:
            checkpointer.save(state, {"config": member.config.to_dict(), "dataset_used": dataset_name,
                                      "framework": "jax", "epoch": int(state.step) // per_epoch})
        finally:
            checkpointer.close()
        if not stopped and member.run_dir not in diverged:  # Diverged weights draw nothing useful.
            driver.finish_run(run_dir, MemberView(member.config), state, member.config)


class MemberView:
    """What `driver.finish_run` needs to draw a member's final pictures."""

    program = "jax_gan.sweep"

    def __init__(self, config: Config):
        self.config = config

    def generate(self, state: TrainState, z: np.ndarray) -> np.ndarray:
        return np.asarray(generate(state.params_g, jnp.asarray(z), self.config))


def score_members(members: list[Member], local: list[int], diverged: dict[int, int], state: TrainState,
                  base: Config, scorer: quality.QualityWorker) -> dict[int, dict[str, Any]]:
    """Quality of each of this process's live members, scored as `jax_gan.train --eval-every` does."""
    rows = local_state_rows(state)
    return {i: driver.score_quality(MemberView(members[i].config), member_state(state, i, rows),
                                    members[i].config, scorer)
            for i in local if i not in diverged}


def member_rows(members: list[Member], local: list[int], diverged: dict[int, int],
                last: dict[int, dict[str, float]], step: int,
                scored: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """summary.json's rows; the quality metrics are the last scores (absent without --eval-every)."""
    rows = []
    for i in local:
        m = members[i]
        row = {"seed": m.config.seed, "lr": m.config.lr, "b1": m.config.b1, "run_dir": m.run_dir,
               "status": "diverged" if i in diverged else "trained",
               "diverged_at_step": diverged.get(i), "steps": step,
               **{k: last.get(i, {}).get(k) for k in ("loss_g", "loss_d", "d_acc")}}
        if scored is not None and m.config.eval_every:
            row.update({k: (scored[i][k] if i in scored else None) for k in quality.KEYS})
        rows.append(row)
    return rows


def write_summary(out_dir: Path, rows: list[dict[str, Any]], process: int) -> None:
    with rundir.atomic_write(out_dir / f".summary.process{process}.json") as f:
        json.dump(rows, f)


def read_summaries(members: list[Member], out_dir: Path, processes: int) -> list[dict[str, Any]]:
    """Every process's part, in member order (--out-dir is a filesystem they share)."""
    parts = [out_dir / f".summary.process{p}.json" for p in range(processes)]
    order = [m.run_dir for m in members]
    return sorted((r for part in parts for r in json.loads(part.read_text())),
                  key=lambda r: order.index(r["run_dir"]))


def merge_summaries(rows: list[dict[str, Any]], out_dir: Path, step: int) -> None:
    """summary.json, summary.md and a labelled contact sheet of every member's final grid."""
    with rundir.atomic_write(out_dir / "summary.json") as f:
        json.dump({"members": rows, "steps": step}, f, indent=2)
    scored = any("fid" in r for r in rows)
    lines = ["| seed | lr | b1 | status | loss_g | loss_d | d_acc |"
             + (" FID | coverage | classes |" if scored else "") + " run |",
             "| ---: | ---: | ---: | --- | ---: | ---: | ---: |" + (" ---: | ---: | ---: |" if scored else "")
             + " --- |"]
    for r in rows:
        at = r["diverged_at_step"]
        status = r["status"] + (f" at step {at}" if at is not None else "")
        quality_cells = ""
        if scored:
            classes = "n/a" if r.get("classes_covered") is None else str(r["classes_covered"])
            quality_cells = (f" {_fmt(r.get('fid'), 1)} | {_fmt(r.get('coverage'), 3)} | {classes} |")
        lines.append(f"| {r['seed']} | {r['lr']:g} | {r['b1']:g} | {status} | {_fmt(r['loss_g'])} | "
                     f"{_fmt(r['loss_d'])} | {_fmt(r['d_acc'])} |{quality_cells} {r['run_dir']} |")
    with rundir.atomic_write(out_dir / "summary.md") as f:
        f.write("\n".join(lines) + "\n")
    contact_sheet(out_dir / "contact_sheet.png",
                  [(r["run_dir"], out_dir / r["run_dir"] / "samples.png") for r in rows])


def _fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def contact_sheet(path: Path, grids: list[tuple[str, Path]], columns: int = 4) -> None:
    """Every member's final 5x5 grid, labelled with its run name."""
    tiles = [(name, Image.open(p).convert("L")) for name, p in grids if p.exists()]
    if not tiles:
        return
    side = max(t.width for _, t in tiles)
    label = 16
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("L", (cols * side, rows * (side + label)), 255)
    draw = ImageDraw.Draw(sheet)
    for k, (name, tile) in enumerate(tiles):
        r, c = divmod(k, cols)
        top = r * (side + label)
        sheet.paste(tile.resize((side, side), Image.Resampling.NEAREST), (c * side, top + label))
        draw.text((c * side + 4, top + 2), name, fill=0)
    images.save_png(path, sheet)


@cli.main_guard
def main(argv: Sequence[str] | None = None) -> int:
    return main_body(argv)


if __name__ == "__main__":
    sys.exit(main())
