"""One worker process per backend, and the parent's side of talking to them.

Each backend trains in its own spawned process, so it has its own thread pools
and its own memory high-water mark. The parent interleaves the backends' timed
repeats, so drift (thermal, other load) hits all of them alike.

The protocol, over one pipe per worker:
  worker -> ("ready", (first_step_s, steps)) once built, compiled and stepped once;
  parent -> ("run",)  ... worker -> ("time", seconds) for one timed repeat;
  parent -> ("stop",) ... worker -> ("memory", {...}) and exits;
  worker -> ("error", why) instead of any answer, if it fails.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from benchmarks.backends import BACKENDS, Runner, backend_population
from gan_core.config import Config
from gan_core.errors import first_line

MNIST_TRAIN = 60_000

Answer = tuple[str, Any]
Worker = tuple[BaseProcess, Connection]


def benchmark_images(data_dir: str = "data") -> tuple[np.ndarray, str]:
    """MNIST if it is on disk, else the offline sample tiled to MNIST's 60,000 images.

    Tiling keeps an epoch as long as the real one, so epoch-length effects (the
    per-epoch permutation, whole-epoch scans) cost what they would in training.
    Returns the images and a description of where they came from.
    """
    from gan_core.data import load_dataset

    ds = load_dataset("mnist", data_dir, allow_download=False, warn=lambda _: None)
    images = ds.images
    if len(images) < MNIST_TRAIN:
        images = np.concatenate([images] * -(-MNIST_TRAIN // len(images)))[:MNIST_TRAIN]
    return np.ascontiguousarray(images), f"{ds.name} ({len(ds)} distinct images)"


def configure_frameworks(device: str, threads: int, precision: str) -> None:
    """The same threads and matmul precision for both frameworks, so neither gets an edge.

    Call it before either framework is first used: JAX reads its platform and
    the allocator setting only once.
    """
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import jax
    import torch

    torch.set_num_threads(threads)
    jax_precision = {"highest": "highest", "default": "default"}[precision]
    jax.config.update("jax_default_matmul_precision", jax_precision)
    torch.set_float32_matmul_precision("highest" if precision == "highest" else "high")
    torch.backends.cuda.matmul.allow_tf32 = precision != "highest"
    torch.backends.cudnn.allow_tf32 = precision != "highest"


# --- The worker process ------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerJob:
    """What one worker trains and how: the same for every backend at one batch size.

    `whole_epochs` lets a backend that runs whole epochs (jax-scan) time one
    epoch per repeat instead of `steps`, as training runs it.
    """

    batch: int
    steps: int
    device: str
    threads: int
    precision: str
    data_dir: str
    whole_epochs: bool


def _worker(conn: Connection, backend: str, job: WorkerJob) -> None:
    """The worker process's entry point: build, report ready, then serve timed repeats."""
    try:
        run, first_step, steps = _build(backend, job)
        conn.send(("ready", (first_step, steps)))
        # Warm-up at the timed length: jax-scan compiles one program per scan
        # length. The tutorial's loader has nothing to compile: two steps will do.
        run(2 if backend == "torch-tutorial" else steps)
        _serve(conn, run, steps, backend, job.device)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which records the failure.
        conn.send(("error", f"{type(e).__name__}: {first_line(e) if str(e) else ''}"))


def _build(backend: str, job: WorkerJob) -> tuple[Runner, float, int]:
    """The backend's runner, its time to first step (build, compile, one step) and its timed steps."""
    configure_frameworks(job.device, job.threads, job.precision)
    images, _ = benchmark_images(job.data_dir)
    config = Config(batch_size=job.batch)
    torch_device = "cuda" if job.device == "gpu" else "cpu"
    start = time.perf_counter()
    name, population = backend_population(backend)
    extra = {"population": population} if population > 1 or "@" in backend else {}
    run = BACKENDS[name](config, images, torch_device, **extra)
    run(1)
    first_step = time.perf_counter() - start
    steps = run.epoch_steps if job.whole_epochs and hasattr(run, "epoch_steps") else job.steps
    return run, first_step, steps


def _serve(conn: Connection, run: Runner, steps: int, backend: str, device: str) -> None:
    """Times one repeat per "run"; answers "stop" with the peak memory, then returns."""
    while True:
        message = conn.recv()
        if message[0] != "run":
            conn.send(("memory", _memory(backend, device)))
            return
        t0 = time.perf_counter()
        run(steps)
        conn.send(("time", time.perf_counter() - t0))


def _memory(backend: str, device: str) -> dict[str, float]:
    """Peak host RSS of this process, and on a GPU the peak its framework allocated."""
    out = {"peak_host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device == "gpu":
        if backend.startswith("jax"):
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            out["peak_gpu_mb"] = stats.get("peak_bytes_in_use", 0) / 2**20
        else:
            import torch

            out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# --- The parent's side -------------------------------------------------------------------------

def bench_batch(backends: list[str], batch: int, *, steps: int, repeats: int, device: str,
                threads: int, precision: str, data_dir: str, timeout: float,
                parallel_start: bool, whole_epochs: bool) -> list[dict[str, Any]]:
    """Times every backend at one batch size, one record each, in `backends` order.

    A backend that fails or hangs is recorded as failed (with why) rather than
    ending the run, so one broken setup still leaves the others' numbers.
    """
    job = WorkerJob(batch, steps, device, threads, precision, data_dir, whole_epochs)
    records = {name: {"backend": name, "batch_size": batch, "times_s": []} for name in backends}
    workers = _start_workers(backends, job, records, timeout, parallel_start)
    for _ in range(repeats):
        _time_one_round(workers, records, timeout)
    _stop_workers(workers, records, timeout)
    for record in records.values():
        _add_rates(record, batch)
    return [records[name] for name in backends]


def _start_workers(backends: list[str], job: WorkerJob, records: dict[str, dict[str, Any]],
                   timeout: float, parallel_start: bool) -> dict[str, Worker]:
    """Starts a worker per backend; returns those that got ready, having recorded the others."""
    ctx = mp.get_context("spawn")
    started: dict[str, Worker] = {}
    first: dict[str, Answer] = {}
    for name in backends:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, name, job), daemon=True)
        proc.start()
        started[name] = (proc, parent)
        if not parallel_start:  # One at a time: first-step times are uncontended.
            first[name] = _ask(parent, timeout)
    ready = {}
    for name, (proc, parent) in started.items():
        kind, value = first.get(name) or _ask(parent, timeout)
        if kind == "error":
            _fail(records[name], proc, value)
            continue
        records[name]["first_step_s"], records[name]["steps"] = value
        ready[name] = (proc, parent)
    return ready


def _time_one_round(workers: dict[str, Worker], records: dict[str, dict[str, Any]],
                    timeout: float) -> None:
    """One timed repeat of every live backend in turn; drops those that fail."""
    for name, (proc, conn) in list(workers.items()):
        # Let the previous backend's thread pool (OpenMP spin-waits) go idle first.
        time.sleep(0.5)
        kind, value = _ask(conn, timeout, ("run",))
        if kind == "error":
            _fail(records[name], proc, value)
            del workers[name]
            continue
        records[name]["times_s"].append(value)


def _stop_workers(workers: dict[str, Worker], records: dict[str, dict[str, Any]],
                  timeout: float) -> None:
    """Ends every worker, recording the peak memory of those that answer."""
    for name, (proc, conn) in workers.items():
        kind, value = _ask(conn, timeout, ("stop",))
        if kind == "memory":
            records[name].update(value)
        else:
            proc.kill()
        proc.join()


def _add_rates(record: dict[str, Any], batch: int) -> None:
    """The median rate over repeats (robust to one disturbed repeat) and its spread."""
    if not record["times_s"]:
        return
    rates = sorted(record["steps"] / t for t in record["times_s"])
    record.update(repeats=len(rates), steps_per_s=statistics.median(rates),
                  steps_per_s_min=rates[0], steps_per_s_max=rates[-1])
    record["images_per_s"] = record["steps_per_s"] * batch


def _ask(conn: Connection, timeout: float, message: tuple | None = None) -> Answer:
    """Sends `message` (if any) and returns the worker's answer, (kind, value).

    A worker that hangs or dies answers ("error", why), so one broken backend
    is recorded as failed instead of stalling or ending the whole run.
    """
    try:
        if message is not None:
            conn.send(message)
        if not conn.poll(timeout):
            return "error", f"timed out: no answer within {timeout:g} s"
        return conn.recv()
    except (EOFError, OSError):
        return "error", "the worker process died (crash or out of memory)"


def _fail(record: dict[str, Any], proc: BaseProcess, message: str) -> None:
    """Records why a backend stopped (dropping its partial repeats) and ends its worker."""
    record.update(error=message, times_s=[])
    print(f"  {record['backend']:26s} batch {record['batch_size']}: failed: {message}", file=sys.stderr)
    proc.kill()
    proc.join()
