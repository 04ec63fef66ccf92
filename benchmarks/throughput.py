"""How fast does each setup train the tutorial's GAN? `python -m benchmarks.throughput`.

Every backend runs in its own worker process (its own thread pools and memory
high-water mark); the main process interleaves their timed repeats so drift
hits all alike. Compile and warm-up are timed separately (time to first step)
and kept out of the throughput. Each timed run ends with a device sync.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.backends import BACKENDS, CPU_BACKENDS, GPU_BACKENDS, backend_population
from benchmarks.report import chart, environment, markdown, summarize
from benchmarks.roofline import matmul_ceiling, train_step_flops
from benchmarks.worker import MNIST_TRAIN, bench_batch, benchmark_images, configure_frameworks
from gan_core.config import Config


def main(argv: list[str] | None = None) -> int:
    """Measures, prints the table and (with --json) writes the results; 1 if any backend failed."""
    p = _parser()
    args = p.parse_args(argv)
    # Before anything touches a GPU: this process and every worker share it.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    device = args.device or ("gpu" if _has_gpu() else "cpu")
    steps, repeats = (3, 2) if args.quick else (args.steps, args.repeats)
    backends = _backends(p, args.backends, device)
    populations = _populations(p, args.populations)
    backends = [f"{b}@{n}" if b == "jax-sweep" else b for b in backends
                for n in (populations if b == "jax-sweep" else [1])]
    batches = _batch_sizes(p, args.batch_sizes)
    if min(batches) <= 0 or steps <= 0 or repeats <= 0 or args.timeout <= 0:
        p.error("--batch-sizes, --steps, --repeats and --timeout must be positive")
    steps = _at_most_one_epoch(steps, max(batches))

    # A GPU needs a bigger GEMM than a CPU to reach its peak.
    n = 256 if args.quick else 2048 if device == "cpu" else 8192
    ceiling = matmul_ceiling(device, args.threads, args.precision, n, batches)
    ceiling["n"] = n
    records = []
    for batch in batches:
        print(f"batch {batch}:", file=sys.stderr)
        group = bench_batch(backends, batch, steps=steps, repeats=repeats, device=device,
                            threads=args.threads, precision=args.precision, data_dir=args.data_dir,
                            timeout=args.timeout, parallel_start=args.parallel_start,
                            whole_epochs=not args.quick)
        _print_rates(group)
        records += group
    summarize(records, ceiling)
    configure_frameworks(device, args.threads, args.precision)
    result = {"environment": environment(device, args.threads, args.precision),
              "data": benchmark_images(args.data_dir)[1], "ceiling": ceiling,
              "train_step_flops_per_image": train_step_flops(Config(batch_size=1)),
              "args": {"steps": steps, "repeats": repeats, "batch_sizes": batches,
                       "backends": backends}, "records": records}
    _write(result, args.json)
    return 0 if all("steps_per_s" in r for r in records) else 1


def _parser() -> argparse.ArgumentParser:
    """The command line: its flags are part of the harness's interface (benchmarks/gpu.sh, README)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: gpu if JAX sees one")
    p.add_argument("--backends", help="comma list (default: all for the device): "
                                      + ",".join(GPU_BACKENDS))
    p.add_argument("--batch-sizes", default="64,256,1024")
    p.add_argument("--populations", default="1,8,64",
                   help="members per program for the jax-sweep backend (default: 1,8,64)")
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
    return p


def _populations(p: argparse.ArgumentParser, text: str) -> list[int]:
    """The --populations comma list (members per jax-sweep program)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        p.error(f"--populations must be a comma list of integers, got {text!r}")
    if min(values) <= 0:
        p.error("--populations must be positive")
    return values


def _backends(p: argparse.ArgumentParser, names: str | None, device: str) -> list[str]:
    """The --backends list, or every backend that runs on `device`; unknown names are a usage error."""
    backends = names.split(",") if names else list(GPU_BACKENDS if device == "gpu" else CPU_BACKENDS)
    unknown = [b for b in backends if backend_population(b)[0] not in BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return backends


def _batch_sizes(p: argparse.ArgumentParser, text: str) -> list[int]:
    """The --batch-sizes comma list as integers; anything else is a usage error."""
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        p.error(f"--batch-sizes must be a comma list of integers, got {text!r}")


def _at_most_one_epoch(steps: int, max_batch: int) -> int:
    """Caps the timed steps at one epoch of the biggest batch, so no repeat wraps around the data."""
    max_steps = MNIST_TRAIN // max_batch
    if steps > max_steps:
        print(f"note: --steps lowered to {max_steps}, one epoch at batch {max_batch}", file=sys.stderr)
        return max_steps
    return steps


def _print_rates(group: list[dict[str, Any]]) -> None:
    """Progress on stderr as each batch size finishes (a full run takes a while)."""
    for r in group:
        if "steps_per_s" in r:
            print(f"  {r['backend']:26s} {r['steps_per_s']:9.1f} steps/s "
                  f"(first step {r['first_step_s']:.2f} s)", file=sys.stderr)


def _write(result: dict[str, Any], json_path: str | None) -> None:
    """Prints the table; with --json, also writes the records, the table (.md) and a chart (.png)."""
    table = markdown(result)
    print(table)
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        path.with_suffix(".md").write_text(table)
        chart(result, path.with_suffix(".png"))


def _has_gpu() -> bool:
    """Whether JAX sees a GPU (the default --device)."""
    try:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


if __name__ == "__main__":
    sys.exit(main())
