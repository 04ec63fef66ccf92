"""Dropout with cheap masks.

`flax.linen.Dropout` draws one threefry-2x32 word per activation, and JAX
lowers threefry on CPU as a rolled loop over its rounds: at batch 64 the
step's 128k draws cost two thirds as much as all its matrix multiplies.
Here threefry still makes every key (one per layer call, through
`make_rng`), but the per-activation bits come from a counter hash keyed by
it: two rounds of MurmurHash3's 32-bit finalizer, a bijection with full
avalanche, about ten times cheaper on a CPU. The contract is `nn.Dropout`'s:
drop with probability `rate`, scale survivors by 1 / (1 - rate), identity
when deterministic. `masks="threefry"` draws `nn.Dropout`'s own masks.

`mask_tape` lets the parity tests see the masks a training step draws, or
hand it masks of their own, so that the PyTorch reference can be run with
exactly the same ones. It is a trace-time hook: with no tape active, the
module traces to the very program it did before the hook existed.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's finalizer: every input bit flips each output bit with probability ~1/2."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform uint32 bits of `shape`: element i is hash(i, key)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    words = key.reshape(-1).astype(jnp.uint32)
    counter = jax.lax.iota(jnp.uint32, math.prod(shape))
    return _fmix32(_fmix32(counter ^ words[0]) + words[-1]).reshape(shape)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """True where an activation survives: P(True) = 1 - rate, to 2**-32."""
    threshold = jnp.uint32(min(round(rate * 2.0**32), 2**32 - 1))
    return hash_bits(key, shape) >= threshold


class MaskTape:
    """The keep masks of training-mode `Dropout` calls, in the order they were traced.

    Recording (no `masks` given): each call draws its mask as usual and appends
    it to `masks`. Replaying: each call takes the next of the given masks
    instead of drawing one (its shape must match), so tests can feed the same
    masks to this port and to the reference. `done()` says whether a replay
    used every mask it was given.
    """

    def __init__(self, masks: Sequence[jax.Array] | None = None):
        self.replaying = masks is not None
        self._given = list(masks or ())
        self.masks: list[jax.Array] = []

    def next(self, shape: tuple[int, ...]) -> jax.Array:
        if len(self.masks) == len(self._given):
            raise ValueError(f"mask tape: Dropout call {len(self.masks) + 1} wants a mask, "
                             f"only {len(self._given)} were given")
        keep = jnp.asarray(self._given[len(self.masks)], bool)
        if keep.shape != tuple(shape):
            raise ValueError(f"mask tape: Dropout call {len(self.masks) + 1} has activations of "
                             f"shape {tuple(shape)}, the mask given for it {keep.shape}")
        self.masks.append(keep)
        return keep

    def record(self, keep: jax.Array) -> None:
        self.masks.append(keep)

    def done(self) -> bool:
        return len(self.masks) == len(self._given)


_TAPE: contextvars.ContextVar[MaskTape | None] = contextvars.ContextVar("dropout_mask_tape",
                                                                        default=None)


@contextlib.contextmanager
def mask_tape(masks: Sequence[jax.Array] | None = None) -> Iterator[MaskTape]:
    """Record (masks=None) or replay the keep masks of every training-mode `Dropout` call.

    Why a context and not a collection: `train_step` applies the models with
    their parameters alone, and the tests must drive that very function.
    The tape acts while a function is traced, so enter it *inside* the
    function you jit (`jax.jit` caches traces without knowing about it), and
    return `tape.masks` from there when recording.
    """
    tape = MaskTape(masks)
    token = _TAPE.set(tape)
    try:
        yield tape
    finally:
        _TAPE.reset(token)


class Dropout(nn.Module):
    """`nn.Dropout` with hash masks by default; same 'dropout' rng collection."""

    rate: float
    masks: str = "hash"

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        if self.masks not in ("hash", "threefry"):  # Trace time: costs the program nothing.
            raise ValueError(f"Dropout masks must be 'hash' or 'threefry', got {self.masks!r}")
        tape = _TAPE.get()  # None outside the parity tests.
        if tape is not None and tape.replaying:
            keep = tape.next(x.shape)
        else:
            key = self.make_rng("dropout")
            if self.masks == "threefry":  # Exactly what nn.Dropout draws.
                keep = jax.random.bernoulli(key, 1.0 - self.rate, x.shape)
            else:
                keep = keep_mask(key, x.shape, self.rate)
            if tape is not None:
                tape.record(keep)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))
