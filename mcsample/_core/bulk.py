"""A gradient-free search for the bulk of a density: where a sampler should start, and a first
Gaussian fit to use as its frame.

A gradient-free chain started in a far tail of a badly scaled posterior moves towards the bulk
slowly, and a frame fitted from the draws of that transient is fitted to the path, not to the
posterior (a flat-prior regression: chains left for |beta| ~ 1e4 and never came back). This
module finds the bulk first, with the covariance matrix adaptation evolution strategy
(CMA-ES; Hansen (2016), "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, with its
default population size, weights and learning rates), which is invariant to affine maps of the
parameters (so correlations of -0.999 cost it little) and needs only log densities.

An optimiser heads for the mode, which is not where a sampler belongs: a funnel's mode is at the
bottom of its neck, far from its mass. So the search does not return its last point. Each
generation of CMA-ES is a sample of lambda points from N(m, sigma^2 C), which gives for free an
estimate of the evidence lower bound of that Gaussian as an approximation of the target,

    ELBO = mean_i log p(x_i) + entropy(N(m, sigma^2 C)),

and the search returns the generation with the largest ELBO (the criterion with which Pathfinder,
Zhang et al. (2022), JMLR 23(306), picks a point along an optimisation path). On a Gaussian target
the ELBO is largest when sigma^2 C is the target's covariance: the chosen generation is then a
sample from the bulk, not from the mode, and its covariance is a first frame. As the strategy
contracts towards a singular mode the entropy falls faster than the mean log density rises, and
the ELBO turns down. The search stops once the best ELBO is older than ``patience`` generations
(about twice the time CMA-ES needs to learn a covariance, 1 / (c_1 + c_mu)) and older than the
generation that found it, or after ``max_evals`` log densities. The second condition is for
narrow valleys: on kidiq_momiq (correlation -0.999) the step size can collapse before the
covariance has learnt the valley, the ELBO stalls for ~30 generations, then climbs again, and a
fixed patience of 20 generations stopped there on half the seeds, 4 sds from the bulk.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

# What the search found: the mean and covariance of the best-ELBO generation, its point of largest
# log density and that log density, the ELBO estimate, and the evaluations and generations spent.
Bulk = namedtuple("Bulk", ["mean", "cov", "point", "lp", "elbo", "n_evals", "generations"])

# CMA-ES constants for dimension d (Hansen 2016, table 1).
CMAConstants = namedtuple("CMAConstants", ["lam", "weights", "mueff", "cc", "cs", "c1", "cmu", "damps", "chi_n"])


@_jit
def log_densities(logp, args, xs, out):
    """out[i] = log p(xs[i]), with NaN mapped to -inf."""
    for i in range(xs.shape[0]):
        lp = logp(xs[i], *args)
        out[i] = -np.inf if np.isnan(lp) else lp


def cma_constants(dim: int) -> CMAConstants:
    lam = 4 + int(3 * math.log(dim))
    mu = lam // 2
    w = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    w /= w.sum()
    mueff = 1.0 / float(w @ w)
    cc = (4 + mueff / dim) / (dim + 4 + 2 * mueff / dim)
    cs = (mueff + 2) / (dim + mueff + 5)
    c1 = 2 / ((dim + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((dim + 2) ** 2 + mueff))
    damps = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (dim + 1)) - 1) + cs
    chi_n = math.sqrt(dim) * (1 - 1 / (4 * dim) + 1 / (21 * dim ** 2))
    return CMAConstants(lam, w, mueff, cc, cs, c1, cmu, damps, chi_n)


def default_patience(dim: int) -> int:
    """Generations without a better ELBO before the search stops: twice CMA-ES's covariance
    learning time 1 / (c_1 + c_mu), and at least 20."""
    k = cma_constants(dim)
    return max(20, int(math.ceil(2.0 / (k.c1 + k.cmu))))


def eigendecomposition_interval(k: CMAConstants, dim: int) -> int:
    """Generations between eigendecompositions of the covariance: at most a tenth of its learning
    time per coordinate, lambda / (c_1 + c_mu) / d / 10 (Hansen 2016, B.2), rounded down, so every
    generation up to d = 5. The O(d^3) decomposition every generation made the search the whole
    cost of a slice sampler's warmup in high dimension: at d = 200, 5,368 generations of ~24 ms,
    with the decomposition every 42nd generation instead."""
    return max(1, int(k.lam / (k.c1 + k.cmu) / dim / 10))


def search_evals(dim: int) -> int:
    """The evaluations one bulk search may spend by default (``find_bulk``'s ``max_evals``)."""
    return 2000 + 500 * dim


def pooling_evals(dim: int) -> int:
    """The draws of the pooling importance round by default (``pool_bulks``' ``n_importance``)."""
    return 200 * dim + 1000


def search_starts(n_searches: int, dim: int, init=None):
    """A round's start points for ``search_rounds``, as a function of the rng: ``n_searches``
    points uniform in [-2, 2]^d, or ``init`` repeated (a caller with an init runs one round)."""
    if init is not None:
        return lambda rng: np.tile(np.asarray(init, float), (n_searches, 1))
    return lambda rng: rng.uniform(-2.0, 2.0, (n_searches, dim))


def gaussian_entropy(log_det_cov: float, dim: int) -> float:
    return 0.5 * (dim * math.log(2 * math.pi * math.e) + log_det_cov)


def find_bulk(logp, args, x0, rng, *, scale=1.0, max_evals=None, patience=None) -> Bulk:
    """CMA-ES from ``x0`` with initial step ``scale``; returns the generation with the largest
    ELBO estimate as a :class:`Bulk` (see the module docstring). ``logp(x, *args)`` is a compiled
    log density (the kernels' function type); ``max_evals`` defaults to 2000 + 500 d."""
    x0 = np.asarray(x0, dtype=np.float64)
    d = x0.size
    k = cma_constants(d)
    patience = default_patience(d) if patience is None else int(patience)
    max_evals = search_evals(d) if max_evals is None else int(max_evals)
    mean, sigma = x0.copy(), float(scale)
    cov = np.eye(d)
    pc, ps = np.zeros(d), np.zeros(d)
    xs, lps = np.empty((k.lam, d)), np.empty(k.lam)
    best = None
    n_evals, gen, best_gen = 0, 0, 0
    lp_anchor, best_score = None, -np.inf
    every = eigendecomposition_interval(k, d)
    while n_evals + k.lam <= max_evals and gen - best_gen < max(patience, best_gen):
        if gen % every == 0:
            sampled_cov = cov  # the covariance the generations sample from until the next one
            eigvals, basis = np.linalg.eigh(cov)
            eigvals = np.maximum(eigvals, 1e-300)
            root = basis * np.sqrt(eigvals)  # cov = root root^T
        ys = rng.standard_normal((k.lam, d)) @ root.T
        np.add(mean, sigma * ys, out=xs)
        log_densities(logp, args, xs, lps)
        n_evals += k.lam
        gen += 1
        entropy = gaussian_entropy(2 * d * math.log(sigma) + float(np.log(eigvals).sum()), d)
        finite = bool(np.all(np.isfinite(lps)))
        elbo = float(lps.mean()) + entropy if finite else -np.inf
        if finite and lp_anchor is None:
            lp_anchor = float(lps.max())
        # generations are compared on log densities less the first finite generation's largest, so
        # that a constant added to log p cannot flip a comparison by rounding (exact when lp + c is)
        score = float((lps - lp_anchor).mean()) + entropy if finite else -np.inf
        top = int(np.argmax(lps))
        if best is None or score > best_score or (best_score == -np.inf and lps[top] > best.lp):
            best = Bulk(mean.copy(), sigma ** 2 * sampled_cov, xs[top].copy(), float(lps[top]), elbo, 0, 0)
            best_gen, best_score = gen, score
        if not np.any(np.isfinite(lps)):
            sigma *= 0.5  # every point fell outside the support: look closer to the mean
            continue
        mean, sigma, cov, pc, ps = _cma_update(k, mean, sigma, cov, pc, ps, ys, lps, basis, eigvals, gen)
    if best is None:
        raise ValueError(f"find_bulk: max_evals={max_evals} is less than one generation ({k.lam})")
    return best._replace(n_evals=n_evals, generations=gen)


def _cma_update(k, mean, sigma, cov, pc, ps, ys, lps, basis, eigvals, gen):
    """One CMA-ES update from a generation's steps ``ys`` (x = mean + sigma y) and their log
    densities: weighted recombination of the best half, cumulative step-size adaptation, and
    the rank-one plus rank-mu covariance update."""
    d = mean.size
    order = np.argsort(-lps, kind="stable")[: k.weights.size]
    y_sel = ys[order]
    y_w = k.weights @ y_sel
    mean = mean + sigma * y_w
    inv_root_y = basis @ ((basis.T @ y_w) / np.sqrt(eigvals))  # C^{-1/2} y_w
    ps = (1 - k.cs) * ps + math.sqrt(k.cs * (2 - k.cs) * k.mueff) * inv_root_y
    ps_norm = float(np.linalg.norm(ps))
    hsig = ps_norm / math.sqrt(1 - (1 - k.cs) ** (2 * gen)) / k.chi_n < 1.4 + 2 / (d + 1)
    pc = (1 - k.cc) * pc + hsig * math.sqrt(k.cc * (2 - k.cc) * k.mueff) * y_w
    rank_mu = (y_sel * k.weights[:, None]).T @ y_sel
    cov = ((1 - k.c1 - k.cmu) * cov + k.c1 * (np.outer(pc, pc) + (not hsig) * k.cc * (2 - k.cc) * cov)
           + k.cmu * rank_mu)
    cov = 0.5 * (cov + cov.T)
    sigma *= math.exp(min(1.0, k.cs / k.damps * (ps_norm / k.chi_n - 1)))
    return mean, sigma, cov, pc, ps


def pooled_bulk(logp, args, starts, rng, n_importance=None, **search):
    """Mean and covariance of the target for standardising a particle sampler, and the evaluations
    spent: ``find_bulk`` from each row of ``starts``, then one round of importance sampling from
    the equal mixture of the Gaussians they found, each widened 2x in variance, whose weighted
    moments replace the searches' own when the weights' effective sample size is at least 10 d
    (``n_importance`` draws, default 200 d + 1000). The searches' covariances are rough (their scales
    were off by 0.5-1.9x on a 3-d Gaussian, and the Föllmer sampler then came out 17% too narrow);
    the weighted moments are consistent, and for a multimodal target they span the modes the
    searches found. In high dimension the weights degenerate (a 2x wider Gaussian proposal keeps
    an ESS fraction of 0.87^d) and the mixture's own moments are returned."""
    mean, cov, n_evals, _ = pooled_bulk_and_searches(logp, args, starts, rng, n_importance, **search)
    return mean, cov, n_evals


def pooled_bulk_and_searches(logp, args, starts, rng, n_importance=None, **search):
    """``pooled_bulk``'s (mean, cov, evaluations) and the :class:`Bulk` of each search that found a
    finite ELBO: their covariances are the within-mode scales that the pooled covariance, which
    spans the modes, hides (rdMC sets its early-stopping time from them)."""
    found, search_evals = search_bulks(logp, args, starts, rng, **search)
    mean, cov, n_evals = pool_bulks(logp, args, found, rng, n_importance)
    return mean, cov, n_evals + search_evals, found


def search_bulks(logp, args, starts, rng, **search):
    """The :class:`Bulk` of each search from a row of ``starts`` that found a finite ELBO, and the
    evaluations of all the searches."""
    bulks = [find_bulk(logp, args, x0, rng, **search) for x0 in np.atleast_2d(starts)]
    return [b for b in bulks if np.isfinite(b.elbo)], sum(b.n_evals for b in bulks)


def search_rounds(logp, args, starts, rng, rounds=1, **search):
    """The :class:`Bulk` s and evaluations of up to ``rounds`` rounds of bulk searches, a new round
    only while every search so far ended in one mode (``separated``). ``starts(rng)`` gives a
    round's start points (rows); every round draws its own.

    Why rounds: a mode the searches miss is one a sampler standardised on them may never reach in
    high dimension, where no covering ladder can widen the frame. On two_modes (d = 8-32, starts
    uniform in [-2, 2]^d) all 8 searches of a run ended in the heavier mode in 1 run in 20 at d = 8
    and about half the runs at d = 10-32 (rdMC, ensemble_score). A unimodal target runs every
    round; a sampler with a budget passes only the rounds it can pay for."""
    found, n_evals = [], 0
    for _ in range(rounds):
        round_found, round_evals = search_bulks(logp, args, starts(rng), rng, **search)
        found += round_found
        n_evals += round_evals
        if found and separated(found):
            break
    return found, n_evals


def regularised(cov):
    """The symmetric part of ``cov`` with its eigenvalues floored at 1e-12 of the largest."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    return (vecs * np.maximum(vals, 1e-12 * max(vals.max(), 1e-300))) @ vecs.T


def separated(found, threshold=9.0):
    """Whether two :class:`Bulk` s ended in different modes: the squared Mahalanobis distance
    between their means under the sum of their covariances, per dimension, above ``threshold``
    (3 sds apart on average per coordinate)."""
    for j in range(len(found)):
        for k in range(j):
            r = found[j].mean - found[k].mean
            c = regularised(found[j].cov + found[k].cov)
            if r @ np.linalg.solve(c, r) / r.size > threshold:
                return True
    return False


def pool_bulks(logp, args, found, rng, n_importance=None, anchored=False):
    """The moments (mean, cov, evaluations) of the mixture of the found :class:`Bulk` s, refined by
    one round of importance sampling from that mixture with doubled covariances when its ESS is at
    least 10 d (the pooling step of ``pooled_bulk_and_searches``, for searches run elsewhere).
    ``anchored``: the largest log density is subtracted before the proposal's (see ``anchor``)."""
    if not found:
        raise ValueError("no bulk search found a point with finite log density; give init= inside the support")
    n_evals = 0
    means = np.array([b.mean for b in found])
    d = means.shape[1]
    between = np.atleast_2d(np.cov(means, rowvar=False, bias=True)) if len(found) > 1 else 0.0
    mean = means.mean(axis=0)
    cov = np.mean([b.cov for b in found], axis=0) + between
    n = pooling_evals(d) if n_importance is None else int(n_importance)
    chols = [np.linalg.cholesky(2.0 * b.cov + 1e-12 * np.trace(b.cov) * np.eye(d)) for b in found]
    which = rng.integers(len(found), size=n)
    xs = means[which] + np.einsum("nij,nj->ni", np.array(chols)[which], rng.standard_normal((n, d)))
    lps = np.empty(n)
    log_densities(logp, args, xs, lps)
    n_evals += n
    if anchored:
        anchor(lps)
    log_q = np.logaddexp.reduce([_log_normal(xs, m, c) for m, c in zip(means, chols)], axis=0)
    log_w = lps - log_q
    log_w[~np.isfinite(log_w)] = -np.inf
    if np.isfinite(log_w.max()):
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        if 1.0 / np.sum(w * w) >= 10 * d:
            mean = w @ xs
            centred = xs - mean
            cov = (centred * w[:, None]).T @ centred
    return mean, cov, n_evals


def _log_normal(xs, mean, chol):
    """log N(x; mean, chol chol^T) of each row, up to the constant shared by equal dimensions."""
    z = np.linalg.solve(chol, (xs - mean).T)
    return -0.5 * np.sum(z * z, axis=0) - np.sum(np.log(np.diag(chol)))


def anchor(lps):
    """Subtracts the largest finite log density from ``lps`` in place, so that what follows sees
    differences of log densities only: a constant c added to log p then changes no bit of the
    result whenever lp + c is exact (not in general: lp + 123 drops lp's last bits). Importance
    weights exp(lp - log q) depend on c only through the normalisation; formed as lp - log q first,
    the rounding of lp + c - log q would differ from that of lp - log q."""
    finite = lps[np.isfinite(lps)]
    if finite.size:
        lps -= finite.max()


def covering_variance(logp, args, frame, rng, n=4000, ratio=16.0, min_ess=20.0, max_rungs=8, anchored=False):
    """The variance s^2 of a reference N(0, s^2 I), in the coordinates u of ``frame``
    (x = c + L u), that covers the whole target, for samplers that start from such a reference
    (the Föllmer process's N(0, gamma I), reverse diffusions' N(0, I)). Returns (s^2, evaluations).

    A ladder of importance-sampling rounds: with proposal N(0, v I), v = 1, 4, 16, ..., estimate the
    target's second moment m2 = E|u|^2 / d from ``n`` draws; s^2 is the largest m2 (at least 1)
    among rungs whose weights have an effective sample size of ``min_ess`` or more, and the ladder
    stops once v > ``ratio`` s^2 (the proposal is then wider than the target) or after
    ``max_rungs`` rungs. With ``ratio`` = 4 the ladder stopped at v = 16 on one mog8 seed in three,
    before any draw had reached a neighbouring mode 7 frame units away; at 16 it goes two rungs
    further. A rung that first reaches a far mode has few, heavy weights; the ladder
    goes on past it rather than stopping there (stopping at the first low ESS returned 4.8 instead
    of ~150 on one seed in six on mog8). A frame fitted around the one mode a search found leaves
    the other modes out of sight at v = 1; on mog8 (8 modes on a circle of radius 10, each of sd
    0.84) the ladder returns 140-160 where the found mode's own scale is 1. In high dimension a
    proposal 2x wider than the target in sd keeps an ESS fraction of about 0.6^d, so the rungs
    above v = 1 fail there and the frame's own scale is kept. ``anchored``: each rung's largest log
    density is subtracted first (see ``anchor``)."""
    d = frame[1].size
    best, n_evals, v = 1.0, 0, 1.0
    u = np.empty((n, d))
    lps = np.empty(n)
    for _ in range(max_rungs):
        u[:] = np.sqrt(v) * rng.standard_normal((n, d))
        log_densities(logp, args, _frame_points(frame, u), lps)
        n_evals += n
        if anchored:
            anchor(lps)
        log_w = lps + 0.5 * np.sum(u * u, axis=1) / v
        log_w[~np.isfinite(log_w)] = -np.inf
        if np.isfinite(log_w.max()):
            w = np.exp(log_w - log_w.max())
            w /= w.sum()
            if 1.0 / np.sum(w * w) >= min_ess:
                best = max(best, float(w @ np.sum(u * u, axis=1)) / d)
        if v > ratio * best:
            break
        v *= 4.0
    return best, n_evals


def _frame_points(frame, u):
    from .slice import frame_to_x
    return np.ascontiguousarray(frame_to_x(frame, u))
