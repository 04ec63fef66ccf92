"""jax-gan: the tutorial's MLP GAN as pure, jit-compiled JAX.

The JAX-side names load lazily, so the NumPy-only pieces (`jax_gan.data`,
`jax_gan.config`, ...) can be imported by the PyTorch reference without JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "jax_gan.config",
    "Dataset": "jax_gan.data",
    "load_dataset": "jax_gan.data",
    "Generator": "jax_gan.models",
    "Discriminator": "jax_gan.models",
    "make_models": "jax_gan.models",
    "init_params": "jax_gan.models",
    "TrainState": "jax_gan.train_step",
    "create_train_state": "jax_gan.train_step",
    "make_optimizer": "jax_gan.train_step",
    "train_step": "jax_gan.train_step",
    "train_epoch": "jax_gan.train_step",
    "generate": "jax_gan.train_step",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jax_gan' has no attribute {name!r}")
