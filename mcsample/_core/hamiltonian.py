"""Euclidean Hamiltonian dynamics with a diagonal or dense inverse metric.

Conventions (Stan's): U(q) = -log p(q); the inverse metric M^-1 approximates the posterior
covariance; momentum p ~ N(0, M); velocity v = M^-1 p; kinetic energy K = p.v / 2.
A metric travels to the kernels as a :class:`Metric`. Dot products are explicit loops so results
never depend on a threaded BLAS.
"""

from collections import namedtuple

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, fastmath=False)
# Inlined at numba-IR level (as the slice primitives in _core/slice.py): a call with array
# arguments costs an atomic reference count on each, and velocity runs twice per leapfrog step.
# numba's cache checks only the caller's file: after editing this module delete the kernels'
# caches (mcsample/**/__pycache__/*.nbi, *.nbc) or touch their files.
_inline = numba.njit(cache=True, nogil=True, fastmath=False, inline="always")

# The inverse metric M^-1. ``inv_diag`` (d,) is used when ``dense`` is False; otherwise
# ``inv_dense`` (d, d) and its Cholesky factor ``chol`` (``inv_diag`` then holds its diagonal).
# A named tuple: numba passes it as its fields, and kernels taking it keep their on-disk cache
# because the class is importable from here.
Metric = namedtuple("Metric", ["dense", "inv_diag", "inv_dense", "chol"])


def diagonal_metric(inv_diag) -> Metric:
    """A diagonal metric from variances (d,), as given (no checks)."""
    return Metric(False, np.ascontiguousarray(inv_diag, dtype=np.float64), np.zeros((1, 1)), np.zeros((1, 1)))


def make_metric(inv_metric) -> Metric:
    """A diagonal metric from variances (d,) or a dense one from a covariance (d, d); raises
    ValueError for variances that are not finite and positive or a matrix that is not positive
    definite."""
    m = np.asarray(inv_metric, dtype=np.float64)
    if m.ndim == 1:
        if not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise ValueError("the inverse metric must be finite and positive")
        return diagonal_metric(m)
    try:
        chol = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError("the dense inverse metric is not positive definite") from None
    return Metric(True, np.ascontiguousarray(np.diag(m).copy()), np.ascontiguousarray(m),
                  np.ascontiguousarray(chol))


@_jit
def dot(a, b):
    s = 0.0
    for i in range(a.size):
        s += a[i] * b[i]
    return s


@_jit
def draw_momentum(rng, metric, p):
    """p ~ N(0, M) with M = (M^-1)^-1: p = z / sqrt(m) (diagonal) or solve(L^T, z) (dense)."""
    d = p.size
    inv_diag, chol = metric.inv_diag, metric.chol
    if not metric.dense:
        for i in range(d):
            p[i] = rng.standard_normal() / np.sqrt(inv_diag[i])
        return
    for i in range(d):
        p[i] = rng.standard_normal()
    for i in range(d - 1, -1, -1):  # back substitution L^T p = z: Cov(p) = L^-T L^-1 = M
        s = p[i]
        for j in range(i + 1, d):
            s -= chol[j, i] * p[j]
        p[i] = s / chol[i, i]


@_inline
def velocity(metric, p, v):
    """v = M^-1 p."""
    d = p.size
    inv_diag, inv_dense = metric.inv_diag, metric.inv_dense
    if not metric.dense:
        for i in range(d):
            v[i] = inv_diag[i] * p[i]
        return
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += inv_dense[i, j] * p[j]
        v[i] = s


@_jit
def leapfrog(logp_grad, args, q, p, g, v, step, metric):
    """One velocity-Verlet step of size ``step`` (negative integrates backwards), in place.

    ``g`` holds grad log p(q) on entry and on exit, so a step costs one gradient evaluation.
    On exit ``v`` is the velocity of the new momentum. Returns log p at the new q.
    """
    d = q.size
    half = 0.5 * step
    for i in range(d):
        p[i] += half * g[i]
    velocity(metric, p, v)
    for i in range(d):
        q[i] += step * v[i]
    lp, grad = logp_grad(q, *args)
    for i in range(d):
        g[i] = grad[i]
        p[i] += half * g[i]
    velocity(metric, p, v)
    return lp


@_jit
def hamiltonian(lp, p, v):
    """H = -log p + p.v/2, with NaN mapped to +inf so that it counts as a divergence."""
    h = -lp + 0.5 * dot(p, v)
    if np.isnan(h):
        return np.inf
    return h


@_jit
def find_reasonable_step_size(logp_grad, args, rng, q, lp, g, step, metric, target_accept):
    """Stan's ``init_stepsize``: double or halve the step until one leapfrog step's acceptance
    crosses ``target_accept`` (0.8). Returns (step, number of gradient evaluations)."""
    d = q.size
    qq = np.empty(d)
    pp = np.empty(d)
    gg = np.empty(d)
    vv = np.empty(d)
    log_target = np.log(target_accept)
    n_grad = 0
    direction = 0
    while True:
        draw_momentum(rng, metric, pp)
        velocity(metric, pp, vv)
        h0 = hamiltonian(lp, pp, vv)
        qq[:] = q
        gg[:] = g
        lp1 = leapfrog(logp_grad, args, qq, pp, gg, vv, step, metric)
        n_grad += 1
        delta_h = h0 - hamiltonian(lp1, pp, vv)  # NaN is impossible here: hamiltonian maps it to inf
        this_direction = 1 if delta_h > log_target else -1
        if direction == 0:
            direction = this_direction
        if this_direction != direction:
            return step, n_grad
        step = step * 2.0 if direction == 1 else step * 0.5
        if step > 1e7:
            raise ValueError("step size search diverged above 1e7: is the posterior improper?")
        if step == 0.0:
            raise ValueError("step size search collapsed to 0: no finite step is accepted")
