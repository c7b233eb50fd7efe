"""Distances between a sample and a reference sample (used by testing and comparison)."""

from __future__ import annotations

import numpy as np


def standardized_mean_error(x, ref_mean, ref_sd) -> np.ndarray:
    """|mean(x) - ref_mean| / ref_sd per coordinate."""
    return np.abs(np.mean(x, axis=0) - ref_mean) / ref_sd


def log_sd_ratio(x, ref_sd) -> np.ndarray:
    """log(sd(x) / ref_sd) per coordinate."""
    return np.log(np.std(x, axis=0, ddof=1) / ref_sd)


def _quantiles(v, n):
    return np.quantile(v, (np.arange(n) + 0.5) / n)


def sliced_wasserstein2(x, y, *, n_projections=100, seed=0, n_quantiles=1000) -> float:
    """Sliced 2-Wasserstein distance: the root mean over random unit directions of the squared 1-D
    W2 between the projected samples (compared at ``n_quantiles`` matched quantiles)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_projections, x.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    px, py = x @ dirs.T, y @ dirs.T
    sq = [np.mean((_quantiles(px[:, j], n_quantiles) - _quantiles(py[:, j], n_quantiles)) ** 2)
          for j in range(n_projections)]
    return float(np.sqrt(np.mean(sq)))


def mode_weights(x, centres) -> np.ndarray:
    """Fraction of draws nearest to each mode centre."""
    x, centres = np.asarray(x, float), np.asarray(centres, float)
    d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return np.bincount(d2.argmin(axis=1), minlength=len(centres)) / len(x)


def total_variation(p, q) -> float:
    """Total variation between two discrete distributions."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())
