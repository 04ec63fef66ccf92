"""Latent points and paths between them (NumPy, shared by both frameworks)."""

from __future__ import annotations

import numpy as np


def latent_points(seed: int, num: int, latent_dim: int = 100) -> np.ndarray:
    """Standard-normal z from a NumPy seed, so both frameworks can use the very same z."""
    return np.random.default_rng(seed).standard_normal((num, latent_dim)).astype(np.float32)


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, slerp: bool = False) -> np.ndarray:
    """`steps` points from z0 to z1, both ends included.

    Linear, like the tutorial's np.linspace; or spherical, which keeps the norm
    of Gaussian latents near sqrt(dim) instead of shrinking it mid-path.
    """
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    if not slerp:
        return ((1 - t) * a + t * b).astype(np.float32)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)
