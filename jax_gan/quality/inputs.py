"""What `python -m jax_gan.evaluate` scores: a `.npy` of images, or samples drawn from a run's generator."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from gan_core import rundir
from gan_core.errors import UserError, first_line
from gan_core.latent import latent_points
from gan_core.quality import as_eval_range
from jax_gan.generator_checkpoint import RUN_LAYOUT, load_generator, run_framework
from jax_gan.quality import classifier
from jax_gan.quality.scores import check_images
from jax_gan.train_step import generate


@dataclasses.dataclass(frozen=True)
class Source:
    """Images to evaluate and where they came from."""

    images: np.ndarray
    what: str
    dataset: str | None = None  # A run's dataset (the one it actually trained on).
    data_dir: str | None = None


def read_npy(path: Path, num: int) -> Source:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path} is not a readable .npy file: {first_line(e)}") from e
    if not isinstance(array, np.ndarray):  # np.load opens a .npz archive whatever the file's name.
        names = ", ".join(array.files)
        array.close()
        raise UserError(f"{path} is a .npz archive (of {names}), not one .npy array; save the images "
                        "with np.save")
    if array.ndim >= 1:
        array = array[:num]
        check_memory(len(array), latent_dim=0, hidden_dim=0)
    images = check_images(array, str(path))
    return Source(images, f"{path}")


def run_samples(path: Path, num: int, seed: int) -> Source:
    """G(z) with dropout off for `num` latents from `seed`, from a jax_gan or torch_reference run."""
    g = load_generator(path)
    check_memory(num, g.config.latent_dim, g.config.hidden_dim)
    z = latent_points(seed, num, g.config.latent_dim)
    images = as_eval_range(np.asarray(generate(g.params, jnp.asarray(z), g.config)),
                           g.config.tutorial_normalization)
    return Source(check_images(images, str(path)), f"{path} ({g.framework} run, step {g.step:,})",
                  g.meta.get("dataset_used") or g.config.dataset, g.config.data_dir)


def check_memory(num: int, latent_dim: int, hidden_dim: int) -> None:
    """Refuse a --num whose images cannot be scored in this machine's free memory, before allocating any.

    Per image: z and G's activations (none for a .npy), about six float32 copies of the pixels (G's
    output, the [-1, 1] range, the checked copy, Parzen's), and the features in float64.
    """
    per_image = 4 * (latent_dim + 2 * hidden_dim + 6 * 28 * 28) + 3 * 8 * classifier.RECIPE.features
    need = num * per_image
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > free // 2:
        raise UserError(f"--num {num} needs about {need / 2**30:,.1f} GiB to score and this machine has "
                        f"{free / 2**30:.1f} GiB free; ask for fewer")


def read_input(path: Path, num: int, seed: int) -> Source:
    if not rundir.checked(path.exists, path):
        raise UserError(f"{path} does not exist")
    if path.is_file() and path.suffix == ".npy":
        return read_npy(path, num)
    if path.is_file() and path.suffix != ".pth":
        raise UserError(f"{path}: expected a .npy of images or a run directory")
    if run_framework(path) is None:
        raise UserError(f"{path} holds no checkpoint: expected a .npy of images, or {RUN_LAYOUT}")
    return run_samples(path, num, seed)
