"""SK-ROCK: a stabilised explicit step for stiff overdamped Langevin dynamics.

Abdulle, Almuslimani & Vilmart (2018), "Optimal explicit stabilized integrator of weak order one
for stiff and ergodic stochastic differential equations", SIAM/ASA J. Uncertainty Quantification
6(2); as used for imaging by Pereyra, Vargas-Mieles & Zygalakis (2020), SIAM J. Imaging Sci. 13(2).

It integrates dY = f(Y) du + sqrt(2) dW over a step Delta with s evaluations of f and one Gaussian
draw, through a Chebyshev recursion that stretches the stability interval of Euler-Maruyama
(Delta Lip(f) < 2) to about (s - 1/2)^2 (2 - 4 eta / 3) - 3/2 (38 for s = 5, eta = 0.05):

    w0 = 1 + eta / s^2,  w1 = T_s(w0) / T_s'(w0),  T_j Chebyshev polynomials of the first kind
    Q   = sqrt(2 Delta) xi
    K_0 = Y
    K_1 = Y + (w1 / w0) Delta f(Y + (s w1 / 2) Q) + (s w1 / w0) Q
    K_j = mu_j Delta f(K_{j-1}) + nu_j K_{j-1} + (1 - nu_j) K_{j-2},   j = 2..s
          mu_j = 2 w1 T_{j-1}(w0) / T_j(w0),  nu_j = 2 w0 T_{j-1}(w0) / T_j(w0)
    Y  <- K_s

``eta`` (damping) widens the region where the step contracts noise at the cost of a shorter
interval; 0.05 is the usual choice. The multiscale samplers use it for their fast process, whose
drift is stiff near the ends of the diffusion path.

The drift this module evaluates is the family that every multiscale fast process has: a target
score at a scaled point plus a pull towards a centre m,

    f(y) = k (m - y) / (1 + |m - y|^2 / tau) + beta grad log pi(gamma y),

with ``inv_tau`` = 1 / tau = 0 for a Gaussian pull (tau finite: the Student-t one) and beta = 0 for
a pure Ornstein-Uhlenbeck drift (no target evaluation).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .posterior_mean import logp_grad_in_frame

_jit = numba.njit(cache=True, nogil=True)

DEFAULT_DAMPING = 0.05


class SKROCKCoefficients(NamedTuple):
    """The recursion's constants for s stages (index j = 1..s; entry 0 unused)."""

    stages: int
    mu: np.ndarray      # mu_1 = w1 / w0, then mu_j
    nu: np.ndarray      # nu_1 = s w1 / 2 (the shift of the first evaluation), then nu_j
    kappa: np.ndarray   # kappa_1 = s w1 / w0 (the noise's weight in K_1), then 1 - nu_j


def chebyshev_t(j: int, w: float) -> float:
    """T_j(w) for w >= 1."""
    return float(np.cosh(j * np.arccosh(w)))


def skrock_coefficients(stages: int, damping: float = DEFAULT_DAMPING) -> SKROCKCoefficients:
    """Coefficients of an ``stages``-stage SK-ROCK step with ``damping`` eta."""
    if int(stages) != stages or stages < 1:
        raise ValueError(f"SK-ROCK needs a positive integer number of stages, got {stages!r}")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"SK-ROCK damping must be in (0, 1), got {damping}")
    s = int(stages)
    w0 = 1.0 + damping / s**2
    acw = np.arccosh(w0)
    # T_s'(w) = s U_{s-1}(w) = s sinh(s acosh w) / sinh(acosh w)
    w1 = chebyshev_t(s, w0) / (s * np.sinh(s * acw) / np.sinh(acw))
    mu, nu, kappa = np.zeros(s + 1), np.zeros(s + 1), np.zeros(s + 1)
    mu[1], nu[1], kappa[1] = w1 / w0, s * w1 / 2.0, s * w1 / w0
    for j in range(2, s + 1):
        ratio = chebyshev_t(j - 1, w0) / chebyshev_t(j, w0)
        mu[j] = 2.0 * w1 * ratio
        nu[j] = 2.0 * w0 * ratio
        kappa[j] = 1.0 - nu[j]
    return SKROCKCoefficients(s, mu, nu, kappa)


def stability_bound(stages: int, damping: float = DEFAULT_DAMPING) -> float:
    """Largest Delta Lip(f) for which the step is mean-square stable (the published bound)."""
    return (stages - 0.5) ** 2 * (2.0 - 4.0 * damping / 3.0) - 1.5


@_jit
def _pull_towards(y, m, k, inv_tau, out):
    """out = k (m - y) / (1 + |m - y|^2 inv_tau): the fast process's coupling to the slow one
    (inv_tau = 0: linear; > 0: the heavy-tailed variant's bounded pull)."""
    d = y.size
    pull = k
    if inv_tau != 0.0:
        r2 = 0.0
        for i in range(d):
            r2 += (m[i] - y[i]) ** 2
        pull = k / (1.0 + r2 * inv_tau)
    for i in range(d):
        out[i] = pull * (m[i] - y[i])


def linear_step_map(coef: SKROCKCoefficients, lam_delta: float) -> tuple[float, float]:
    """(A, B) with Y_new = A Y + B xi for f(y) = -lam y (lam_delta = lam Delta): the recursion is
    linear, so its stationary variance is exactly B^2 / (1 - A^2) for |A| < 1 (a test oracle).
    B is in units of sqrt(Delta)."""
    s = coef.stages
    # stages as (coefficient of Y, coefficient of xi), with Q = sqrt(2) xi (Delta factored out)
    prev2 = (1.0, 0.0)
    shifted = (1.0, coef.nu[1] * np.sqrt(2.0))
    prev = (1.0 - coef.mu[1] * lam_delta * shifted[0],
            -coef.mu[1] * lam_delta * shifted[1] + coef.kappa[1] * np.sqrt(2.0))
    for j in range(2, s + 1):
        new = tuple(-coef.mu[j] * lam_delta * p + coef.nu[j] * p + coef.kappa[j] * p2 for p, p2 in zip(prev, prev2))
        prev2, prev = prev, new
    return prev


# -- the step, in a frame: sampling coordinates u with x = c + L u (``_core.slice`` frames), so
# that a sampler standardised by a pilot runs on pi_u(u) = pi(c + L u), whose score is
# L^T grad log pi(c + L u); the identity frame gives the plain step on pi.


@_jit
def tilted_drift_in_frame(logp_grad, args, frame, y, m, k, inv_tau, beta, gamma, scaled, x, g, out):
    """out = k (m - y) / (1 + |m - y|^2 inv_tau) + beta grad log pi_u(gamma y); ``scaled``,
    ``x`` and ``g`` are scratch of length d. Returns the gradient evaluations (0 or 1)."""
    d = y.size
    _pull_towards(y, m, k, inv_tau, out)
    if beta == 0.0:
        return 0
    for i in range(d):
        scaled[i] = gamma * y[i]
    logp_grad_in_frame(logp_grad, args, frame, scaled, x, g)
    for i in range(d):
        out[i] += beta * g[i]
    return 1


@_jit
def skrock_step_in_frame(logp_grad, args, frame, rng, y, delta, mu, nu, kappa, m, k, inv_tau, beta, gamma, work):
    """One SK-ROCK step of dY = f(Y) du + sqrt(2) dW over ``delta`` for the ``tilted_drift_in_frame``
    f, in place on y; ``mu, nu, kappa`` from ``skrock_coefficients``; ``work`` is scratch of shape (9, d).
    Returns (gradient evaluations, secant estimate of Lip(f)): the largest
    |f(K_j) - f(K_{j-1})| / |K_j - K_{j-1}| over successive evaluation points, free from the
    step's own evaluations; it is large exactly when the step met a curvature outside its stability
    region (the caller can then redo the step with a shorter Delta)."""
    d = y.size
    s = mu.size - 1
    q, prev, prev2, f, scaled, xb, g, last, f_new = (work[0], work[1], work[2], work[3], work[4], work[5], work[6],
                                                     work[7], work[8])
    noise = np.sqrt(2.0 * delta)
    for i in range(d):
        q[i] = noise * rng.standard_normal()
        prev2[i] = y[i]
        prev[i] = y[i] + nu[1] * q[i]
    n = tilted_drift_in_frame(logp_grad, args, frame, prev, m, k, inv_tau, beta, gamma, scaled, xb, g, f)
    for i in range(d):
        last[i] = prev[i]
        prev[i] = y[i] + mu[1] * delta * f[i] + kappa[1] * q[i]
    lip = 0.0
    for j in range(2, s + 1):
        n += tilted_drift_in_frame(logp_grad, args, frame, prev, m, k, inv_tau, beta, gamma, scaled, xb, g, f_new)
        df, dk = 0.0, 0.0
        for i in range(d):
            df += (f_new[i] - f[i]) ** 2
            dk += (prev[i] - last[i]) ** 2
            f[i] = f_new[i]
            last[i] = prev[i]
        if dk > 0.0:
            ratio = np.sqrt(df / dk)
            if not np.isfinite(ratio):
                lip = np.inf
            elif ratio > lip:
                lip = ratio
        for i in range(d):
            new = mu[j] * delta * f[i] + nu[j] * prev[i] + kappa[j] * prev2[i]
            prev2[i] = prev[i]
            prev[i] = new
    for i in range(d):
        y[i] = prev[i]
    return n, lip
