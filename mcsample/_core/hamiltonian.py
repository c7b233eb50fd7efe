"""Euclidean Hamiltonian dynamics with a diagonal or dense inverse metric.

Conventions (Stan's): U(q) = -log p(q); the inverse metric M^-1 approximates the posterior
covariance; momentum p ~ N(0, M); velocity v = M^-1 p; kinetic energy K = p.v / 2.
A metric travels to the kernels as ``(dense, inv_diag, inv_dense, chol)``: ``inv_diag`` (d,) is
used when ``dense`` is False, otherwise ``inv_dense`` (d, d) and its Cholesky factor ``chol``.
Dot products are explicit loops so results never depend on a threaded BLAS.
"""

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, fastmath=False)


@_jit
def dot(a, b):
    s = 0.0
    for i in range(a.size):
        s += a[i] * b[i]
    return s


@_jit
def draw_momentum(rng, dense, inv_diag, chol, p):
    """p ~ N(0, M) with M = (M^-1)^-1: p = z / sqrt(m) (diagonal) or solve(L^T, z) (dense)."""
    d = p.size
    if not dense:
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


@_jit
def velocity(dense, inv_diag, inv_dense, p, v):
    d = p.size
    if not dense:
        for i in range(d):
            v[i] = inv_diag[i] * p[i]
        return
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += inv_dense[i, j] * p[j]
        v[i] = s


@_jit
def leapfrog(logp_grad, args, q, p, g, v, step, dense, inv_diag, inv_dense):
    """One velocity-Verlet step of size ``step`` (negative integrates backwards), in place.

    ``g`` holds grad log p(q) on entry and on exit, so a step costs one gradient evaluation.
    On exit ``v`` is the velocity of the new momentum. Returns log p at the new q.
    """
    d = q.size
    half = 0.5 * step
    for i in range(d):
        p[i] += half * g[i]
    velocity(dense, inv_diag, inv_dense, p, v)
    for i in range(d):
        q[i] += step * v[i]
    lp, grad = logp_grad(q, *args)
    for i in range(d):
        g[i] = grad[i]
        p[i] += half * g[i]
    velocity(dense, inv_diag, inv_dense, p, v)
    return lp


@_jit
def hamiltonian(lp, p, v):
    """H = -log p + p.v/2, with NaN mapped to +inf so that it counts as a divergence."""
    h = -lp + 0.5 * dot(p, v)
    if np.isnan(h):
        return np.inf
    return h


@_jit
def find_reasonable_step_size(logp_grad, args, rng, q, lp, g, step, dense, inv_diag, inv_dense, chol,
                              target_accept):
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
        draw_momentum(rng, dense, inv_diag, chol, pp)
        velocity(dense, inv_diag, inv_dense, pp, vv)
        h0 = hamiltonian(lp, pp, vv)
        qq[:] = q
        gg[:] = g
        lp1 = leapfrog(logp_grad, args, qq, pp, gg, vv, step, dense, inv_diag, inv_dense)
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
