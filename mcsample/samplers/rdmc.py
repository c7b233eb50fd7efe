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

Inner estimators of m (``estimator``): "smc" (the default with a gradient: a population per
particle that follows q_s along the reverse path, below), "is" (self-normalised importance sampling
from the likelihood factor, gradient-free; the default without a gradient), "ula" (unadjusted
Langevin on q from the likelihood factor's draws), "is_ula" and "is_mala" (chains started from an
importance resample at every step; MALA adapts each chain's step towards acceptance 0.75 and
carries it between steps, as the SLIPS benchmark code does, but on the correct density q -- that
code evaluates p at the conditioning point; "is_mala" was the default before "smc").

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

The sequential estimator (``estimator="smc"``). Fresh importance samples at every step cannot carry
the modes' weights past d ~ 8: at the wide steps the likelihood factor is wider than each mode in
every direction, the weights' variance grows exponentially with d, and their ESS falls to 1.4-3
(two_modes, d = 10-32), so the estimate of m is one draw's and the split between the modes goes
wrong (0.82-0.94 for the 2/3 mode). But the posteriors q_s(. | Y_s) of consecutive steps differ
by little: a sequential Monte Carlo sampler can follow them. Each particle carries ``population``
members x0 with weights, started at s = T, where q_T is the target up to a factor e^{-T}-close to
1, from one pool per run of ``n_start`` draws of the searches' modes, importance-weighted by p. At
each step the members are reweighted by N(Y_k; a_k x0, sigma_k^2) / N(Y_{k-1}; a_{k-1} x0,
sigma_{k-1}^2) -- p(x0) cancels, so the reweighting costs no evaluation and the modes' masses
pass from step to step instead of being re-estimated from scratch --, resampled (systematic) when
their ESS falls under half the population, and moved by ``moves`` MALA steps on q_s each; the
weighted average of the iterates is m. This is the paper's mechanism (Langevin on q_s) with the
weights between the modes carried by the reweighting. Cost: population x (moves + 1) gradients a
step (16 x 9 = 144 against is_mala's 260) plus the pool.

Why it is the default with a gradient (``benchmarks/results/rdmc_*``):
- two_modes' first mode (truth 0.667; ``benchmarks/rdmc_dimension.py``, 2 x 250 particles, both with
  4 search rounds) at d = 10 / 20 / 32: smc 0.650 / 0.722 / 0.670 (seed 7), 0.626 / 0.696 / 0.730
  (seed 8), each mode's sd within e^0.075; is_mala 0.664 / 0.862 / 0.918 and 0.620 / 0.824 / 0.908,
  sds off by up to e^0.54. With one search round: smc 0.824 / 0.896 / 0.854 and is_mala 0.862 /
  0.942 / 0.934 (seed 7), 0.808 / 0.848 / 0.908 (seed 8).
- posteriors (``benchmarks/rdmc_posteriors.py``, 2,000 particles, se 0.025, seeds 1-3; bar 0.15 sd):
  eight schools' largest mean error 0.042 / 0.055 / 0.066 sd, arK 0.038 / 0.041 / 0.066 (is_mala
  0.043 / 0.033 / 0.046 and 0.076 / 0.041 / 0.021): the same within Monte Carlo error (smc's z <= 2.7).
- small mixtures (1,000 particles, seeds 1-2, mode TV): 0.3/0.7 mixture 0.007-0.009 (is_mala
  0.018-0.034), two_modes d = 8 0.006-0.020 (0.050-0.051), at 56% of is_mala's evaluations per draw;
  mog8 0.025 / 0.070, where smc loses slightly (is_mala on the same searches 0.019 / 0.049; the
  floor of 1,000 exact draws is 0.034).
Where it stops: the start pool sets the masses right (two_modes d = 16 and 20, seeds 7-8, 8 runs: the
pool's first-mode mass 0.648-0.685, ``benchmarks/rdmc_start_pool.py``), but the output can still
drift from it along the reverse path (d = 16, seed 7: pools 0.662 / 0.656, outputs 0.590 / 0.585,
2.3 se each, and 0.650 / 0.695 with 64 members a particle; the other six runs within 1.5 se of the
truth); at d = 32, seed 8, 0.730 (3 se); at d = 50 it fails (0.956: one run's 32 searches found one
mode, the other run gave 0.91). In low dimension a light mode can come out lighter still: the
notebook's 0.6 / 0.3 / 0.1 mixture (d = 2, 1,000 particles, seed 1; ``benchmarks/rdmc_three_modes.py``)
gives the 0.1 mode 0.067 (is_mala 0.116), and 0.060 with 64 members, so not for want of members;
the cause is not known.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from collections import namedtuple

from .._core.bulk import (_log_normal, covering_variance, log_densities, pool_bulks, pooling_evals, search_evals,
                          search_rounds, search_starts)
from .._core.bulk import regularised as _regularised
from .._core.diffusion import (GRIDS, exponential_integrator_step, ou_mean_factor, ou_variance,
                               score_from_posterior_mean, time_grid)
from .._core.posterior_mean import importance_mean, mala_mean, ula_mean
from .._core.slice import dense_frame, frame_to_x, identity_frame
from ..convergence import warn_if_frame_did_not_standardise
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

ESTIMATORS = ("auto", "is", "ula", "is_ula", "is_mala", "smc")
# the largest d where rdMC's draws were measured right (benchmarks/particle_dimension.py: N(0, I) at d = 50 within
# 0.07 sd; at d = 100 a mean 0.63 sd off, silently); a run beyond it warns before it starts
_MEASURED_DIM = 50
_IS, _ULA, _IS_ULA, _IS_MALA, _SMC = range(1, 6)

# Budget planning: with a budget per particle that pays for fewer than MIN_STEPS outer steps at the
# settings' inner sizes, the inner sizes shrink (not below _SMALLEST_INNER = n_importance, n_chains,
# n_inner) before the grid does. Measured on eight_schools_noncentered (2 x 250 particles, seed 5):
# 7 steps at the default sizes (1,860 evaluations per particle) give mean errors up to 1.0 sd and
# sd ratios off by e^2.7; 30 steps at 32 / 2 x 16 (2,020 evaluations) 0.12 sd and e^0.14.
MIN_STEPS = 30
_SMALLEST_INNER = (16, 1, 8)
_SMALLEST_SMC = (0, 8, 2)  # the smc estimator's (no importance samples, population, moves)
# With a budget, the pilot is allotted min(tune x _PILOT_EVALS_PER_IT, _PILOT_SHARE x the run's
# budget) evaluations (GPSS spends ~10 an iteration) and stops once it has spent them, checked every
# _PILOT_CHUNK iterations; the steps are planned from the rest, less a margin for that overshoot,
# so that every run of a sample() gets the same grid whatever its pilot spent.
_PILOT_SHARE, _PILOT_EVALS_PER_IT, _PILOT_CHUNK = 0.25, 10, 10
# The search pilot's sizes (``RDMC.pilot_sizes``) and the floor of the within-mode variance w that
# sets delta (a collapsed search must not send delta to zero: at w = 1e-4 the default grid still
# has 6 geometric steps per e-fold of s).
# The smc estimator's start: pools of n_start draws until their weights' ESS reaches _START_ESS
# (the modes' masses then within ~0.015), at most _START_GROWTH pools or _START_MEMORY numbers
# (64 MB). On mog8 (seed 2) one pool of 32,768 had an ESS of 44 and put 0.05 on a mode of 0.125
# (TV 0.13); eight pools, ESS 437, TV 0.048 (floor 0.034).
_START_ESS, _START_GROWTH, _START_MEMORY = 1000.0, 16, 2**23
PilotSizes = namedtuple("PilotSizes", ["searches", "search_evals", "pooled", "ladder", "rounds"])
_LADDER_RUNGS, _MIN_WIDTH = 8, 1e-4


def pilot_allowance(sizes) -> int:
    """An upper bound on the search standardisation's evaluations (all ``sizes.rounds`` rounds)."""
    return sizes.rounds * sizes.searches * sizes.search_evals + sizes.pooled + _LADDER_RUNGS * sizes.ladder


def evals_per_step(estimator: str, n_importance: int, n_chains: int, n_inner: int) -> int:
    """Evaluations per particle and outer step."""
    if estimator == "smc":  # n_chains members of n_inner MALA moves, each starting with a gradient
        return n_chains * (n_inner + 1)
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
    max_step : no step of a geometric grid longer than this; None (default): the first step of the
        ``n_steps`` grid, so the default grid is unchanged and a budget that pays for fewer steps
        coarsens the grid near delta without lengthening its top steps (``_core.diffusion.time_grid``).
        With fewer geometric steps the first ones grow to ~1, where the frozen-score step multiplies
        y by e^eta and relies on the score to pull it back, which a heavy tail's weak score does not:
        on a Student-t (nu = 5, d = 4; 2 x 250 particles, seed 3) with 6,000 evaluations per particle
        (32 steps) the draws' sds came out 290-360x the truth, 1.3-1.7x with the cap (1.0 with the
        full grid); with 1,400 (38 steps, smaller inner sizes) 170-210x, and still 2.6-7.8x capped:
        too small a budget for rdMC on heavy tails. A Gamma(3) product: 13-17x -> 1.4x at 660.
    estimator : "auto" ("smc" with a gradient, "is" without), "is", "ula", "is_ula", "is_mala",
        "smc" (needs a gradient; module docstring, where the measurements behind the choice are).
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
    search_rounds : up to this many rounds (default 4) of ``n_searches`` searches, a new round only
        while all the searches so far ended in one mode (``_core.bulk.separated``). A mode the searches miss
        is one the reverse process never reaches in high dimension, where the covering ladder cannot
        widen the frame: on two_modes (d = 10-32, starts uniform in [-2, 2]^d) all 8 searches of a
        run found only the heavier mode in about half the runs, and that run's weight is 1.0. On a
        unimodal target every round runs: 32 searches, 8 x (2,000 + 500 d) evaluations a round per
        run. With a budget, only the rounds that fit its pilot share at full size (``pilot_sizes``).
    population, moves, n_start : the "smc" estimator's members per particle, MALA moves per member
        and step, and the run's start pool (module docstring, "The sequential estimator").

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
    max_step: float | None = None
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
    search_rounds: int = 4
    population: int = 16
    moves: int = 8
    n_start: int = 32768

    def validate(self, dim: int) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        if not 0.0 < self.early_stop < self.horizon < np.inf:
            raise ValueError(f"need 0 < early_stop < horizon < inf, got {self.early_stop} and {self.horizon}")
        if self.max_step is not None and not self.max_step > 0.0:
            raise ValueError(f"max_step must be positive, got {self.max_step}")
        if self.wide_steps not in ("importance", "chains"):
            raise ValueError(f"wide_steps must be 'importance' or 'chains', got {self.wide_steps!r}")
        if not 1.0 <= self.importance_boost < np.inf:
            raise ValueError(f"importance_boost must be finite and at least 1, got {self.importance_boost}")
        for name in ("n_steps", "n_importance", "n_chains", "n_inner"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.burn < 1.0:
            raise ValueError(f"burn must be in [0, 1), got {self.burn}")
        if self.standardise not in ("auto", "search", "pilot", "none"):
            raise ValueError(f"standardise must be 'auto', 'search', 'pilot' or 'none', got {self.standardise!r}")
        for name in ("population", "moves", "n_start", "search_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_searches < 1:
            raise ValueError(f"n_searches must be at least 1, got {self.n_searches}")
        if not 0.0 <= self.defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {self.defensive}")
        if self.score_tolerance is not None and not self.score_tolerance > 0:
            raise ValueError(f"score_tolerance must be positive, got {self.score_tolerance}")

    def resolved_estimator(self, has_grad: bool) -> str:
        if self.estimator == "auto":
            return "smc" if has_grad else "is"
        if self.estimator != "is" and not has_grad:  # smc moves with MALA
            raise ValueError(f"rdmc estimator {self.estimator!r} needs a gradient; the target has none "
                             "(use estimator='is', gradient-free)")
        return self.estimator

    def evals_per_step(self, estimator: str) -> int:
        """Evaluations per particle and outer step at the default inner sizes."""
        if estimator == "smc":
            return evals_per_step(estimator, 0, self.population, self.moves)
        return evals_per_step(estimator, self.n_importance, self.n_chains, self.n_inner)

    def pilot_sizes(self, dim: int, budget_per_run: float | None = None) -> PilotSizes:
        """The search standardisation's sizes: up to ``search_rounds`` rounds of ``n_searches``
        searches of at most 2000 + 500 d evaluations, the pooled importance round's 200 d + 1000 and
        the ladder's 4000 a rung. With a budget they cost at most a quarter of the run's budget: as
        many full rounds as fit, and if not even one does, one round with every size scaled down
        (each at least one search of 10 CMA-ES generations, 50 and 100 draws). The later rounds
        run only when the first found one mode, so they are not paid for by shrinking the first."""
        full = PilotSizes(self.n_searches, search_evals(dim), pooling_evals(dim), 4000, self.search_rounds)
        cap = None if budget_per_run is None else _PILOT_SHARE * budget_per_run
        if cap is None:
            return full
        for rounds in range(self.search_rounds, 0, -1):
            if pilot_allowance(full._replace(rounds=rounds)) <= cap:
                return full._replace(rounds=rounds)
        f = cap / pilot_allowance(full._replace(rounds=1))
        lam = 4 + int(3 * np.log(dim))
        return PilotSizes(max(1, int(full.searches * f)), max(10 * lam, int(full.search_evals * f)),
                          max(50, int(full.pooled * f)), max(100, int(full.ladder * f)), 1)

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Population for a run of ``budget_per_run`` evaluations (``mc.compare``), a quarter of it
        set aside for the pilot. Each particle gets the default grid's worth of evaluations at
        "is_mala"'s cost per step (the target's gradient is not known here; "smc", the default with
        one, then plans ~1.8x the default grid's steps from the same evaluations), with
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
        if target.dim > _MEASURED_DIM:
            warnings.warn(f"rdmc: d = {target.dim} is beyond where rdMC was measured to work (a standard Gaussian at "
                          f"d = {_MEASURED_DIM}; two_modes' weights to d = 32); at d = 100 one run of 1,000 particles "
                          "(2e6 evaluations) put a standard Gaussian's mean 0.63 sd off with no other warning "
                          "(benchmarks/results/particle_dimension.md). No setting was measured to fix it: check the "
                          "draws against NUTS.", RuntimeWarning, stacklevel=2)
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
def _log_likelihood(y, x0, a, var):
    """log N(y; a x0, var I) up to a constant in x0."""
    s = 0.0
    for i in range(y.size):
        r = y[i] - a * x0[i]
        s += r * r
    return -0.5 * s / var


@_jit
def rdmc_step_smc(logp_grad, args, frame, rng, ys, s, eta, pop, loglik, log_w, steps, n_moves, work, n_grad,
                  step_stats, drift_factor, reweight=True):
    """The sequential step: each particle's weighted population targets q_s(x0 | Y) along the
    reverse path. Reweighted by N(Y; a x0, sigma^2) / (the same at the previous step and Y) -- the
    target's density cancels, so the weights cost nothing and carry the modes' masses from step to
    step --, resampled (systematic) when its ESS falls under half the population, moved by
    ``n_moves`` MALA steps on q_s per member (adapted steps, carried), and its weighted average of
    the iterates is the posterior mean. ``step_stats``: [population ESS, acceptance, score norm].
    ``reweight`` False drops the reweighting (a mutant for the tests)."""
    a = ou_mean_factor(s)
    var = ou_variance(s)
    d = ys.shape[1]
    m_pop = pop.shape[1]
    mean, score, member_mean = work[0], work[1], work[2]
    scratch = work[3:8]
    w = np.empty(m_pop)
    sum_ess = 0.0
    sum_accept = 0.0
    sum_norm = 0.0
    for p in range(ys.shape[0]):
        y = ys[p]
        top = -np.inf
        for c in range(m_pop):
            ll = _log_likelihood(y, pop[p, c], a, var)
            if reweight:
                log_w[p, c] += ll - loglik[p, c]
            loglik[p, c] = ll
            top = max(top, log_w[p, c])
        total = 0.0
        total2 = 0.0
        for c in range(m_pop):
            w[c] = np.exp(log_w[p, c] - top)
            total += w[c]
            total2 += w[c] * w[c]
        ess = total * total / total2
        sum_ess += ess
        if ess < 0.5 * m_pop:  # systematic resampling; the survivors' copies keep their own steps
            u = rng.random() / m_pop
            cum = w[0] / total
            src = 0
            old = pop[p].copy()
            for c in range(m_pop):
                while u > cum and src < m_pop - 1:
                    src += 1
                    cum += w[src] / total
                for i in range(d):
                    pop[p, c, i] = old[src, i]
                u += 1.0 / m_pop
            for c in range(m_pop):
                w[c] = 1.0
                log_w[p, c] = 0.0
            total = m_pop
        for i in range(d):
            mean[i] = 0.0
        for c in range(m_pop):
            steps[p, c] = min(steps[p, c], var / (a * a))  # as rdmc_step's MALA chains
            ng, accept = mala_mean(logp_grad, args, frame, rng, y, a, var, pop[p, c:c + 1], steps[p, c:c + 1],
                                   n_moves, 0, scratch, member_mean)
            n_grad[p] += ng
            sum_accept += accept / m_pop
            for i in range(d):
                mean[i] += w[c] / total * member_mean[i]
            loglik[p, c] = _log_likelihood(y, pop[p, c], a, var)
        sum_norm += reverse_move(rng, y, mean, a, var, eta, score, drift_factor)
    n = ys.shape[0]
    step_stats[0] = sum_ess / n
    step_stats[1] = sum_accept / n
    step_stats[2] = sum_norm / n


@_jit
def draw_standard_normal(rng, out):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = rng.standard_normal()


# -- the run -----------------------------------------------------------------------------------


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
    keep ``MIN_STEPS``, down to ``_SMALLEST_INNER`` (``_SMALLEST_SMC`` for "smc", whose population
    and moves shrink with the square root)."""
    if estimator == "smc":  # (no importance samples, population, moves)
        sizes, smallest = (0, settings.population, settings.moves), _SMALLEST_SMC
    else:
        sizes, smallest = (settings.n_importance, settings.n_chains, settings.n_inner), _SMALLEST_INNER
    steps = int(max(per_particle, 0) // evals_per_step(estimator, *sizes))
    if steps < MIN_STEPS:
        f = per_particle / (MIN_STEPS * evals_per_step(estimator, *sizes))
        sizes = tuple(max(lo, min(n, int(n * g))) for n, lo, g in
                      zip(sizes, smallest, (f, np.sqrt(f), np.sqrt(f))))
        steps = int(max(per_particle, 0) // evals_per_step(estimator, *sizes))
    if steps < 2:
        raise ValueError(f"rdmc: a budget of {per_particle:.3g} evaluations per particle (after the pilot) "
                         f"pays for fewer than 2 steps of {evals_per_step(estimator, *sizes)} evaluations; give a "
                         "larger max_evals, fewer draws, or smaller n_importance / n_chains / n_inner")
    return (steps, *sizes)


def _warn_if_inner_sizes_shrank(settings: RDMC, estimator: str, sizes, per_particle: float, overhead: float):
    """Warn when a budget pays for fewer than ``MIN_STEPS`` steps at the settings' inner sizes, so
    that ``plan_for_budget`` shrank them. The noisier score then widens the output: standard
    Gaussian, d = 5, 2 x 250 particles, seeds 1-2, sds 1.24-1.37 with "is" at 800 evaluations per
    particle (1.08-1.20 at 3,200, 1.00-1.11 at 12,800) and 1.07-1.16 with "smc" at 800."""
    full = ((0, settings.population, settings.moves) if estimator == "smc"
            else (settings.n_importance, settings.n_chains, settings.n_inner))
    if all(n >= f for n, f in zip(sizes, full)):
        return
    needed = MIN_STEPS * evals_per_step(estimator, *full) + overhead
    warnings.warn(f"rdmc: the budget ({per_particle:,.0f} evaluations per particle) shrank the {estimator!r} "
                  f"score estimator's inner sample below its settings; its noise widens the output (sds 7-37% "
                  f"too wide on Gaussians at 800 per particle). Give at least {needed:,.0f} evaluations per "
                  "particle (max_evals = that x draws x chains) or fewer draws", RuntimeWarning, stacklevel=2)


class RDMCRun(ParticleRun):
    """One population: the pilot (standardisation) at construction, then ``n_steps`` reverse steps."""

    particle_stat_dtypes: ClassVar[dict] = {}
    step_stat_dtypes: ClassVar[dict] = {"importance_ess": np.float64, "inner_acceptance": np.float64,
                                        "score_norm": np.float64, "n_importance": np.int64}
    drift_factor: ClassVar[float] = 2.0  # the reverse SDE's; the tests' mutant subclass sets 1
    reweight: ClassVar[bool] = True  # the smc estimator's reweighting; a tests' mutant drops it

    def __init__(self, settings: RDMC, target, rng, init, tune, draws, budget_per_particle):
        self.estimator = settings.resolved_estimator(target.has_grad)
        d = target.dim
        n_steps, self.n_importance, n_chains, self.n_inner = (
            settings.n_steps, settings.n_importance, settings.n_chains, settings.n_inner)
        if self.estimator == "smc":
            self.n_importance, n_chains, self.n_inner = 0, settings.population, settings.moves
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
        # the smc start pool: grown by n_start draws until its ESS reaches _START_ESS, up to start_cap
        self.n_start = settings.n_start
        self.start_cap = max(self.n_start, min(_START_GROWTH * self.n_start, _START_MEMORY // d))
        if budget_per_particle is not None:
            # with a budget, the pool may take up to a tenth of the run's budget, planned as spent: one
            # pool of n_start (as before) had an ESS of 44 on mog8 and a mode TV of 0.14 at 3e5
            # evaluations per draw (seed 2, 500 particles), where the pool grown to ESS 1,000 is 0.05
            self.start_cap = min(self.start_cap, max(100, int(0.1 * budget_per_particle * draws)))
            self.n_start = min(self.n_start, self.start_cap)
            start = self.start_cap if self.estimator == "smc" else 0
            overhead = (allotment + margin + start) / draws
            n_steps, self.n_importance, n_chains, self.n_inner = plan_for_budget(
                settings, self.estimator, budget_per_particle - overhead)
            _warn_if_inner_sizes_shrank(settings, self.estimator, (self.n_importance, n_chains, self.n_inner),
                                        budget_per_particle, overhead)
        if sizes is not None:
            self.frame, self.width, pilot_evals, modes = self._search(settings, target, rng, init, sizes)
            self.standardised = "search"
        else:
            self.frame, pilot_evals = self._pilot(settings, target, rng, init, tune, allotment)
            self.width = 1.0
            modes = []
            self.standardised = "none" if settings.standardise == "none" or tune < 1 else "pilot"
        super().__init__(settings, target, rng, tune, draws, n_steps)
        self.extra_logp += pilot_evals
        self.early_stop = settings.early_stop * self.width
        max_step = settings.max_step
        if max_step is None:
            full = time_grid(settings.horizon, self.early_stop, settings.n_steps, settings.grid)
            max_step = full[0] - full[1]
        self.grid = time_grid(settings.horizon, self.early_stop, n_steps, settings.grid, max_step=max_step)
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
        self.modes = modes
        if self.estimator == "smc":  # per particle: n_chains members of x0, their log weights, ...
            self.pop = np.zeros((draws, n_chains, d))
            self.loglik = np.zeros((draws, n_chains))
            self.log_w = np.zeros((draws, n_chains))
            self.pop_steps = np.full((draws, n_chains), 0.5 * self.width * (1.0 - np.exp(-2.0 * settings.horizon)))

    def _start_population(self, s_top):
        """The sequential estimator's start: every particle's members drawn from q_T(x0 | Y), which
        at the horizon is p up to a factor within e^{-T} |x0| |Y| of 1, by importance sampling from
        one pool per run, grown by ``n_start`` draws at a time until its ESS reaches _START_ESS
        or its size ``start_cap`` (16 pools, 64 MB, and with a budget a tenth of the run's), of draws from the searches' modes (in the frame's units,
        covariances doubled as in ``pooled_bulk_and_searches``) mixed with N(0, I) with
        probability ``defensive``, resampled by p / proposal and weighted by each particle's
        likelihood N(Y; a_T x0, sigma_T^2). One pool, not one per particle: the self-normalised
        estimate of the modes' masses is biased by O(weight variance / pool size), which a pool
        per particle would leave in every particle alike (two_modes d = 32: 1,024 per particle
        gave the first mode 0.78, truth 0.67)."""
        st, rng = self.settings, self.rng
        n, d = self.n_start, self.y.shape[1]
        beta = st.defensive if self.modes else 1.0
        comps = [(m, np.linalg.cholesky(_regularised(2.0 * c) + 1e-12 * np.eye(d))) for m, c in self.modes]
        cap = self.start_cap
        us, log_ws = [], []
        while True:  # pools of n until the weights' ESS reaches _START_ESS or the cap
            pick = rng.random(n) < beta
            which = rng.integers(max(len(comps), 1), size=n)
            u = rng.standard_normal((n, d))
            for k, (m, chol) in enumerate(comps):
                rows = ~pick & (which == k)
                u[rows] = m + u[rows] @ chol.T
            with np.errstate(divide="ignore"):  # defensive=0: log 0 = -inf drops the N(0, I) term
                log_g = [np.log(beta) - 0.5 * np.sum(u * u, axis=1)]
            log_g += [np.log((1.0 - beta) / len(comps)) + _log_normal(u, m, chol) for m, chol in comps]
            lps = np.empty(n)
            log_densities(self.target.logp_fn, self.target.kernel_args, np.ascontiguousarray(frame_to_x(self.frame, u)),
                          lps)
            self.extra_logp += n
            log_w = lps - np.logaddexp.reduce(log_g, axis=0)
            log_w[~np.isfinite(log_w)] = -np.inf
            us.append(u)
            log_ws.append(log_w)
            log_w = np.concatenate(log_ws)
            if np.isfinite(log_w.max()):
                w = np.exp(log_w - log_w.max())
                w /= w.sum()
                self.start_ess = float(1.0 / np.sum(w * w))
                if self.start_ess >= _START_ESS:
                    break
            if len(log_w) + n > cap:
                break
        if not np.isfinite(log_w.max()):
            raise ValueError("rdmc smc: no start draw has a finite log density")
        u = np.concatenate(us)
        n = len(u)
        self.start_draws = n
        draws, members = self.pop.shape[:2]
        self.pop[:] = u[rng.choice(n, size=(draws, members), p=w)]
        a, var = np.exp(-s_top), -np.expm1(-2.0 * s_top)
        self.loglik[:] = -0.5 * np.sum((self.y[:, None, :] - a * self.pop) ** 2, axis=2) / var
        self.log_w[:] = self.loglik

    @staticmethod
    def _search(settings, target, rng, init, sizes):
        """(frame, narrowest within-mode variance w in its units, evaluations, modes): the pooled
        bulk of the searches, widened by the covering ladder's s^2 when it exceeds 1 (modes the
        searches missed); w from the searches' own covariances (module docstring); modes = each
        search's (mean, covariance) in the frame's units."""
        d = target.dim
        starts = search_starts(sizes.searches, d, init)
        found, n_evals = search_rounds(target.logp_fn, target.kernel_args, starts, rng,
                                       sizes.rounds if init is None else 1, max_evals=sizes.search_evals)
        mean, cov, n = pool_bulks(target.logp_fn, target.kernel_args, found, rng, n_importance=sizes.pooled)
        n_evals += n
        chol = np.linalg.cholesky(_regularised(cov))
        spread, n = covering_variance(target.logp_fn, target.kernel_args, dense_frame(mean, chol), rng,
                                      n=sizes.ladder, max_rungs=_LADDER_RUNGS)
        chol = chol * np.sqrt(spread)
        covs = [_whiten(chol, _regularised(b.cov)) for b in found]
        width = float(np.clip(np.median([np.linalg.eigvalsh(c)[0] for c in covs]), _MIN_WIDTH, 1.0))
        modes = [(np.linalg.solve(chol, b.mean - mean), c) for b, c in zip(found, covs)]
        return dense_frame(mean, chol), width, n_evals + n, modes

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
            if self.estimator == "smc":
                if k == 0:
                    self._start_population(s_k)
                rdmc_step_smc(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.y, s_k, eta, self.pop,
                              self.loglik, self.log_w, self.pop_steps, self.n_inner, self.work, self.n_grad,
                              self.step_info, self.drift_factor, self.reweight)
            elif self.estimator == "is" or (self.estimator != "ula" and self.wide[k]):
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
            self.step_stats["n_importance"][k] = self.n_is[k] if self.estimator not in ("ula", "smc") else 0
        if stop == self.total:
            self.particles[:] = frame_to_x(self.frame, self.y)
            warn_if_frame_did_not_standardise(self.y, "rdmc")

    def tuned(self):
        kind, centre, scale, chol = self.frame
        out = {"estimator": self.estimator, "n_steps": self.total, "n_importance": self.n_importance,
               "n_chains": self.chains.shape[0], "n_inner": self.n_inner,
               "standardise": self.standardised, "frame": ["identity", "diag", "dense"][kind], "mode_variance": self.width,
               "early_stop": self.early_stop}
        if self.estimator == "smc":
            out.update(population=self.pop.shape[1], moves=self.n_inner, n_start=getattr(self, "start_draws", None),
                       start_ess=getattr(self, "start_ess", None))
        if kind:
            out["loc"] = centre.tolist()
            out["scale"] = scale.tolist() if kind == 1 else chol.tolist()
        return out
