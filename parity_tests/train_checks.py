"""Parity of what a training step does beyond its arithmetic: dropout on, latents, data order.

The checks in `checks.py` run both trainers with dropout off, so a port that
dropped a dropout layer, or trained one network without dropout, would pass
them. Here the JAX step draws its masks as production does and the reference
replays them (`parity_tests.masks`), so whole trajectories can be compared
with dropout on. What the frameworks draw differently (z, the data order)
is compared in distribution and by its invariants.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from scipy import stats

from gan_core.config import Config
from jax_gan.dropout import keep_mask, mask_tape
from jax_gan.models import Discriminator, make_models
from jax_gan.train_step import create_train_state, train_epoch
from parity_tests.checks import (
    CONFIG,
    Check,
    gradient_gap,
    jax_grads,
    jax_state_from_torch,
    jit_train_step,
    latents,
    precise,
    real_batches,
    torch_grads,
    torch_pair,
)
from parity_tests.masks import (
    MaskedDropout,
    MaskQueue,
    recording_step,
    replaying_step,
    torch_masks,
    torch_order,
)
from torch_reference import train_step as torch_step

KS_ALPHA = 1e-3  # KS tolerances: the statistic's critical value at this significance.


def masks_for(key: int, *shapes: tuple[int, ...], rate: float = CONFIG.dropout_rate) -> list[jax.Array]:
    """Keep masks drawn as production draws them (hash masks), one per shape."""
    keys = jax.random.split(jax.random.PRNGKey(key), len(shapes))
    return [keep_mask(k, shape, rate) for k, shape in zip(keys, shapes, strict=True)]


def _tree_max_diff(a, b) -> float:
    return float(max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max()
                     for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)))


# 11. The test-only reference dropout is torch's dropout.
@precise
def check_masked_dropout_is_torch_dropout() -> Check:
    """`MaskedDropout` given the mask `nn.Dropout` drew gives nn.Dropout's output, bit for bit."""
    worst = 0.0
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(64, 256, dtype=dtype, generator=torch.Generator().manual_seed(0))
        drop = torch.nn.Dropout(CONFIG.dropout_rate).train()
        torch.manual_seed(1)
        expected = drop(x)
        torch.manual_seed(1)  # The same draw again, on ones: the mask itself.
        mask = drop(torch.ones_like(x)) != 0
        ours = MaskedDropout(CONFIG.dropout_rate, MaskQueue([mask.numpy()])).train()(x)
        worst = max(worst, (ours - expected).abs().max().item())
    return Check("test-only MaskedDropout vs torch.nn.Dropout, same mask (max abs diff)", worst, 0.0,
                 "float32 and float64: the reference replays masks with torch's own arithmetic")


# 12. Training mode with the same masks: forward passes and gradients.
@precise
def check_forward_train(network: str) -> Check:
    """G images or D probabilities in training mode, both frameworks applying the same masks."""
    tstate = torch_pair()
    state = jax_state_from_torch(tstate)
    g, d = make_models(CONFIG)
    if network == "generator":
        x = latents(1, 64)[0]
        masks = masks_for(10, (64, 256), (64, 256))
        with mask_tape(masks) as tape:
            ours = np.asarray(g.apply({"params": state.params_g}, x, train=True))[..., 0]
        module, tx = tstate.g, torch.from_numpy(x)
    else:
        x = real_batches(1, 64)[0]
        masks = masks_for(11, (64, 256), (64, 256))
        with mask_tape(masks) as tape:
            ours = np.asarray(jax.nn.sigmoid(d.apply({"params": state.params_d}, x[..., None], train=True)))
        module, tx = tstate.d, torch.from_numpy(x)[:, None]
    module.train()
    with torch_masks([module], masks), torch.no_grad():
        theirs = module(tx).numpy()
    theirs = theirs[:, 0] if network == "generator" else theirs
    what = "G images" if network == "generator" else "D probabilities"
    if not tape.done():
        return Check(f"forward, dropout on, same masks: {what} (max abs diff)", math.inf, 1e-5,
                     f"the JAX {network} used {len(tape.masks)} of its 2 masks")
    return Check(f"forward, dropout on, same masks: {what} (max abs diff)",
                 float(np.abs(ours - theirs).max()), 1e-5)


@precise
def check_gradients_train() -> Check:
    """Largest |g_jax - g_torch| / ||g_torch|| over every parameter tensor, dropout on, same masks.

    The JAX losses draw 6 masks (G, D in G's loss, one D pass over [real; fake]);
    the reference's 8 (D(real) and D(fake) apart) are the same ones (`torch_order`).
    """
    name = "gradients of loss_G and loss_D, dropout on, same masks (max diff / norm)"
    tstate = torch_pair()
    state = jax_state_from_torch(tstate)
    real, z = real_batches(1, 64)[0], latents(1, 64)[0]
    masks = masks_for(12, *[(64, 256)] * 4, *[(128, 256)] * 2)
    with mask_tape(masks) as tape:
        ours = jax_grads(state, real, z, train=True)
    if not tape.done():
        return Check(name, math.inf, 1e-5, f"the JAX losses used {len(tape.masks)} of {len(masks)} masks")
    with torch_masks([tstate.g, tstate.d], torch_order(masks, 64)):
        theirs = torch_grads(tstate, real, z, train=True)
    return Check(name, gradient_gap(ours, theirs), 1e-5)


# 13. The production step's own masks: injecting them reproduces it; they look independent.
@precise
def check_mask_injection_is_production() -> Check:
    """One step: production, recording (masks observed) and replaying them give the same state."""
    state = create_train_state(CONFIG)
    real, z = real_batches(1, 64)[0], latents(1, 64)[0]
    produced, m0 = jit_train_step(state, real, config=CONFIG, z=z)
    recorded, m1, masks, _ = recording_step(state, real, CONFIG, z)
    replayed, m2 = replaying_step(state, real, z, masks, CONFIG)
    worst = max(_tree_max_diff((produced, m0), (recorded, m1)),
                _tree_max_diff((produced, m0), (replayed, m2)))
    return Check("dropout on: production step vs the same step replaying its masks (max abs diff)",
                 worst, 0.0, f"{len(masks)} masks a step: " + ", ".join(
                     "x".join(map(str, m.shape)) for m in masks))


@precise
def check_production_masks(steps: int = 3) -> Check:
    """Max z-score: each mask's drop rate, and the correlation of any two masks of a step
    (G's, D's in G's step, D's on real and on fake) or of consecutive steps.

    Layers sharing a key, or a step reusing the last one's, correlate at 1.
    """
    rate = CONFIG.dropout_rate
    state = create_train_state(CONFIG)
    reals = real_batches(steps, 64)
    per_step, worst = [], 0.0
    for real in reals:
        state, _, masks, _ = recording_step(state, real, CONFIG)
        ordered = [m.astype(np.float64).ravel() for m in torch_order(masks, 64)]
        if len(ordered) != 8:
            return Check("dropout on: production masks (max z-score)", math.inf, 5.0,
                         f"{len(ordered)} masks a step, not 8")
        per_step.append(ordered)
    for i, ordered in enumerate(per_step):
        pairs = [(a, b) for j, a in enumerate(ordered) for b in ordered[j + 1:]]
        if i:
            pairs += list(zip(per_step[i - 1], ordered, strict=True))
        for m in ordered:
            worst = max(worst, abs((1 - m.mean()) - rate) / math.sqrt(rate * (1 - rate) / m.size))
        for a, b in pairs:
            worst = max(worst, abs(np.corrcoef(a, b)[0, 1]) * math.sqrt(a.size))
    return Check("dropout on: production masks, drop rate and independence (max z-score)", worst, 5.0,
                 f"{steps} steps x 8 masks of 64x256: rates, pairs within a step and across steps")


# 15. The step's own z.
def step_latents(steps: int = 20, config: Config = CONFIG) -> tuple[np.ndarray, np.ndarray]:
    """(JAX, torch) z that each framework's step draws for itself, (steps, batch, latent_dim).

    JAX: G's input, seen by a Flax method interceptor in the jitted production
    step. Torch: G's input, seen by a forward pre-hook; the reference draws it
    with torch.randn.
    """
    state = create_train_state(config)
    tstate = torch_pair(config)
    seen: list[torch.Tensor] = []
    hook = tstate.g.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    ours = []
    try:
        for real in real_batches(steps, config.batch_size):
            state, _, _, zs = recording_step(state, real, config)
            ours.append(np.asarray(zs[0]))
            torch_step.train_step(tstate, torch.from_numpy(real)[:, None], config)
    finally:
        hook.remove()
    return np.stack(ours), torch.stack(seen).numpy()


def ks_critical(n: int, m: int | None = None, alpha: float = KS_ALPHA) -> float:
    """The Kolmogorov-Smirnov statistic's critical value (asymptotic), one or two samples."""
    c = math.sqrt(-math.log(alpha / 2) / 2)
    return c * math.sqrt(1 / n if m is None else (n + m) / (n * m))


def moment_zscores(x: np.ndarray) -> dict[str, float]:
    """z-scores of the sample mean, variance, skewness and excess kurtosis against N(0, 1)."""
    n = x.size
    x = x.astype(np.float64).ravel()
    return {"mean": x.mean() / math.sqrt(1 / n), "var": (x.var() - 1) / math.sqrt(2 / n),
            "skew": stats.skew(x) / math.sqrt(6 / n), "kurtosis": stats.kurtosis(x) / math.sqrt(24 / n)}


def independence_zscore(z: np.ndarray) -> float:
    """Max |corr| * sqrt(n) between consecutive steps' z and between any two latent dimensions."""
    flat = z.reshape(z.shape[0], -1)
    worst = max(abs(np.corrcoef(a, b)[0, 1]) * math.sqrt(a.size) for a, b in zip(flat[:-1], flat[1:],
                                                                                  strict=True))
    rows = z.reshape(-1, z.shape[-1])
    corr = np.corrcoef(rows, rowvar=False)
    off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    return float(max(worst, off.max() * math.sqrt(len(rows))))


@precise
def check_latents(steps: int = 20) -> list[Check]:
    """The z each step draws is N(0, 1), like the reference's torch.randn, fresh every step."""
    ours, theirs = step_latents(steps)
    n = ours.size
    ks_pair = stats.ks_2samp(ours.ravel(), theirs.ravel()).statistic
    ks_ours = stats.kstest(ours.ravel(), "norm").statistic
    ks_theirs = stats.kstest(theirs.ravel(), "norm").statistic
    moments = {f"{who} {name}": v for who, z in (("JAX", ours), ("torch", theirs))
               for name, v in moment_zscores(z).items()}
    worst_name = max(moments, key=lambda k: abs(moments[k]))
    return [
        Check("z: KS statistic, JAX step's z vs torch.randn's (two-sample)", float(ks_pair),
              ks_critical(n, theirs.size), f"{steps} steps x {ours.shape[1]} x {ours.shape[2]}: "
              f"{n:,} values each; tolerance: critical value at p = {KS_ALPHA:g}"),
        Check("z: KS statistic vs N(0, 1), JAX step (torch's in the note)", float(ks_ours),
              ks_critical(n), f"torch.randn's: {ks_theirs:.2g}"),
        Check("z: mean, variance, skewness, kurtosis vs N(0, 1) (max |z-score|, both)",
              float(max(abs(v) for v in moments.values())), 5.0, f"largest: {worst_name}"),
        Check("z: fresh each step, dimensions independent (max |corr| z-score)",
              max(independence_zscore(ours), independence_zscore(theirs)), 6.0,
              "consecutive steps, and every pair of the 100 latent dimensions, both frameworks"),
    ]


# 16. The data order.
ORDER_CONFIG = dataclasses.replace(CONFIG, latent_dim=4, hidden_dim=8)  # Cheap steps: the order is the point.
TAG = 2.0  # A real image carries TAG in its first pixel (fakes lie in [-1, 1]) ...
DIGITS = 3  # ... and its index in the next three, base 256, as digit / 256: small values, no overflow.


def tagged_images(n: int) -> np.ndarray:
    images = np.zeros((n, 28 * 28), np.float32)
    images[:, 0] = TAG
    for d in range(DIGITS):
        images[:, 1 + d] = (np.arange(n) >> (8 * d)) % 256 / 256
    return images.reshape(n, 28, 28)


def real_indices(pixels: np.ndarray) -> np.ndarray:
    """The indices of the real images among D's inputs, from their first 1 + DIGITS pixels."""
    x = np.asarray(pixels, np.float64).reshape(-1, 1 + DIGITS)
    digits = np.rint(x[x[:, 0] > TAG - 0.5, 1:] * 256).astype(np.int64)
    return (digits << (8 * np.arange(DIGITS))).sum(axis=1)


def jax_epoch_batches(n: int, epochs: int, config: Config = ORDER_CONFIG) -> list[list[np.ndarray]]:
    """The real examples D trains on at each step of `epochs` epochs of `jax_gan`'s `train_epoch`.

    Seen from inside the compiled epoch: a Flax interceptor on D sends each
    input's first pixels to the host (an ordered debug callback).
    """
    seen: list[np.ndarray] = []

    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, Discriminator) and context.method_name == "__call__":
            x = args[0]
            first = x.reshape(x.shape[0], -1)[:, :1 + DIGITS]
            jax.debug.callback(lambda v: seen.append(np.asarray(v)), first, ordered=True)
        return next_fun(*args, **kwargs)

    def epoch(state, images):  # train_epoch's own jit would reuse a trace made without the interceptor.
        with nn.intercept_methods(interceptor):
            return train_epoch.__wrapped__(state, images, None, config)

    run = jax.jit(epoch)
    state, images = create_train_state(config), jnp.asarray(tagged_images(n))
    out = []
    for _ in range(epochs):
        seen.clear()
        state = jax.block_until_ready(run(state, images)).state
        jax.effects_barrier()  # Every callback has run.
        out.append([b for b in map(real_indices, seen) if len(b)])
    return out


def torch_epoch_batches(n: int, epochs: int, config: Config = ORDER_CONFIG) -> list[list[np.ndarray]]:
    """The same for `torch_reference`'s `train_epoch`, seen by a forward pre-hook on D."""
    tstate = torch_pair(config)
    seen: list[np.ndarray] = []

    def hook(module, args):
        seen.append(args[0].reshape(len(args[0]), -1)[:, :1 + DIGITS].detach().numpy().copy())

    handle = tstate.d.register_forward_pre_hook(hook)
    images = torch.from_numpy(tagged_images(n))[:, None]
    out = []
    try:
        for _ in range(epochs):
            seen.clear()
            tstate = torch_step.train_epoch(tstate, images, None, config).state
            out.append([b for b in map(real_indices, seen) if len(b)])
    finally:
        handle.remove()
    return out


def order_violations(epochs: list[list[np.ndarray]], n: int, batch: int) -> list[str]:
    """What is wrong with these epochs' batches: each epoch must visit every example once, in
    `ceil(n / batch)` batches (the last, partial one kept), shuffled, in an order of its own."""
    problems = []
    per_epoch = -(-n // batch)
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    orders = []
    for e, batches in enumerate(epochs):
        if [len(b) for b in batches] != sizes:
            problems.append(f"epoch {e}: {len(batches)} batches (want {per_epoch}), sizes "
                            f"{sorted({len(b) for b in batches})}, last {len(batches[-1]) if batches else 0}")
        order = np.concatenate(batches) if batches else np.zeros(0, np.int64)
        if not np.array_equal(np.sort(order), np.arange(n)):
            problems.append(f"epoch {e}: not a permutation of the {n} examples")
        elif np.array_equal(order, np.arange(n)):
            problems.append(f"epoch {e}: not shuffled")
        if any(np.array_equal(order, other) for other in orders):
            problems.append(f"epoch {e}: the same order as an earlier epoch")
        orders.append(order)
    return problems


@precise
def check_data_order(framework: str, sizes: tuple[tuple[int, int], ...] = ((129, 3), (128, 1),
                                                                         (60_000, 1))) -> Check:
    """Each epoch of the trainer is a fresh permutation of the data in ceil(n / batch) batches.

    `sizes`: (examples, epochs) runs, each size one more compiled epoch in JAX.
    Three short epochs show each order is new, and end in a last batch of one;
    128 examples, a last batch of none; MNIST's size, its 938 steps (937 full
    batches and one of 32).
    """
    batch = ORDER_CONFIG.batch_size
    epochs_of = jax_epoch_batches if framework == "jax" else torch_epoch_batches
    problems, notes = [], []
    for n, epochs in sizes:
        seen = epochs_of(n, epochs)
        problems += [f"n={n:,}: {p}" for p in order_violations(seen, n, batch)]
        notes.append(f"{epochs} x {n:,} examples: {len(seen[0])} steps an epoch, last batch "
                     f"{len(seen[0][-1]) if seen[0] else 0}")
    note = "; ".join(problems) if problems else "; ".join(notes) + "; each a permutation, orders differ"
    name = "jax_gan" if framework == "jax" else "torch_reference"
    return Check(f"data order, {name} trainer: every epoch a new permutation, last batch kept "
                 "(violations)", len(problems), 0, note)


# 17. The sample grids an epoch records.
@precise
def check_epoch_samples(n: int = 200, sample_every: int = 2) -> Check:
    """Both `train_epoch`s record G(fixed_z) at the same steps, the first from the same weights.

    From the same start, with 4 steps an epoch and a grid every 2 steps: two
    grids each (steps 0 and 2, before their updates), and the first equal, as
    no update has happened yet (later ones differ: the data orders differ).
    """
    config = dataclasses.replace(CONFIG, sample_every=sample_every)
    tstate = torch_pair(config)
    state = jax_state_from_torch(tstate, config)
    fixed_z = latents(1, 25, seed=3)[0]
    images = real_batches(1, n)[0]
    ours = train_epoch(state, jnp.asarray(images), jnp.asarray(fixed_z), config)
    theirs = torch_step.train_epoch(tstate, torch.from_numpy(images)[:, None], torch.from_numpy(fixed_z),
                                    config)
    count, want = int(ours.num_samples), -(-config.steps_per_epoch(n) // sample_every)
    name = "epoch sample grids: count, and the first grid (max abs diff)"
    if count != want or int(theirs.num_samples) != want:
        return Check(name, math.inf, 1e-5,
                     f"grids recorded: JAX {count}, torch {int(theirs.num_samples)}, want {want}")
    grids = np.asarray(ours.samples)
    steps = {k: len(v) for k, v in [*ours.metrics.items(), *theirs.metrics.items()]}
    if (grids.shape[1:] != (25, 28, 28, 1) or len(grids) < want or not np.abs(grids[:want]).max(
            axis=(1, 2, 3, 4)).all() or set(steps.values()) != {config.steps_per_epoch(n)}):
        return Check(name, math.inf, 1e-5, f"JAX grids {grids.shape}, metrics per step: {steps}")
    first = np.asarray(ours.samples[0])[..., 0] - theirs.samples[0].numpy()[:, 0]
    return Check(name, float(np.abs(first).max()), 1e-5,
                 f"{want} grids in an epoch of {config.steps_per_epoch(n)} steps, one every {sample_every}, "
                 "in both")


# 18. The modules' own defaults.
@precise
def check_module_defaults() -> Check:
    """`Generator()` and `Discriminator()` built without arguments are the reference's, as its are.

    Production builds them from the config, so only a direct user sees these
    defaults: compared with the reference's constructor defaults and the config's.
    """
    import inspect

    from jax_gan.models import Generator
    from torch_reference import models as torch_models

    def defaults(cls) -> dict:
        return {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}

    theirs = {**defaults(torch_models.Generator), **defaults(torch_models.Discriminator)}
    want = {"init_scheme": CONFIG.init, "dropout_masks": CONFIG.dropout_masks, **theirs}
    wrong = [f"{cls.__name__}.{k}={v!r}" for cls in (Generator, Discriminator)
             for k, v in defaults(cls).items() if k in want and v != want[k]]
    wrong += [f"{cls.__name__}.__call__ train={p.default!r}" for cls in (Generator, Discriminator)
              for p in [inspect.signature(cls.__call__).parameters["train"]] if p.default is not True]
    return Check("module defaults: JAX vs the reference's constructors (mismatches)", len(wrong), 0,
                 "; ".join(wrong) or "sizes, rates, slope, init and masks; training mode by default, "
                 "as torch modules start")
