"""The parity checks: each measures one difference between jax_gan and torch_reference.

A check returns `Check(name, measured, tolerance)`; the tests assert
`measured <= tolerance` and `python -m parity_tests.report` prints them all.
Everything runs in float32 on the CPU with JAX's matmul precision at "highest",
set for each check alone (`precise`), so importing this module changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import torch

from gan_core.config import DROPOUT_MASKS, Config
from gan_core.data import load_dataset
from jax_gan.convert import checkpoint_to_state, params_to_torch, state_to_checkpoint, torch_to_params
from jax_gan.models import init_params, make_models
from jax_gan.train_step import (
    bce_with_logits,
    create_train_state,
    discriminator_loss,
    generate,
    generator_loss,
    train_epoch,
    train_step,
)
from parity_tests.masks import recording_step, torch_masks, torch_order
from torch_reference import models as torch_models
from torch_reference import train_step as torch_step

jit_train_step = jax.jit(train_step, static_argnames=("config", "dropout"))

CONFIG = Config()
PARAM_COUNTS = {
    # Linear(100, 256) + Linear(256, 256) + Linear(256, 784), weights and biases.
    "generator": 100 * 256 + 256 + 256 * 256 + 256 + 256 * 784 + 784,
    # Linear(784, 256) + Linear(256, 256) + Linear(256, 1).
    "discriminator": 784 * 256 + 256 + 256 * 256 + 256 + 256 * 1 + 1,
}


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    measured: float
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.measured <= self.tolerance)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread within the block: the checks' matrices are small, and on a busy
    two-core machine a second OpenMP thread mostly spin-waits (a float64 reference step
    ran 8x slower with two threads than with one; the tutorial's recipe, 5x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def precise(check):
    """Run `check` with JAX's float32 matmuls at full precision, as torch's are on a CPU,
    and torch on one thread (`one_torch_thread`)."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with one_torch_thread(), jax.default_matmul_precision("highest"):
            return check(*args, **kwargs)

    return wrapper


def torch_pair(config: Config = CONFIG, seed: int = 0) -> torch_step.TrainState:
    """Reference models and optimizers from a torch seed."""
    return torch_step.create_train_state(config, "cpu", seed=seed)


def jax_state_from_torch(tstate: torch_step.TrainState, config: Config = CONFIG, dtype=np.float32):
    """A jax_gan TrainState holding the reference's exact weights and Adam state."""
    payload = {"model_G_state_dict": tstate.g.state_dict(),
               "model_D_state_dict": tstate.d.state_dict(),
               "optimizer_G_state_dict": tstate.opt_g.state_dict(),
               "optimizer_D_state_dict": tstate.opt_d.state_dict(), "epoch": 0}
    return checkpoint_to_state(payload, config, dtype)


def max_param_diff(state, tstate: torch_step.TrainState) -> float:
    diffs = []
    for params, model in ((state.params_g, tstate.g), (state.params_d, tstate.d)):
        theirs = params_to_torch(params)
        for name, tensor in model.state_dict().items():
            diffs.append(np.abs(theirs[name] - tensor.numpy()).max())
    return float(max(diffs))


@functools.cache
def sample_images() -> np.ndarray:
    """The offline MNIST sample, read once: parsing its CSV takes a second or two."""
    images = load_dataset("mnist-sample").images
    images.flags.writeable = False
    return images


def real_batches(num: int, batch: int, seed: int = 0) -> np.ndarray:
    """Real MNIST digits (the offline sample), shuffled: (num, batch, 28, 28) in [-1, 1]."""
    images = sample_images()
    order = np.random.default_rng(seed).permutation(len(images))
    reps = -(-num * batch // len(images))
    order = np.concatenate([order] * reps)[: num * batch]
    return images[order].reshape(num, batch, 28, 28)


def latents(num: int, batch: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num, batch, 100)).astype(np.float32)


# 1. Shapes and parameter counts.
@precise
def check_shapes() -> Check:
    mismatches = 0
    tg, td = torch_models.make_models(CONFIG)
    state = create_train_state(CONFIG)
    g, d = make_models(CONFIG)
    for n in (1, 7, 64):
        z = np.zeros((n, 100), np.float32)
        jimg = g.apply({"params": state.params_g}, z, train=False)
        timg = tg(torch.from_numpy(z))
        mismatches += jimg.shape != (n, 28, 28, 1)
        mismatches += tuple(timg.shape) != (n, 1, 28, 28)
        mismatches += d.apply({"params": state.params_d}, jimg, train=False).shape != (n, 1)
        mismatches += tuple(td(timg).shape) != (n, 1)
    counts = {
        "generator": (sum(p.size for p in jax.tree.leaves(state.params_g)),
                      sum(p.numel() for p in tg.parameters())),
        "discriminator": (sum(p.size for p in jax.tree.leaves(state.params_d)),
                          sum(p.numel() for p in td.parameters())),
    }
    for name, (j, t) in counts.items():
        mismatches += j != t or j != PARAM_COUNTS[name]
    return Check("shapes and parameter counts (mismatches)", mismatches, 0,
                 f"G {PARAM_COUNTS['generator']:,} and D {PARAM_COUNTS['discriminator']:,} parameters")


# 2. Initialization: same per-layer bounds and moments as torch.nn.Linear.
@precise
def check_init(seeds: int = 4) -> Check:
    """Largest z-score of a layer's weight std against the uniform's, in either framework.

    Weights of a layer with fan-in f are U(-1/sqrt(f), 1/sqrt(f)): std 1/sqrt(3f).
    The sample std of n such values has relative standard error sqrt(0.8/n)/2.
    Also fails if any weight or bias lies outside its bound.
    """
    worst = 0.0
    for seed in range(seeds):
        params_g, params_d = init_params(CONFIG, jax.random.PRNGKey(seed))
        tstate = torch_pair(seed=seed)
        tg, td = tstate.g, tstate.d
        sets = [params_to_torch(params_g), params_to_torch(params_d),
                {k: v.numpy() for k, v in tg.state_dict().items()},
                {k: v.numpy() for k, v in td.state_dict().items()}]
        for layers in sets:
            for name, w in layers.items():
                fan_in = layers[name.replace("bias", "weight")].shape[1]
                bound = 1 / math.sqrt(fan_in)
                if np.abs(w).max() > bound:
                    return Check("initialization (max z-score of layer std)", math.inf, 5.0)
                if name.endswith("weight"):
                    se = math.sqrt(0.8 / w.size) / 2
                    worst = max(worst, abs(w.std() / (bound / math.sqrt(3)) - 1) / se)
    return Check("initialization (max z-score of layer std)", worst, 5.0,
                 "torch-style U(+-1/sqrt(fan_in)) in both; 4 seeds x 6 weight matrices x 2 frameworks")


# 3. Forward pass, dropout off, same weights.
@precise
def check_forward_generator() -> Check:
    tstate = torch_pair()
    state = jax_state_from_torch(tstate)
    z = latents(1, 64)[0]
    jimg = np.asarray(generate(state.params_g, z, CONFIG))[..., 0]
    timg = torch_step.generate(tstate.g, torch.from_numpy(z)).numpy()[:, 0]
    return Check("forward: G images (max abs diff)", float(np.abs(jimg - timg).max()), 1e-5)


@precise
def check_forward_discriminator() -> Check:
    tstate = torch_pair()
    state = jax_state_from_torch(tstate)
    x = real_batches(1, 64)[0]
    _, d = make_models(CONFIG)
    jprob = np.asarray(jax.nn.sigmoid(d.apply({"params": state.params_d}, x[..., None], train=False)))
    tstate.d.eval()
    with torch.no_grad():
        tprob = tstate.d(torch.from_numpy(x)[:, None]).numpy()
    return Check("forward: D probabilities (max abs diff)", float(np.abs(jprob - tprob).max()), 1e-5)


# 4. Loss.
@precise
def check_loss() -> Check:
    logits = np.random.default_rng(0).uniform(-8, 8, (1000, 1)).astype(np.float32)
    worst = 0.0
    for target in (0.0, 1.0):
        jl = float(bce_with_logits(jnp.asarray(logits), target))
        probs = torch.sigmoid(torch.from_numpy(logits))
        tl = float(torch.nn.BCELoss()(probs, torch.full_like(probs, target)))
        worst = max(worst, abs(jl - tl) / abs(tl))
    return Check("BCE loss, 1,000 logits in [-8, 8] (max rel diff)", worst, 1e-6)


def saturated_losses(logit: float = 200.0) -> tuple[float, float]:
    """(torch, jax) loss of a confident wrong answer: sigmoid(200) = 1 with label 0.

    BCELoss clamps log(1 - 1) = -inf to -100, so torch reports 100; the logit
    form reports the true value, 200. Neither is used in training (losses stay
    near 1), but the JAX form keeps gradients alive where torch's vanish.
    """
    probs = torch.sigmoid(torch.tensor([[logit]]))
    torch_loss = float(torch.nn.BCELoss()(probs, torch.zeros_like(probs)))
    jax_loss = float(bce_with_logits(jnp.array([[logit]]), 0.0))
    return torch_loss, jax_loss


@precise
def check_saturated_bce() -> Check:
    torch_loss, jax_loss = saturated_losses()
    return Check("saturated BCE (logit 200, label 0): |torch - 100|", abs(torch_loss - 100), 1e-6,
                 f"torch clamps at {torch_loss:g}; the logit form gives {jax_loss:g}")


# 5. Gradients of both losses.
def jax_grads(state, real, z, train: bool = False):
    """jax_gan's G and D gradients for one batch, through its own `generator_loss` and
    `discriminator_loss`; `train` keeps dropout on (within a `mask_tape`: train_checks).

    As in the step: D's gradient from the fakes G's loss made, G held fixed.
    """
    g, d = make_models(CONFIG)
    real = jnp.asarray(real)[..., None]

    def generator(params_g):
        return lambda z: g.apply({"params": params_g}, z, train=train)

    def discriminator(params_d):
        return lambda x: d.apply({"params": params_d}, x, train=train)

    grads_g, fake = jax.grad(lambda p: generator_loss(generator(p), discriminator(state.params_d), z),
                             has_aux=True)(state.params_g)
    grads_d, _ = jax.grad(lambda p: discriminator_loss(discriminator(p), real, fake),
                          has_aux=True)(state.params_d)
    return params_to_torch(grads_g), params_to_torch(grads_d)


def torch_grads(tstate, real, z, train: bool = False):
    """The reference's G and D gradients for one batch, through its `generator_loss` and
    `discriminator_loss`; `train` keeps dropout on (within `torch_masks`: train_checks)."""
    g, d = tstate.g, tstate.d
    g.train(train)
    d.train(train)
    g.zero_grad()
    d.zero_grad()
    loss_g, fake = torch_step.generator_loss(g, d, torch.from_numpy(z))
    loss_g.backward()
    grads_g = {k: p.grad.numpy().copy() for k, p in g.named_parameters()}
    d.zero_grad()
    loss_d, _ = torch_step.discriminator_loss(d, torch.from_numpy(real)[:, None], fake.detach())
    loss_d.backward()
    grads_d = {k: p.grad.numpy().copy() for k, p in d.named_parameters()}
    return grads_g, grads_d


def gradient_gap(ours, theirs) -> float:
    """Largest |g_jax - g_torch| / ||g_torch|| over every parameter tensor of both losses."""
    return float(max(np.abs(jg[name] - tg[name]).max() / np.linalg.norm(tg[name])
                     for jg, tg in zip(ours, theirs, strict=True) for name in tg))


@precise
def check_gradients() -> Check:
    """Largest |g_jax - g_torch| / ||g_torch|| over every parameter tensor of G's and D's loss."""
    tstate = torch_pair()
    state = jax_state_from_torch(tstate)
    real, z = real_batches(1, 64)[0], latents(1, 64)[0]
    worst = gradient_gap(jax_grads(state, real, z), torch_grads(tstate, real, z))
    return Check("gradients of loss_G and loss_D (max diff / norm)", worst, 1e-5)


# 6. Optimizer: one step, then whole trajectories (dropout off here, on in train_checks).
METRICS = ("loss_g", "loss_d", "d_real", "d_fake", "d_acc")
TRAJECTORY_STEPS = 100
MARKS = (1, 10, 20, 50, 100)  # Steps after which the parameters are compared.


def run_both(steps: int, config: Config = CONFIG, seed: int = 0, float64: bool = False,
             dropout: bool = False) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Both trainers for `steps` steps from the same weights on the same real batches and z.

    `dropout=False` runs both steps with dropout off; `dropout=True` runs the
    production step, which draws its own masks, and the reference replays them
    (`parity_tests.masks`). `float64=True` runs both in double precision (torch
    .double(), jax x64), where rounding no longer hides any difference in the
    algorithm itself. Returns (jax metrics, torch metrics, {step: max param diff}
    after each of MARKS and the last step); metrics are (steps, 5) arrays of METRICS.
    """
    dtype = np.float64 if float64 else np.float32
    batch = config.batch_size
    with jax.enable_x64(float64):
        tstate = torch_pair(config, seed)
        if float64:
            tstate.g, tstate.d = tstate.g.double(), tstate.d.double()
            tstate.opt_g = torch_step.make_optimizer(tstate.g, config)
            tstate.opt_d = torch_step.make_optimizer(tstate.d, config)
        state = jax_state_from_torch(tstate, config, dtype)
        reals = real_batches(steps, batch, seed).astype(dtype)
        zs = latents(steps, batch, seed + 1).astype(dtype)
        jm, tm, drift = [], [], {}
        for k, (real, z) in enumerate(zip(reals, zs, strict=True), 1):
            treal, tz = torch.from_numpy(real)[:, None], torch.from_numpy(z)
            if dropout:
                state, m, masks, _ = recording_step(state, real, config, z)
                with torch_masks([tstate.g, tstate.d], torch_order(masks, batch)):
                    tstate, t = torch_step.train_step(tstate, treal, config, tz, dropout=True)
            else:
                state, m = jit_train_step(state, real, config=config, z=z, dropout=False)
                tstate, t = torch_step.train_step(tstate, treal, config, tz, dropout=False)
            jm.append([float(m[name]) for name in METRICS])
            tm.append([float(t[name]) for name in METRICS])
            if k in MARKS or k == steps:
                drift[k] = max_param_diff(state, tstate)
            if int(state.step) != tstate.step:  # Both count steps (z and masks are keyed by it).
                drift[steps] = math.inf
                break
    return np.array(jm), np.array(tm), drift


@functools.cache
def trajectory(dropout: bool, float64: bool) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """`run_both` for TRAJECTORY_STEPS steps, computed once a process: every step count's
    checks read their prefix of it (the first k batches and z do not depend on the length)."""
    return precise(run_both)(TRAJECTORY_STEPS, float64=float64, dropout=dropout)


@precise
def check_one_adam_step() -> Check:
    """Adam's first update is lr * g / (|g| + eps), about lr * sign(g): for the few weights
    whose gradient is near eps, float32 rounding in g moves it by a fraction of lr (2e-4)."""
    _, _, drift = run_both(1)
    return Check("one train step: parameters (max abs diff)", float(drift[1]), 1e-5,
                 "5% of one Adam step (lr 2e-4)")


@precise
def check_trajectory(steps: int = 100, float64: bool = True, dropout: bool = False) -> tuple[Check, Check]:
    """Both trainers for `steps` steps from the same start on the same batches (and, with
    `dropout`, the same masks): the first `steps` of `trajectory(dropout, float64)`.

    In float64 the two agree to ~1e-15: the algorithms are the same. In float32
    they start ~1e-6 apart (different matmul summation orders) and the gap grows
    about tenfold every 20 steps: Adam normalizes each gradient element, so a
    weight whose gradient is mostly rounding noise, or a ReLU whose input sits at
    0, takes a different step. That is chaos in GAN training, not a bug, so the
    float32 check bounds the growth: over 20 steps losses within 1e-4 and weights
    within 1e-3 (5 Adam steps of lr 2e-4); over 100 steps both within 1e-2.

    Dropout off compares the losses (float64: within 1e-4). Dropout on compares
    D's mean outputs on real and fake batches too, and in float64 its accuracy
    (in float32 a logit at 0 may flip a count), float64 within 1e-12.
    """
    if steps not in MARKS or steps > TRAJECTORY_STEPS:
        raise ValueError(f"trajectories are compared after {MARKS} steps, not {steps}")
    jm, tm, drift = trajectory(dropout, float64)
    cols = slice(0, 2) if not dropout else slice(None) if float64 else slice(0, 4)
    jm, tm = jm[:steps, cols], tm[:steps, cols]
    rel = np.abs(jm - tm).max(axis=1) / np.abs(tm).max(axis=1)
    marks = [m for m in MARKS if m <= min(steps, len(rel))]
    what = "loss and D-metric rel diff" if dropout else "loss rel diff"
    note = ("max param diff after " + "/".join(map(str, marks)) + " steps: "
            + "/".join(f"{drift[i]:.1e}" for i in marks)
            + f"; {what}: " + "/".join(f"{rel[i - 1]:.1e}" for i in marks))
    if float64:
        tol_loss = tol_params = 1e-12 if dropout else 1e-4
    elif steps <= 20:
        tol_loss, tol_params = 1e-4, 1e-3
    else:
        tol_loss = tol_params = 1e-2
    precision = "float64" if float64 else "float32"
    prefix = f"{steps} train steps, {'dropout on, ' if dropout else ''}{precision}"
    measured = "per-step losses and D metrics" if dropout else "per-step losses"
    return (Check(f"{prefix}: {measured} (max rel diff)", float(rel.max()), tol_loss, note),
            Check(f"{prefix}: final parameters (max abs diff)",
                  float(drift[steps] if len(rel) == steps else math.inf), tol_params))


# 7. Dropout.
def dropout_stats(n: int = 400_000, rate: float = 0.1) -> dict[str, tuple[float, float]]:
    """(fraction dropped, survivor scale) in training mode: JAX's two mask schemes and torch."""
    from jax_gan.dropout import Dropout

    x = np.ones((n,), np.float32)
    ys = {f"jax-{masks}": np.asarray(Dropout(rate, masks).apply(
        {}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(0)})) for masks in DROPOUT_MASKS}
    torch.manual_seed(0)
    ys["torch"] = torch.nn.Dropout(rate).train()(torch.from_numpy(x)).numpy()
    return {name: (float((y == 0).mean()), float(y[y != 0].mean())) for name, y in ys.items()}


@precise
def check_dropout(rate: float = 0.1, n: int = 400_000) -> Check:
    """Largest z-score of the dropped fraction against `rate`, plus scale errors (must be 0)."""
    se = math.sqrt(rate * (1 - rate) / n)
    worst = 0.0
    for frac, scale in dropout_stats(n, rate).values():
        worst = max(worst, abs(frac - rate) / se)
        if abs(scale - 1 / (1 - rate)) > 1e-6:
            return Check("dropout in training mode (z-score of drop rate)", math.inf, 5.0)
    return Check("dropout in training mode (z-score of drop rate)", worst, 5.0,
                 f"{n:,} activations, survivors scaled by 1/0.9 in all three")


@precise
def check_dropout_eval() -> Check:
    from jax_gan.dropout import Dropout

    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    jy = np.asarray(Dropout(0.1).apply({}, x, deterministic=True))
    ty = torch.nn.Dropout(0.1).eval()(torch.from_numpy(x)).numpy()
    return Check("dropout in eval mode is the identity (max abs diff)",
                 float(max(np.abs(jy - x).max(), np.abs(ty - x).max())), 0.0)


# 10. Checkpoint round trip.
@precise
def check_checkpoint_round_trip() -> Check:
    """torch checkpoint -> JAX state -> torch checkpoint: the same generator outputs, exactly."""
    tstate = torch_pair(seed=3)
    reals, zs = real_batches(3, 64), latents(3, 64)
    for real, z in zip(reals, zs, strict=True):  # Non-trivial Adam state.
        torch_step.train_step(tstate, torch.from_numpy(real)[:, None], CONFIG, torch.from_numpy(z))
    state = jax_state_from_torch(tstate)
    back = state_to_checkpoint(state, CONFIG, epoch=0)
    g2, _ = torch_models.make_models(CONFIG)
    g2.load_state_dict(back["model_G_state_dict"])
    z = torch.from_numpy(latents(1, 64, seed=7)[0])
    diff = (torch_step.generate(tstate.g, z) - torch_step.generate(g2, z)).abs().max().item()
    opt_diff = max((a["exp_avg_sq"] - b["exp_avg_sq"]).abs().max().item() for a, b in zip(
        tstate.opt_g.state_dict()["state"].values(), back["optimizer_G_state_dict"]["state"].values(),
        strict=True))
    return Check("checkpoint torch -> JAX -> torch: G outputs and Adam state (max abs diff)",
                 max(diff, opt_diff), 0.0)


@precise
def check_weights_round_trip() -> Check:
    sd = {k: v.numpy() for k, v in torch_pair().g.state_dict().items()}
    back = params_to_torch(torch_to_params(sd))
    return Check("state_dict -> params -> state_dict (max abs diff)",
                 float(max(np.abs(back[k] - sd[k]).max() for k in sd)), 0.0)


# 8. Data: the torchvision path and the shared data layer give identical arrays.
@precise
def check_data(data_dir) -> Check:
    """Same MNIST files read by torchvision (ToTensor + Normalize) and by gan_core.data."""
    import torchvision
    from torchvision import transforms

    worst = 0.0
    for seed_norm in (False, True):
        ours = load_dataset("mnist", data_dir, tutorial_normalization=seed_norm, allow_download=False).images
        mean, std = (0.0, 1.0) if seed_norm else (0.5, 0.5)
        tv = torchvision.datasets.MNIST(str(data_dir), train=True, transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(mean, std)]))
        theirs = np.stack([tv[i][0].numpy()[0] for i in range(len(tv))])
        worst = max(worst, float(np.abs(ours - theirs).max()))
        low, high = (0.0, 1.0) if seed_norm else (-1.0, 1.0)
        if ours.min() < low or ours.max() > high:
            return Check("data: torchvision vs gan_core.data (max abs diff)", math.inf, 0.0)
    return Check("data: torchvision vs gan_core.data (max abs diff)", worst, 0.0,
                 "both normalizations: [-1, 1] and the tutorial's [0, 1]")


# 9. Behaviour: independent inits, real training, compared in distribution.
def train_jax(seed: int, steps: int, config: Config = CONFIG) -> dict[str, np.ndarray]:
    config = dataclasses.replace(config, seed=seed)
    images = jnp.asarray(sample_images())
    per_epoch = config.steps_per_epoch(len(images))
    state, out = create_train_state(config), []
    while int(state.step) < steps:
        stop = min(per_epoch, steps - int(state.step))
        state, metrics = train_epoch(state, images, None, config=config, start=0, stop=stop)[:2]
        out.append(jax.device_get(metrics))
    return {k: np.concatenate([m[k] for m in out]) for k in out[0]}


def train_torch(seed: int, steps: int, config: Config = CONFIG) -> dict[str, np.ndarray]:
    config = dataclasses.replace(config, seed=seed)
    images = torch.from_numpy(sample_images().copy())[:, None]
    tstate = torch_pair(config, seed)
    per_epoch = config.steps_per_epoch(len(images))
    out = []
    while tstate.step < steps:
        stop = min(per_epoch, steps - tstate.step)
        tstate, metrics = torch_step.train_epoch(tstate, images, None, config, start=0, stop=stop)[:2]
        out.append(metrics)
    return {k: torch.cat([m[k] for m in out]).numpy() for k in out[0]}


@precise
def check_behaviour(seeds: int = 4, steps: int = 400, last: int = 100) -> list[Check]:
    """Per metric: |mean over seeds (JAX) - mean over seeds (torch)| / seed-to-seed std.

    Each seed contributes the mean of its last `last` steps. The spread is the
    pooled std of those per-seed means; a gap under 3 spreads is "the same
    behaviour" at this budget.
    """
    stats = {"jax": [], "torch": []}
    for seed in range(seeds):
        stats["jax"].append({k: v[-last:].mean() for k, v in train_jax(100 + seed, steps).items()})
        stats["torch"].append({k: v[-last:].mean() for k, v in train_torch(200 + seed, steps).items()})
    checks = []
    for metric in ("loss_g", "loss_d", "d_acc"):
        j = np.array([s[metric] for s in stats["jax"]])
        t = np.array([s[metric] for s in stats["torch"]])
        spread = math.sqrt((j.var(ddof=1) + t.var(ddof=1)) / 2)
        gap = abs(j.mean() - t.mean()) / max(spread, 1e-3)
        checks.append(Check(f"behaviour: {metric} over steps {steps - last}-{steps} (gap / spread)",
                            float(gap), 3.0,
                            f"JAX {j.mean():.3f}+-{j.std(ddof=1):.3f}, "
                            f"torch {t.mean():.3f}+-{t.std(ddof=1):.3f}"))
    return checks
