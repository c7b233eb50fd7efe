"""Reverse diffusion Monte Carlo (rdMC).

Huang, Dong, Hao, Ma, Zhang (2024), "Reverse Diffusion Monte Carlo", ICLR, arXiv:2307.02037.

Sample by running the reverse of the Ornstein-Uhlenbeck noising process from N(0, I) back to the
target, where each score is the mean of a regularised posterior estimated by an inner Monte Carlo
loop instead of a learned network (``_core/diffusion.py``, ``_core/posterior_mean.py``):

    for each step s_k -> s_{k+1} of a grid from the horizon T down to the early-stopping time delta:
        m   = estimate of E[x0 | Y] under q(x0 | Y) proportional to p(x0) N(Y; a x0, sigma^2 I)
        v   = (a m - Y) / sigma^2                                  (Tweedie's score of p_s)
        Y  <- e^eta Y + 2 (e^eta - 1) v + sqrt(e^{2 eta} - 1) xi    (exponential integrator)

The output is a sample of p_delta, the target convolved with N(0, (1 - e^{-2 delta}) I) and
shrunk by e^{-delta}: close to the target for small delta (in the standardised units below).

The noising process has a scale (it ends at N(0, I)), so the sampler runs in standardised
coordinates u with x = c + L u, fitted by a gradient-free pilot (``standardise="search"``, the
default unless a budget pays for fewer than two searches; see ``RDMC.standardise``): ``n_searches`` CMA-ES searches for the bulk from scattered starts, pooled by one round of
importance sampling (``_core.bulk.pooled_bulk_and_searches``: mean and covariance of all the modes
the searches found), then widened by the ``covering_variance`` ladder when part of the target lies
outside that covariance. So N(0, I) covers every mode found, not one: a frame fitted to one mode
(the older GPSS pilot, ``standardise="pilot"``) centres the defensive proposal below on that mode
and pulled two_modes' weights to 0.99-1.00 from d = 5 (truth 2/3).

A frame that spans the modes is wide compared with each mode, and the early stop must not blur
them: the output p_delta has each direction's variance v turned into e^{-2 delta} v + 1 - e^{-2
delta}, a relative excess of about 2 delta / v. So ``early_stop`` is a fraction of the narrowest
within-mode variance w in the frame's units (the median over the searches of the smallest
eigenvalue of L^{-1} C L^{-T}, C a search's covariance; w = 1 with the GPSS pilot, whose frame is
one mode's): delta =
``early_stop`` x w keeps the blur at ~1% of each mode's variance, the same resolution relative
to the modes whatever their separation. The inner steps scale with w in the same way. The horizon
is long (T = 6: e^{-T} = 0.0025), so p_T is close to N(0, I) even where the ladder cannot widen the
frame (high dimension) and the searches missed modes up to ~40 units away.

Inner estimators of m (``estimator``): "is" (self-normalised importance sampling from the
likelihood factor, gradient-free), "ula" (unadjusted Langevin on q from the likelihood factor's
draws), "is_ula" and "is_mala" (chains started from an importance resample; MALA adapts each
chain's step towards acceptance 0.75 and carries it between steps, as the SLIPS benchmark code
does, but on the correct density q -- that code evaluates p at the conditioning point).

Where the importance samples go. At the wide steps, sigma_s >= a_s (s >= ln(2) / 2), the
likelihood factor is wider than the whole target in the standardised units, q_s is close to p and
can hold several modes, and the estimate of m decides how the particles split between them. Inner
chains cannot: each stays in the mode of its resample, so their average carries the resample's
noise, which acts like extra noise in the reverse process and pulls the modes' weights towards
equal (two_modes d = 8, 4 seeds x 400 particles: 0.62 with chains at every step, truth 2/3). So
is_ula / is_mala use importance sampling alone at the wide steps, with the chains' evaluations as
more importance samples, and the chains where q_s narrows onto one mode, the mechanism of the
paper (importance sampling while q_s is multimodal, Langevin once it is log-concave) -- with
``wide_steps="importance"``; not the default, because where the importance weights collapse at
the wide steps (a unimodal posterior in d = 10) the chains' estimate is the better one (see the
setting). The wide steps get ``importance_boost`` times the importance samples of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from collections import namedtuple

from .._core.bulk import covering_variance, pooled_bulk_and_searches
from .._core.diffusion import (GRIDS, exponential_integrator_step, ou_mean_factor, ou_variance,
                               score_from_posterior_mean, time_grid)
from .._core.posterior_mean import importance_mean, mala_mean, ula_mean
from .._core.slice import dense_frame, frame_to_x, identity_frame
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

ESTIMATORS = ("auto", "is", "ula", "is_ula", "is_mala")
_IS, _ULA, _IS_ULA, _IS_MALA = range(1, 5)

# Budget planning: with a budget per particle that pays for fewer than MIN_STEPS outer steps at the
# settings' inner sizes, the inner sizes shrink (not below _SMALLEST_INNER = n_importance, n_chains,
# n_inner) before the grid does. Measured on eight_schools_noncentered (2 x 250 particles, seed 5):
# 7 steps at the default sizes (1,860 evaluations per particle) give mean errors up to 1.0 sd and
# sd ratios off by e^2.7; 30 steps at 32 / 2 x 16 (2,020 evaluations) 0.12 sd and e^0.14.
MIN_STEPS = 30
_SMALLEST_INNER = (16, 1, 8)
# With a budget, the pilot is allotted min(tune x _PILOT_EVALS_PER_IT, _PILOT_SHARE x the run's
# budget) evaluations (GPSS spends ~10 an iteration) and stops once it has spent them, checked every
# _PILOT_CHUNK iterations; the steps are planned from the rest, less a margin for that overshoot,
# so that every run of a sample() gets the same grid whatever its pilot spent.
_PILOT_SHARE, _PILOT_EVALS_PER_IT, _PILOT_CHUNK = 0.25, 10, 10
# The search pilot's sizes (``RDMC.pilot_sizes``) and the floor of the within-mode variance w that
# sets delta (a collapsed search must not send delta to zero: at w = 1e-4 the default grid still
# has 6 geometric steps per e-fold of s).
PilotSizes = namedtuple("PilotSizes", ["searches", "search_evals", "pooled", "ladder"])
_LADDER_RUNGS, _MIN_WIDTH = 8, 1e-4


def pilot_allowance(sizes) -> int:
    """An upper bound on the search standardisation's evaluations."""
    return sizes.searches * sizes.search_evals + sizes.pooled + _LADDER_RUNGS * sizes.ladder


def evals_per_step(estimator: str, n_importance: int, n_chains: int, n_inner: int) -> int:
    """Evaluations per particle and outer step."""
    mcmc = {"is": 0, "ula": n_inner, "is_ula": n_inner, "is_mala": n_inner + 1}[estimator]
    return (n_importance if estimator != "ula" else 0) + n_chains * mcmc


@dataclass(frozen=True)
class RDMC(ParticleSettings):
    """Settings for reverse diffusion Monte Carlo (Huang et al. 2024, ICLR).

    horizon : T, the forward time the reverse process starts from (standardised units).
    early_stop : where it stops, as a fraction of the narrowest within-mode variance w in the
        standardised units (module docstring): the output is p_delta with delta = early_stop x w.
    n_steps : outer steps on the time grid when no budget is given; with ``max_evals`` the steps
        are planned from the budget per particle left after the pilot (``plan_for_budget``: the
        inner sizes below, shrunk when that would leave fewer than ``MIN_STEPS`` = 30 steps).
    grid : "geometric" (steps shrink towards delta, where the score changes fastest) or "uniform".
    estimator : "auto" ("is_mala" with a gradient, "is" without), "is", "ula", "is_ula", "is_mala".
    n_importance : importance samples per step and particle (the SLIPS benchmark used 128).
    n_chains, n_inner, burn : inner Langevin chains per step, their steps, the fraction averaged
        out as burn-in (SLIPS: 4 x 32, keeping the last 16).
    inner_step : ULA step in standardised units (default 0.1 / (1 + a^2 / sigma^2), a tenth of
        the inverse curvature of q for a unit-scale target).
    importance_boost : the wide steps (sigma_s >= a_s: the likelihood factor wider than the target
        in the standardised units, where q_s can still hold several modes and the importance
        weights decide the modes' weights) get this many times the samples of the others, the
        average staying ``n_importance``. On two_modes (d = 8, 4 seeds x 400 particles, "is")
        the first mode's weight came out 0.621 +- 0.012 with 128 samples at every step (boost 1),
        0.644 with boost 4, 0.646 with 8 and 0.675 with 512 at every step (truth 0.667): too few
        samples there pull the weights towards equal. Boost 8 leaves the narrow steps so few
        samples that each mode's sd came out 11% too wide (4: 7%, 1: 3%).
    wide_steps : "chains" (the inner chains at every step) or "importance" (is_ula / is_mala use
        importance sampling alone at the wide steps, with the chains' evaluations as more samples;
        module docstring). "importance" carries two_modes' weights better (d = 8: 0.65 +- 0.012
        against 0.62, 4 seeds x 400 particles) but on eight_schools_noncentered (d = 10), where the
        importance weights at the wide steps collapse (ESS 2.4), it biased mu by 0.119 sd (z = 5;
        "chains": 0.043, seed 1, 2000 particles), so "chains" is the default until the choice
        is made per particle from the importance ESS.
    antithetic : importance samples in antithetic pairs.
    defensive : the fraction of importance samples drawn from N(0, I) in standardised units
        instead of the likelihood factor (``_core.posterior_mean.importance_mean``): without it, a
        particle whose proposals miss the target gets too weak a pull back and drifts off (on
        mog8, 1-2% of particles ended 10x too far out). In the search frame N(0, I) spans the
        modes found, so it no longer favours one: on two_modes (d = 8, "is", 4 seeds x 400
        particles) defensive=0 split the particles 0.49-0.51 with each mode's sd 20-160x too
        wide, 0.1 gave 0.61-0.64 and 0.3 0.62-0.66 (truth 0.667); 0.1 is kept.
    score_tolerance : if set, the importance sample size of each step follows the rule
        n_s = d a^2 / (sigma^4 eps^2 (a^2 / sigma^2 - 1)) (the plug-in score's error with q_s
        strongly log-concave at unit curvature; notes 2.1 item 6), between 16 and 8 x n_importance,
        and 8 x n_importance where q_s need not be log-concave.
    standardise : "auto" (default: "search", unless a budget pays for fewer than two searches at
        the scaled sizes of ``pilot_sizes``, then "pilot"), "search" (``n_searches`` bulk searches,
        pooled and widened to cover the target, fit x = c + L u; module docstring), "pilot" (a GPSS
        chain of ``tune`` iterations fits it to the mode it finds) or "none". Why the fallback: one
        short search cannot span modes anyway, and fits one mode worse than GPSS at the same cost
        (eight schools at mc.compare's 5e4 evaluations per run, seeds 0-3: max mean error
        0.30-0.84 sd with the search frame, 0.17-0.32 with the GPSS one).
    n_searches : bulk searches of the "search" standardisation.

    ``init``: the searches' (or the pilot's) starting point; without it the searches start
    uniformly in [-2, 2]^d. ``tune`` is the GPSS pilot's length ("pilot" only). With a budget the
    standardisation takes at most a quarter of the run's budget.
    """

    name: ClassVar[str] = "rdmc"
    citation: ClassVar[str] = "Huang, Dong, Hao, Ma & Zhang (2024), Reverse Diffusion Monte Carlo, ICLR, arXiv:2307.02037"
    default_draws: ClassVar[int] = 1000

    horizon: float = 6.0
    early_stop: float = 0.01
    n_steps: int = 100
    grid: str = "geometric"
    estimator: str = "auto"
    n_importance: int = 128
    n_chains: int = 4
    n_inner: int = 32
    burn: float = 0.5
    inner_step: float | None = None
    importance_boost: float = 4.0
    wide_steps: str = "chains"
    antithetic: bool = False
    defensive: float = 0.1
    score_tolerance: float | None = None
    standardise: str = "auto"
    n_searches: int = 8

    def validate(self, dim: int) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        if not 0.0 < self.early_stop < self.horizon:
            raise ValueError(f"need 0 < early_stop < horizon, got {self.early_stop} and {self.horizon}")
        if self.wide_steps not in ("importance", "chains"):
            raise ValueError(f"wide_steps must be 'importance' or 'chains', got {self.wide_steps!r}")
        if not self.importance_boost >= 1.0:
            raise ValueError(f"importance_boost must be at least 1, got {self.importance_boost}")
        for name in ("n_steps", "n_importance", "n_chains", "n_inner"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.burn < 1.0:
            raise ValueError(f"burn must be in [0, 1), got {self.burn}")
        if self.standardise not in ("auto", "search", "pilot", "none"):
            raise ValueError(f"standardise must be 'auto', 'search', 'pilot' or 'none', got {self.standardise!r}")
        if self.n_searches < 1:
            raise ValueError(f"n_searches must be at least 1, got {self.n_searches}")
        if not 0.0 <= self.defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {self.defensive}")
        if self.score_tolerance is not None and not self.score_tolerance > 0:
            raise ValueError(f"score_tolerance must be positive, got {self.score_tolerance}")

    def resolved_estimator(self, has_grad: bool) -> str:
        if self.estimator == "auto":
            return "is_mala" if has_grad else "is"
        if self.estimator != "is" and not has_grad:
            raise ValueError(f"rdmc estimator {self.estimator!r} needs a gradient; the target has none "
                             "(use estimator='is', gradient-free)")
        return self.estimator

    def evals_per_step(self, estimator: str) -> int:
        """Evaluations per particle and outer step at the default inner sizes."""
        return evals_per_step(estimator, self.n_importance, self.n_chains, self.n_inner)

    def pilot_sizes(self, dim: int, budget_per_run: float | None = None) -> PilotSizes:
        """The search standardisation's sizes: ``n_searches`` searches of at most 2000 + 500 d
        evaluations, the pooled importance round's 200 d + 1000 and the ladder's 4000 a rung; with
        a budget, all scaled down so that they cost at most a quarter of the run's budget (each at
        least one search of 10 CMA-ES generations, 50 and 100 draws)."""
        full = PilotSizes(self.n_searches, 2000 + 500 * dim, 200 * dim + 1000, 4000)
        cap = None if budget_per_run is None else _PILOT_SHARE * budget_per_run
        if cap is None or pilot_allowance(full) <= cap:
            return full
        f = cap / pilot_allowance(full)
        lam = 4 + int(3 * np.log(dim))
        return PilotSizes(max(1, int(full.searches * f)), max(10 * lam, int(full.search_evals * f)),
                          max(50, int(full.pooled * f)), max(100, int(full.ladder * f)))

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Population for a run of ``budget_per_run`` evaluations (``mc.compare``), a quarter of it
        set aside for the pilot. Each particle gets the default grid's worth of evaluations, with
        between 20 and ``default_draws`` particles; a budget too small for 20 particles of
        ``MIN_STEPS`` steps at the smallest inner sizes (where ``start_run`` shrinks the inner
        sizes to keep the steps) gets fewer particles, at least 4: a short grid is biased
        (on eight schools, 7 steps: mean error 1.0 sd; 30 steps: 0.07) where a small population
        is only noisy."""
        usable = 0.75 * budget_per_run
        per_particle = self.n_steps * self.evals_per_step("is_mala")
        draws = int(np.clip(usable // per_particle, 20, self.default_draws))
        smallest = MIN_STEPS * evals_per_step("is_mala", *_SMALLEST_INNER)
        if usable < draws * smallest:
            draws = int(max(4, usable // smallest))
        return draws

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return RDMCRun(self, target, rng, init, tune, draws, budget_per_particle)


# -- one outer step for the whole population ---------------------------------------------------


@_jit
def reverse_move(rng, y, mean, a, var, eta, score, drift_factor):
    """Tweedie's score from the posterior mean, then one exponential-integrator step of y, in
    place (``drift_factor`` 2, the reverse drift's; anything else is a mutant for the tests);
    returns the score's norm."""
    score_from_posterior_mean(y, mean, a, var, score)
    norm2 = 0.0
    for i in range(y.size):
        norm2 += score[i] * score[i]
    exponential_integrator_step(rng, y, score, eta, drift_factor)
    return np.sqrt(norm2)


@_jit
def rdmc_step_importance(logp, args, frame, rng, ys, s, eta, n_is, antithetic, defensive, work, n_logp,
                         step_stats, drift_factor):
    """The gradient-free step: every particle (row of ``ys``, standardised coordinates) moves from
    forward time s to s - eta with its score from self-normalised importance sampling.
    ``step_stats`` receives the means over particles of [importance ESS, nan, score norm]."""
    a = ou_mean_factor(s)
    var = ou_variance(s)
    z, xi, buf, mean, score = work[0], work[1], work[2], work[3], work[4]
    no_starts = np.zeros((0, ys.shape[1]))
    sum_ess = 0.0
    sum_norm = 0.0
    for p in range(ys.shape[0]):
        ess, n = importance_mean(logp, args, frame, rng, ys[p], a, var, n_is, antithetic, defensive, z, xi,
                                 buf, mean, no_starts)
        n_logp[p] += n
        sum_ess += ess
        sum_norm += reverse_move(rng, ys[p], mean, a, var, eta, score, drift_factor)
    step_stats[0] = sum_ess / ys.shape[0]
    step_stats[1] = np.nan
    step_stats[2] = sum_norm / ys.shape[0]


@_jit
def rdmc_step(logp, logp_grad, args, frame, rng, ys, s, eta, estimator, n_is, antithetic, defensive,
              n_inner, n_burn, inner_step, width, chains, mala_steps, work, n_logp, n_grad, step_stats,
              drift_factor):
    """The step with an inner Langevin estimator (``estimator``: _ULA, _IS_ULA or _IS_MALA), the
    chains started from the likelihood factor's draws (ULA) or an importance resample; as
    ``rdmc_step_importance`` otherwise. The default ULA step is a tenth of the inverse curvature
    of q for modes of variance ``width``."""
    a = ou_mean_factor(s)
    var = ou_variance(s)
    d = ys.shape[1]
    z, xi, buf, mean, score = work[0], work[1], work[2], work[3], work[4]
    scratch = work[5:]
    sd = np.sqrt(var) / a
    h = inner_step if inner_step > 0.0 else 0.1 / (1.0 / width + a * a / var)
    sum_ess = 0.0
    sum_accept = 0.0
    sum_norm = 0.0
    for p in range(ys.shape[0]):
        y = ys[p]
        if estimator == _ULA:
            for c in range(chains.shape[0]):
                for i in range(d):
                    chains[c, i] = y[i] / a + sd * rng.standard_normal()
        else:
            ess, n = importance_mean(logp, args, frame, rng, y, a, var, n_is, antithetic, defensive, z, xi,
                                     buf, mean, chains)
            n_logp[p] += n
            sum_ess += ess
        if estimator == _IS_MALA:
            # q's variance is at most the likelihood factor's, var / a^2 in every direction where p is
            # log-concave: a step carried over from a larger s is cut to it, not left to shrink by
            # 1.03 an inner step while q narrows faster (short inner chains then stopped moving)
            for c in range(chains.shape[0]):
                mala_steps[p, c] = min(mala_steps[p, c], var / (a * a))
            ng, accept = mala_mean(logp_grad, args, frame, rng, y, a, var, chains, mala_steps[p], n_inner,
                                   n_burn, scratch, mean)
            sum_accept += accept
        else:
            ng, _ = ula_mean(logp_grad, args, frame, rng, y, a, var, chains, n_inner, n_burn, h, scratch, mean)
        n_grad[p] += ng
        sum_norm += reverse_move(rng, y, mean, a, var, eta, score, drift_factor)
    n = ys.shape[0]
    step_stats[0] = sum_ess / n if estimator != _ULA else np.nan
    step_stats[1] = sum_accept / n if estimator == _IS_MALA else np.nan
    step_stats[2] = sum_norm / n


@_jit
def draw_standard_normal(rng, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = rng.standard_normal()


# -- the run -----------------------------------------------------------------------------------


def _regularised(cov):
    """The symmetric part of ``cov`` with its eigenvalues floored at 1e-12 of the largest."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    return (vecs * np.maximum(vals, 1e-12 * max(vals.max(), 1e-300))) @ vecs.T


def _whiten(chol, cov):
    """L^{-1} C L^{-T}: the covariance ``cov`` in the units u of x = c + L u."""
    a = np.linalg.solve(chol, cov)
    return np.linalg.solve(chol, a.T)


def importance_sizes(settings: RDMC, grid: np.ndarray, dim: int, n_importance: int | None = None) -> np.ndarray:
    """Importance samples per step: ``n_importance`` (default: the settings') on average, with
    ``importance_boost`` times as many at the wide steps (sigma_s >= a_s) as at the others, the
    same total; or the score-tolerance rule."""
    n_importance = settings.n_importance if n_importance is None else n_importance
    if settings.score_tolerance is None:
        wide = np.exp(-2.0 * grid[:-1]) <= -np.expm1(-2.0 * grid[:-1])
        total = n_importance * wide.size
        narrow = max(1, int(total // (settings.importance_boost * wide.sum() + (~wide).sum())))
        n = np.where(wide, int(settings.importance_boost * narrow), narrow).astype(np.int64)
        n[0] += total - n.sum()  # what rounding left, so that every plan spends its budget
        return n
    eps, n_max = settings.score_tolerance, 8 * n_importance
    a = np.exp(-grid[:-1])
    var = -np.expm1(-2.0 * grid[:-1])
    excess = a**2 / var - 1.0  # curvature of q_s beyond the target's (unit, standardised)
    with np.errstate(divide="ignore"):
        rule = np.where(excess > 0, dim * a**2 / (var**2 * eps**2 * excess), np.inf)
    return np.clip(np.ceil(rule), 16, n_max).astype(np.int64)


def plan_for_budget(settings: RDMC, estimator: str, per_particle: float):
    """(n_steps, n_importance, n_chains, n_inner) for ``per_particle`` evaluations: the settings'
    inner sizes and as many steps as they pay for; below ``MIN_STEPS`` steps the inner sizes
    shrink (importance samples and inner steps in proportion, chains with its square root) to
    keep ``MIN_STEPS``, down to ``_SMALLEST_INNER``."""
    sizes = (settings.n_importance, settings.n_chains, settings.n_inner)
    steps = int(per_particle // evals_per_step(estimator, *sizes))
    if steps < MIN_STEPS:
        f = per_particle / (MIN_STEPS * evals_per_step(estimator, *sizes))
        sizes = tuple(max(lo, min(n, int(n * g))) for n, lo, g in
                      zip(sizes, _SMALLEST_INNER, (f, np.sqrt(f), np.sqrt(f))))
        steps = int(per_particle // evals_per_step(estimator, *sizes))
    if steps < 2:
        raise ValueError(f"rdmc: a budget of {per_particle:.3g} evaluations per particle (after the pilot) "
                         f"pays for fewer than 2 steps of {evals_per_step(estimator, *sizes)} evaluations; give a "
                         "larger max_evals, fewer draws, or smaller n_importance / n_chains / n_inner")
    return (steps, *sizes)


class RDMCRun(ParticleRun):
    """One population: the pilot (standardisation) at construction, then ``n_steps`` reverse steps."""

    particle_stat_dtypes: ClassVar[dict] = {}
    step_stat_dtypes: ClassVar[dict] = {"importance_ess": np.float64, "inner_acceptance": np.float64,
                                        "score_norm": np.float64, "n_importance": np.int64}
    drift_factor: ClassVar[float] = 2.0  # the reverse SDE's; the tests' mutant subclass sets 1

    def __init__(self, settings: RDMC, target, rng, init, tune, draws, budget_per_particle):
        self.estimator = settings.resolved_estimator(target.has_grad)
        d = target.dim
        n_steps, self.n_importance, n_chains, self.n_inner = (
            settings.n_steps, settings.n_importance, settings.n_chains, settings.n_inner)
        allotment = sizes = None
        if settings.standardise in ("auto", "search"):
            sizes = settings.pilot_sizes(d, None if budget_per_particle is None else budget_per_particle * draws)
            if settings.standardise == "auto" and sizes.searches < 2:
                sizes = None  # the GPSS pilot instead (see ``standardise``)
        if sizes is not None:
            allotment = pilot_allowance(sizes)  # an upper bound: nothing to plan around afterwards
            margin = 0.0
        elif budget_per_particle is not None:
            allotment = min(tune * _PILOT_EVALS_PER_IT, _PILOT_SHARE * budget_per_particle * draws)
            margin = 0.0 if allotment == 0 or settings.standardise == "none" else 0.05 * allotment + 200
        if budget_per_particle is not None:
            n_steps, self.n_importance, n_chains, self.n_inner = plan_for_budget(
                settings, self.estimator, budget_per_particle - (allotment + margin) / draws)
        if sizes is not None:
            self.frame, self.width, pilot_evals = self._search(settings, target, rng, init, sizes)
            self.standardised = "search"
        else:
            self.frame, pilot_evals = self._pilot(settings, target, rng, init, tune, allotment)
            self.width = 1.0
            self.standardised = "none" if settings.standardise == "none" or tune < 1 else "pilot"
        super().__init__(settings, target, rng, tune, draws, n_steps)
        self.extra_logp += pilot_evals
        self.early_stop = settings.early_stop * self.width
        self.grid = time_grid(settings.horizon, self.early_stop, n_steps, settings.grid)
        self.time = self.grid[:-1].copy()
        # at the wide steps the inner chains' evaluations go to importance sampling (module docstring)
        self.wide = np.exp(-2.0 * self.grid[:-1]) <= -np.expm1(-2.0 * self.grid[:-1])
        if settings.wide_steps == "chains":
            self.wide[:] = False
        chain_evals = evals_per_step(self.estimator, 0, n_chains, self.n_inner) if self.estimator in ("is_ula", "is_mala") else 0
        self.n_is = importance_sizes(settings, self.grid, d, self.n_importance) + chain_evals * self.wide
        self.y = np.empty((draws, d))
        draw_standard_normal(rng, self.y)  # p_T is N(0, I) up to e^{-2T}
        self.chains = np.zeros((n_chains, d))
        self.mala_steps = np.full((draws, n_chains), 0.5 * self.width * (1.0 - np.exp(-2.0 * settings.horizon)))
        self.work = np.zeros((10, d))
        self.step_info = np.zeros(3)

    @staticmethod
    def _search(settings, target, rng, init, sizes):
        """(frame, narrowest within-mode variance w in its units, evaluations): the pooled bulk of
        the searches, widened by the covering ladder's s^2 when it exceeds 1 (modes the searches
        missed); w from the searches' own covariances (module docstring)."""
        d = target.dim
        starts = (np.tile(np.asarray(init, float), (sizes.searches, 1)) if init is not None
                  else rng.uniform(-2.0, 2.0, (sizes.searches, d)))
        mean, cov, n_evals, found = pooled_bulk_and_searches(target.logp_fn, target.kernel_args, starts, rng,
                                                             n_importance=sizes.pooled, max_evals=sizes.search_evals)
        chol = np.linalg.cholesky(_regularised(cov))
        spread, n = covering_variance(target.logp_fn, target.kernel_args, dense_frame(mean, chol), rng,
                                      n=sizes.ladder, max_rungs=_LADDER_RUNGS)
        chol = chol * np.sqrt(spread)
        widths = [np.linalg.eigvalsh(_whiten(chol, _regularised(b.cov)))[0] for b in found]
        width = float(np.clip(np.median(widths), _MIN_WIDTH, 1.0))
        return dense_frame(mean, chol), width, n_evals + n

    @staticmethod
    def _pilot(settings, target, rng, init, tune, allotment=None):
        """(frame, evaluations): x = c + L u from a gradient-free slice chain's fitted frame, after
        ``tune`` iterations or, with an ``allotment`` of evaluations, once it is spent (the frame
        of the last warmup window closed by then)."""
        if settings.standardise == "none" or tune < 1:
            return identity_frame(target.dim), 0
        from ..sample import _initial_point
        from .gpss import GPSS
        from .slice import HitAndRunSlice
        pilot_cfg = GPSS() if target.dim >= 2 else HitAndRunSlice(pilot="self")
        q0, n_init = _initial_point(pilot_cfg, target, rng, init, 0)
        pilot = pilot_cfg.start_chain(target, rng, q0, tune, 0)
        done = 0
        while done < tune and (allotment is None or n_init + pilot.spent(done) < allotment):
            stop = tune if allotment is None else min(tune, done + _PILOT_CHUNK)
            pilot.run(done, stop)
            done = stop
        return pilot.frame, n_init + pilot.spent(done)

    def advance(self, start, stop):
        s = self.settings
        n_burn = int(s.burn * self.n_inner)
        t = self.target
        defensive = (s.defensive, 1.0)
        for k in range(start, stop):
            s_k, eta = self.grid[k], self.grid[k] - self.grid[k + 1]
            if self.estimator == "is" or (self.estimator != "ula" and self.wide[k]):
                rdmc_step_importance(t.logp_fn, t.kernel_args, self.frame, self.rng, self.y, s_k, eta,
                                     self.n_is[k], s.antithetic, defensive, self.work, self.n_logp,
                                     self.step_info, self.drift_factor)
            else:
                rdmc_step(t.logp_fn, t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.y, s_k, eta,
                          ESTIMATORS.index(self.estimator), self.n_is[k], s.antithetic, defensive, self.n_inner, n_burn,
                          s.inner_step or 0.0, self.width, self.chains, self.mala_steps, self.work, self.n_logp,
                          self.n_grad, self.step_info, self.drift_factor)
            self.step_stats["importance_ess"][k] = self.step_info[0]
            self.step_stats["inner_acceptance"][k] = self.step_info[1]
            self.step_stats["score_norm"][k] = self.step_info[2]
            self.step_stats["n_importance"][k] = self.n_is[k] if self.estimator != "ula" else 0
        if stop == self.total:
            self.particles[:] = frame_to_x(self.frame, self.y)

    def tuned(self):
        kind, centre, scale, chol = self.frame
        out = {"estimator": self.estimator, "n_steps": self.total, "n_importance": self.n_importance,
               "n_chains": self.chains.shape[0], "n_inner": self.n_inner,
               "standardise": self.standardised, "frame": ["identity", "diag", "dense"][kind], "mode_variance": self.width,
               "early_stop": self.early_stop}
        if kind:
            out["loc"] = centre.tolist()
            out["scale"] = scale.tolist() if kind == 1 else chol.tolist()
        return out
