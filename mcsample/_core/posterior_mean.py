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

All of them work in a *frame* (``_core/slice.py``): x0 are coordinates u with the target's point
c + L u, so p is read as p(c + L u) (the constant Jacobian drops out) and a family can run its
diffusion in standardised coordinates. The identity frame is the plain target.
"""

from __future__ import annotations

import numba
import numpy as np

from .slice import FRAME_DENSE, FRAME_DIAG, _inline, logp_in_frame, to_x

_jit = numba.njit(cache=True, nogil=True)


@_jit
def logp_grad_in_frame(logp_grad, args, frame, z, x, g_out):
    """log p(c + L z) and its gradient in z, L^T grad log p(c + L z), written into ``g_out``;
    NaN is -inf. Returns (log p, finite)."""
    kind, centre, scale, chol = frame
    to_x(frame, z, x)
    lp, g = logp_grad(x, *args)
    d = z.size
    if kind == FRAME_DENSE:
        for j in range(d):
            s = 0.0
            for i in range(j, d):
                s += chol[i, j] * g[i]
            g_out[j] = s
    elif kind == FRAME_DIAG:
        for i in range(d):
            g_out[i] = scale[i] * g[i]
    else:
        for i in range(d):
            g_out[i] = g[i]
    if np.isnan(lp):
        return -np.inf, False
    finite = lp > -np.inf
    for i in range(d):
        finite = finite and np.isfinite(g_out[i])
    return lp, finite


@_jit
def _square_norm(z):
    s = 0.0
    for i in range(z.size):
        s += z[i] * z[i]
    return s


@_inline
def _add_weighted(acc, lw, z, mean):
    """Adds exp(lw) z to the weighted sum ``mean``, which is kept on the scale of the largest log
    weight so far: acc = [that log weight, sum of weights, sum of squared weights] on that scale
    (a streaming log-sum-exp: nothing overflows, no weight is stored). Returns z's weight on it."""
    if lw > acc[0]:  # rescale what was summed to the new maximum
        r = np.exp(acc[0] - lw)
        acc[1] *= r
        acc[2] *= r * r
        for i in range(mean.size):
            mean[i] *= r
        acc[0] = lw
    w = np.exp(lw - acc[0])
    acc[1] += w
    acc[2] += w * w
    for i in range(mean.size):
        mean[i] += w * z[i]
    return w


@_jit
def _log_defensive_ratio(z, centre, sd, defensive_sd):
    """log N(z; 0, defensive_sd^2 I) - log N(z; centre, sd^2 I)."""
    d = z.size
    q_def = 0.0
    q_lik = 0.0
    for i in range(d):
        q_def += z[i] * z[i]
        r = z[i] - centre[i]
        q_lik += r * r
    return (-0.5 * q_def / defensive_sd**2 - d * np.log(defensive_sd)
            + 0.5 * q_lik / sd**2 + d * np.log(sd))


@_jit
def importance_mean(logp, args, frame, rng, x, a, var, n, antithetic, defensive, z, xi, buf, mean_out,
                    starts, tilt=0.0):
    """Self-normalised importance estimate of m(x) with ``n`` proposals, written into ``mean_out``.

    ``tilt`` > 0 estimates the mean under p(x0) exp(tilt |x0|^2 / 2) N(x; a x0, var I) instead: the
    posterior of the Föllmer process, whose target is p divided by its N(0, I / tilt) reference
    (the ensemble score sampler).

    The proposal is the likelihood factor N(x / a, var / a^2 I), mixed with probability
    ``defensive`` = (beta, s) with a "defensive" N(0, s^2 I) about the frame's centre (Hesterberg
    1995; beta = 0: none). Far from the target the likelihood factor's draws all miss it and the
    estimate then only pulls x back by a few of the proposal's sds, so the reverse process lets
    such a particle drift off; the defensive draws keep the target in view. The weights are
    p(z) N(z; x/a, .) / q_mix(z). ``antithetic`` pairs each draw xi with -xi (n rounded up to even).
    If ``starts`` has rows, each row receives an independent draw from the weighted sample
    (multinomial resampling, streamed: a row keeps proposal j with probability w_j / sum_{i<=j} w_i).

    Returns (effective sample size, evaluations). With no finite weight, m(x) falls back to the
    likelihood factor's centre and the ESS is 0. ``z``, ``xi``, ``buf``: (d,) scratch."""
    d = x.size
    sd = np.sqrt(var) / a
    beta, defensive_sd = defensive
    log_keep = np.log1p(-beta)
    log_beta = np.log(beta) if beta > 0.0 else -np.inf
    acc = np.array([-np.inf, 0.0, 0.0])  # see _add_weighted
    for i in range(d):
        mean_out[i] = 0.0
    n_eval = 0
    j = 0
    while j < n:
        for i in range(d):
            xi[i] = rng.standard_normal()
        from_defensive = beta > 0.0 and rng.random() < beta
        for sign in (1.0, -1.0):
            if sign < 0.0 and not antithetic:
                break
            for i in range(d):
                z[i] = sign * defensive_sd * xi[i] if from_defensive else x[i] / a + sign * sd * xi[i]
            lw = 0.0
            if beta > 0.0:  # log of N(z; x/a, .) / q_mix(z), before buf is overwritten
                r = _log_defensive_ratio(z, x / a, sd, defensive_sd)
                lw = -np.logaddexp(log_keep, log_beta + r)
            lw += logp_in_frame(logp, args, frame, z, buf)
            if tilt != 0.0:
                lw += 0.5 * tilt * _square_norm(z)
            n_eval += 1
            j += 1
            if not lw > -np.inf:  # -inf or NaN: zero weight
                continue
            w = _add_weighted(acc, lw, z, mean_out)
            for c in range(starts.shape[0]):
                if rng.random() * acc[1] < w:
                    for i in range(d):
                        starts[c, i] = z[i]
    if acc[1] == 0.0:
        for i in range(d):
            mean_out[i] = x[i] / a
        for c in range(starts.shape[0]):
            for i in range(d):
                starts[c, i] = x[i] / a + sd * rng.standard_normal()
        return 0.0, n_eval
    for i in range(d):
        mean_out[i] /= acc[1]
    return acc[1] * acc[1] / acc[2], n_eval


@_jit
def _add(total, x):
    for i in range(x.size):
        total[i] += x[i]


@_jit
def _divide(total, n):
    """The average of n summed iterates (nothing kept: left at 0)."""
    for i in range(total.size):
        total[i] /= max(n, 1)


@_jit
def _posterior_drift(g, x, x0, a, var, out):
    """grad log q(x0) = grad log p(x0) + a (x - a x0) / var."""
    for i in range(x0.size):
        out[i] = g[i] + a * (x[i] - a * x0[i]) / var


@_jit
def ula_mean(logp_grad, args, frame, rng, x, a, var, chains, n_steps, n_burn, step, work, mean_out):
    """Unadjusted Langevin on q from each row of ``chains`` (updated in place): ``n_steps`` steps
    x0 <- x0 + step grad log q(x0) + sqrt(2 step) xi, averaging the iterates after ``n_burn``.
    Returns (gradient evaluations, number of averaged iterates). A chain whose gradient is not
    finite stops where it is (its last finite state keeps counting). ``work``: (3, d) scratch."""
    d = x.size
    drift, g, buf = work[0], work[1], work[2]
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
                lp, finite = logp_grad_in_frame(logp_grad, args, frame, x0, buf, g)
                n_grad += 1
                if not finite:
                    alive = False
                else:
                    _posterior_drift(g, x, x0, a, var, drift)
                    for i in range(d):
                        x0[i] += step * drift[i] + noise * rng.standard_normal()
            if t >= n_burn:
                _add(mean_out, x0)
                n_kept += 1
    _divide(mean_out, n_kept)
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
def mala_mean(logp_grad, args, frame, rng, x, a, var, chains, steps, n_steps, n_burn, work, mean_out):
    """Metropolis-adjusted Langevin on q from each row of ``chains`` (updated in place), chain c
    with its own step ``steps[c]``, adapted after every step towards acceptance 0.75 (x1.03 above
    0.76, /1.03 below 0.74, at most 1). Averages the iterates after ``n_burn`` into ``mean_out``.
    ``work`` is (5, d) scratch. Returns (gradient evaluations, mean acceptance probability)."""
    d = x.size
    prop, drift, drift_prop, g, buf = work[0], work[1], work[2], work[3], work[4]
    for i in range(d):
        mean_out[i] = 0.0
    n_kept = 0
    n_grad = 0
    sum_accept = 0.0
    for c in range(chains.shape[0]):
        x0 = chains[c]
        lp, finite = logp_grad_in_frame(logp_grad, args, frame, x0, buf, g)
        n_grad += 1
        log_q0 = _log_q(lp, x, x0, a, var) if finite else -np.inf
        _posterior_drift(g, x, x0, a, var, drift)
        for t in range(n_steps):
            h = steps[c]
            noise = np.sqrt(2.0 * h)
            for i in range(d):
                prop[i] = x0[i] + h * drift[i] + noise * rng.standard_normal()
            lp_p, finite = logp_grad_in_frame(logp_grad, args, frame, prop, buf, g)
            n_grad += 1
            accept = 0.0
            if finite:
                _posterior_drift(g, x, prop, a, var, drift_prop)
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
                _add(mean_out, x0)
                n_kept += 1
    _divide(mean_out, n_kept)
    return n_grad, sum_accept / max(chains.shape[0] * n_steps, 1)


@_jit
def _square_distance(u, v):
    s = 0.0
    for i in range(u.size):
        r = u[i] - v[i]
        s += r * r
    return s


@_jit
def importance_score_mean(logp_grad, args, frame, rng, x, var, n, antithetic, z, xi, buf, g, mean_out):
    """The gradient variant of ``importance_mean`` with a = 1: the self-normalised importance
    estimate of E_q[grad log p(x0)] under q(x0) proportional to p(x0) N(x0; x, var I), from ``n``
    proposals N(x, var I) (antithetic pairs if asked), written into ``mean_out``.

    By Tweedie and integration by parts, grad log p_var(x) = E_q[grad log p(x0)], so
    m(x) = x + var E_q[grad log p(x0)]: the same weights as ``importance_mean`` averaging the
    gradients instead of the points. On a Gaussian p of variance tau^2 its error is var / tau^2
    times that of the points' average: smaller once the proposal is narrower than the target
    (walk-jump's late measurements, var = sigma^2 / m), larger before. Gradients are in the
    frame's coordinates (``logp_grad_in_frame``). Returns (effective sample size, gradient
    evaluations); with no finite weight the estimate is 0 (m(x) = x) and the ESS 0.
    ``z``, ``xi``, ``buf``, ``g``: (d,) scratch."""
    d = x.size
    sd = np.sqrt(var)
    acc = np.array([-np.inf, 0.0, 0.0])  # see _add_weighted
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
                z[i] = x[i] + sign * sd * xi[i]
            lp, finite = logp_grad_in_frame(logp_grad, args, frame, z, buf, g)
            n_eval += 1
            j += 1
            if finite:
                _add_weighted(acc, lp, g, mean_out)
    if acc[1] == 0.0:
        for i in range(d):
            mean_out[i] = 0.0
        return 0.0, n_eval
    for i in range(d):
        mean_out[i] /= acc[1]
    return acc[1] * acc[1] / acc[2], n_eval
