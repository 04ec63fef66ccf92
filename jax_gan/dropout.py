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
"""

from __future__ import annotations

import math

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


class Dropout(nn.Module):
    """`nn.Dropout` with hash masks by default; same 'dropout' rng collection."""

    rate: float
    masks: str = "hash"

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        key = self.make_rng("dropout")
        if self.masks == "threefry":  # Exactly what nn.Dropout draws.
            keep = jax.random.bernoulli(key, 1.0 - self.rate, x.shape)
        else:
            keep = keep_mask(key, x.shape, self.rate)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))
