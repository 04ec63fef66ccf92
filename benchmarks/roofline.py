"""How much matmul work a train step does, and how fast the machine can do it.

A train step's throughput means little on its own: these bounds say how far
from the hardware it is. The FLOP count is matmuls only (the bulk of the work);
the ceilings are measured, not taken from a spec sheet.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

from benchmarks.worker import configure_frameworks
from gan_core.config import Config

Gemm = tuple[int, int, int]
GemmTimer = Callable[[list[Gemm], int], float]


def step_gemms(config: Config) -> list[Gemm]:
    """(M, K, N) of every matmul one train step needs, from the layer shapes.

    Per batch: G forward; D forward on the fake; D's input-gradients back to G;
    G's weight-gradients and the input-gradients of its upper two layers; then
    D forward on real and fake (2x the rows) with D's weight-gradients and the
    input-gradients of its upper two layers. Only what the math needs: torch
    also computes D's weight-gradients in G's step, which is left out.
    """
    b, h, z, x = config.batch_size, config.hidden_dim, config.latent_dim, config.image_dim
    g_layers, d_layers = [(z, h), (h, h), (h, x)], [(x, h), (h, h), (h, 1)]

    def forward(rows, layers):
        return [(rows, i, o) for i, o in layers]

    def input_grads(rows, layers):
        return [(rows, o, i) for i, o in layers]

    def weight_grads(rows, layers):
        return [(i, rows, o) for i, o in layers]

    g_step = (forward(b, g_layers) + forward(b, d_layers) + input_grads(b, d_layers)
              + weight_grads(b, g_layers) + input_grads(b, g_layers[1:]))
    d_step = forward(2 * b, d_layers) + weight_grads(2 * b, d_layers) + input_grads(2 * b, d_layers[1:])
    return g_step + d_step


def gemm_flops(shapes: list[Gemm]) -> int:
    """2*M*K*N summed over (M, K, N) matmuls."""
    return sum(2 * m * k * n for m, k, n in shapes)


def train_step_flops(config: Config) -> int:
    """Matmul FLOPs of one train step. Elementwise work (activations, dropout, Adam) is not counted."""
    return gemm_flops(step_gemms(config))


def matmul_ceiling(device: str, threads: int, precision: str, n: int = 2048,
                   batches: tuple[int, ...] = ()) -> dict[str, Any]:
    """Measured float32 GEMM throughput (GFLOP/s) of each framework, in a fresh process.

    Two bounds: one big n^3 GEMM (the machine's ceiling), and, per batch size,
    just the matmuls of one train step (`step_gemms`), back to back with nothing
    else: what a step would reach if everything but its matmuls were free.
    A fresh process, so the frameworks get the same settings as the workers.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_matmul_worker, (device, threads, precision, n, tuple(batches)))


def _matmul_worker(device: str, threads: int, precision: str, n: int,
                   batches: tuple[int, ...]) -> dict[str, Any]:
    """`matmul_ceiling`'s body, run in the spawned process."""
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


def _gemm_timers(device: str) -> tuple[GemmTimer, GemmTimer]:
    """Two functions timing a list of (M, K, N) matmuls in JAX and in torch, in GFLOP/s.

    Each runs the whole list once untimed (compile, allocation), then `reps`
    times, ending with a device sync so queued GPU work is counted.
    """
    import jax
    import torch

    def jax_gflops(shapes: list[Gemm], reps: int) -> float:
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

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def torch_gflops(shapes: list[Gemm], reps: int) -> float:
        pairs = [(torch.randn(m, k, device=dev), torch.randn(k, n, device=dev)) for m, k, n in shapes]
        _ = [a @ b for a, b in pairs]
        sync()
        t = time.perf_counter()
        for _ in range(reps):
            _ = [a @ b for a, b in pairs]
        sync()
        return reps * gemm_flops(shapes) / (time.perf_counter() - t) / 1e9

    return jax_gflops, torch_gflops
