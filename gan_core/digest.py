"""SHA-256 of files and arrays, without any framework.

Checkpoints, `.pth` files and the classifier cache all store SHA-256 sums so
that flipped bytes are reported instead of loaded; computing them in one
place keeps every writer's sums readable by every reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def array_sha256(value: Any) -> str:
    """Hex SHA-256 of an array's bytes in C order: a NumPy or JAX array, or a torch tensor (not imported)."""
    array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def tree_sha256(tree: Mapping[str, Any]) -> dict[str, str]:
    """`array_sha256` of every leaf of nested mappings, by its "/"-joined path.

    The paths are those of `flax.traverse_util.flatten_dict(tree, sep="/")`
    (empty mappings have none), so existing checkpoints' sums still match.
    """
    sums: dict[str, str] = {}

    def visit(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping):
            sums["/".join(path)] = array_sha256(node)
            return
        for key, child in node.items():
            visit(child, (*path, key))

    visit(tree, ())
    return sums
