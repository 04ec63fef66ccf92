"""How fast does each setup train the tutorial's GAN? `python -m benchmarks.throughput`.

Every backend runs in its own worker process (its own thread pools and memory
high-water mark); the main process interleaves their timed repeats so drift
hits all alike. Compile and warm-up are timed separately (time to first step)
and kept out of the throughput. Each timed run ends with a device sync.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.backends import BACKENDS, CPU_BACKENDS, GPU_BACKENDS, gemm_flops, step_gemms, train_step_flops
from jax_gan.config import Config

MNIST_TRAIN = 60_000
SEED_EPOCHS = 200


def benchmark_images(data_dir: str = "data") -> tuple[np.ndarray, str]:
    """MNIST if it is on disk, else the offline sample tiled to MNIST's 60,000 images."""
    from jax_gan.data import load_dataset

    ds = load_dataset("mnist", data_dir, allow_download=False, warn=lambda _: None)
    images = ds.images
    if len(images) < MNIST_TRAIN:
        images = np.concatenate([images] * -(-MNIST_TRAIN // len(images)))[:MNIST_TRAIN]
    return np.ascontiguousarray(images), f"{ds.name} ({len(ds)} distinct images)"


def configure_frameworks(device: str, threads: int, precision: str) -> None:
    """The same threads and matmul precision for both frameworks (call before first use)."""
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


def _worker(conn, backend: str, batch: int, steps: int, device: str, threads: int,
            precision: str, data_dir: str, whole_epochs: bool) -> None:
    try:
        configure_frameworks(device, threads, precision)
        images, _ = benchmark_images(data_dir)
        config = Config(batch_size=batch)
        torch_device = "cuda" if device == "gpu" else "cpu"
        start = time.perf_counter()
        run = BACKENDS[backend](config, images, torch_device)
        run(1)
        first_step = time.perf_counter() - start
        if whole_epochs and hasattr(run, "epoch_steps"):
            steps = run.epoch_steps
        conn.send(("ready", (first_step, steps)))
        # Warm-up at the timed length: jax-scan compiles one program per scan length.
        run(2 if backend == "torch-seed" else steps)
        while True:
            message = conn.recv()
            if message[0] == "run":
                t0 = time.perf_counter()
                run(steps)
                conn.send(("time", time.perf_counter() - t0))
            else:
                conn.send(("memory", _memory(backend, device)))
                return
    except Exception as e:  # noqa: BLE001 - reported to the parent, which records the failure.
        conn.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))


def _memory(backend: str, device: str) -> dict[str, float]:
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


def matmul_ceiling(device: str, threads: int, precision: str, n: int = 2048,
                   batches: tuple[int, ...] = ()) -> dict[str, Any]:
    """Measured float32 GEMM throughput (GFLOP/s) of each framework, in a fresh process.

    Two bounds: one big n^3 GEMM (the machine's ceiling), and, per batch size,
    just the matmuls of one train step (`step_gemms`), back to back with nothing
    else: what a step would reach if everything but its matmuls were free.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_matmul_worker, (device, threads, precision, n, tuple(batches)))


def _matmul_worker(device: str, threads: int, precision: str, n: int,
                   batches: tuple[int, ...]) -> dict[str, Any]:
    configure_frameworks(device, threads, precision)
    reps = 10 if device == "cpu" else 50
    jax_gflops, torch_gflops = _gemm_timers(device)
    out = {"jax_gflops": jax_gflops([(n, n, n)], reps), "torch_gflops": torch_gflops([(n, n, n)], reps),
           "step_gemms": {}}
    for batch in batches:
        shapes = step_gemms(Config(batch_size=batch))
        # About a quarter of the big GEMM's work, however small the step (at most
        # 2,000 steps' worth: small GPU matmuls are launch-bound, not work-bound).
        step_reps = min(2000, max(5, round(reps * gemm_flops([(n, n, n)]) / gemm_flops(shapes) / 4)))
        out["step_gemms"][str(batch)] = {"jax_gflops": jax_gflops(shapes, step_reps),
                                          "torch_gflops": torch_gflops(shapes, step_reps)}
    return out


def _gemm_timers(device: str):
    """Two functions timing a list of (M, K, N) matmuls in JAX and in torch, in GFLOP/s."""
    import jax
    import torch

    def jax_gflops(shapes, reps):
        keys = jax.random.split(jax.random.PRNGKey(0), 2 * len(shapes))
        pairs = [(jax.random.normal(keys[2 * i], (m, k)), jax.random.normal(keys[2 * i + 1], (k, n)))
                 for i, (m, k, n) in enumerate(shapes)]
        mm = jax.jit(lambda pairs: [a @ b for a, b in pairs])
        jax.block_until_ready(mm(pairs))
        t = time.perf_counter()
        for _ in range(reps):
            r = mm(pairs)
        jax.block_until_ready(r)
        return reps * gemm_flops(shapes) / (time.perf_counter() - t) / 1e9

    dev = torch.device("cuda" if device == "gpu" else "cpu")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def torch_gflops(shapes, reps):
        pairs = [(torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)) for m, k, n in shapes]
        _ = [a @ b for a, b in pairs]
        sync()
        t = time.perf_counter()
        for _ in range(reps):
            _ = [a @ b for a, b in pairs]
        sync()
        return reps * gemm_flops(shapes) / (time.perf_counter() - t) / 1e9

    return jax_gflops, torch_gflops


def _ask(conn, timeout: float, message: tuple | None = None) -> tuple[str, Any]:
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


def _fail(record: dict[str, Any], proc, message: str) -> None:
    """Records why a backend stopped (dropping its partial repeats) and ends its worker."""
    record.update(error=message, times_s=[])
    print(f"  {record['backend']:26s} batch {record['batch_size']}: failed: {message}", file=sys.stderr)
    proc.kill()
    proc.join()


def bench_batch(backends: list[str], batch: int, args, threads: int) -> list[dict[str, Any]]:
    """Times every backend at one batch size; one that fails or hangs is recorded as failed."""
    ctx = mp.get_context("spawn")
    workers, records = {}, {}
    started, first = {}, {}
    for name in backends:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, name, batch, args.steps, args.device, threads,
                                                 args.precision, args.data_dir, not args.quick),
                           daemon=True)
        proc.start()
        started[name] = (proc, parent)
        if not args.parallel_start:  # One at a time: first-step times are uncontended.
            first[name] = _ask(parent, args.timeout)
    for name, (proc, parent) in started.items():
        kind, value = first.get(name) or _ask(parent, args.timeout)
        records[name] = {"backend": name, "batch_size": batch, "times_s": []}
        if kind == "error":
            _fail(records[name], proc, value)
            continue
        records[name]["first_step_s"], records[name]["steps"] = value
        workers[name] = (proc, parent)
    for _ in range(args.repeats):
        for name, (proc, conn) in list(workers.items()):
            # Let the previous backend's thread pool (OpenMP spin-waits) go idle first.
            time.sleep(0.5)
            kind, value = _ask(conn, args.timeout, ("run",))
            if kind == "error":
                _fail(records[name], proc, value)
                del workers[name]
                continue
            records[name]["times_s"].append(value)
    for name, (proc, conn) in workers.items():
        kind, value = _ask(conn, args.timeout, ("stop",))
        if kind == "memory":
            records[name].update(value)
        else:
            proc.kill()
        proc.join()
    out = []
    for name in backends:
        r = records[name]
        if r["times_s"]:
            rates = sorted(r["steps"] / t for t in r["times_s"])
            r.update(repeats=len(rates), steps_per_s=statistics.median(rates),
                     steps_per_s_min=rates[0], steps_per_s_max=rates[-1])
            r["images_per_s"] = r["steps_per_s"] * batch
        out.append(r)
    return out


def summarize(records: list[dict[str, Any]], ceiling: dict[str, Any]) -> None:
    """Speed-ups, achieved GFLOP/s, roofline fractions and the seed recipe's projected time."""
    ceiling_gflops = max(ceiling["jax_gflops"], ceiling["torch_gflops"])
    by_batch: dict[int, dict[str, dict]] = {}
    for r in records:
        by_batch.setdefault(r["batch_size"], {})[r["backend"]] = r
    for batch, group in by_batch.items():
        flops = train_step_flops(Config(batch_size=batch))
        steps_recipe = SEED_EPOCHS * -(-MNIST_TRAIN // batch)
        for r in group.values():
            if "steps_per_s" not in r:
                continue
            r["gflops"] = r["steps_per_s"] * flops / 1e9
            r["fraction_of_matmul_ceiling"] = r["gflops"] / ceiling_gflops
            step_bound = ceiling["step_gemms"].get(str(batch))
            if step_bound:
                r["fraction_of_step_gemms"] = r["gflops"] / max(step_bound.values())
            r["seed_recipe_projected_s"] = steps_recipe / r["steps_per_s"]
            for base in ("torch-eager", "torch-seed"):
                if "steps_per_s" in group.get(base, {}):
                    r[f"speedup_vs_{base}"] = r["steps_per_s"] / group[base]["steps_per_s"]


def environment(device: str, threads: int, precision: str) -> dict[str, Any]:
    import jax
    import torch

    info = {"python": platform.python_version(), "jax": jax.__version__, "torch": torch.__version__,
            "platform": platform.platform(), "processor": _cpu_name(), "threads": threads,
            "cpu_count": os.cpu_count(), "device": device, "matmul_precision": precision}
    try:
        import flax
        import optax

        info.update(flax=flax.__version__, optax=optax.__version__)
    except ImportError:
        pass
    if device == "gpu":
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "unknown"
        info["jax_device"] = jax.devices()[0].device_kind
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"Device: {env['device']} ({env.get('gpu', env['processor'])}), {env['threads']} threads, "
        f"float32 matmul precision `{env['matmul_precision']}`; jax {env['jax']}, torch {env['torch']}.",
        f"Matmul ceiling (float32 {result['ceiling']['n']}^3 GEMM): "
        f"JAX {result['ceiling']['jax_gflops']:.0f}, torch {result['ceiling']['torch_gflops']:.0f} GFLOP/s. "
        "A train step's matmuls alone, back to back (JAX / torch): " + "; ".join(
            f"batch {b} {v['jax_gflops']:.0f} / {v['torch_gflops']:.0f} GFLOP/s"
            for b, v in result["ceiling"].get("step_gemms", {}).items()) + ".",
        f"Data: {result['data']}. Median of {result['args']['repeats']} repeats of "
        f"{result['args']['steps']} steps; jax-scan times whole epochs ("
        + ", ".join(sorted({f"{r['steps']} steps at batch {r['batch_size']}" for r in result["records"]
                            if r["backend"].startswith("jax-scan") and "steps" in r},
                           key=lambda t: int(t.split()[-1])))
        + "), as training runs them.",
        "",
        "| backend | batch | steps/s (min-max) | images/s | first step (s) | peak RSS (MB) | "
        "GFLOP/s | % of ceiling | % of step matmuls | vs torch-eager | vs torch-seed | "
        "seed recipe (200 epochs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["records"]:
        if "steps_per_s" not in r:
            lines.append(f"| {r['backend']} | {r['batch_size']} | failed: {r.get('error', '?')} |"
                         + " |" * 10)
            continue
        mem = r.get("peak_gpu_mb", r.get("peak_host_rss_mb", 0))
        lines.append(
            f"| {r['backend']} | {r['batch_size']} | {r['steps_per_s']:.1f} "
            f"({r['steps_per_s_min']:.1f}-{r['steps_per_s_max']:.1f}) | {r['images_per_s']:,.0f} | "
            f"{r['first_step_s']:.2f} | {mem:,.0f} | {r['gflops']:.1f} | "
            f"{100 * r['fraction_of_matmul_ceiling']:.1f}% | {_percent(r, 'fraction_of_step_gemms')} | "
            f"{_ratio(r, 'speedup_vs_torch-eager')} | {_ratio(r, 'speedup_vs_torch-seed')} | "
            f"{_duration(r['seed_recipe_projected_s'])} |")
    return "\n".join(lines) + "\n"


def _ratio(record: dict[str, Any], key: str) -> str:
    return f"{record[key]:.2f}x" if key in record else "n/a"


def _percent(record: dict[str, Any], key: str) -> str:
    return f"{100 * record[key]:.1f}%" if key in record else "n/a"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in result["records"] if "steps_per_s" in r]
    backends = list(dict.fromkeys(r["backend"] for r in records))
    batches = sorted({r["batch_size"] for r in records})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(backends), 1)
    for i, name in enumerate(backends):
        values = [next((r["images_per_s"] for r in records
                        if r["backend"] == name and r["batch_size"] == b), 0) for b in batches]
        ax.bar(np.arange(len(batches)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(batches)) + width * (len(backends) - 1) / 2)
    ax.set_xticklabels([f"batch {b}" for b in batches])
    ax.set_ylabel("images / s (higher is better)")
    ax.set_yscale("log")
    env = result["environment"]
    ax.set_title(f"GAN train-step throughput, {env['device']}: {env.get('gpu', env['processor'])}")
    if backends:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: gpu if JAX sees one")
    p.add_argument("--backends", help="comma list (default: all for the device): "
                                      + ",".join(GPU_BACKENDS))
    p.add_argument("--batch-sizes", default="64,256,1024")
    p.add_argument("--steps", type=int, default=100,
                   help="timed steps per repeat (jax-scan: one whole epoch, as training runs it, "
                        "unless --quick)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads, both frameworks")
    p.add_argument("--precision", choices=("highest", "default"), default="highest",
                   help="float32 matmul precision; 'default' lets GPUs use TF32")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--json", help="write records here, and a .md table and .png chart beside it")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds a backend may take to compile and run its first step, or to "
                        "finish one timed repeat, before it is recorded as failed")
    p.add_argument("--quick", action="store_true", help="tiny counts: checks that everything runs")
    p.add_argument("--parallel-start", action="store_true",
                   help="start all backends' workers at once (faster on many-core hosts; their "
                        "first-step times then overlap)")
    args = p.parse_args(argv)
    # Before anything touches a GPU: this process and every worker share it.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.device is None:
        args.device = "gpu" if _has_gpu() else "cpu"
    if args.quick:
        args.steps, args.repeats = 3, 2
    backends = args.backends.split(",") if args.backends else list(
        GPU_BACKENDS if args.device == "gpu" else CPU_BACKENDS)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    try:
        batches = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        p.error(f"--batch-sizes must be a comma list of integers, got {args.batch_sizes!r}")
    if min(batches) <= 0 or args.steps <= 0 or args.repeats <= 0 or args.timeout <= 0:
        p.error("--batch-sizes, --steps, --repeats and --timeout must be positive")
    max_steps = MNIST_TRAIN // max(batches)
    if args.steps > max_steps:
        print(f"note: --steps lowered to {max_steps}, one epoch at batch {max(batches)}", file=sys.stderr)
        args.steps = max_steps

    # A GPU needs a bigger GEMM than a CPU to reach its peak.
    n = 256 if args.quick else 2048 if args.device == "cpu" else 8192
    ceiling = matmul_ceiling(args.device, args.threads, args.precision, n, batches)
    ceiling["n"] = n
    records = []
    for batch in batches:
        print(f"batch {batch}:", file=sys.stderr)
        group = bench_batch(backends, batch, args, args.threads)
        for r in group:
            if "steps_per_s" in r:
                print(f"  {r['backend']:26s} {r['steps_per_s']:9.1f} steps/s "
                      f"(first step {r['first_step_s']:.2f} s)", file=sys.stderr)
        records += group
    summarize(records, ceiling)
    configure_frameworks(args.device, args.threads, args.precision)
    result = {"environment": environment(args.device, args.threads, args.precision),
              "data": benchmark_images(args.data_dir)[1], "ceiling": ceiling,
              "train_step_flops_per_image": train_step_flops(Config(batch_size=1)),
              "args": {"steps": args.steps, "repeats": args.repeats, "batch_sizes": batches,
                       "backends": backends}, "records": records}
    table = markdown(result)
    print(table)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        path.with_suffix(".md").write_text(table)
        chart(result, path.with_suffix(".png"))
    return 0 if all("steps_per_s" in r for r in records) else 1


def _has_gpu() -> bool:
    try:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


if __name__ == "__main__":
    sys.exit(main())
