"""Known answers: real digits, a collapsed generator and noise, whose scores a person can predict.

What they score is the scale a run's numbers are read against (README, tests).
"""

from __future__ import annotations

import os

import numpy as np

from gan_core.data import normalize
from jax_gan.quality import classifier

SIZE = 10_000  # Real digits (at most) and noise images.


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
    real = normalize(images[rng.permutation(len(images))[:SIZE]])  # Random: the splits are class-sorted.
    ones = normalize(images[np.flatnonzero(labels == 1)[:5]])
    noise = rng.uniform(-1, 1, (SIZE, 28, 28)).astype(np.float32)
    return {"real": real, "collapsed": np.tile(ones, (1_000, 1, 1)), "noise": noise}
