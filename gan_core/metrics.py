"""Sample-quality metrics in NumPy alone: no JAX, no torch, so either trainer's numbers mean the same.

Each takes plain arrays (classifier features, class probabilities or pixels)
and returns floats:

- `fid`: Fréchet distance between Gaussians fitted to two feature sets.
- `prdc`: precision and recall (Kynkäänniemi et al. 2019) and density and
  coverage (Naeem et al. 2020), from k-nearest-neighbour balls, k = 3.
- `class_stats`: entropy of the predicted-class histogram, classes holding at
  least 1% of the samples, mean top probability.
- `parzen`: the Parzen-window log-likelihood of Goodfellow et al. 2014.

Distances are computed in row blocks, so memory stays near `BLOCK` x M floats
however many samples there are.
"""

from __future__ import annotations

import math

import numpy as np

K = 3  # Neighbours for the k-NN metrics, as Kynkäänniemi et al. and Naeem et al. recommend.
MIN_CLASS_SHARE = 0.01
# Goodfellow et al.'s cross-validation grid (their parzen_ll.py), pixels in [0, 1].
PARZEN_SIGMAS = tuple(np.logspace(-1, 0, num=10))
BLOCK = 1024


# --- Fréchet distance ---------------------------------------------------------------------------

def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix, by eigendecomposition.

    `scipy.linalg.sqrtm` on a general matrix can return complex parts and lose
    accuracy on near-singular covariances; eigh keeps everything real, and the
    tiny negative eigenvalues rounding leaves are clipped to zero.
    """
    matrix = np.asarray(matrix, np.float64)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)), in float64.

    tr (C1 C2)^(1/2) = tr (S C2 S)^(1/2) with S = C1^(1/2): S C2 S is symmetric
    PSD, so both square roots are symmetric-eigenvalue ones.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    s = sqrtm_psd(cov1)
    middle = s @ cov2 @ s
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(values, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return max(float(value), 0.0)  # Rounding can leave -1e-12 for identical sets.


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of a feature set with 2 or more rows: FID's summary of a set."""
    x = np.asarray(features, np.float64)
    if len(x) < 2:
        raise ValueError("FID needs at least 2 samples in each set")
    return x.mean(0), np.cov(x, rowvar=False)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between two feature sets (rows are samples)."""
    return frechet_distance(*gaussian(features_a), *gaussian(features_b))


# --- k-nearest-neighbour metrics ----------------------------------------------------------------

def squared_distances(a: np.ndarray, b: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Pairwise squared Euclidean distances (len(a), len(b)) computed in `dtype`, never negative.

    float32 halves the time of the products and partitions that dominate the
    k-NN metrics and the Parzen window; centre the data first (`centred`) so the
    norms, and so their rounding, stay small.
    """
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return np.maximum(d, 0)


def centred(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays (rows are points) less the first one's mean: same distances, smaller norms."""
    shift = np.asarray(arrays[0], np.float64).mean(0)
    return [np.asarray(a, np.float64) - shift for a in arrays]


def kth_neighbour_distances(x: np.ndarray, k: int = K) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row (itself excluded), float32.

    As in Naeem et al.'s reference code: the (k+1)-th smallest distance counting
    the row itself, so duplicates of a point are neighbours at distance 0.
    """
    if len(x) <= k:
        raise ValueError(f"k-NN metrics need more than k={k} samples, got {len(x)}")
    [x] = centred(x)
    out = np.empty(len(x), np.float32)
    for i in range(0, len(x), BLOCK):
        d = squared_distances(x[i:i + BLOCK], x, np.float32)
        out[i:i + BLOCK] = np.partition(d, k, axis=1)[:, k]
    return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int = K,
         real_radii: np.ndarray | None = None) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` features.

    - precision: share of fakes inside the union of real k-NN balls (are they realistic?)
    - recall: share of reals inside the union of fake k-NN balls (is the variety there?)
    - density: how many real balls hold each fake, over k (1 on average for a perfect model;
      above 1 where fakes crowd dense regions)
    - coverage: share of real balls holding at least one fake (robust to outliers)

    Strict "<" as in both papers' code: a collapsed set, whose copies have
    k-NN balls of radius 0, recalls nothing. `real_radii`: the reals'
    `kth_neighbour_distances`, when already known.
    """
    r_real = kth_neighbour_distances(real, k) if real_radii is None else real_radii
    r_fake = kth_neighbour_distances(fake, k)
    real, fake = centred(real, fake)
    inside_real_balls = np.zeros(len(fake))  # For each fake: how many real balls hold it.
    recalled = np.zeros(len(real), bool)
    nearest_fake = np.full(len(real), np.inf)
    for i in range(0, len(fake), BLOCK):
        d = squared_distances(fake[i:i + BLOCK], real, np.float32)  # (fakes, reals)
        inside_real_balls[i:i + BLOCK] = (d < r_real[None, :]).sum(1)
        recalled |= (d < r_fake[i:i + BLOCK, None]).any(0)
        nearest_fake = np.minimum(nearest_fake, d.min(0))
    return {"precision": float((inside_real_balls > 0).mean()),
            "recall": float(recalled.mean()),
            "density": float(inside_real_balls.mean() / k),
            "coverage": float((nearest_fake < r_real).mean())}


def prdc_matched(real: np.ndarray, fake: np.ndarray, k: int = K, seed: int = 0,
                 real_radii: np.ndarray | None = None) -> dict[str, float]:
    """`prdc` on sets of equal size, as both papers assume, using every sample that fits.

    The metrics depend on the two set sizes (a larger fake set has smaller
    balls), so: more fakes than reals are split into disjoint chunks of the
    reals' size (in a seeded random order; a remainder is left out) and the
    chunks' metrics averaged; fewer fakes are compared with a seeded random
    subset of the reals of their size. `real_radii`: the whole real set's
    `kth_neighbour_distances`, when already known (a fixed reference).
    """
    real, fake = np.asarray(real), np.asarray(fake)
    rng = np.random.default_rng(seed)
    if len(fake) < len(real):
        return prdc(real[np.sort(rng.permutation(len(real))[:len(fake)])], fake, k)
    order = rng.permutation(len(fake))
    if real_radii is None:
        real_radii = kth_neighbour_distances(real, k)  # The same reals for every chunk.
    chunks = [prdc(real, fake[order[i:i + len(real)]], k, real_radii)
              for i in range(0, len(fake) - len(real) + 1, len(real))]
    return {name: float(np.mean([c[name] for c in chunks])) for name in chunks[0]}


# --- class histogram ----------------------------------------------------------------------------

def class_stats(probabilities: np.ndarray, min_share: float = MIN_CLASS_SHARE) -> dict[str, float]:
    """From (N, classes) probabilities: `class_entropy` in nats of the argmax histogram (log 10 =
    2.303 for ten equal classes), `classes_covered` (classes with at least `min_share` of the
    samples) and `confidence` (mean top probability)."""
    p = np.asarray(probabilities, np.float64)
    counts = np.bincount(p.argmax(1), minlength=p.shape[1])
    share = counts / counts.sum()
    nonzero = share[share > 0]
    return {"class_entropy": float(-(nonzero * np.log(nonzero)).sum() + 0.0),
            "classes_covered": int((share >= min_share - 1e-12).sum()),
            "confidence": float(p.max(1).mean())}


# --- Parzen window ------------------------------------------------------------------------------

def parzen_log_likelihoods(centers: np.ndarray, points: np.ndarray,
                           sigmas: float | tuple[float, ...]) -> np.ndarray:
    """log p(x) for each row x of `points` under an isotropic Gaussian mixture on `centers`:
    (len(points),) for one sigma, (len(sigmas), len(points)) for several.

    log p(x) = logsumexp_i(-|x - c_i|^2 / 2 sigma^2) - log n - (d/2) log(2 pi sigma^2).
    Each block of distances is computed once and used for every sigma. Distances and
    exponentials are float32 (on centred data): the error they leave is at most about
    1e-3 nats, far below the standard error, at half the cost of float64.
    """
    many = not np.isscalar(sigmas)
    sigmas = np.atleast_1d(np.asarray(sigmas, np.float64))
    centers, points = centred(np.reshape(centers, (len(centers), -1)), np.reshape(points, (len(points), -1)))
    dim = centers.shape[1]
    centers = centers.astype(np.float32)
    out = np.empty((len(sigmas), len(points)))
    for i in range(0, len(points), BLOCK):
        d = squared_distances(points[i:i + BLOCK], centers, np.float32)
        nearest = d.min(1, keepdims=True)  # logsumexp's shift: the nearest center's term is largest.
        for j, sigma in enumerate(sigmas):
            scale = 2 * sigma**2
            terms = np.exp((nearest - d) * np.float32(1 / scale)).sum(1, dtype=np.float64)
            out[j, i:i + BLOCK] = (np.log(terms) - nearest[:, 0] / scale - math.log(len(centers))
                                   - dim / 2 * math.log(math.pi * scale))
    return out if many else out[0]


def parzen(samples: np.ndarray, validation: np.ndarray, test: np.ndarray,
           sigmas: tuple[float, ...] = PARZEN_SIGMAS) -> dict[str, float]:
    """Goodfellow et al. 2014: a Gaussian Parzen window on the samples, its width chosen on
    `validation` (highest mean log-likelihood), scored on `test`; `parzen_se` is the standard
    error of that mean. Pixels should be in [0, 1], flattened or not, as theirs were.
    """
    samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
    best = float(sigmas[int(np.argmax(parzen_log_likelihoods(samples, validation, tuple(sigmas)).mean(1)))])
    ll = parzen_log_likelihoods(samples, test, best)
    se = float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else float("nan")
    return {"parzen_ll": float(ll.mean()), "parzen_se": se, "parzen_sigma": best}
