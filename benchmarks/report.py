"""What the timings mean, and how they are shown: derived numbers, table, chart.

Everything here works on the result dict that the CLI writes as JSON, so a
committed result can be re-rendered without re-measuring it.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.backends import backend_population
from benchmarks.roofline import train_step_flops
from benchmarks.worker import MNIST_TRAIN
from gan_core.config import Config

# The tutorial's recipe trains this many epochs: the projection says how long it would take.
TUTORIAL_EPOCHS = 200
# The backends every other one is compared with: the reference's own fast path, and the tutorial.
BASELINES = ("torch-eager", "torch-tutorial")


def summarize(records: list[dict[str, Any]], ceiling: dict[str, Any]) -> None:
    """Adds to each timed record what makes its rate comparable, in place.

    Achieved GFLOP/s and the fractions of the two matmul bounds (how far from
    the hardware), the tutorial recipe's projected time (what a user waits),
    and speed-ups over the baselines at the same batch size.
    """
    ceiling_gflops = max(ceiling["jax_gflops"], ceiling["torch_gflops"])
    by_batch: dict[int, dict[str, dict]] = {}
    for r in records:
        by_batch.setdefault(r["batch_size"], {})[r["backend"]] = r
    for batch, group in by_batch.items():
        flops = train_step_flops(Config(batch_size=batch))
        steps_recipe = TUTORIAL_EPOCHS * -(-MNIST_TRAIN // batch)
        for r in group.values():
            r["population"] = backend_population(r["backend"])[1]
            if "steps_per_s" not in r:
                continue
            # A jax-sweep step advances every member: count what all of them do.
            r["member_steps_per_s"] = r["steps_per_s"] * r["population"]
            r["images_per_s"] = r["member_steps_per_s"] * batch
            r["gflops"] = r["member_steps_per_s"] * flops / 1e9
            r["fraction_of_matmul_ceiling"] = r["gflops"] / ceiling_gflops
            step_bound = ceiling["step_gemms"].get(str(batch))
            if step_bound:
                r["fraction_of_step_gemms"] = r["gflops"] / max(step_bound.values())
            r["tutorial_recipe_projected_s"] = steps_recipe / r["steps_per_s"]
            for base in BASELINES:
                if "steps_per_s" in group.get(base, {}):
                    r[f"speedup_vs_{base}"] = r["steps_per_s"] / group[base]["steps_per_s"]
            if r["population"] > 1 and "steps_per_s" in group.get("jax-scan", {}):
                # Per member-step: 1.0 means a member costs what a single run does.
                r["member_steps_vs_jax-scan"] = r["member_steps_per_s"] / group["jax-scan"]["steps_per_s"]


def environment(device: str, threads: int, precision: str) -> dict[str, Any]:
    """Versions, processor and settings: what a reader needs to compare two results.

    Imports both frameworks: call `configure_frameworks` first.
    """
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
    """The CPU model: platform.processor() is often empty or just the architecture on Linux."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# --- The markdown table ------------------------------------------------------------------------

def markdown(result: dict[str, Any]) -> str:
    """The result as a few lines of context and one table row per record, failures included."""
    return "\n".join(_preamble(result) + ["", *_table_header(), *map(_table_row, result["records"])]) + "\n"


def _preamble(result: dict[str, Any]) -> list[str]:
    """Device and versions, the matmul bounds, and what was timed."""
    env, ceiling = result["environment"], result["ceiling"]
    step_bounds = "; ".join(f"batch {b} {v['jax_gflops']:.0f} / {v['torch_gflops']:.0f} GFLOP/s"
                            for b, v in ceiling.get("step_gemms", {}).items())
    epochs = sorted({f"{r['steps']} steps at batch {r['batch_size']}" for r in result["records"]
                     if r["backend"].startswith(("jax-scan", "jax-sweep")) and "steps" in r},
                    key=lambda t: int(t.split()[-1]))
    return [
        f"Device: {env['device']} ({env.get('gpu', env['processor'])}), {env['threads']} threads, "
        f"float32 matmul precision `{env['matmul_precision']}`; jax {env['jax']}, torch {env['torch']}.",
        f"Matmul ceiling (float32 {ceiling['n']}^3 GEMM): "
        f"JAX {ceiling['jax_gflops']:.0f}, torch {ceiling['torch_gflops']:.0f} GFLOP/s. "
        f"A train step's matmuls alone, back to back (JAX / torch): {step_bounds}.",
        f"Data: {result['data']}. Median of {result['args']['repeats']} repeats of "
        f"{result['args']['steps']} steps; jax-scan and jax-sweep time whole epochs "
        f"({', '.join(epochs)}), as training runs them; a jax-sweep@N step advances all N members.",
    ]


def _table_header() -> list[str]:
    """Column names and alignment: thirteen columns."""
    return [
        "| backend | batch | steps/s (min-max) | images/s | first step (s) | peak RSS (MB) | "
        "GFLOP/s | % of ceiling | % of step matmuls | vs torch-eager | vs torch-tutorial | "
        f"tutorial recipe ({TUTORIAL_EPOCHS} epochs) | member steps/s (vs jax-scan) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]


def _table_row(r: dict[str, Any]) -> str:
    """One record's row; a failed backend gets its reason and empty cells."""
    if "steps_per_s" not in r:
        return f"| {r['backend']} | {r['batch_size']} | failed: {r.get('error', '?')} |" + " |" * 11
    mem = r.get("peak_gpu_mb", r.get("peak_host_rss_mb", 0))
    return (
        f"| {r['backend']} | {r['batch_size']} | {r['steps_per_s']:.1f} "
        f"({r['steps_per_s_min']:.1f}-{r['steps_per_s_max']:.1f}) | {r['images_per_s']:,.0f} | "
        f"{r['first_step_s']:.2f} | {mem:,.0f} | {r['gflops']:.1f} | "
        f"{100 * r['fraction_of_matmul_ceiling']:.1f}% | {_percent(r, 'fraction_of_step_gemms')} | "
        f"{_ratio(r, 'speedup_vs_torch-eager')} | {_ratio(r, 'speedup_vs_torch-tutorial')} | "
        f"{_duration(r['tutorial_recipe_projected_s'])} | {r['member_steps_per_s']:,.0f} "
        f"({_ratio(r, 'member_steps_vs_jax-scan')}) |")


def _ratio(record: dict[str, Any], key: str) -> str:
    """A speed-up, or n/a when its baseline was not run (or failed)."""
    return f"{record[key]:.2f}x" if key in record else "n/a"


def _percent(record: dict[str, Any], key: str) -> str:
    """A fraction as a percentage, or n/a when it was not measured."""
    return f"{100 * record[key]:.1f}%" if key in record else "n/a"


def _duration(seconds: float) -> str:
    """Seconds in the unit a reader thinks in: s, min or h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- The chart ---------------------------------------------------------------------------------

def chart(result: dict[str, Any], path: Path) -> None:
    """Images/s per backend, grouped by batch size, on a log scale (the backends differ a lot)."""
    import matplotlib

    matplotlib.use("Agg")  # No display needed: it only writes a file.
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
