"""Targets with exact samplers: the oracles invariance checks start from.

Each builder returns an :class:`ExactModel`: an ``mcsample.Target`` (numba log density and
gradient, parameters in ``args``) with ``exact(rng, n) -> (n, dim)`` drawing from it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from ..target import Target

_jit = numba.njit(cache=True)


@_jit
def diag_gauss_logp(x, mean, scale):
    s = 0.0
    for i in range(x.size):
        z = (x[i] - mean[i]) / scale[i]
        s += z * z
    return -0.5 * s


@_jit
def diag_gauss_logp_grad(x, mean, scale):
    g = np.empty(x.size)
    s = 0.0
    for i in range(x.size):
        z = (x[i] - mean[i]) / scale[i]
        s += z * z
        g[i] = -z / scale[i]
    return -0.5 * s, g


@_jit
def mvn_logp(x, mean, precision):
    d = x - mean
    return -0.5 * (d @ (precision @ d))


@_jit
def mvn_logp_grad(x, mean, precision):
    d = x - mean
    pd = precision @ d
    return -0.5 * (d @ pd), -pd


@_jit
def _component_log_densities(x, log_weights, means, scales, out):
    for k in range(means.shape[0]):
        s = log_weights[k]
        for i in range(x.size):
            z = (x[i] - means[k, i]) / scales[k, i]
            s -= 0.5 * z * z + np.log(scales[k, i])
        out[k] = s
    return out.max()


@_jit
def mixture_logp(x, log_weights, means, scales):
    """Mixture of diagonal Gaussians: log sum_k w_k N(x; means[k], diag(scales[k]^2))."""
    comp = np.empty(means.shape[0])
    m = _component_log_densities(x, log_weights, means, scales, comp)
    return m + np.log(np.sum(np.exp(comp - m)))


@_jit
def mixture_logp_grad(x, log_weights, means, scales):
    comp = np.empty(means.shape[0])
    m = _component_log_densities(x, log_weights, means, scales, comp)
    resp = np.exp(comp - m)
    total = resp.sum()
    resp /= total
    g = np.zeros(x.size)
    for k in range(means.shape[0]):
        for i in range(x.size):
            g[i] -= resp[k] * (x[i] - means[k, i]) / scales[k, i] ** 2
    return m + np.log(total), g


@_jit
def _scaled_squared_norm(x, loc, scale):
    q = 0.0
    for i in range(x.size):
        z = (x[i] - loc[i]) / scale[i]
        q += z * z
    return q


@_jit
def student_t_logp(x, loc, scale, nu):
    """Multivariate Student-t with nu degrees of freedom and diagonal scale."""
    return -0.5 * (nu + x.size) * np.log1p(_scaled_squared_norm(x, loc, scale) / nu)


@_jit
def student_t_logp_grad(x, loc, scale, nu):
    q = _scaled_squared_norm(x, loc, scale)
    factor = -(nu + x.size) / (nu + q)
    g = np.empty(x.size)
    for i in range(x.size):
        g[i] = factor * (x[i] - loc[i]) / scale[i] ** 2
    return -0.5 * (nu + x.size) * np.log1p(q / nu), g


@dataclass
class ExactModel:
    """A target and an exact sampler for it; ``centre`` is where log||x - centre|| is taken."""

    target: Target
    exact: Callable[[np.random.Generator, int], np.ndarray]
    centre: np.ndarray
    description: str = ""

    def __repr__(self):
        return f"ExactModel({self.description or self.target.name})"


def gaussian(mean, cov, name=None) -> ExactModel:
    """N(mean, cov); ``cov`` may be a vector of variances (diagonal) or a matrix."""
    mean = np.ascontiguousarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    d = mean.size
    if cov.ndim == 1:
        scale = np.ascontiguousarray(np.sqrt(cov))
        target = Target(diag_gauss_logp, d, logp_grad=diag_gauss_logp_grad, args=(mean, scale),
                        name=name or f"gauss{d}")
        return ExactModel(target, lambda rng, n: mean + scale * rng.standard_normal((n, d)), mean,
                          f"diagonal Gaussian d={d}")
    chol = np.linalg.cholesky(cov)
    precision = np.ascontiguousarray(np.linalg.inv(cov))
    target = Target(mvn_logp, d, logp_grad=mvn_logp_grad, args=(mean, precision), name=name or f"mvn{d}")
    return ExactModel(target, lambda rng, n: mean + rng.standard_normal((n, d)) @ chol.T, mean,
                      f"correlated Gaussian d={d}")


def mixture(weights, means, scales, name=None) -> ExactModel:
    """Mixture of diagonal Gaussians with component weights, means (K, d) and scales (K, d)."""
    weights = np.asarray(weights, dtype=float)
    weights = weights / weights.sum()
    means = np.ascontiguousarray(means, dtype=float)
    scales = np.ascontiguousarray(np.broadcast_to(scales, means.shape), dtype=float)
    k, d = means.shape
    target = Target(mixture_logp, d, logp_grad=mixture_logp_grad,
                    args=(np.ascontiguousarray(np.log(weights)), means, scales),
                    name=name or f"mixture{k}x{d}")

    def exact(rng, n):
        which = rng.choice(k, size=n, p=weights)
        return means[which] + scales[which] * rng.standard_normal((n, d))
    return ExactModel(target, exact, weights @ means, f"{k}-component Gaussian mixture d={d}")


def student_t(loc, scale, nu, name=None) -> ExactModel:
    """Multivariate Student-t: loc + scale * z / sqrt(chi2_nu / nu)."""
    loc = np.ascontiguousarray(loc, dtype=float)
    scale = np.ascontiguousarray(np.broadcast_to(scale, loc.shape), dtype=float)
    d = loc.size
    target = Target(student_t_logp, d, logp_grad=student_t_logp_grad, args=(loc, scale, float(nu)),
                    name=name or f"student_t{d}")

    def exact(rng, n):
        z = rng.standard_normal((n, d))
        w = np.sqrt(rng.chisquare(nu, size=(n, 1)) / nu)
        return loc + scale * z / w
    return ExactModel(target, exact, loc, f"Student-t nu={nu:g} d={d}")
