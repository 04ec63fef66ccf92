"""Hash-mask dropout: nn.Dropout's contract, and masks that look like independent coin flips."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_gan.dropout import Dropout, hash_bits, keep_mask

# Every mask here is JAX's arithmetic (and Flax's, for threefry): CI runs them under each JAX.
pytestmark = pytest.mark.jax_version


def _fmix32_reference(x: int) -> int:
    """MurmurHash3's fmix32, written from its C definition."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_bits_are_two_keyed_rounds_of_murmur3_fmix32():
    key = jax.random.PRNGKey(7)
    k0, k1 = (int(w) for w in np.asarray(key))
    bits = np.asarray(hash_bits(key, (4, 5)))
    expected = [_fmix32_reference((_fmix32_reference(i ^ k0) + k1) & 0xFFFFFFFF) for i in range(20)]
    np.testing.assert_array_equal(bits.reshape(-1), np.array(expected, np.uint32))


def test_typed_and_raw_keys_give_the_same_bits():
    np.testing.assert_array_equal(hash_bits(jax.random.key(3), (100,)),
                                  hash_bits(jax.random.PRNGKey(3), (100,)))


def test_every_bit_is_a_fair_coin():
    bits = np.asarray(hash_bits(jax.random.PRNGKey(0), (1 << 20,)))
    n = bits.size
    for position in range(32):
        mean = ((bits >> position) & 1).mean()
        assert abs(mean - 0.5) / np.sqrt(0.25 / n) < 5, position


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_drop_rate_and_survivor_scale(rate):
    n = 1 << 20
    y = np.asarray(Dropout(rate).apply({}, jnp.ones(n), deterministic=False,
                                       rngs={"dropout": jax.random.PRNGKey(1)}))
    dropped = (y == 0).mean()
    assert abs(dropped - rate) / np.sqrt(rate * (1 - rate) / n) < 5
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-6)


def test_counts_per_row_spread_like_a_binomial():
    # Structure in the hash (stripes, repeats) would show up as rows that are too alike.
    rows, width, rate = 4096, 256, 0.1
    keep = np.asarray(keep_mask(jax.random.PRNGKey(2), (rows, width), rate))
    counts = (~keep).sum(axis=1)
    variance = width * rate * (1 - rate)
    assert abs(counts.mean() - width * rate) < 5 * np.sqrt(variance / rows)
    assert 0.85 < counts.var() / variance < 1.15


def _correlation(a, b):
    return np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1]


def test_masks_from_different_keys_and_neighbouring_elements_are_uncorrelated():
    n, rate = 1 << 20, 0.1
    key = jax.random.PRNGKey(0)
    a = np.asarray(keep_mask(key, (n,), rate))
    bound = 5 / np.sqrt(n)
    for other in (jax.random.fold_in(key, 1), jax.random.split(key)[0], jax.random.PRNGKey(1)):
        assert abs(_correlation(a, np.asarray(keep_mask(other, (n,), rate)))) < bound
    for lag in (1, 2, 256):
        assert abs(_correlation(a[:-lag], a[lag:])) < bound


def test_every_layer_and_step_draws_a_fresh_mask():
    from gan_core.config import Config
    from jax_gan.models import make_models

    g, _ = make_models(Config())
    params = g.init(jax.random.PRNGKey(0), jnp.zeros((1, 100)), train=False)
    z = jnp.ones((8, 100))
    outs = [g.apply(params, z, train=True, rngs={"dropout": jax.random.PRNGKey(s)}) for s in (0, 0, 1)]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_deterministic_and_rate_zero_are_the_identity():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 256))
    np.testing.assert_array_equal(Dropout(0.1).apply({}, x, deterministic=True), x)
    np.testing.assert_array_equal(
        Dropout(0.0).apply({}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(0)}), x)


def test_threefry_masks_are_flax_dropout():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 256))
    rngs = {"dropout": jax.random.PRNGKey(5)}
    ours = Dropout(0.1, masks="threefry").apply({}, x, deterministic=False, rngs=rngs)
    flax_y = nn.Dropout(0.1, deterministic=False).apply({}, x, rngs=rngs)
    np.testing.assert_array_equal(ours, flax_y)


def _apply(x, masks="hash", rate=0.1, key=4):
    return Dropout(rate, masks).apply({}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(key)})


@pytest.mark.parametrize("masks", ["hash", "threefry"])
def test_tape_records_the_drawn_mask_and_replaying_it_reproduces_the_output(masks):
    from jax_gan.dropout import mask_tape

    x = jax.random.normal(jax.random.PRNGKey(0), (32, 256))
    plain = _apply(x, masks)
    with mask_tape() as tape:
        recorded = _apply(x, masks)
    assert len(tape.masks) == 1 and tape.masks[0].shape == x.shape and tape.masks[0].dtype == jnp.bool_
    np.testing.assert_array_equal(recorded, plain)
    np.testing.assert_array_equal(np.asarray(plain) != 0, tape.masks[0])  # x has no zeros.
    with mask_tape([~tape.masks[0]]) as replay:
        flipped = _apply(x, masks)  # Replayed masks win over the key.
    assert replay.done()
    np.testing.assert_allclose(flipped + plain, x / 0.9, rtol=1e-6)


def test_tape_refuses_a_missing_or_misshapen_mask():
    from jax_gan.dropout import mask_tape

    x = jnp.ones((4, 8))
    with pytest.raises(ValueError, match=r"Dropout call 1 wants a mask, only 0 were given"):
        with mask_tape([]):
            _apply(x)
    with pytest.raises(ValueError, match=r"activations of shape \(4, 8\), the mask given for it \(4, 7\)"):
        with mask_tape([np.ones((4, 7), bool)]):
            _apply(x)
    with mask_tape([np.ones((4, 8), bool), np.ones((4, 8), bool)]) as tape:
        _apply(x)
    assert not tape.done()


def test_without_a_tape_the_traced_program_is_unchanged():
    # The tape is a trace-time hook: recording adds nothing to the computation,
    # and outside a tape nothing of it is traced.
    from jax_gan.dropout import mask_tape

    def program(x, key):
        return Dropout(0.1).apply({}, x, deterministic=False, rngs={"dropout": key})

    args = (jnp.ones((8, 16)), jax.random.PRNGKey(0))
    plain = str(jax.make_jaxpr(program)(*args))
    with mask_tape():
        recording = str(jax.make_jaxpr(program)(*args))
    assert plain == recording
    assert "callback" not in plain
