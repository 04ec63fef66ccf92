"""Which platform JAX computes on, or one line saying why it has none.

`JAX_PLATFORMS=cuda` on a machine without a usable GPU (or a jax without
its CUDA plugin) fails at JAX's first device query: with a RuntimeError,
or in some releases a bare AssertionError, deep inside JAX. Commands ask
here first, before they write anything.
"""

from __future__ import annotations

import os

import jax

from gan_core.errors import UserError, first_line


def platform() -> str:
    """"cpu", "gpu", "tpu", ...: the platform of JAX's default device."""
    try:
        return jax.devices()[0].platform
    except (RuntimeError, AssertionError) as e:
        wanted = os.environ.get("JAX_PLATFORMS", "")
        why = first_line(e)
        asked = f" (JAX_PLATFORMS={wanted})" if wanted else ""
        raise UserError(f"JAX cannot start its backend{asked}: {why}; check that the accelerator and its "
                        "jax plugin (e.g. jax[cuda12]) are installed, or unset JAX_PLATFORMS to let JAX "
                        "choose") from e
