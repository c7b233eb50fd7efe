"""Distances between a sample and a reference sample (used by testing and comparison)."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

_REFERENCE_SIDE = {}  # kind -> (key, arrays): the last reference sample's, see _reference_side


def _reference_side(kind, y, params, compute):
    """The reference-side arrays of a sliced distance (projections sorted, quantiles), kept for
    the last reference sample of each kind: mc.compare's floors measure many small samples against
    one reference. Keyed by a digest of y's bytes, so an array changed in place is recomputed."""
    y = np.ascontiguousarray(y)
    key = (hashlib.blake2b(y.view(np.uint8), digest_size=16).digest(), y.shape, params)
    hit = _REFERENCE_SIDE.get(kind)
    if hit is None or hit[0] != key:
        hit = (key, compute(y))
        _REFERENCE_SIDE[kind] = hit
    return hit[1]


def _directions(n_projections, dim, seed):
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_projections, dim))
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def standardized_mean_error(x, ref_mean, ref_sd) -> np.ndarray:
    """|mean(x) - ref_mean| / ref_sd per coordinate."""
    return np.abs(np.mean(x, axis=0) - ref_mean) / ref_sd


def log_sd_ratio(x, ref_sd) -> np.ndarray:
    """log(sd(x) / ref_sd) per coordinate."""
    return np.log(np.std(x, axis=0, ddof=1) / ref_sd)


def _quantiles(v, n):
    """The (k + 1/2) / n quantiles of each column (all projections in one call: mc.compare's floors
    evaluate the sliced distances many times)."""
    s = np.sort(v, axis=0)  # numpy's default ("linear") quantiles, 4x faster than np.quantile here
    pos = (np.arange(n) + 0.5) / n * (len(s) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(s) - 1)
    t = (pos - lo).reshape((-1,) + (1,) * (s.ndim - 1))
    return s[lo] + (s[hi] - s[lo]) * t


def sliced_wasserstein2(x, y, *, n_projections=100, seed=0, n_quantiles=1000) -> float:
    """Sliced 2-Wasserstein distance: the root mean over random unit directions of the squared 1-D
    W2 between the projected samples (compared at ``n_quantiles`` matched quantiles)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    dirs = _directions(n_projections, x.shape[1], seed)
    qy = _reference_side("sliced_w2", y, (n_projections, seed, n_quantiles),
                         lambda y: _quantiles(y @ dirs.T, n_quantiles))
    sq = np.mean((_quantiles(x @ dirs.T, n_quantiles) - qy) ** 2, axis=0)
    return float(np.sqrt(np.mean(sq)))


def mode_weights(x, centres) -> np.ndarray:
    """Fraction of draws nearest to each mode centre."""
    x, centres = np.asarray(x, float), np.asarray(centres, float)
    d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return np.bincount(d2.argmin(axis=1), minlength=len(centres)) / len(x)


def total_variation(p, q) -> float:
    """Total variation between two discrete distributions."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def _subsample(x, n, rng):
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]


def mmd_rbf(x, y, *, max_points=2000, seed=0) -> float:
    """Unbiased squared MMD with an RBF kernel whose bandwidth is the median pairwise distance of
    the pooled sample (the median heuristic); samples are subsampled to ``max_points``."""
    rng = np.random.default_rng(seed)
    x = _subsample(np.asarray(x, float), max_points, rng)
    y = _subsample(np.asarray(y, float), max_points, rng)
    z = np.concatenate([x, y])
    from scipy.spatial.distance import cdist, pdist
    pairs = pdist(z, "sqeuclidean")  # the i < j distances, in the order of np.triu_indices
    h2 = np.median(pairs)
    sq = cdist(z, z, "sqeuclidean")
    k = np.exp(-sq / max(h2, 1e-300))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2.0 * kxy.mean())


def wasserstein2(x, y, *, max_points=1000, seed=0) -> float:
    """Exact 2-Wasserstein distance (POT's network simplex) between evenly weighted subsamples
    of at most ``max_points`` each."""
    import ot
    rng = np.random.default_rng(seed)
    x = _subsample(np.asarray(x, float), max_points, rng)
    y = _subsample(np.asarray(y, float), max_points, rng)
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return float(np.sqrt(max(float(ot.emd2(a, b, ot.dist(x, y, metric="sqeuclidean"))), 0.0)))


def sinkhorn_w2(x, y, *, reg=0.05, max_points=1000, max_iter=500, seed=0) -> float:
    """Entropy-regularised W2 (POT's Sinkhorn on squared Euclidean cost, uniform weights), the
    metric the multiscale paper reports with reg = 0.05; returns the square root of the
    regularised transport cost. Samples are subsampled to ``max_points``; at most ``max_iter``
    log-domain Sinkhorn iterations. On wide targets, where reg = 0.05 is tiny next to the costs,
    500 iterations are far from convergence and the value reads *low*, not high: the unconverged
    plan violates its marginals and transports more cheaply. Exact mog8 draws against exact draws
    gave 0.38-0.53 here, against an exact W2 of 1.23-1.30 (benchmarks/results/rdmc_entropic_w2.md);
    compare values only against a floor computed the same way."""
    import ot
    rng = np.random.default_rng(seed)
    x = _subsample(np.asarray(x, float), max_points, rng)
    y = _subsample(np.asarray(y, float), max_points, rng)
    cost = ot.dist(x, y, metric="sqeuclidean")
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns when max_iter is reached
        value = ot.sinkhorn2(a, b, cost, reg, method="sinkhorn_log", numItermax=max_iter)
    return float(np.sqrt(max(float(value), 0.0)))


def sliced_ks(x, y, *, n_projections=128, seed=0) -> float:
    """Mean over random unit directions of the two-sample KS distance of the projections (the
    funnel metric of Grenioux et al. 2023, with 128 projections as in SLIPS)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    dirs = _directions(n_projections, x.shape[1], seed)

    def sorted_with_ranks(y):
        py = np.sort(y @ dirs.T, axis=0)
        return py, np.stack([np.searchsorted(py[:, j], py[:, j], side="right") for j in range(n_projections)], 1)

    py, rank_y = _reference_side("sliced_ks", y, (n_projections, seed), sorted_with_ranks)
    px = np.sort(x @ dirs.T, axis=0)
    return float(np.mean([_ks_statistic(px[:, j], py[:, j], rank_y[:, j]) for j in range(n_projections)]))


def _ks_statistic(a, b, rank_b):
    """sup |F_a - F_b| of two sorted samples over the points of both, as scipy's ks_2samp computes
    it (the statistic alone: its p-value, which the distance does not use, is most of ks_2samp's
    time); ``rank_b`` is searchsorted(b, b, "right"), which the reference side keeps."""
    n, m = len(a), len(b)
    diff = np.concatenate([np.searchsorted(a, a, side="right") / n - np.searchsorted(b, a, side="right") / m,
                           np.searchsorted(a, b, side="right") / n - rank_b / m])
    return max(float(np.clip(-diff.min(), 0.0, 1.0)), float(diff.max()))


def entropic_mode_coverage(x, centres) -> float:
    """Normalised entropy H / log K of the nearest-centre histogram: 1 when every mode is visited
    equally, 0 when all draws sit in one mode."""
    w = mode_weights(x, centres)
    w = w[w > 0]
    return float(max(0.0, -(w * np.log(w)).sum() / np.log(len(centres))))
