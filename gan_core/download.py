"""Fetch MNIST and Fashion-MNIST from torchvision's mirrors, safely.

Each file is streamed to a temporary file beside its destination, its MD5 is
checked, and only then is it renamed into place: an interrupted or corrupt
download never leaves a partial file where the data layer would read it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from gan_core.errors import DownloadError

# torchvision.datasets.MNIST / FashionMNIST: mirrors and MD5s of the gzipped files.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
TIMEOUT_S = 20
CHUNK = 1 << 16


def download_file(
    urls: Sequence[str],
    dest: Path,
    md5: str,
    *,
    opener: Callable | None = None,
    progress: bool = True,
) -> Path:
    """Download the first mirror that yields the right bytes to `dest`, atomically."""
    opener = opener or (lambda url: urllib.request.urlopen(url, timeout=TIMEOUT_S))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # A file (or a dangling link) where a folder should be, or no permission.
        raise DownloadError(f"cannot create {dest.parent}: {e.strerror or e}") from e
    errors = []
    for url in urls:
        try:
            _fetch(url, dest, md5, opener, progress)
            return dest
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts, resets, bad MD5.
            errors.append(f"{url}: {e}")
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(errors))


def _fetch(url: str, dest: Path, md5: str, opener: Callable, progress: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, opener(url) as response:
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(total) if total else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                received = 0
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise OSError(f"connection dropped after {received} of {total} bytes")
        if digest.hexdigest() != md5:
            raise ValueError(f"MD5 mismatch: got {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def extract_gzip(src: Path) -> Path:
    """Write the uncompressed copy torchvision looks for, atomically."""
    dest = src.with_suffix("")
    fd, tmp = tempfile.mkstemp(dir=src.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as f:
            shutil.copyfileobj(f, out)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def download_dataset(
    name: str,
    folder: Path,
    *,
    opener: Callable | None = None,
    mirrors: Sequence[str] | None = None,
    md5s: dict[str, str] | None = None,
) -> None:
    """Fetch all four IDX files into `folder`, as torchvision would (it wants all four)."""
    mirrors = mirrors or MIRRORS[name]
    md5s = md5s or MD5[name]
    for filename, md5 in md5s.items():
        dest = folder / filename
        if not dest.exists():
            download_file([m + filename for m in mirrors], dest, md5, opener=opener)
        if not dest.with_suffix("").exists():
            try:
                extract_gzip(dest)
            except (OSError, EOFError) as e:
                raise DownloadError(f"{dest}: cannot extract ({e})") from None
