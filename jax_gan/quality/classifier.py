"""The feature network behind the quality scores: a small MNIST classifier, trained once per dataset.

Inception features are made for photos and need weights from the internet;
for MNIST the accepted practice (TF-GAN's `mnist_frechet_distance`) is a
classifier trained on the digits themselves. Ours is an MLP, 784-256-128-10
with ReLUs: its 128-unit penultimate layer gives the features, its softmax the
class probabilities. We measured a LeNet-style conv net too: on this 2-core
CPU its epochs were 9-40x slower with the convolutions as im2col matmuls
(hundreds of times with XLA's own CPU convolution) for 1-3 points more
accuracy, which would put full MNIST well past a minute. Random shifts of up
to 2 pixels while training make the features less sensitive to where a digit
sits, as a conv net's would be.

The trained weights are cached with Orbax in `<data_dir>/classifiers/<dataset>-<key>/`,
where the key is a SHA-256 of the dataset files' bytes and of the recipe: new
data or a new recipe trains a new classifier, never reuses a stale one. A cache
is written to a temporary folder and renamed into place, and its arrays carry
SHA-256 checksums, so a damaged cache is detected and retrained, never trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from gan_core import data
from gan_core.digest import file_sha256, tree_sha256
from gan_core.errors import DataError, UserError, first_line

NUM_CLASSES = 10
FEATURES = 128
CACHE_FOLDER = "classifiers"
EMBED_BATCH = 1024  # One compiled shape for every call: the last batch is padded.


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the classifier is trained; part of the cache key, so changing it retrains."""

    hidden: int = 256
    features: int = FEATURES
    shift: int = 2  # Random translations of up to this many pixels while training.
    batch_size: int = 128
    lr: float = 1e-3  # Adam, cosine-decayed to 0 over the run.
    max_epochs: int = 100  # 2,700 steps on mnist-sample's 3,500 training digits.
    max_steps: int = 4000  # Caps the epochs on a large set: about 10 epochs of full MNIST.
    seed: int = 0
    version: int = 1  # Bump when the training code changes what it learns.


RECIPE = Recipe()


class FeatureNet(nn.Module):
    """MLP classifier returning (penultimate features, logits)."""

    hidden: int = 256
    features: int = FEATURES

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        f = nn.relu(nn.Dense(self.features)(x))
        return f, nn.Dense(NUM_CLASSES)(f)


# --- data: which digits train the classifier, which are held out --------------------------------

@dataclasses.dataclass(frozen=True)
class Splits:
    """uint8 digits (N, 28, 28) and labels: classifier training, validation, and the held-out reference.

    `test` never trains the classifier: it is the real reference every metric
    compares against. `val` chooses the Parzen window's width.
    """

    dataset: str  # The dataset actually loaded (after any fallback).
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    reference: str  # Which digits `test` is, in words.
    files: tuple[Path, ...]  # The files whose bytes key the cache.


def load_splits(dataset: str = "mnist", data_dir: str | os.PathLike = "data", *,
                allow_download: bool = True, warn: Callable[[str], None] | None = None) -> Splits:
    """The dataset's test split as the reference, or, where it has none on disk, a held-out 20%.

    A train split without its test split (the offline `mnist-sample`) is split by
    class with a fixed seed: 70% trains the classifier, 10% validates, 20% is the
    reference. Those reference digits are still in the GAN's training set.
    """
    raw = data.raw_folder(dataset, data_dir) if dataset in data.RAW_FOLDERS else None
    with no_new_empty_folders(raw):  # A failed download (offline: mnist-sample instead) created it.
        images, labels, used, _ = data.load_arrays(dataset, data_dir, "train",
                                                   allow_download=allow_download, warn=warn)
    if used == "mnist-sample":
        test_files, files = None, (data.mnist_sample_path(),)
    else:
        train_files = data.find_idx_files(used, data_dir, "train")
        test_files = data.find_idx_files(used, data_dir, "test")
        files = tuple(train_files or ()) + tuple(test_files or ())
    rng = np.random.default_rng(0)
    if test_files is not None:
        test = data.read_idx_pair(*test_files)
        order = rng.permutation(len(images))
        n_val = len(images) // 10
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        reference = f"{used} test split ({len(test[0]):,} images)"
    else:
        parts: list[list[np.ndarray]] = [[], [], []]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            n_val, n_test = len(idx) // 10, len(idx) // 5
            parts[0].append(idx[n_val + n_test:])
            parts[1].append(idx[:n_val])
            parts[2].append(idx[n_val:n_val + n_test])
        train_idx, val_idx, test_idx = (np.sort(np.concatenate(p)) for p in parts)
        test = (images[test_idx], labels[test_idx])
        reference = (f"{used} held-out 20% ({len(test_idx):,} images; no test split on disk, "
                     "so these are training images the classifier never saw)")
    if min(len(train_idx), len(val_idx), len(test[0])) < 10:
        raise DataError(f"{used} is too small to hold out a validation and a reference part")
    return Splits(used, (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]),
                  test, reference, files)


def cache_key(splits: Splits, recipe: Recipe = RECIPE) -> str:
    """SHA-256 of the dataset files' bytes and the recipe: what the classifier depends on."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode())
    for path in splits.files:
        h.update(path.name.encode() + bytes.fromhex(file_sha256(path)))
    return h.hexdigest()


# --- the classifier -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """Trained weights and what was measured about them (`meta`: accuracy, time, sizes)."""

    params: Any
    meta: dict[str, Any]
    recipe: Recipe = RECIPE

    @property
    def accuracy(self) -> float:
        """Accuracy on the held-out reference digits."""
        return float(self.meta["accuracy"])

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 128) float32 and class probabilities (N, 10) float64 of [-1, 1] images."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        apply = _embed_fn(self.recipe.hidden, self.recipe.features)
        feats, probs = [], []
        for i in range(0, len(images), EMBED_BATCH):
            batch = images[i:i + EMBED_BATCH]
            padded = np.zeros((EMBED_BATCH, 28, 28), np.float32)
            padded[:len(batch)] = batch
            f, p = apply(self.params, padded)
            feats.append(np.asarray(f)[:len(batch)])
            probs.append(np.asarray(p, np.float64)[:len(batch)])
        if not feats:
            return np.zeros((0, self.recipe.features), np.float32), np.zeros((0, NUM_CLASSES))
        return np.concatenate(feats), np.concatenate(probs)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.embed(images)[1].argmax(axis=1)


@functools.cache
def _embed_fn(hidden: int, features: int) -> Callable:
    net = FeatureNet(hidden, features)

    @jax.jit
    def apply(params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        f, logits = net.apply({"params": params}, x)
        return f, jax.nn.softmax(logits)

    return apply


def random_shift(key: jax.Array, images: jax.Array, pixels: int) -> jax.Array:
    """Each image moved by up to `pixels` in x and y, the uncovered border filled with background (-1)."""
    padded = jnp.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels)), constant_values=-1.0)
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * pixels + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1]), (28, 28)))(padded, offsets)


def train_classifier(splits: Splits, recipe: Recipe = RECIPE,
                     log: Callable[[str], None] | None = None) -> Classifier:
    """Train on `splits.train` (one compiled `lax.scan` per epoch) and measure it on `val` and `test`."""
    log = log or _stderr
    start = time.perf_counter()
    x = jnp.asarray(data.normalize(splits.train[0]))
    y = jnp.asarray(splits.train[1].astype(np.int32))
    batch = min(recipe.batch_size, len(x))
    per_epoch = len(x) // batch
    epochs = max(1, min(recipe.max_epochs, -(-recipe.max_steps // per_epoch)))
    net = FeatureNet(recipe.hidden, recipe.features)
    key = jax.random.PRNGKey(recipe.seed)
    key, init_key = jax.random.split(key)
    params = net.init(init_key, x[:1])["params"]
    tx = optax.adam(optax.cosine_decay_schedule(recipe.lr, epochs * per_epoch))
    opt_state = tx.init(params)

    def loss_fn(p: Any, xb: jax.Array, yb: jax.Array) -> jax.Array:
        _, logits = net.apply({"params": p}, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit  # The data are arguments, not closed over: a captured array becomes a compile-time constant.
    def epoch(params: Any, opt_state: Any, key: jax.Array, x: jax.Array, y: jax.Array) -> tuple[Any, Any]:
        perm_key, shift_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, len(x))[:per_epoch * batch].reshape(per_epoch, batch)

        def step(carry: tuple[Any, Any], inputs: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
            p, o = carry
            idx, k = inputs
            xb = random_shift(k, x[idx], recipe.shift) if recipe.shift else x[idx]
            updates, o = tx.update(jax.grad(loss_fn)(p, xb, y[idx]), o, p)
            return (optax.apply_updates(p, updates), o), None

        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state),
                                              (order, jax.random.split(shift_key, per_epoch)))
        return params, opt_state

    for _ in range(epochs):
        key, epoch_key = jax.random.split(key)
        params, opt_state = epoch(params, opt_state, epoch_key, x, y)
    params = jax.tree.map(np.asarray, params)
    seconds = time.perf_counter() - start
    clf = Classifier(params, {}, recipe)
    val_acc = float(np.mean(clf.predict(data.normalize(splits.val[0])) == splits.val[1]))
    test_acc = float(np.mean(clf.predict(data.normalize(splits.test[0])) == splits.test[1]))
    meta = {"dataset": splits.dataset, "recipe": dataclasses.asdict(recipe), "accuracy": test_acc,
            "val_accuracy": val_acc, "accuracy_on": splits.reference, "train_seconds": round(seconds, 2),
            "epochs": epochs, "steps": epochs * per_epoch, "num_train": len(x),
            "num_val": len(splits.val[0]), "num_test": len(splits.test[0]),
            "devices": str(jax.devices()[0].platform)}
    log(f"trained the {splits.dataset} feature classifier in {seconds:.1f} s ({epochs} epochs on "
        f"{len(x):,} images): accuracy {100 * test_acc:.2f}% on the {splits.reference}, "
        f"{100 * val_acc:.2f}% on {len(splits.val[0]):,} validation images")
    return Classifier(params, meta, recipe)


# --- the cache ----------------------------------------------------------------------------------

def cache_dir(splits: Splits, data_dir: str | os.PathLike, recipe: Recipe = RECIPE) -> Path:
    return Path(data_dir) / CACHE_FOLDER / f"{splits.dataset}-{cache_key(splits, recipe)[:16]}"


def load_classifier(dataset: str = "mnist", data_dir: str | os.PathLike = "data", *,
                    recipe: Recipe | None = None, log: Callable[[str], None] | None = None,
                    allow_download: bool = True) -> Classifier:
    """The dataset's classifier: from this process's memory, else the disk cache, else trained now.

    A trainer can call this every epoch: after the first call it costs a dict look-up.
    """
    return load_with_splits(dataset, data_dir, recipe=recipe, log=log,
                            allow_download=allow_download)[0]


def load_with_splits(dataset: str = "mnist", data_dir: str | os.PathLike = "data", *,
                     recipe: Recipe | None = None, log: Callable[[str], None] | None = None,
                     allow_download: bool = True) -> tuple[Classifier, Splits]:
    """`load_classifier` and the splits it was trained and measured on (cached together)."""
    recipe = recipe or RECIPE
    key = (dataset, str(Path(data_dir).resolve()), recipe)
    if key not in _MEMORY:
        splits = load_splits(dataset, data_dir, allow_download=allow_download)
        _MEMORY[key] = (cached_or_trained(splits, data_dir, recipe, log), splits)
    return _MEMORY[key]


_MEMORY: dict[tuple, tuple[Classifier, Splits]] = {}


def cached_or_trained(splits: Splits, data_dir: str | os.PathLike, recipe: Recipe = RECIPE,
                      log: Callable[[str], None] | None = None) -> Classifier:
    """Read the verified cache, or train and cache (a damaged cache is replaced)."""
    log = log or _stderr
    folder = cache_dir(splits, data_dir, recipe)
    if folder.exists():
        try:
            return read_cache(folder, recipe)
        except CacheError as e:
            log(f"warning: classifier cache {folder} is damaged ({e}); training a new one")
            _discard(folder)
    clf = train_classifier(splits, recipe, log)
    try:
        with no_new_empty_folders(folder.parent):
            write_cache(folder, clf)
        log(f"cached it in {folder}")
    except OSError as e:
        log(f"warning: could not cache the classifier in {folder} ({e.strerror or e}); "
            "it will be trained again next time")
    return clf


class CacheError(Exception):
    """A cached classifier that cannot be read or fails its checksums."""


def write_cache(folder: Path, clf: Classifier) -> None:
    """Write into a temporary sibling, then rename: a reader sees a whole cache or none."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would hide a shared data folder's cache from others.
        checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
        try:
            checkpointer.save((tmp / "params").absolute(), args=ocp.args.StandardSave(clf.params))
        finally:
            checkpointer.close()
        meta = {**clf.meta, "checksums": tree_sha256(clf.params)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.exists():
                raise
            # Another process cached the same classifier first: theirs is as good as ours.
    except Exception as e:  # noqa: BLE001 - Orbax wraps OSError in several types.
        raise OSError(first_line(e)) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_cache(folder: Path, recipe: Recipe = RECIPE) -> Classifier:
    """The cached classifier, checked against its recipe's shapes and its stored checksums."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        template = jax.eval_shape(lambda: FeatureNet(recipe.hidden, recipe.features).init(
            jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))["params"])
        template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template)
        checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
        try:
            params = checkpointer.restore((folder / "params").absolute(),
                                          args=ocp.args.StandardRestore(template))
        finally:
            checkpointer.close()
        params = jax.tree.map(np.asarray, params)
        float(meta["accuracy"])
    except Exception as e:  # noqa: BLE001 - a damaged cache fails in many ways.
        raise CacheError(first_line(e)) from e
    expected = meta.get("checksums", {})
    got = tree_sha256(params)
    if set(got) != set(expected) or any(expected[k] != v for k, v in got.items()):
        raise CacheError("its weights fail their SHA-256 check")
    if jax.tree.structure(params) != jax.tree.structure(template) or any(
            a.shape != b.shape for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(template),
                                              strict=True)):
        raise CacheError("its weights do not match the recipe's shapes")
    return Classifier(params, {k: v for k, v in meta.items() if k != "checksums"}, recipe)


@contextlib.contextmanager
def no_new_empty_folders(folder: Path | None) -> Iterator[None]:
    """Remove again `folder` and its parents that did not exist before and are still empty after.

    Scoring reads a data folder, and writes to it only the classifier it trains; a download that
    fails creates its folder first, and a cache that cannot be written leaves its parent: neither may
    leave an empty `data/` behind. Only empty folders are removed (`rmdir`), so nothing written there
    meanwhile, by this process or another, is ever lost.
    """
    try:
        new = [p for p in (folder, *folder.parents) if not p.exists()] if folder is not None else []
    except OSError:  # An unusable path: whatever reads it says so.
        new = []
    try:
        yield
    finally:
        for path in new:  # Deepest first.
            try:
                path.rmdir()
            except OSError:
                break


def _discard(folder: Path) -> None:
    """Move a damaged cache out of the way first, so a concurrent reader never sees it half-deleted."""
    trash = folder.with_name(f".{folder.name}.damaged-{os.getpid()}")
    try:
        os.rename(folder, trash)
    except OSError as e:
        raise UserError(f"cannot replace the damaged classifier cache {folder}: {e.strerror or e}") from e
    shutil.rmtree(trash, ignore_errors=True)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
