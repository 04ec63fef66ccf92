"""Many GANs as one program: `python -m jax_gan.sweep --seeds 0,1,2,3 --lr 1e-4,2e-4`.

The members are every combination of the listed seeds, learning rates and
Adam b1s; everything else is shared and takes `jax_gan.train`'s flags. The
whole population trains as one compiled epoch: `train_step.train_epoch`
vmapped over a leading member axis of the train state, that axis sharded
over every device of every process (`jax.make_mesh`, `NamedSharding`). Each
member draws its data order, z and dropout masks exactly as the single run
with its seed does. A member whose loss or weights go non-finite is frozen
inside the program at its last good step and reported as diverged; the
others go on.

Each member is a run of `gan_core.driver`'s loop, the one `jax_gan.train`
runs: its folder is checked and locked before anything is written, and gets
its metrics.jsonl, sample grids, checkpoints on the same schedule (which
`jax_gan.sample`, `interpolate`, `evaluate` and `convert` accept), quality
lines and a `best` checkpoint with `--eval-every`, and its final pictures.

Across machines, start one process per machine with `--coordinator-address
HOST:PORT --num-processes N --process-id I` (or let `jax.distributed`
detect a cluster such as SLURM); each process trains, writes and locks the
members it holds, and the sweep's own checkpoint (for `--resume`) is Orbax's
multi-process save of the sharded population.

Outputs in `--out-dir`: one run directory per member, `sweep.json` (the
plan), `summary.json`, `summary.md`, `contact_sheet.png`, and
`checkpoints/` for `--resume`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
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

from gan_core import cli, driver, images, quality, rundir
from gan_core.config import Config
from gan_core.data import Dataset
from gan_core.digest import array_sha256
from gan_core.epoch import EpochResult
from gan_core.errors import UserError, first_line
from gan_core.peers import PeerWatch
from jax_gan import backend
from jax_gan.checkpoint import Checkpointer
from jax_gan.train import read_best_meta
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
LISTS = {"seed": "seeds", "lr": "lr", "b1": "b1"}  # Their keys in sweep.json.


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
    members.add_argument("--seeds", dest="seed_list", type=_list(int), metavar="S,S,...",
                         help="random seeds (default: 0)")
    members.add_argument("--lr", dest="lr_list", type=_list(float), metavar="X,X,...",
                         help=f"Adam learning rates (default: {Config.lr})")
    members.add_argument("--b1", dest="b1_list", type=_list(float), metavar="X,X,...",
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


def given_lists(args: argparse.Namespace) -> dict[str, list]:
    """The lists named on the command line, by config field."""
    given = {"seed": args.seed_list, "lr": args.lr_list, "b1": args.b1_list}
    return {k: v for k, v in given.items() if v is not None}


def resolve_plan(args: argparse.Namespace, saved: dict[str, Any] | None) -> tuple[Config, dict[str, list]]:
    """The shared config and the lists: from the flags, or a resumed sweep's with its lists kept."""
    overrides, given = cli.given_overrides(args), given_lists(args)
    if saved is None:
        base = cli.resolve_config(overrides)
        lists = {k: given.get(k, [getattr(base, k)]) for k in SWEPT}
        return base, lists
    lists = {k: saved[LISTS[k]] for k in SWEPT}
    changed = [k for k, v in given.items() if v != lists[k]]
    if changed:
        flags = {"seed": "--seeds", "lr": "--lr", "b1": "--b1"}
        raise UserError(f"cannot change {', '.join(flags[k] for k in changed)} when resuming a sweep (it "
                        f"has {', '.join(f'{flags[k]} {lists[k]}' for k in changed)}); start a new sweep "
                        "in another --out-dir instead")
    base = Config.from_dict(saved["base"])
    cli.check_resumable(base, overrides)
    return dataclasses.replace(base, **overrides), lists


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
    state: MemberState  # Every leaf has a leading member axis, sharded over the mesh.
    fixed_z: jax.Array  # float32[members, 25, latent]: each member's sample-grid z.


def mesh_sharding() -> tuple[NamedSharding, NamedSharding]:
    """The member axis over every device, and a replicated layout for the data."""
    # Auto axes: XLA propagates the member sharding through the vmapped epoch by itself
    # (explicit axes would put it in every array's type, which lax.cond inside vmap rejects).
    mesh = jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
    return NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())


def global_array(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A sharded array from the same host array in every process (each keeps its slices)."""
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def local_members(sharding: NamedSharding, slots: int, count: int) -> list[int]:
    """The members whose rows this process holds (padding excluded), in order."""
    rows = set()
    for index in sharding.addressable_devices_indices_map((slots,)).values():
        rows.update(range(*index[0].indices(slots)))
    return sorted(i for i in rows if i < count)


def initial_population(members: list[Member], slots: int, sharding: NamedSharding,
                       swept: tuple[str, ...]) -> Population:
    """Each member's fresh state, exactly as `create_train_state` makes it for its seed."""
    padded = [members[i] if i < len(members) else members[0] for i in range(slots)]
    base = members[0].config
    seeds = jnp.asarray([m.config.seed for m in padded], jnp.uint32)
    host = jax.device_get(jax.vmap(lambda s: create_train_state(base, seed=s))(seeds))
    state = MemberState(**vars(host), alive=np.arange(slots) < len(members),
                        hyper={k: np.asarray([getattr(m.config, k) for m in padded], np.float32)
                               for k in swept})
    return Population(state=jax.tree.map(lambda x: global_array(np.asarray(x), sharding), state),
                      fixed_z=global_array(np.stack([driver.fixed_latents(m.config) for m in padded]),
                                           sharding))


@functools.partial(jax.jit, static_argnames=("config", "start", "stop"), donate_argnames=("state",))
def population_epoch(state: MemberState, fixed_z: jax.Array, images: jax.Array, config: Config, start: int,
                     stop: int) -> EpochResult:
    """One compiled epoch for every member: `train_epoch` with the guarded step, vmapped."""
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


def local_states(state: MemberState) -> dict[int, TrainState]:
    """Each member's plain `TrainState` (host arrays) that this process holds, as its own run's
    checkpoint holds it; one pass over the population."""
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(TrainState)}
    leaves, treedef = jax.tree.flatten(TrainState(**fields))
    rows = [local_rows(leaf) for leaf in leaves]
    return {i: jax.tree.unflatten(treedef, [r[i] for r in rows]) for i in rows[0]}


# --- the population as the driver's trainer -------------------------------------------------------

class PopulationTrainer(driver.Trainer):
    """The members this process holds, trained by `gan_core.driver` as its runs."""

    framework = "jax"
    program = "jax_gan.sweep"
    description = "Train many GANs as one program."
    population = True

    def __init__(self, members: list[Member], lists: dict[str, list], root: Path,
                 root_lock: rundir.RunLock | None) -> None:
        self.members, self.lists, self.root, self.root_lock = members, lists, root, root_lock
        # The compiled epoch's config: a swept field of one value is the shared value.
        self.config = dataclasses.replace(members[0].config, **{k: v[0] for k, v in lists.items()
                                                                if len(v) == 1})
        self.swept = tuple(k for k in ("lr", "b1") if len(lists[k]) > 1)  # Traced per member.
        self.member_sharding, self.replicated = mesh_sharding()
        self.slots = slots_for(len(members), jax.device_count())
        self.local = local_members(self.member_sharding, self.slots, len(members))
        self.manager: ocp.CheckpointManager | None = None
        self.checkpointers: dict[tuple[int, str], Checkpointer] = {}
        self.restored: tuple[MemberState, int] | None = None
        self.peers: PeerWatch | None = None
        self.step = 0
        self._cache: tuple[int, dict[int, TrainState]] | None = None

    def runs(self) -> list[driver.Run]:
        return [driver.Run(self.members[i].config, self.root / self.members[i].run_dir) for i in self.local]

    def device(self) -> str:
        return (f"{jax.device_count()} {backend.platform()} device(s) in {jax.process_count()} process(es), "
                f"{len(self.members)} members in {self.slots} slots")

    def check(self, config: Config, dataset: Dataset) -> None:
        backend.platform()
        self.dataset_name = dataset.name

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """The sweep's own folder: checked and locked by process 0, which writes the plan; every
        other process holds a lock of its own in it."""
        if jax.process_index() != 0:
            if self.root_lock is None:
                rundir.checked(lambda: self.root.mkdir(parents=True, exist_ok=True), self.root)
                self.root_lock = rundir.RunLock(self.root, root_lock_name()).acquire()
            return
        old = read_sweep(self.root) if overwrite and (self.root / rundir.SWEEP_PLAN).exists() else None
        # Members of the replaced sweep that this one does not train again: every one locked
        # before anything is removed, so a member in use refuses the overwrite with nothing lost.
        stale = [self.root / name for name in sorted(set((old or {}).get("members", []))
                                                      - {m.run_dir for m in self.members})]
        held: list[tuple[Path, rundir.RunLock]] = []
        try:
            for folder in stale:
                if (folder / rundir.MARKER).exists():
                    held.append((folder, rundir.RunLock(folder).acquire()))
            _, self.root_lock = rundir.prepare_out_dir(self.root, resume=resume, overwrite=overwrite,
                                                       lock=self.root_lock)
        except BaseException:
            for _, lock in held:
                lock.release()
            raise
        for folder, lock in held:
            rundir.remove_run(folder, lock)
        (self.root / "samples").rmdir()  # Grids go to the members' folders.
        plan_json = {"base": self.members[0].config.to_dict(), "framework": "jax",
                     "dataset_used": self.dataset_name, **{LISTS[k]: v for k, v in self.lists.items()},
                     "members": [m.run_dir for m in self.members], "slots": self.slots}
        with rundir.atomic_write(self.root / rundir.SWEEP_PLAN) as f:
            json.dump(plan_json, f, indent=2)

    # --- resume ---

    def _manager(self) -> ocp.CheckpointManager:
        if self.manager is None:
            options = ocp.CheckpointManagerOptions(
                preservation_policy=ocp.checkpoint_managers.LatestN(n=self.config.keep_checkpoints),
                enable_async_checkpointing=False)
            self.manager = ocp.CheckpointManager((self.root / "checkpoints").absolute(), options=options)
        return self.manager

    def _restore(self) -> tuple[MemberState, int] | None:
        """The population's latest checkpoint (every process reads its rows); None if it has none."""
        if self.restored is None and (self.root / "checkpoints").is_dir():
            manager = self._manager()
            step = manager.latest_step()
            if step is not None:
                template = initial_population(self.members, self.slots, self.member_sharding, self.swept)
                tree = flax.serialization.to_state_dict(template.state)
                abstract = jax.tree.map(
                    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
                try:
                    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
                except Exception as e:  # noqa: BLE001 - a damaged checkpoint fails in many ways.
                    raise UserError(f"--resume: the sweep's checkpoint {step} in {self.root} cannot be "
                                    f"read: {first_line(e)}") from e
                self.restored = flax.serialization.from_state_dict(template.state, restored), step
        return self.restored

    def saved_meta(self, out_dir: Path) -> dict[str, Any] | None:
        restored = self._restore()
        if restored is None:
            return None
        state, step = restored
        i = next(m.index for m in self.members if self.root / m.run_dir == out_dir)
        saved = json.loads((self.root / rundir.SWEEP_PLAN).read_text())
        alive = bool(local_rows(state.alive)[i])
        return {"config": dataclasses.replace(Config.from_dict(saved["base"]),
                                              **{k: getattr(self.members[i].config, k) for k in SWEPT}
                                              ).to_dict(),
                "dataset_used": saved.get("dataset_used"), "framework": "jax", "step": step,
                "diverged_at_step": None if alive else int(local_rows(state.step)[i])}

    def best_meta(self, out_dir: Path) -> dict[str, Any] | None:
        return read_best_meta(out_dir)

    # --- training ---

    def start(self, runs: Sequence[driver.Run], dataset: Dataset, resume: bool) -> Population:
        if jax.process_count() > 1:
            self.peers = PeerWatch(self.root, jax.process_index(), jax.process_count())
        self.images = global_array(dataset.images, self.replicated)
        population = initial_population(self.members, self.slots, self.member_sharding, self.swept)
        if resume and self._restore() is not None:
            state, self.step = self.restored
            population = population._replace(state=state)
        self._manager()
        return population

    def step_of(self, population: Population) -> int:
        return self.step

    def train_epoch(self, population: Population, start: int, stop: int) -> EpochResult:
        result = population_epoch(population.state, population.fixed_z, self.images, config=self.config,
                                  start=start, stop=stop)
        self.step += stop - start
        rows = {k: local_rows(v) for k, v in result.metrics.items()}
        samples = local_rows(result.samples)
        count = int(next(iter(local_rows(result.num_samples).values())))
        return EpochResult(population._replace(state=result.state),
                           {k: np.stack([v[i] for i in self.local]) for k, v in rows.items()},
                           np.stack([samples[i] for i in self.local]), count,
                           np.ones(len(self.local), bool))  # The guarded step keeps weights finite.

    def agree(self, stop: int, done: bool) -> tuple[int, bool]:
        """Every process stops at the same epoch boundary, on the same signal, and ends when all
        members have."""
        if jax.process_count() == 1:
            return stop, done
        flags = collective(multihost_utils.process_allgather, np.asarray([stop, done], np.int32))
        return int(flags[:, 0].max()), bool(flags[:, 1].all())

    def _member(self, population: Population, run: int) -> TrainState:
        """Run `run`'s state on the host, cached until the population trains again."""
        if self._cache is None or self._cache[0] != self.step:
            self._cache = (self.step, local_states(population.state))
        return self._cache[1][self.local[run]]

    def generate(self, population: Population, z: np.ndarray, run: int) -> np.ndarray:
        params = jax.device_put(self._member(population, run).params_g)
        return np.asarray(generate(params, jnp.asarray(z), self.config))

    def save(self, population: Population, metas: Mapping[int, dict[str, Any]]) -> None:
        save_population(self._manager(), population.state, self.step, self.root)
        for run, meta in metas.items():
            self._checkpointer(run, "checkpoints").save(self._member(population, run), meta)

    def save_best(self, population: Population, meta: dict[str, Any], run: int) -> None:
        self._checkpointer(run, rundir.BEST).save(self._member(population, run), meta)

    def _checkpointer(self, run: int, folder: str) -> Checkpointer:
        key = (run, folder)
        if key not in self.checkpointers:
            keep = 1 if folder == rundir.BEST else self.config.keep_checkpoints
            member = self.members[self.local[run]]
            self.checkpointers[key] = Checkpointer(self.root / member.run_dir / folder, keep=keep)
        return self.checkpointers[key]

    def finish(self, runs: Sequence[driver.RunProgress], step: int, stopped: bool) -> None:
        """summary.json, summary.md and the contact sheet, by process 0 from every process's part."""
        write_summary(self.root, [summary_row(r, step) for r in runs], jax.process_index())
        if jax.process_count() > 1:
            collective(multihost_utils.sync_global_devices, "jax_gan.sweep: summary parts written")
            self.peers.stop(finished=True)  # No collective follows: a process may end before the others.
        if jax.process_index() == 0:
            rows = read_summaries(self.members, self.root, jax.process_count())
            merge_summaries(rows, self.root, step)
            if not stopped:
                trained = sum(r["status"] == "trained" for r in rows)
                print(f"done: {trained} of {len(rows)} members trained {step} steps; summary in "
                      f"{self.root / 'summary.md'}")

    def close(self) -> None:
        if self.peers is not None:
            self.peers.stop(finished=False)
        for checkpointer in self.checkpointers.values():
            checkpointer.close()
        if self.manager is not None:
            self.manager.close()
        if self.root_lock is not None:
            self.root_lock.release()


def save_population(manager: ocp.CheckpointManager, state: MemberState, step: int, root: Path) -> None:
    """The whole population at `step`: a collective save, every process writes its rows."""
    if manager.latest_step() == step:
        return
    need = sum(shard.data.nbytes for leaf in jax.tree.leaves(state) for shard in leaf.addressable_shards)
    free = shutil.disk_usage(root).free
    if need * 1.1 + 2**20 > free:  # Orbax's writer threads would report it with pages of tracebacks.
        raise UserError(f"cannot save the sweep's checkpoint {step} in {root}: No space left on device "
                        f"(needs {need / 2**20:.1f} MB, {free / 2**20:.1f} MB free); earlier checkpoints "
                        "are kept")
    try:
        manager.save(step, args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)), force=True)
        manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001 - Orbax wraps OSError in several types.
        raise UserError(f"cannot save the sweep's checkpoint {step} in {root}: {first_line(e)}") from e


# --- the summary ---------------------------------------------------------------------------------

def summary_row(r: driver.RunProgress, step: int) -> dict[str, Any]:
    """A member's line of summary.json; quality metrics are its last scores (with --eval-every)."""
    last = r.last or last_losses(r.out_dir)  # A resume that trained nothing more reads them back.
    row = {"seed": r.config.seed, "lr": r.config.lr, "b1": r.config.b1, "run_dir": r.out_dir.name,
           "status": "diverged" if r.diverged_at is not None else "trained",
           "diverged_at_step": r.diverged_at,
           "steps": step if r.diverged_at is None else r.diverged_at,
           "last_checkpoint": latest_checkpoint(r.out_dir),
           **{k: last.get(k) for k in ("loss_g", "loss_d", "d_acc")}}
    if r.config.eval_every:
        scores = r.scores or last_scores(r.out_dir)
        row.update({k: (scores.get(k) if r.diverged_at is None else None) for k in quality.KEYS})
    return row


def last_losses(run_dir: Path) -> dict[str, Any]:
    records = rundir.loss_records(rundir.read_metrics(run_dir / "metrics.jsonl"))
    return records[-1] if records else {}


def latest_checkpoint(run_dir: Path) -> int | None:
    """The step of a member's newest checkpoint, as its folder holds it."""
    steps = [int(p.name) for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
    return max(steps, default=None)


def last_scores(run_dir: Path) -> dict[str, Any]:
    """A member's latest quality line in its metrics.jsonl (a resume starts from it)."""
    records = rundir.quality_records(rundir.read_metrics(run_dir / "metrics.jsonl"))
    return records[-1] if records else {}


def write_summary(root: Path, rows: list[dict[str, Any]], process: int) -> None:
    with rundir.atomic_write(root / f".summary.process{process}.json") as f:
        json.dump(rows, f)


def read_summaries(members: list[Member], root: Path, processes: int) -> list[dict[str, Any]]:
    """Every process's part, in member order (--out-dir is a filesystem they share)."""
    parts = [root / f".summary.process{p}.json" for p in range(processes)]
    order = [m.run_dir for m in members]
    return sorted((r for part in parts for r in json.loads(part.read_text())),
                  key=lambda r: order.index(r["run_dir"]))


def merge_summaries(rows: list[dict[str, Any]], root: Path, step: int) -> None:
    """summary.json, summary.md and a labelled contact sheet of every member's final grid."""
    with rundir.atomic_write(root / "summary.json") as f:
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
    with rundir.atomic_write(root / "summary.md") as f:
        f.write("\n".join(lines) + "\n")
    images.save_contact_sheet(root / "contact_sheet.png",
                              [(r["run_dir"], root / r["run_dir"] / "samples.png") for r in rows])


def _fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


# --- the command ---------------------------------------------------------------------------------

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


def read_sweep(root: Path) -> dict[str, Any]:
    path = root / rundir.SWEEP_PLAN
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--resume: no sweep in {root} ({path.name} is missing or damaged)") from e


def check_same_plan(members: list[Member], args: argparse.Namespace) -> None:
    """Every process must train the same members with the same flags into the same folder: a
    mismatch is refused on every process before anything is written."""
    if jax.process_count() == 1:
        return
    text = json.dumps([[m.run_dir, m.config.to_dict()] for m in members] + [args.out_dir, args.resume,
                                                                            args.overwrite], sort_keys=True)
    digest = np.asarray([int(array_sha256(np.frombuffer(text.encode(), np.uint8))[:15], 16)], np.int64)
    digests = collective(multihost_utils.process_allgather, digest)
    different = [p for p in range(len(digests)) if digests[p, 0] != digests[0, 0]]
    if different:
        raise UserError(f"process(es) {', '.join(map(str, different))} run another plan or other flags than "
                        "process 0: start every process with the same command (but --process-id)")


def root_lock_name() -> str:
    """Process 0 holds the sweep folder's run lock; every other process a lock of its own there."""
    return rundir.LOCK if jax.process_index() == 0 else f".jax-gan.process{jax.process_index()}.lock"


def main_body(argv: Sequence[str] | None) -> int:
    with driver.GracefulStop() as stop:
        args = parser().parse_args(argv)
        distributed(args)
        backend.platform()
        root = Path(args.out_dir)
        with rundir.claim(root, root_lock_name()) as lock:
            if args.resume:
                rundir.require_previous_run(root)
            base, lists = resolve_plan(args, read_sweep(root) if args.resume else None)
            members = plan(base, lists["seed"], lists["lr"], lists["b1"])
            check_same_plan(members, args)
            trainer = PopulationTrainer(members, lists, root, lock)
            return driver.train_runs(trainer, trainer.runs(), root, resume=args.resume,
                                     overwrite=args.overwrite, quiet=args.quiet, stop=stop)


EXIT_PEER = 4  # Another process of the sweep stopped: this one stops too.


class PeerLost(UserError):
    """A collective failed: another process of the sweep has stopped."""


def collective(operation, *args):
    """A collective across the sweep's processes; a peer that died is `PeerLost`, not a traceback."""
    try:
        return operation(*args)
    except Exception as e:  # noqa: BLE001 - XLA reports a lost peer as ValueError or RuntimeError.
        raise PeerLost(f"another process of this sweep stopped ({first_line(e)}); this one stops too. "
                       "Resume from the last checkpoint with --resume, on every process") from e


@cli.main_guard
def guarded_main(argv: Sequence[str] | None) -> int:
    try:
        return main_body(argv)
    except PeerLost as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_PEER


def main(argv: Sequence[str] | None = None) -> int:
    code = guarded_main(argv)
    if code and jax.process_count() > 1:
        # jax.distributed's shutdown waits for every process at exit: with one gone, it would
        # wait for the coordination service's timeout, then abort with a C++ stack trace.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
