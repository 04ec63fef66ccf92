"""Pictures of a run: sample grids, the loss curves, the interpolation strip, progress.gif.

NumPy, Pillow and matplotlib only, so both frameworks write identical files.
`make_grid` lays images out as `torchvision.utils.make_grid(x, nrow=5,
normalize=True)` does; saved pictures are then enlarged by an integer factor
with nearest-neighbour sampling, so every pixel stays a sharp square.
Figures use matplotlib's object API (no pyplot), which needs no GUI backend
and changes no global state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from gan_core.rundir import atomic_write


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


def upscale(pixels: np.ndarray, scale: int) -> Image.Image:
    """A uint8 (H, W[, 3]) array as an image `scale` times larger, each pixel a sharp square."""
    image = Image.fromarray(pixels)
    if scale == 1:
        return image
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def save_png(path: str | os.PathLike, image: Image.Image) -> None:
    """Written whole or not at all: a crash or a full disk never leaves half a PNG."""
    with atomic_write(Path(path), "wb") as f:
        image.save(f, format="PNG")


def save_grid(path: str | os.PathLike, images: np.ndarray, nrow: int = 5, scale: int = 1) -> None:
    save_png(path, upscale(make_grid(images, nrow=nrow), scale))


def save_strip(path: str | os.PathLike, images: np.ndarray, scale: int = 1) -> None:
    """A row of images (the tutorial's latent interpolation figure), normalized together."""
    save_grid(path, images, nrow=len(images), scale=scale)


def save_contact_sheet(path: str | os.PathLike, grids: Sequence[tuple[str, Path]], columns: int = 4) -> None:
    """Several runs' final 5x5 grids side by side, each labelled with its run's name."""
    tiles = [(name, Image.open(p).convert("L")) for name, p in grids if p.exists()]
    if not tiles:
        return
    side = max(t.width for _, t in tiles)
    label = 16
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("L", (cols * side, rows * (side + label)), 255)
    draw = ImageDraw.Draw(sheet)
    for k, (name, tile) in enumerate(tiles):
        r, c = divmod(k, cols)
        top = r * (side + label)
        sheet.paste(tile.resize((side, side), Image.Resampling.NEAREST), (c * side, top + label))
        draw.text((c * side + 4, top + 2), name, fill=0)
    save_png(path, sheet)


def save_progress_gif(path: str | os.PathLike, frames: Sequence[str | os.PathLike], side: int,
                      max_frames: int = 60, levels: int = 32, frame_ms: int = 150,
                      hold_ms: int = 2000) -> int:
    """The sample grids over training as one animation; returns the number of frames used.

    Long runs save hundreds of grids, and noisy grey pixels compress badly in a
    GIF: so an even subset of at most `max_frames` (always the first and the
    last), each `side` pixels square and quantized to `levels` grey levels,
    keeps the file to a few MB. The last frame is held.
    """
    if not frames:
        return 0
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    lut = [(v * levels // 256) * 255 // (levels - 1) for v in range(256)]
    images = [Image.open(frames[i]).convert("L").resize((side, side), Image.Resampling.NEAREST).point(lut)
              for i in picks]
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    with atomic_write(Path(path), "wb") as f:
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                       loop=0)
    return len(images)


def save_losses(path: str | os.PathLike, records: Sequence[dict[str, Any]], title: str) -> None:
    """Loss curves from metrics.jsonl records; under them, where the run scored quality
    (`--eval-every`), FID and coverage against the same steps."""
    losses = [r for r in records if "loss_g" in r]
    scores = [r for r in records if "fid" in r and math.isfinite(r["fid"])]
    fig = Figure(figsize=(8, 7 if scores else 4))
    axes = fig.subplots(2 if scores else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    steps = [r["step"] for r in losses]
    ax.plot(steps, [r["loss_g"] for r in losses], label="loss_G", lw=0.8)
    ax.plot(steps, [r["loss_d"] for r in losses], label="loss_D", lw=0.8)
    ax.set_ylabel("BCE loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    if scores:
        ax = axes[1]
        steps = [r["step"] for r in scores]
        ax.plot(steps, [r["fid"] for r in scores], "o-", color="C3", ms=3, lw=1,
                label="FID (lower is better)")
        best = min(scores, key=lambda r: r["fid"])
        ax.plot([best["step"]], [best["fid"]], "*", color="C3", ms=12, label="lowest FID")
        ax.set_ylabel("FID")
        ax.grid(alpha=0.3)
        right = ax.twinx()
        right.plot(steps, [r["coverage"] for r in scores], "s--", color="C2", ms=3, lw=1,
                   label="coverage (higher is better)")
        right.set_ylim(0, 1)
        right.set_ylabel("coverage")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="best")
        ax.set_title("sample quality against the reference digits")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    with atomic_write(Path(path), "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def save_images(path: str | os.PathLike, images: np.ndarray, scale: int = 1) -> None:
    """`.npy`: the raw float32 (N, 28, 28) array; `.png`: a grid."""
    images = as_nhw(images)
    if str(path).endswith(".npy"):
        with atomic_write(Path(path), "wb") as f:
            np.save(f, images)
    else:
        save_grid(path, images, nrow=max(1, math.isqrt(len(images) - 1) + 1), scale=scale)


def write_images(out: str | os.PathLike, images: np.ndarray, *, strip: bool = False, scale: int = 1) -> None:
    """A command's output: `.npy` the raw (N, 28, 28) array; `.png` a grid, or a one-row strip."""
    if strip and str(out).endswith(".png"):
        save_strip(out, images, scale=scale)
    else:
        save_images(out, images, scale=scale)
