"""How good are the samples? `python -m jax_gan.evaluate INPUT`.

Losses do not say: a GAN's loss curves look the same whether it draws ten
digit classes or two. This scores samples against real digits that the
feature classifier (`jax_gan.classifier`) never trained on, with the metrics
of `gan_core.metrics`:

    python -m jax_gan.evaluate samples.npy               # (N, 28, 28) in [-1, 1]
    python -m jax_gan.evaluate runs/jax_gan --num 10000  # or a torch_reference run
    python -m jax_gan.evaluate runs/torch_reference --json quality.json

From Python, e.g. a trainer between epochs (the classifier and the reference
features are computed once per process, then reused):

    from jax_gan.evaluate import evaluate_images
    scores = evaluate_images(images, "mnist-sample", "data", num=2000, seed=0)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gan_core import metrics, rundir
from gan_core.cli import add_debug_flag, main_guard
from gan_core.config import DATASETS, Config
from gan_core.data import normalize
from gan_core.errors import UserError, first_line
from gan_core.latent import latent_points
from gan_core.quality import KEYS as TRAINING_KEYS
from gan_core.quality import as_eval_range
from jax_gan import backend, classifier
from jax_gan.generator_checkpoint import RUN_LAYOUT, load_generator, run_framework

NUM = 10_000
PARZEN_VALIDATION = 1_000  # Validation digits that choose the Parzen width: plenty for one number.
METRIC_KEYS = ("fid", "precision", "recall", "density", "coverage", "class_entropy", "classes_covered",
               "confidence", "parzen_ll", "parzen_se")
KEYS = (*METRIC_KEYS, "num_samples", "reference_split", "classifier_accuracy")


@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """The real side of every comparison: held-out digits, their features, the classifier."""

    dataset: str
    split: str  # Which digits, in words.
    classifier: classifier.Classifier
    features: np.ndarray  # Classifier features of the held-out digits.
    gaussian: tuple[np.ndarray, np.ndarray]  # Their mean and covariance, for FID.
    radii: np.ndarray  # Their squared k-NN radii, for the k-NN metrics.
    test_pixels: np.ndarray  # The held-out digits in [0, 1], flattened: Parzen's test set.
    val_pixels: np.ndarray  # Validation digits in [0, 1]: choose Parzen's width.


def load_reference(dataset: str = "mnist", data_dir: str | os.PathLike = "data", *,
                   allow_download: bool = True) -> Reference:
    """The reference for `dataset`, computed once per process (training the classifier once per dataset)."""
    key = (dataset, str(Path(data_dir).resolve()), classifier.RECIPE)
    if key not in _REFERENCES:
        clf, splits = classifier.load_with_splits(dataset, data_dir, allow_download=allow_download)
        test = normalize(splits.test[0])
        features, _ = clf.embed(test)
        val = splits.val[0][:PARZEN_VALIDATION]
        _REFERENCES[key] = Reference(splits.dataset, splits.reference, clf, features,
                                     metrics.gaussian(features),
                                     metrics.kth_neighbour_distances(features), _unit_pixels(test),
                                     _unit_pixels(normalize(val)))
    return _REFERENCES[key]


_REFERENCES: dict[tuple, Reference] = {}


def _unit_pixels(images: np.ndarray) -> np.ndarray:
    return ((np.asarray(images, np.float32) + 1) / 2).reshape(len(images), -1)


def check_images(images: Any, where: str = "images") -> np.ndarray:
    """(N, 28, 28) float32 in [-1, 1], or a UserError saying what is wrong.

    A singleton channel, (N, 28, 28, 1) as jax_gan's G returns or (N, 1, 28, 28)
    as the reference's does, is dropped.
    """
    x = np.asarray(images)
    if x.ndim == 4 and 1 in (x.shape[1], x.shape[3]) and x.shape[1:] in ((28, 28, 1), (1, 28, 28)):
        x = x.reshape(len(x), 28, 28)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise UserError(f"{where}: expected images of shape (N, 28, 28), got {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise UserError(f"{where}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if len(x) and not np.isfinite(x).all():
        raise UserError(f"{where}: {int((~np.isfinite(x)).sum())} values are NaN or infinite")
    if len(x) and (x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6):
        raise UserError(f"{where}: values must lie in [-1, 1] (the generator's tanh range), got "
                        f"[{x.min():g}, {x.max():g}]; scale uint8 pixels p as p / 127.5 - 1")
    if len(x) <= metrics.K:
        raise UserError(f"{where}: {len(x)} images are too few; the k-nearest-neighbour metrics "
                        f"(k={metrics.K}) need at least {metrics.K + 1}")
    return np.clip(x, -1.0, 1.0)


def evaluate_images(images: np.ndarray, dataset: str = "mnist", data_dir: str | os.PathLike = "data",
                    num: int | None = None, seed: int = 0, *, parzen: bool = True) -> dict[str, Any]:
    """Quality of generated images against the dataset's held-out digits: the `KEYS` dict.

    `images`: (N, 28, 28) in [-1, 1]; the first `num` are used (all if None).
    `seed` orders the samples for the k-NN metrics' equal-size chunks.
    `parzen=False` skips the Parzen window (its distances are in pixel space,
    the costliest part) and reports None for `parzen_ll` and `parzen_se`.
    Bad images raise `UserError`. The first call in a process loads (or trains)
    the classifier and embeds the reference; later calls reuse them.
    """
    return assess(images, load_reference(dataset, data_dir), num=num, seed=seed, parzen=parzen)[0]


def assess(images: np.ndarray, reference: Reference, *, num: int | None = None, seed: int = 0,
           parzen: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """`evaluate_images` against a loaded reference; also returns details for the printed table
    (class shares, Parzen width, seconds)."""
    start = time.perf_counter()
    images = check_images(images if num is None else np.asarray(images)[:num])
    features, probs = reference.classifier.embed(images)
    scores: dict[str, Any] = {"fid": metrics.frechet_distance(*metrics.gaussian(features),
                                                              *reference.gaussian)}
    scores.update(metrics.prdc_matched(reference.features, features, metrics.K, seed, reference.radii))
    scores.update(metrics.class_stats(probs))
    details: dict[str, Any] = {"class_shares": np.bincount(probs.argmax(1), minlength=probs.shape[1])
                               / len(probs)}
    if parzen:
        window = metrics.parzen(_unit_pixels(images), reference.val_pixels, reference.test_pixels)
        details["parzen_sigma"] = window.pop("parzen_sigma")
        scores.update(window)
    else:
        scores.update(parzen_ll=None, parzen_se=None)
    scores.update(num_samples=len(images), reference_split=reference.split,
                  classifier_accuracy=reference.classifier.accuracy)
    details["seconds"] = time.perf_counter() - start
    return {k: scores[k] for k in KEYS}, details


def calibration_sets(dataset: str = "mnist-sample", data_dir: str | os.PathLike = "data",
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Image sets whose scores a person can predict, to read the metrics by (README, tests).

    - "real": up to 10,000 of the training digits, in a seeded random order (the GAN's
      training data too): what a generator that reproduced its data would score;
    - "collapsed": 5,000 copies of five "1"s from those digits;
    - "noise": 10,000 images of uniform noise in [-1, 1].
    """
    _, splits = classifier.load_with_splits(dataset, data_dir)
    images, labels = splits.train
    rng = np.random.default_rng(seed)
    real = normalize(images[rng.permutation(len(images))[:NUM]])  # Random: the splits are class-sorted.
    ones = normalize(images[np.flatnonzero(labels == 1)[:5]])
    noise = rng.uniform(-1, 1, (NUM, 28, 28)).astype(np.float32)
    return {"real": real, "collapsed": np.tile(ones, (1_000, 1, 1)), "noise": noise}


# --- the command --------------------------------------------------------------------------------

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
    if array.ndim >= 1:
        array = array[:num]
    images = check_images(array, str(path))
    return Source(images, f"{path}")


def run_samples(path: Path, num: int, seed: int) -> Source:
    """G(z) with dropout off for `num` latents from `seed`, from a jax_gan or torch_reference run."""
    import jax.numpy as jnp

    from jax_gan.train_step import generate

    g = load_generator(path)
    z = latent_points(seed, num, g.config.latent_dim)
    images = as_eval_range(np.asarray(generate(g.params, jnp.asarray(z), g.config)),
                           g.config.tutorial_normalization)
    return Source(check_images(images, str(path)), f"{path} ({g.framework} run, step {g.step:,})",
                  g.meta.get("dataset_used") or g.config.dataset, g.config.data_dir)


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


MEANINGS = {
    "fid": "Fréchet distance of classifier features to the real digits (0 = same distribution)",
    "precision": "share of samples inside the real digits' k-NN balls (realism; k=3)",
    "recall": "share of real digits inside the samples' k-NN balls (variety)",
    "density": "real k-NN balls holding each sample, over k (about 1 for real digits)",
    "coverage": "share of real digits with a sample in their k-NN ball",
    "class_entropy": "nats of the predicted-class histogram (2.303 = ten equal classes)",
    "classes_covered": "classes holding at least 1% of the samples",
    "confidence": "mean top class probability (how digit-like the samples look)",
    "parzen_ll": "Parzen-window log-likelihood of the real digits, nats (Goodfellow 2014)",
}


def table(scores: dict[str, Any], details: dict[str, Any]) -> str:
    lines = [f"{'metric':<16}{'value':>16}  meaning"]
    for key in METRIC_KEYS:
        if key == "parzen_se":
            continue
        value = scores[key]
        if key == "parzen_ll":
            shown = "skipped" if value is None else f"{value:.1f} ± {scores['parzen_se']:.1f}"
            meaning = MEANINGS[key] + (f", sigma {details['parzen_sigma']:.3f}" if value is not None else "")
        else:
            shown = str(value) if isinstance(value, int) else f"{value:.3f}"
            meaning = MEANINGS[key]
        lines.append(f"{key:<16}{shown:>16}  {meaning}")
    shares = " ".join(f"{c}:{100 * s:.0f}%" for c, s in enumerate(details["class_shares"]))
    lines.append(f"{'class shares':<16}  {shares}")
    return "\n".join(lines)


def serve(dataset: str, data_dir: str, requests: TextIO = sys.stdin, replies: TextIO | None = None) -> int:
    """The scoring worker behind `--eval-every` (`gan_core.quality.QualityWorker`).

    Loads the reference once, then answers each request line, JSON
    {"images": PATH.npy, "seed": S}, with one JSON line of `TRAINING_KEYS`
    scores (no Parzen window), or {"error": MESSAGE}; exits at end of input.
    Everything else this process prints goes to stderr, so the replies stay
    the only lines on stdout.
    """
    if replies is None:  # Replies get the real stdout; everything else printed, C libraries included, stderr.
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    try:
        reference = load_reference(dataset, data_dir)
    except UserError as e:
        reply({"error": str(e)})
        return 2
    reply({"reference_split": reference.split, "classifier_accuracy": reference.classifier.accuracy})
    folders = set()  # The trainer's temporary folders: removed here too, in case it was killed.
    for line in requests:
        try:
            request = json.loads(line)
            folders.add(Path(request["images"]).parent)
            images = np.load(request["images"], allow_pickle=False)
            scores, _ = assess(images, reference, seed=int(request.get("seed", 0)), parzen=False)
            reply({k: scores[k] for k in TRAINING_KEYS})
        except UserError as e:
            reply({"error": str(e)})
        except (OSError, ValueError, KeyError, TypeError) as e:
            reply({"error": f"bad request: {e}"})
    for folder in folders:
        if folder.name.startswith("jax-gan-eval-"):
            shutil.rmtree(folder, ignore_errors=True)
    return 0


@main_guard
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jax_gan.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", help="a .npy of images (N, 28, 28) in [-1, 1], or a jax_gan or "
                                 "torch_reference run directory (or its checkpoint: RUN/best or "
                                 "RUN/best.pth is the best-FID state of a run trained with --eval-every)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="real digits to compare with (default: the run's dataset; mnist for a .npy)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the dataset lives and the classifier is cached "
                        "(default: the run's; data for a .npy)")
    p.add_argument("--num", type=int, default=NUM,
                   help=f"samples to draw from a run, or the most to read from a .npy (default: {NUM:,})")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents and of the k-NN chunks "
                                                       "(default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the scores to this JSON file")
    p.add_argument("--no-parzen", action="store_true",
                   help="skip the Parzen window (the slowest metric on full MNIST)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # gan_core.quality's worker.
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.serve:
        return serve(args.dataset or Config().dataset, args.data_dir or Config().data_dir)
    if args.input is None:
        p.error("the following arguments are required: input")
    if args.num <= metrics.K:
        raise UserError(f"--num must be at least {metrics.K + 1} for the k-NN metrics (k={metrics.K}), "
                        f"got {args.num}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    out = Path(args.json) if args.json else None
    if out is not None and not rundir.checked(out.parent.is_dir, out.parent):
        raise UserError(f"directory {out.parent} does not exist")
    backend.platform()
    source = read_input(Path(args.input), args.num, args.seed)
    dataset = args.dataset or source.dataset or Config().dataset
    data_dir = args.data_dir or source.data_dir or Config().data_dir
    reference = load_reference(dataset, data_dir)
    scores, details = assess(source.images, reference, seed=args.seed, parzen=not args.no_parzen)
    print(f"{scores['num_samples']:,} samples from {source.what}\n"
          f"against the {reference.split}\n"
          f"feature classifier: {100 * reference.classifier.accuracy:.2f}% accurate on those images\n")
    print(table(scores, details))
    if out is not None:
        with rundir.atomic_write(out) as f:
            f.write(json.dumps(scores, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
