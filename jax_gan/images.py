"""Pictures of a run: sample grids, the loss curves and the interpolation strip.

NumPy, Pillow and matplotlib only, so both frameworks write identical files.
`save_grid` reproduces `torchvision.utils.save_image(x, nrow=5, normalize=True)`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def as_nhw(images: np.ndarray) -> np.ndarray:
    """Drop the single channel of NHWC (JAX) or NCHW (torch) images: (N, H, W) float32."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) images with at most one channel, got {x.shape}")
    return x


def make_grid(images: np.ndarray, nrow: int = 5, padding: int = 2,
              normalize: bool = True) -> np.ndarray:
    """(N, H, W) floats to an (H', W', 3) uint8 grid, laid out like torchvision's make_grid."""
    x = as_nhw(images)
    if normalize:  # Min-max over the whole batch, as make_grid(normalize=True).
        low, high = float(x.min()), float(x.max())
        x = (np.clip(x, low, high) - np.float32(low)) * np.float32(1.0 / max(high - low, 1e-5))
    n, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding), np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * (h + padding) + padding, c * (w + padding) + padding
        grid[top : top + h, left : left + w] = x[i]
    pixels = np.clip(grid * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    return np.repeat(pixels[..., None], 3, axis=-1)


def save_grid(path: str | os.PathLike, images: np.ndarray, nrow: int = 5) -> None:
    Image.fromarray(make_grid(images, nrow=nrow)).save(path)


def save_losses(path: str | os.PathLike, records: Sequence[dict[str, Any]], title: str) -> None:
    """Loss curves from metrics.jsonl records."""
    fig, ax = plt.subplots(figsize=(8, 4))
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["loss_g"] for r in records], label="loss_G", lw=0.8)
    ax.plot(steps, [r["loss_d"] for r in records], label="loss_D", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("BCE loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_strip(path: str | os.PathLike, images: np.ndarray, title: str | None = None) -> None:
    """A row of images, as the tutorial drew its latent interpolation (12 x 2 inches)."""
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(12, 2))
    for ax, image in zip(np.atleast_1d(axes), as_nhw(images), strict=True):
        ax.imshow(image, cmap="gray")
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_images(path: str | os.PathLike, images: np.ndarray) -> None:
    """`.npy`: the raw float32 (N, 28, 28) array; `.png`: a grid."""
    images = as_nhw(images)
    if str(path).endswith(".npy"):
        np.save(path, images)
    else:
        save_grid(path, images, nrow=max(1, math.isqrt(len(images) - 1) + 1))
