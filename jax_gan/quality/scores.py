"""Every score of a set of generated images, against real digits the feature classifier never saw.

From Python, e.g. a trainer between epochs (the classifier and the reference
features are computed once per process, then reused):

    from jax_gan.quality.scores import evaluate_images
    scores = evaluate_images(images, "mnist-sample", "data", num=2000, seed=0)
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from gan_core import metrics
from gan_core.data import normalize
from gan_core.errors import DataError, UserError
from jax_gan.quality import classifier

PARZEN_VALIDATION = 1_000  # Validation digits that choose the Parzen width: plenty for one number.
METRIC_KEYS = ("fid", "precision", "recall", "density", "coverage", "class_entropy", "classes_covered",
               "confidence", "parzen_ll", "parzen_se")
KEYS = (*METRIC_KEYS, "num_samples", "reference_split", "classifier_accuracy")
# The fewest images a score means anything for. FID fits a Gaussian to the classifier's features: the
# covariance of N samples has rank at most N - 1, so it is singular below features + 1 = 129. The k-NN
# metrics compare with as many real digits as there are samples, and among a few dozen points every
# k-NN ball (k=3) is so wide that it holds anything: 4 uniform-noise images scored precision 1 and
# coverage 1, 64 still scored some, 129 score 0 while 129 real digits score about 0.9.
MIN_SAMPLES = classifier.RECIPE.features + 1
TOO_FEW = (f"the scores need at least {MIN_SAMPLES}: FID's {MIN_SAMPLES - 1}-dimensional feature "
           f"covariance is singular with fewer, and so few points make k-NN balls (k={metrics.K}) so wide "
           "that even noise reads as realistic")


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
        if len(splits.test[0]) < MIN_SAMPLES:
            raise DataError(f"the {splits.reference} are {len(splits.test[0])} images, too few to compare "
                            f"with; {TOO_FEW}")
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
    if len(x) < MIN_SAMPLES:
        raise UserError(f"{where}: {len(x)} images are too few to score; {TOO_FEW}")
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
