"""The tutorial's MLP generator and discriminator in Flax Linen.

Linen keeps parameters as a plain pytree and `apply` as a pure function, which
is exactly what a jitted, scanned train step wants.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_core.config import Config
from jax_gan.dropout import Dropout


def torch_linear_init(fan_in: int) -> tuple[Callable, Callable]:
    """torch.nn.Linear's default: weight and bias uniform in +-1/sqrt(fan_in).

    (kaiming_uniform_ with a=sqrt(5) gives exactly that bound for the weight.)
    """
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init, init


def dense(features: int, fan_in: int, init: str, name: str) -> nn.Dense:
    if init == "torch":
        kernel_init, bias_init = torch_linear_init(fan_in)
        return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init, name=name)
    return nn.Dense(features, name=name)


class MLP(nn.Module):
    """Linear -> act -> Dropout, twice, then Linear: the body both networks share."""

    hidden_dim: int
    out_dim: int
    activation: Callable[[jax.Array], jax.Array]
    dropout_rate: float
    init_scheme: str = "torch"
    dropout_masks: str = "hash"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        # Layer names follow the torch Sequential indices (model.0, model.3, model.6)
        # so converted checkpoints read naturally side by side.
        for index in (0, 3):
            x = dense(self.hidden_dim, x.shape[-1], self.init_scheme, f"Dense_{index}")(x)
            x = self.activation(x)
            x = Dropout(self.dropout_rate, self.dropout_masks)(x, deterministic=not train)
        return dense(self.out_dim, x.shape[-1], self.init_scheme, "Dense_6")(x)


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, H, W, 1) in [-1, 1], NHWC as Flax expects."""

    hidden_dim: int = 256
    image_size: int = 28
    dropout_rate: float = 0.1
    init_scheme: str = "torch"
    dropout_masks: str = "hash"

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = True) -> jax.Array:
        x = MLP(self.hidden_dim, self.image_size**2, nn.relu, self.dropout_rate,
                self.init_scheme, self.dropout_masks, name="model")(z, train=train)
        return jnp.tanh(x).reshape(-1, self.image_size, self.image_size, 1)


class Discriminator(nn.Module):
    """images (N, H, W, 1) or (N, H*W) -> logits (N, 1).

    Returns logits, not the tutorial's Sigmoid output: the loss applies the
    sigmoid (optax.sigmoid_binary_cross_entropy), which equals Sigmoid+BCELoss
    but stays finite where BCELoss clamps log(0) to -100.
    """

    hidden_dim: int = 256
    leaky_slope: float = 0.01
    dropout_rate: float = 0.1
    init_scheme: str = "torch"
    dropout_masks: str = "hash"

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = True) -> jax.Array:
        x = images.reshape(images.shape[0], -1)
        act = lambda h: nn.leaky_relu(h, self.leaky_slope)  # noqa: E731
        return MLP(self.hidden_dim, 1, act, self.dropout_rate, self.init_scheme,
                   self.dropout_masks, name="model")(x, train=train)


def make_models(config: Config) -> tuple[Generator, Discriminator]:
    g = Generator(config.hidden_dim, config.image_size, config.dropout_rate, config.init,
                  config.dropout_masks)
    d = Discriminator(config.hidden_dim, config.leaky_slope, config.dropout_rate, config.init,
                      config.dropout_masks)
    return g, d


def init_params(config: Config, key: jax.Array) -> tuple[dict, dict]:
    """Fresh G and D parameters, from independent keys."""
    g, d = make_models(config)
    key_g, key_d = jax.random.split(key)
    params_g = g.init(key_g, jnp.zeros((1, config.latent_dim)), train=False)["params"]
    params_d = d.init(key_d, jnp.zeros((1, config.image_size, config.image_size, 1)),
                      train=False)["params"]
    return params_g, params_d
