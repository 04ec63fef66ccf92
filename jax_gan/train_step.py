"""The pure training step and the compiled epoch.

Everything here is a function of pytrees: no hidden state, explicit keys.
One epoch is one XLA program (a `lax.scan` over the batches), so the host only
touches the device to log and to save.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from gan_core.config import Config
from gan_core.epoch import EpochResult
from jax_gan.models import init_params, make_models


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: train steps done.
    params_g: Any
    params_d: Any
    opt_state_g: Any
    opt_state_d: Any
    key: jax.Array  # Raw uint32 key. Step k draws from fold_in(key, k): resumable anywhere.


def make_optimizer(config: Config, lr: Any = None, b1: Any = None) -> optax.GradientTransformation:
    """torch.optim.Adam's defaults; optax uses the same update and bias correction.

    `lr` and `b1` override the config's with arrays, which may be traced: a
    sweep gives each member its own, and the optimizer state keeps plain
    `optax.adam`'s layout, so a member's checkpoint is an ordinary run's.
    """
    return optax.adam(config.lr if lr is None else lr, b1=config.b1 if b1 is None else b1,
                      b2=config.b2, eps=config.eps)


def create_train_state(config: Config, seed: int | None = None) -> TrainState:
    key = jax.random.PRNGKey(config.seed if seed is None else seed)
    init_key, train_key = jax.random.split(key)
    params_g, params_d = init_params(config, init_key)
    tx = make_optimizer(config)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params_g=params_g,
        params_d=params_d,
        opt_state_g=tx.init(params_g),
        opt_state_d=tx.init(params_d),
        key=train_key,
    )


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """Mean BCE of sigmoid(logits) against a constant label: the tutorial's BCELoss."""
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def step_keys(state: TrainState) -> tuple[jax.Array, ...]:
    """z, G dropout, D dropout in G's step, D dropout in D's step."""
    return tuple(jax.random.split(jax.random.fold_in(state.key, state.step), 4))


def generator_loss(generator: Callable, discriminator: Callable, z: jax.Array) -> tuple[jax.Array, tuple]:
    """G's loss: D should call G(z) real. Returns (loss, fake)."""
    fake = generator(z)
    return bce_with_logits(discriminator(fake), 1.0), fake


def discriminator_loss(discriminator: Callable, real: jax.Array,
                       fake: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """D's loss: real called real and fake called fake, averaged. Returns (loss, (real, fake) logits).

    One D pass over [real; fake]: per-example layers make it two passes' worth.
    """
    n = real.shape[0]
    logits = discriminator(jnp.concatenate([real, fake]))
    real_logits, fake_logits = logits[:n], logits[n:]
    return (bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0)) / 2, (real_logits,
                                                                                          fake_logits)


def train_step(state: TrainState, real: jax.Array, config: Config, z: jax.Array | None = None,
               dropout: bool = True, tx: optax.GradientTransformation | None = None
               ) -> tuple[TrainState, dict]:
    """One G update then one D update on `real` (N, H, W[, 1]); returns (state, metrics).

    Pure: compile it where it is called, with `config` and `dropout` static
    (`jax.jit(train_step, static_argnames=("config", "dropout"))`). `z`
    overrides the latent batch and `dropout=False` turns dropout off; the
    parity tests use both to compare with the reference step by step. `tx`
    replaces the config's optimizer (a sweep's per-member Adam).
    """
    g, d = make_models(config)
    tx = make_optimizer(config) if tx is None else tx
    n = real.shape[0]
    real = real.reshape(n, config.image_size, config.image_size, 1)
    z_key, g_drop, d_drop_g, d_drop_d = step_keys(state)
    if z is None:
        z = jax.random.normal(z_key, (n, config.latent_dim), real.dtype)

    def generator(params_g):
        return lambda z: g.apply({"params": params_g}, z, train=dropout, rngs={"dropout": g_drop})

    def discriminator(params_d, key):
        return lambda x: d.apply({"params": params_d}, x, train=dropout, rngs={"dropout": key})

    # G step: D's parameters held fixed.
    (loss_g, fake), grads_g = jax.value_and_grad(
        lambda p: generator_loss(generator(p), discriminator(state.params_d, d_drop_g), z),
        has_aux=True)(state.params_g)

    # D step on the fakes G made before its update, carrying no gradient to G. G's
    # step does not touch D, so both gradients come from the pre-step parameters
    # and XLA is free to compute them side by side.
    (loss_d, (real_logits, fake_logits)), grads_d = jax.value_and_grad(
        lambda p: discriminator_loss(discriminator(p, d_drop_d), real, jax.lax.stop_gradient(fake)),
        has_aux=True)(state.params_d)

    updates_g, opt_state_g = tx.update(grads_g, state.opt_state_g, state.params_g)
    updates_d, opt_state_d = tx.update(grads_d, state.opt_state_d, state.params_d)
    new_state = state.replace(
        step=state.step + 1,
        params_g=optax.apply_updates(state.params_g, updates_g),
        params_d=optax.apply_updates(state.params_d, updates_d),
        opt_state_g=opt_state_g,
        opt_state_d=opt_state_d,
    )
    metrics = {
        "loss_g": loss_g,
        "loss_d": loss_d,
        "d_real": jax.nn.sigmoid(real_logits).mean(),
        "d_fake": jax.nn.sigmoid(fake_logits).mean(),
        # D's accuracy: real called real and fake called fake, at threshold 0.5.
        "d_acc": ((real_logits > 0).mean() + (fake_logits < 0).mean()) / 2,
    }
    return new_state, metrics


@functools.partial(jax.jit, static_argnames=("config",))
def generate(params_g: Any, z: jax.Array, config: Config) -> jax.Array:
    """G(z) with dropout off: (N, H, W, 1) in [-1, 1]."""
    g, _ = make_models(config)
    return g.apply({"params": params_g}, z, train=False)


def epoch_permutation(state: TrainState, epoch: jax.Array, num_examples: int) -> jax.Array:
    """The shuffled example order of an epoch: a pure function of the key and epoch.

    One stable sort of random 32-bit keys (ties, rare, keep index order):
    cheaper than `jax.random.permutation`'s multi-round shuffle.
    """
    perm_key = jax.random.fold_in(jax.random.fold_in(state.key, 0x7FFFFFFF), epoch)
    return jnp.argsort(jax.random.bits(perm_key, (num_examples,), jnp.uint32), stable=True)


@functools.partial(jax.jit, static_argnames=("config", "start", "stop", "step"), donate_argnames=("state",))
def train_epoch(state: TrainState, images: jax.Array, fixed_z: jax.Array | None, config: Config,
                start: int = 0, stop: int | None = None, step: Callable = train_step) -> EpochResult:
    """Steps `start..stop` of the epoch that `state.step` is in, as one program.

    The full batches run under `lax.scan`; the last, partial batch (kept, as the
    tutorial's DataLoader kept it: 938 steps per MNIST epoch) is one more step
    of its own static shape. When `fixed_z` is given, G(fixed_z) is recorded at
    every step divisible by `config.sample_every`, before that step's update;
    without it, `samples` is empty. `params_finite` says whether both networks'
    weights are still finite at the end. `state` is donated: use the returned one.

    `step(state, real, config) -> (state, metrics)` is the update scanned over
    the batches: `train_step`, or a sweep's guarded step over a state that
    extends `TrainState`.
    """
    n, batch = images.shape[0], config.batch_size
    full, remainder = divmod(n, batch)
    per_epoch = full + (remainder > 0)
    stop = per_epoch if stop is None else stop
    epoch = state.step // per_epoch
    order = epoch_permutation(state, epoch, n)

    slots = (stop - start) // config.sample_every + 1 if fixed_z is not None else 0
    num_z = 0 if fixed_z is None else fixed_z.shape[0]
    grids = (jnp.zeros((slots, num_z, config.image_size, config.image_size, 1), images.dtype),
             jnp.zeros((), jnp.int32))

    def record(state, grids):
        if fixed_z is None:
            return grids

        def take(grids):
            buffer, count = grids
            return buffer.at[count].set(generate(state.params_g, fixed_z, config)), count + 1

        return jax.lax.cond(state.step % config.sample_every == 0, take, lambda g: g, grids)

    def body(carry, index):
        state, grids = carry
        grids = record(state, grids)
        batch_idx = jax.lax.dynamic_slice_in_dim(order, index * batch, batch)
        state, metrics = step(state, images[batch_idx], config)
        return (state, grids), metrics

    scan_stop = min(stop, full)
    (state, grids), metrics = jax.lax.scan(body, (state, grids), jnp.arange(start, scan_stop))
    if stop > full:  # The partial batch.
        grids = record(state, grids)
        state, last = step(state, images[order[full * batch:]], config)
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), metrics, last)
    return EpochResult(state, metrics, *grids, all_finite(state))


def all_finite(state: TrainState) -> jax.Array:
    """Whether every weight of G and D is finite (one boolean, on the device)."""
    leaves = jax.tree.leaves((state.params_g, state.params_d))
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))
