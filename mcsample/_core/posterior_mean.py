"""Estimators of the mean of a Gaussian-likelihood posterior, the denoiser behind every diffusion
family's score:

    q(x0 | x) proportional to p(x0) N(x; a x0, var I),   m(x) = E_q[x0].

rdMC needs it at x = Y_k with (a, var) = (a_s, sigma_s^2) of the forward process (Huang et al.
2024, ICLR); walk-jump's denoiser is the same with a = 1 and var = sigma^2 / m; the ensemble
score sampler's drift likewise. Read as a density in x0, the likelihood is N(x0; x / a, var / a^2 I),
so it is the natural importance proposal and the weights are just p(x0).

- ``importance_mean``: self-normalised importance sampling from that Gaussian, gradient-free,
  with a streaming log-sum-exp (no sample stored), optional antithetic pairs, Kish's effective
  sample size, and optionally a weighted resample of starting points for inner chains.
- ``ula_mean``: unadjusted Langevin chains on q (the rdMC paper's inner loop), averaging the
  iterates after a burn-in.
- ``mala_mean``: Metropolis-adjusted Langevin chains on q with each chain's step adapted towards
  acceptance 0.75 (x1.03 / /1.03 per step, as in the SLIPS benchmark code), carried between calls.

grad log q(x0) = grad log p(x0) + a (x - a x0) / var. Every log-density or gradient evaluation
is counted in the returned totals.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@_jit
def importance_mean(logp, args, rng, x, a, var, n, antithetic, z, xi, mean_out, starts):
    """Self-normalised importance estimate of m(x) with ``n`` proposals from N(x / a, var / a^2 I),
    written into ``mean_out``. ``antithetic`` pairs each draw xi with -xi (n rounded up to even).
    If ``starts`` has rows, each row receives an independent draw from the weighted sample
    (multinomial resampling, streamed: a row keeps proposal j with probability w_j / sum_{i<=j} w_i).

    Returns (effective sample size, evaluations). With no finite weight, m(x) falls back to the
    proposal's centre and the ESS is 0."""
    d = x.size
    sd = np.sqrt(var) / a
    log_max = -np.inf
    sum_w = 0.0
    sum_w2 = 0.0
    for i in range(d):
        mean_out[i] = 0.0
    n_eval = 0
    j = 0
    while j < n:
        for i in range(d):
            xi[i] = rng.standard_normal()
        for sign in (1.0, -1.0):
            if sign < 0.0 and not antithetic:
                break
            for i in range(d):
                z[i] = x[i] / a + sign * sd * xi[i]
            lw = logp(z, *args)
            n_eval += 1
            j += 1
            if not lw > -np.inf:  # -inf or NaN: zero weight
                continue
            if lw > log_max:  # rescale what was summed to the new maximum
                r = np.exp(log_max - lw)
                sum_w *= r
                sum_w2 *= r * r
                for i in range(d):
                    mean_out[i] *= r
                log_max = lw
            w = np.exp(lw - log_max)
            sum_w += w
            sum_w2 += w * w
            for i in range(d):
                mean_out[i] += w * z[i]
            for c in range(starts.shape[0]):
                if rng.random() * sum_w < w:
                    for i in range(d):
                        starts[c, i] = z[i]
    if sum_w == 0.0:
        for i in range(d):
            mean_out[i] = x[i] / a
        for c in range(starts.shape[0]):
            for i in range(d):
                starts[c, i] = x[i] / a + sd * rng.standard_normal()
        return 0.0, n_eval
    for i in range(d):
        mean_out[i] /= sum_w
    return sum_w * sum_w / sum_w2, n_eval


@_jit
def _posterior_drift(g, x, x0, a, var, out):
    """grad log q(x0) = grad log p(x0) + a (x - a x0) / var."""
    for i in range(x0.size):
        out[i] = g[i] + a * (x[i] - a * x0[i]) / var


@_jit
def ula_mean(logp_grad, args, rng, x, a, var, chains, n_steps, n_burn, step, drift, mean_out):
    """Unadjusted Langevin on q from each row of ``chains`` (updated in place): ``n_steps`` steps
    x0 <- x0 + step grad log q(x0) + sqrt(2 step) xi, averaging the iterates after ``n_burn``.
    Returns (gradient evaluations, number of averaged iterates). A chain whose gradient is not
    finite stops where it is (its last finite state keeps counting)."""
    d = x.size
    noise = np.sqrt(2.0 * step)
    for i in range(d):
        mean_out[i] = 0.0
    n_kept = 0
    n_grad = 0
    for c in range(chains.shape[0]):
        x0 = chains[c]
        alive = True
        for t in range(n_steps):
            if alive:
                lp, g = logp_grad(x0, *args)
                n_grad += 1
                if not np.isfinite(lp) or not np.all(np.isfinite(g)):
                    alive = False
                else:
                    _posterior_drift(g, x, x0, a, var, drift)
                    for i in range(d):
                        x0[i] += step * drift[i] + noise * rng.standard_normal()
            if t >= n_burn:
                for i in range(d):
                    mean_out[i] += x0[i]
                n_kept += 1
    for i in range(d):
        mean_out[i] /= max(n_kept, 1)
    return n_grad, n_kept


@_jit
def _log_q(lp, x, x0, a, var):
    s = 0.0
    for i in range(x0.size):
        r = x[i] - a * x0[i]
        s += r * r
    return lp - 0.5 * s / var


@_jit
def _mala_log_proposal(to, frm, drift_frm, step):
    """log N(to; frm + step drift(frm), 2 step I) up to a constant."""
    s = 0.0
    for i in range(to.size):
        r = to[i] - frm[i] - step * drift_frm[i]
        s += r * r
    return -s / (4.0 * step)


@_jit
def mala_mean(logp_grad, args, rng, x, a, var, chains, steps, n_steps, n_burn, work, mean_out):
    """Metropolis-adjusted Langevin on q from each row of ``chains`` (updated in place), chain c
    with its own step ``steps[c]``, adapted after every step towards acceptance 0.75 (x1.03 above
    0.76, /1.03 below 0.74, at most 1). Averages the iterates after ``n_burn`` into ``mean_out``.
    ``work`` is (4, d) scratch. Returns (gradient evaluations, mean acceptance probability)."""
    d = x.size
    prop, drift, drift_prop = work[0], work[1], work[2]
    for i in range(d):
        mean_out[i] = 0.0
    n_kept = 0
    n_grad = 0
    sum_accept = 0.0
    for c in range(chains.shape[0]):
        x0 = chains[c]
        lp, g = logp_grad(x0, *args)
        n_grad += 1
        log_q0 = _log_q(lp, x, x0, a, var) if np.isfinite(lp) else -np.inf
        _posterior_drift(g, x, x0, a, var, drift)
        for t in range(n_steps):
            h = steps[c]
            noise = np.sqrt(2.0 * h)
            for i in range(d):
                prop[i] = x0[i] + h * drift[i] + noise * rng.standard_normal()
            lp_p, g_p = logp_grad(prop, *args)
            n_grad += 1
            accept = 0.0
            if np.isfinite(lp_p) and np.all(np.isfinite(g_p)):
                _posterior_drift(g_p, x, prop, a, var, drift_prop)
                log_q_p = _log_q(lp_p, x, prop, a, var)
                log_ratio = (log_q_p + _mala_log_proposal(x0, prop, drift_prop, h)
                             - log_q0 - _mala_log_proposal(prop, x0, drift, h))
                accept = 1.0 if log_ratio >= 0.0 else np.exp(log_ratio)
                if rng.random() < accept:
                    for i in range(d):
                        x0[i] = prop[i]
                        drift[i] = drift_prop[i]
                    log_q0 = log_q_p
            sum_accept += accept
            if accept > 0.76:
                steps[c] = min(1.0, h * 1.03)
            elif accept < 0.74:
                steps[c] = h / 1.03
            if t >= n_burn:
                for i in range(d):
                    mean_out[i] += x0[i]
                n_kept += 1
    for i in range(d):
        mean_out[i] /= max(n_kept, 1)
    return n_grad, sum_accept / max(chains.shape[0] * n_steps, 1)
