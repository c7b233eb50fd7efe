"""Multiscale averaging samplers: MultALMC and MultCDiff.

Cordero-Encinar, Duncan, Reich & Akyildiz (2025), "Sampling by averaging: a multiscale approach to
score estimation", arXiv:2508.15069.

Both anneal particles along a path from a simple law to the target and estimate the path's score
not with a network or an inner Monte Carlo loop but by *stochastic averaging*: each slow particle X
carries one fast particle Y that runs Langevin dynamics, ``1/eps`` times faster, on the conditional
law rho_{t, X}(y) of the clean variable given X; as eps -> 0 the slow drift averaged over rho is
the exact score (Pavliotis & Stuart's averaging principle). The fast process is stiff near the
ends of the path, so it is integrated with SK-ROCK (``_core/skrock.py``, s = 5 stages: s target
gradients per iteration).

MultALMC (annealed Langevin) follows mu_t = Law(sqrt(lambda_t) X + sqrt(1 - lambda_t) Z), X ~ pi,
Z ~ nu, on a schedule lambda_t (``_core.diffusion.path_schedule``: linear or cosine), with the fast
variable Y = sqrt(lambda) X (scaled) and the two score identities

    grad log mu_t(x) = E_rho[ -(x - Y) / (1 - lambda) ]                (noise form, Gaussian nu)
                     = E_rho[ grad log pi(Y / sqrt(lambda)) / sqrt(lambda) ]   (target form),

used as follows along the path: lambda frozen at lambda_delta below it; the noise form up to
lambda_tilde; the target form up to 1 - lambda_delta; then plain Langevin on pi (no Y), which
removes the truncation's bias. The slow process is underdamped (default; OBABO with the friction
Gamma_min for the first half of the iterations, then linear to Gamma_max, unit mass,
``_core/langevin.py``) or overdamped (Euler-Maruyama; the paper needs ~10x more evaluations for
it). Base noise nu: Gaussian, or Student-t with tail index alpha (heavy-tailed targets), for which
both the noise-form drift and the fast pull are the Student score. The paper's fast process for
the Student path is a modified Ito diffusion whose coefficients could not be recovered; we keep
plain Langevin on rho (rho stays invariant, only the mixing speed differs).

MultCDiff (controlled diffusion) integrates the reverse of a forward noising process, with the
score given by Tweedie's identity from the fast variable: the Ornstein-Uhlenbeck process
(overdamped; exponential integrator, ``_core.diffusion.exponential_integrator_step``) or the
critically damped Langevin process (underdamped, default; Dockhorn et al. 2022: the linear part of
the reverse SDE solved exactly per coordinate as a 2x2 linear SDE for half a step, an Euler step
for the Y-dependent drift, the SK-ROCK step of Y, and the other half of the linear part). The grid
is uniform in the target's weight lambda (a_s^2 for OU, c_x(s)^2 for CLD) from lambda_delta to
1 - lambda_delta; Y lives in the scaled space (a_s x0) as in MultALMC, so that both samplers'
fast processes share one drift family and one initialisation, Y_0 ~ N(0, I). A short plain
Langevin phase (``final_fraction`` of the iterations) ends the run.

Evaluations: only gradients (``n_grad``), s per iteration for SK-ROCK, plus one for MultALMC's
target-form drift (the value after the fast step is reused by the next iteration's first
half-kick), one per plain-Langevin iteration and one when that phase starts. Counted exactly and
planned from a budget: ``max_evals`` sets the number of iterations L at fixed step h (so the
annealing time L h grows with the budget, as in the paper). A run never spends more than its
budget: the pilot is charged its allowance (an upper bound on what it spends), L is planned from
99% of what is left, and the rest pays for the fast-step guard's redone steps (below); a step the
allowance cannot pay to redo is undone and not redone. ``attrs["tuned"]`` reports both
(``redone_evals``, ``steps_not_redone``).

Tuning. The paper tunes by hand (Table 8; ``MultALMC.preset(name)`` has its values for the
catalogue targets, in their raw units, and ``standardise="none"``): fix s = 5, lambda_tilde = 0.6,
lambda_delta = 0.01; choose h; then eps so that (h / eps) Lip(f) stays inside SK-ROCK's stability
bound (37.6 for s = 5), where the fast drift f has Lipschitz constant about 1 / (1 - lambda) +
L_pi / lambda (largest at lambda_delta: 1 + 100 L_pi); then the friction pair. Those values are
in the target's units: off the paper's targets they fail (eight schools at ``mc.compare``'s 2e5
evaluations: mean errors of 10.6 and 56 sds). The defaults follow the same order from a pilot
whose evaluations are counted (at most a quarter of a run's budget, as walk_jump's):

1. Frame: ``n_searches`` gradient-free bulk searches pooled (``_core.bulk.pooled_bulk``) give x =
   c + L u. When the covering ladder (``_core.bulk.covering_variance``) finds the target's second
   moment above ``_COVERED`` (4) in those units (the searches fitted one mode of a multimodal
   target), each axis is widened to the target's second moment along it. The samplers run in u.
2. Curvature Lip of log pi in u: power iterations on finite differences of gradients at 32 of
   the resampled starts below (about draws of the target; ``estimate_lipschitz``), their 90th
   percentile; only wells count (-v.Hv > 0). Probed at N(0, I) in u instead, a frame wider than
   the target (funnel10) put the probes in the neck: 1.4 to 3.8e8 between runs, against 1.9 to
   3.0e3 at the starts (seeds 1-2).
3. h = ``step_scale`` / sqrt(max(Lip, 1 / sigma^2)) (0.1: the Verlet part's h sqrt(Lip) well
   below its bound of 2); the iterations L come from the budget (annealing time L h).
4. eps: not one value. Per iteration the fast step is the largest inside ``stability`` (1/2) of
   SK-ROCK's bound for f at that lambda, Delta = 0.5 x 37.6 / (k(lambda) + Lip / lambda), at most
   1 (eps = h / Delta), where a single eps must be set for the stiffest lambda; and Delta x Lip /
   lambda at most ``accuracy`` (2, Euler's own bound). The extended stability is for the stiff
   *linear* part of f, the Gaussian tilt k(lambda) (up to 100 near lambda = 1); the target's part is
   not linear, and on a multimodal target a step at half the bound overshot across basins: on
   40-MoG fast chains started from exact draws of rho jumped up to 74 units and piled into isolated
   modes, and both samplers' mode weights went wrong within the first tenth of the path (mode TV
   0.45-0.57 against a floor of 0.17; benchmarks/results/multiscale_gmm40.md).
5. Frictions (Gamma_min, Gamma_max) = (0.1, 2) sqrt(Lip): with the paper's (0.07, 0.5) at the
   tuned h (10-20x the paper's in natural units), the one-sample drift's noise heated the particles
   (arK: sds 1.4-5x too wide at 2e5 evaluations; 0.9-1.3x with these).

Lip comes from a few points and the tails can be stiffer (eight schools: the probe's estimate
spread from 1 to 180 over seeds, and fast chains that met a curvature above it diverged). So each
fast step is guarded (``_guarded_fast_step``): the step's own stages give a secant estimate of
Lip(f) for free; a step beyond the bound is undone and redone shorter (counted; with a budget,
paid from the 1% kept back for it). The annealed
slow step is not guarded: the path's score has curvature at most 1 / ((1 - lambda) sigma^2),
whatever the target's (the noise of its one-sample estimate does grow with it). The final plain-Langevin phase does see the target's own curvature, which a single h
cannot cover when it spans orders of magnitude (the funnel's neck: particles thrown to 1e5-1e6
there), so by default (``adjust_final``) each of its steps is Metropolis-adjusted (generalised HMC
with a momentum flip on rejection, MALA when overdamped; no extra gradient): a particle where
the step is too long stays put. The presets keep the paper's unadjusted phase. A run warns when
particles end non-finite or beyond 1e6.

Initial basins (``resample_init``, default when standardised): each fast chain starts at
sqrt(lambda_delta) u, u drawn by importance resampling from a pool of N(0, 2 I) in the frame
(20 per particle; weights pi / N(0, 2 I), tempered only when their ESS is below 20). A fast chain
never crosses a high barrier (below), so the basin it starts in is the mode its particle ends in;
the resampled start gives each basin its target mass. Measured (benchmarks/results/
multiscale_weights.md, 300 particles): 0.3/0.7 mixture 0.69 (paper's start: 0.59 / 0.55);
two_modes 2:1 0.68 (d = 2) and 0.63 (d = 8) against 0.667 (paper's start: 0.51-0.54). It works
while the pool's importance weights do: in high dimension they degenerate, and the correction with
them.

Known limitation (benchmarks/results/multiscale_weights.md): each slow particle has one fast
chain, and a fast chain cannot cross a high energy barrier, so with the paper's start (Y_0 ~ N(0,
I), ``resample_init=False``, and the presets) the mass a particle ends in follows the basin its
fast chain started in, not the target's weights. The paper's benchmarks have equal weights.
"""

from __future__ import annotations

import warnings
from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.diffusion import (SCHEDULES, cld_mass, cld_transition, exponential_integrator_step,
                               linear_sde_transition, path_schedule)
from .._core.bulk import covering_variance, log_densities, pooled_bulk, pooling_evals, search_evals
from .._core.langevin import a_step, b_step, o_step, ula_step
from .._core.posterior_mean import logp_grad_in_frame
from .._core.skrock import skrock_coefficients, skrock_step_in_frame, stability_bound
from .._core.slice import covariance_frame, dense_frame, frame_to_x, identity_frame, norm
from ..convergence import warn_if_frame_did_not_standardise
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

NOISES = ("gaussian", "student")
_GAUSS, _STUDENT = 0, 1
CITATION = ("Cordero-Encinar, Duncan, Reich & Akyildiz (2025), Sampling by averaging: a multiscale approach "
            "to score estimation, arXiv:2508.15069")
MIN_STEPS = 100
STANDARDISE = ("auto", "pilot", "none")
# The pilot: its sizes (``_MultiscaleSettings.pilot_sizes``), at most this share of a run's budget.
PilotSizes = namedtuple("PilotSizes", ["searches", "search_evals", "pooled", "ladder", "curv_points", "pool"])
_LADDER_RUNGS = 6
_COVERED = 4.0  # the ladder's second moment below which the searches' frame is kept as it is
_MIN_POOL_ESS = 20.0
_MAX_FAST_STEP = 1.0
_PILOT_SHARE = 0.25
_CURV_POINTS, _CURV_ITERS = 32, 6
# The probe's 90th percentile, not its maximum: the guard keeps the fast steps stable where the tails are stiffer,
# and the maximum over 32 points (eight schools: 1-180 between runs) shortened h and the annealing time of some
# runs (sds up to 1.95x too wide at 2e5; 1.55x with the 90th percentile, seeds 0-3).
_CURV_QUANTILE = 0.9
# mc.compare: particles such that each gets this many iterations of its run's budget.
_ITERATIONS_FOR_BUDGET = 500
# Tuned frictions (Gamma_min, Gamma_max) / sqrt(Lip): about the paper's Table 8 pairs at their targets' curvature.
_FRICTION = (0.1, 2.0)
# Columns of a run's ``guard`` (draws, 4), the fast-step guard's state per particle: the running secant
# estimate of Lip(f); the gradients left for redone steps (inf without a budget); the gradients redone steps
# spent; the unstable steps left undone because that allowance was spent.
_LIP, _LEFT, _REDONE, _REFUSED = 0, 1, 2, 3
_GUARD_COLUMNS = 4
# With a budget, this share of the iterations' budget is kept back for redone fast steps (the plan's own slack is
# added to it). At the defaults the guard's redone steps cost 0.1-0.5% of a run (benchmarks/results/
# multiscale_tables.md); steps beyond the allowance are not redone, so a run never spends more than its budget.
_REDO_SHARE = 0.01

# Table 8 of the paper (MultALMC; MultCDiff uses the same eps and friction): schedule, eps,
# (Gamma_min, Gamma_max), h, keyed by the catalogue's names.
TABLE8 = {
    "mog8": ("linear", 0.10, (0.07, 0.5), 0.005),
    "gmm40_d2": ("linear", 0.05, (0.01, 0.5), 0.005),
    "gmm40_d50": ("linear", 0.05, (0.01, 0.5), 0.001),
    "rings": ("linear", 0.10, (0.1, 0.5), 0.005),
    "funnel10": ("cosine", 0.07, (0.01, 0.5), 0.003),
    "funnel10_slips": ("cosine", 0.07, (0.01, 0.5), 0.003),
    "dw5": ("cosine", 0.10, (0.01, 0.5), 0.005),
    "dw10": ("cosine", 0.07, (0.01, 0.5), 0.001),
    "dw50": ("cosine", 0.05, (0.01, 0.5), 0.001),
    "mos10_d2": ("linear", 0.10, (0.1, 0.5), 0.005),
    "mos10_d10": ("linear", 0.10, (0.1, 0.5), 0.005),
    "mos10_d50": ("linear", 0.05, (0.1, 0.5), 0.001),
}
# Table 3: evaluations per sample in the paper's comparisons.
TABLE3_BUDGET = {"mog8": 3e5, "gmm40_d2": 3e5, "gmm40_d50": 5e6, "rings": 3e5, "funnel10": 5e5,
                 "funnel10_slips": 5e5, "dw5": 3e5, "dw10": 5e5, "dw50": 5e6, "mos10_d2": 3e5,
                 "mos10_d10": 5e5, "mos10_d50": 1e6}


@dataclass(frozen=True)
class _MultiscaleSettings(ParticleSettings):
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = CITATION
    default_draws: ClassVar[int] = 1000

    n_steps: int = 20000
    step_size: float | None = None
    eps: float | None = None
    friction: tuple | None = None
    underdamped: bool = True
    lambda_delta: float = 0.01
    stages: int = 5
    damping: float = 0.05
    standardise: str = "auto"
    step_scale: float = 0.1
    stability: float = 0.5
    accuracy: float = 2.0
    resample_init: bool | None = None
    n_searches: int = 4
    adjust_final: bool = True

    def validate(self, dim: int) -> None:
        if int(self.n_steps) != self.n_steps or self.n_steps < 2:
            raise ValueError(f"n_steps must be an integer >= 2, got {self.n_steps!r}")
        for name in ("step_size", "eps"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number or None (tuned), got {v!r}")
        if self.friction is not None:
            fr = tuple(self.friction)
            if len(fr) != 2 or not all(np.isfinite(f) and f >= 0 for f in fr):
                raise ValueError("friction must be None (tuned) or a pair (Gamma_min, Gamma_max) of non-negative "
                                 f"numbers, got {self.friction!r}")
        if not 0.0 < self.lambda_delta < 0.5:
            raise ValueError(f"lambda_delta must be in (0, 0.5), got {self.lambda_delta}")
        if self.standardise not in STANDARDISE:
            raise ValueError(f"standardise must be one of {STANDARDISE}, got {self.standardise!r}")
        if not (np.isfinite(self.step_scale) and self.step_scale > 0):
            raise ValueError(f"step_scale must be positive, got {self.step_scale!r}")
        if not 0.0 < self.stability <= 1.0:
            raise ValueError(f"stability must be in (0, 1], got {self.stability!r}")
        if not (np.isfinite(self.accuracy) and self.accuracy > 0):
            raise ValueError(f"accuracy must be positive, got {self.accuracy!r}")
        if int(self.n_searches) != self.n_searches or self.n_searches < 1:
            raise ValueError(f"n_searches must be a positive integer, got {self.n_searches!r}")
        skrock_coefficients(self.stages, self.damping)  # raises on bad stages / damping

    @property
    def uses_pilot(self) -> bool:
        """Standardise from a pilot: "pilot", or "auto" without a user step size (a preset)."""
        return self.standardise == "pilot" or (self.standardise == "auto" and self.step_size is None)

    @property
    def resamples_init(self) -> bool:
        return self.uses_pilot if self.resample_init is None else bool(self.resample_init)

    @staticmethod
    def _table8_row(target_name: str):
        """(schedule, eps, friction, h) of the paper's Table 8 (KeyError names the known targets)."""
        if target_name not in TABLE8:
            raise KeyError(f"no Table 8 preset for {target_name!r}; presets: {', '.join(sorted(TABLE8))}")
        return TABLE8[target_name]

    def fast_stiffness(self, lipschitz: float = 1.0) -> float:
        """(h / eps) Lip(f) at lambda_delta for a target whose log-density gradient has Lipschitz
        constant ``lipschitz`` (fixed h and eps), against SK-ROCK's bound ``stability_bound(stages)``."""
        lam = self.lambda_delta
        return self.step_size / self.eps * (1.0 / (1.0 - lam) + lipschitz / lam)

    def pilot_sizes(self, dim: int, budget_per_run: float | None = None) -> PilotSizes:
        """The pilot's sizes: ``n_searches`` bulk searches of at most 2000 + 500 d log densities,
        the pooled importance round's 200 d + 1000, the curvature probe's gradients and the pool of
        the initial resampling; with a budget, scaled down to at most a quarter of the run's
        budget (as walk_jump's pilot; each part at least what makes it work)."""
        full = PilotSizes(self.n_searches, search_evals(dim), pooling_evals(dim), 2000, _CURV_POINTS, 2000)
        if not self.uses_pilot:
            full = full._replace(searches=0, pooled=0, ladder=0, pool=2000 if self.resamples_init else 0)
        cap = None if budget_per_run is None else _PILOT_SHARE * budget_per_run
        if cap is None or _pilot_allowance(full) <= cap:
            return full
        f = cap / _pilot_allowance(full)
        lam = 4 + int(3 * np.log(max(dim, 1)))
        return PilotSizes(min(full.searches, max(1, int(full.searches * f))), max(10 * lam, int(full.search_evals * f)),
                          max(50, int(full.pooled * f)) if full.pooled else 0,
                          max(100, int(full.ladder * f)) if full.ladder else 0, max(4, int(full.curv_points * f)),
                          max(200, int(full.pool * f)) if full.pool else 0)

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Particles for a run of ``budget_per_run`` gradients (``mc.compare``): after the pilot,
        enough for each to get ``_ITERATIONS_FOR_BUDGET`` iterations if possible (between 4 and
        ``default_draws``)."""
        usable = budget_per_run - _pilot_allowance(self.pilot_sizes(dim, budget_per_run))
        return int(np.clip(usable // (_ITERATIONS_FOR_BUDGET * (self.stages + 1)), 4, self.default_draws))


def _pilot_allowance(sizes: PilotSizes) -> int:
    return (sizes.searches * sizes.search_evals + sizes.pooled + (_LADDER_RUNGS + 1) * sizes.ladder
            + sizes.curv_points * (_CURV_ITERS + 1) + sizes.pool)


@dataclass(frozen=True)
class MultALMC(_MultiscaleSettings):
    """Multiscale annealed Langevin Monte Carlo (Cordero-Encinar et al. 2025, Algorithms 1-3).

    n_steps : L, iterations (with ``max_evals``: planned from the budget per particle).
    step_size : h. The annealing runs over lambda(l / L), l < L, in total time L h. None (default):
        tuned, h = ``step_scale`` / sqrt(Lip), Lip the pilot's curvature estimate (module docstring).
    eps : time-scale separation of the fast process (SK-ROCK step h / eps). None (default): per
        iteration, the largest fast step inside ``stability`` x SK-ROCK's bound at that lambda.
    friction : (Gamma_min, Gamma_max): Gamma_min for the first half of the iterations, then linear
        to Gamma_max (underdamped only; unit mass). None: (0.05, 0.5) sqrt(Lip).
    underdamped : OBABO slow process (default, the paper's main method) or Euler-Maruyama.
    schedule : "linear" (lambda = t) or "cosine" (sin^2(pi t / 2)).
    lambda_delta : lambda is clamped below it; plain Langevin on the target above 1 - lambda_delta.
    lambda_tilde : noise-form slow drift below it, target-form above.
    stages, damping : SK-ROCK's s and eta.
    noise : base law nu: "gaussian" or "student" (tail index ``tail_index``); ``noise_scale``: its
        scale sigma (nu = N(0, sigma^2 I)), in the frame's units when standardised.
    standardise : "auto" (a pilot unless ``step_size`` is given), "pilot" or "none" (the target's
        own coordinates, as the paper).
    step_scale, stability : h sqrt(Lip) and the share of SK-ROCK's bound used when tuning.
    accuracy : when tuning, the fast step times the target part's curvature (Lip / lambda) is at most
        this (module docstring, step 4).
    resample_init : start each fast chain from importance resampling of a Gaussian pool (mode
        weights; module docstring). None: when standardised.
    n_searches : bulk searches of the pilot.
    adjust_final : Metropolis-adjust the final plain-Langevin phase (module docstring); the presets
        switch it off, as the paper.

    Defaults: the paper's global settings (s = 5, lambda_tilde = 0.6, lambda_delta = 0.01) with h,
    the fast step and the frictions tuned from a pilot. ``MultALMC.preset(name)`` has the paper's
    Table 8 values for the catalogue targets, in their raw units, untouched by the pilot. Draws:
    the slow particles X at the end.
    """

    name: ClassVar[str] = "multalmc"

    schedule: str = "linear"
    lambda_tilde: float = 0.6
    noise: str = "gaussian"
    tail_index: float = 3.0
    noise_scale: float = 1.0

    @classmethod
    def preset(cls, target_name: str, **overrides) -> "MultALMC":
        """The paper's Table 8 settings for a catalogue target (KeyError names the known ones)."""
        sched, eps, fric, h = cls._table8_row(target_name)
        kw = dict(schedule=sched, eps=eps, friction=fric, step_size=h, standardise="none", adjust_final=False)
        if target_name.startswith("mos"):
            kw["noise"] = "student"
        return cls(**(kw | overrides))

    def validate(self, dim: int) -> None:
        super().validate(dim)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.lambda_delta < self.lambda_tilde < 1.0 - self.lambda_delta:
            raise ValueError(f"need lambda_delta < lambda_tilde < 1 - lambda_delta, got {self.lambda_tilde}")
        if self.noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {self.noise!r}")
        if not (self.tail_index > 0 and 0 < self.noise_scale < np.inf):
            raise ValueError(f"tail_index must be positive and noise_scale positive and finite, got "
                             f"{self.tail_index} and {self.noise_scale}")

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        _warn_if_beyond_measured(self.name, target.dim)
        return MultALMCRun(self, target, rng, init, draws, budget_per_particle)


@dataclass(frozen=True)
class MultCDiff(_MultiscaleSettings):
    """Multiscale controlled diffusion (Cordero-Encinar et al. 2025, Algorithm 4 and App. B.2.1).

    n_steps : L iterations: (1 - final_fraction) L reverse-diffusion steps on a grid uniform in
        lambda from lambda_delta to 1 - lambda_delta, then plain Langevin on the target with step h.
    underdamped : critically damped Langevin forward process (default) or Ornstein-Uhlenbeck.
    cld_friction : Gamma of the critically damped process (mass Gamma^2 / 4); V_0 ~ N(0, 1).
    eps : fast time-scale: SK-ROCK step (reverse-time step) / eps. None: per step, the largest
        fast step inside ``stability`` x SK-ROCK's bound.
    step_size, friction : h and (Gamma_min, Gamma_max) of the final plain-Langevin phase (Gamma_max
        is used); None: tuned as MultALMC's.
    final_fraction : share of the iterations spent in the final plain Langevin phase.
    standardise, step_scale, stability, accuracy, resample_init, n_searches, adjust_final : as MultALMC's.
    """

    name: ClassVar[str] = "multcdiff"

    cld_friction: float = 1.0
    final_fraction: float = 0.01

    @classmethod
    def preset(cls, target_name: str, **overrides) -> "MultCDiff":
        _, eps, fric, h = cls._table8_row(target_name)
        return cls(**(dict(eps=eps, friction=fric, step_size=h, standardise="none", adjust_final=False) | overrides))

    def validate(self, dim: int) -> None:
        super().validate(dim)
        if not 0 < self.cld_friction < np.inf:
            raise ValueError(f"cld_friction must be positive and finite, got {self.cld_friction}")
        if not 0.0 <= self.final_fraction < 1.0:
            raise ValueError(f"final_fraction must be in [0, 1), got {self.final_fraction}")

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        _warn_if_beyond_measured(self.name, target.dim)
        return MultCDiffRun(self, target, rng, init, draws, budget_per_particle)


# the largest d where the draws were measured right (benchmarks/particle_dimension.py, N(0, I), 2e6, seed 1:
# max |mean| 0.19-0.20 sd at d = 100; at d = 200 MultCDiff's 0.41 sd and MultALMC's 0.61, silently)
_MEASURED_DIM = 100


def _warn_if_beyond_measured(name, dim):
    if dim > _MEASURED_DIM:
        warnings.warn(f"{name}: d = {dim} is beyond where it was measured to work (a standard Gaussian at d = "
                      f"{_MEASURED_DIM}); at d = 200 one MultCDiff run of 1,000 particles (2e6 evaluations) put a "
                      "standard Gaussian's mean 0.41 sd off with no other warning (benchmarks/results/"
                      "particle_dimension.md). No setting was measured to fix it: check the draws against NUTS.",
                      RuntimeWarning, stacklevel=3)


# -- kernels: one compiled chunk of iterations for the whole population, step-major so that the
# draws do not depend on how the driver cuts the run into chunks ----------------------------------


@_jit
def _fast_pull(lam, noise_kind, alpha, noise_var, d):
    """(k, inv_tau) of the fast drift's pull towards x: Gaussian nu: k = 1 / ((1 - lam) sigma^2);
    Student nu: k = (alpha + d) / tau, inv_tau = 1 / tau with tau = alpha sigma^2 (1 - lam)."""
    if noise_kind == _GAUSS:
        return 1.0 / ((1.0 - lam) * noise_var), 0.0
    tau = alpha * noise_var * (1.0 - lam)
    return (alpha + d) / tau, 1.0 / tau


@_jit
def _guarded_fast_step(logp_grad, args, frame, rng, y, delta, guard, p, bound, theta, mu, nu, kappa, m, k, inv_tau,
                       beta, gamma, work):
    """One SK-ROCK step of the fast variable y of particle p with a per-particle guard: the step is
    at most theta x bound / guard[p, _LIP] (the particle's running secant estimate of Lip(f)), and a
    step whose own secant estimate puts it beyond SK-ROCK's ``bound``, or that is non-finite, is
    undone and redone shorter (up to 8 times, then y stays put). The pilot's curvature is an
    estimate from a few points: on eight schools its spread over seeds was 2-180, and a fast chain
    that met a curvature above it diverged within a few steps. A redo is paid from
    guard[p, _LEFT]: when that cannot pay for one more step, the unstable step is undone and not
    redone (y stays put; the shorter step the estimate asks for starts the next iteration), so that
    a run with a budget never exceeds it. ``work`` is scratch of shape (10, d). Returns gradients
    (every one counted)."""
    save = work[9]
    for i in range(y.size):
        save[i] = y[i]
    dl = delta
    lip = guard[p, _LIP]
    if lip > 0.0 and dl * lip > theta * bound:
        dl = theta * bound / lip
    n = 0
    est = 0.0
    accepted = False
    for attempt in range(8):
        if attempt > 0:
            if guard[p, _LEFT] < mu.size - 1:
                guard[p, _REFUSED] += 1.0
                break
            guard[p, _LEFT] -= mu.size - 1
            guard[p, _REDONE] += mu.size - 1
        ng, est = skrock_step_in_frame(logp_grad, args, frame, rng, y, dl, mu, nu, kappa, m, k, inv_tau, beta, gamma,
                                       work[:9])
        n += ng
        accepted = dl * est <= bound
        for i in range(y.size):
            accepted = accepted and np.isfinite(y[i])
        if accepted:
            break
        for i in range(y.size):
            y[i] = save[i]
        dl = theta * bound / est if (np.isfinite(est) and est > 0.0) else 0.1 * dl
    if accepted:
        guard[p, _LIP] = max(est, 0.98 * lip)
    else:  # no stable step found: the fast chain stays where it was for this iteration, and the next starts from
        # the shorter step the last attempt asked for. An attempt that met a non-finite gradient (the target
        # undefined there, or the user's function raised) says nothing about the curvature: its 0.1x cuts had left
        # a step 1e-8 of the planned one remembered, which froze the chain for the rest of the run (a target NaN
        # for x0 > 2: a fifth of the particles ended 10-30 sd out); it is a rejected proposal, and the next
        # iteration tries the same step again
        for i in range(y.size):
            y[i] = save[i]
        if np.isfinite(est) and est > 0.0:
            guard[p, _LIP] = max(lip, est)
    return n


@_jit
def _slow_drift(logp_grad, args, frame, lam, x, y, target_form, fresh, noise_kind, alpha, noise_var, gy, scaled, xbuf,
                out):
    """The one-sample estimate of grad log mu_lambda(x) from the fast variable y, into ``out``:
    target form grad log pi(y / sqrt(lam)) / sqrt(lam) (``gy`` holds grad log pi(y / sqrt(lam)) in
    the frame, recomputed when ``fresh``), or the noise form (Gaussian or Student). Returns
    gradients spent."""
    d = x.size
    if target_form:
        n = 0
        r = 1.0 / np.sqrt(lam)
        if fresh:
            for i in range(d):
                scaled[i] = r * y[i]
            logp_grad_in_frame(logp_grad, args, frame, scaled, xbuf, gy)
            n = 1
        for i in range(d):
            out[i] = r * gy[i]
        return n
    if noise_kind == _GAUSS:
        c = 1.0 / ((1.0 - lam) * noise_var)
    else:
        r2 = 0.0
        for i in range(d):
            r2 += (x[i] - y[i]) ** 2
        c = (alpha + d) / (alpha * noise_var * (1.0 - lam) + r2)
    for i in range(d):
        out[i] = -c * (x[i] - y[i])
    return 0


@_jit
def langevin_phase_chunk(logp_grad, args, frame, rng, xs, vs, gs, lps, n_rows, h, frictions, inv_mass, underdamped,
                         adjust, cache, work, n_grad, out_norm):
    """``n_rows`` iterations of plain Langevin on the target (OBABO, or ULA) for every particle.
    ``gs`` and ``lps`` hold the gradients and log densities at xs when ``cache[0] == 2``; otherwise
    they are computed first. ``adjust``: a Metropolis test on each step (OBABO: generalised HMC,
    Horowitz 1991, the momentum flipped on rejection; ULA: MALA), so that a particle where the
    target is stiffer than the step allows stays put instead of being thrown out (the funnel's
    neck: particles at 1e5-1e6 after the unadjusted phase). ``cache[1]`` accumulates rejections."""
    fresh = cache[0] != 2.0
    xbuf, x0, g0, v0 = work[0], work[1], work[2], work[3]
    d = xs.shape[1]
    for r in range(n_rows):
        total = 0.0
        for p in range(xs.shape[0]):
            x, g = xs[p], gs[p]
            if fresh:
                lps[p] = logp_grad_in_frame(logp_grad, args, frame, x, xbuf, g)[0]
                n_grad[p] += 1
            lp0 = lps[p]
            for i in range(d):
                x0[i] = x[i]
                g0[i] = g[i]
            if underdamped:
                v = vs[p]
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
                h0 = -lp0
                for i in range(d):
                    v0[i] = v[i]
                    h0 += 0.5 * inv_mass[i] * v[i] * v[i]
                b_step(v, g, 0.5 * h)
                a_step(x, v, inv_mass, h)
                lp1, ok = logp_grad_in_frame(logp_grad, args, frame, x, xbuf, g)
                b_step(v, g, 0.5 * h)
                if adjust:
                    h1 = -lp1
                    for i in range(d):
                        h1 += 0.5 * inv_mass[i] * v[i] * v[i]
                    if not (ok and np.log(rng.random()) < h0 - h1):
                        for i in range(d):
                            x[i] = x0[i]
                            g[i] = g0[i]
                            v[i] = -v0[i]
                        lp1 = lp0
                        cache[1] += 1.0
                lps[p] = lp1
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
            else:
                ula_step(rng, x, g, h)
                lp1, ok = logp_grad_in_frame(logp_grad, args, frame, x, xbuf, g)
                if adjust:
                    # log q(x0 | x) - log q(x | x0), q(b | a) = N(b; a + h grad(a), 2 h)
                    fwd = 0.0
                    bwd = 0.0
                    for i in range(d):
                        fwd += (x[i] - x0[i] - h * g0[i]) ** 2
                        bwd += (x0[i] - x[i] - h * g[i]) ** 2
                    if not (ok and np.log(rng.random()) < lp1 - lp0 + (fwd - bwd) / (4.0 * h)):
                        for i in range(d):
                            x[i] = x0[i]
                            g[i] = g0[i]
                        lp1 = lp0
                        cache[1] += 1.0
                lps[p] = lp1
            n_grad[p] += 1
            total += norm(g)
        fresh = False
        cache[0] = 2.0
        out_norm[r] = total / xs.shape[0]


@_jit
def multalmc_chunk(logp_grad, args, frame, rng, xs, vs, ys, gys, lam_c, lam_n, frictions, h, deltas, lam_tilde,
                   underdamped, noise_kind, alpha, noise_var, mu, nu, kappa, guard, bound, theta, cache, work, n_grad,
                   out_norm, drift_scale, undone):
    """Iterations of MultALMC before its plain-Langevin phase (one per entry of ``lam_c``: the
    clamped lambda at the iteration's start and end, the friction and the fast step ``deltas``
    = h / eps), for every particle, in place. ``cache[0]`` is the lambda at which ``gys`` holds
    grad log pi(y / sqrt(lambda)) (-1: none). ``work`` is scratch of shape (13, d); ``guard``
    the fast steps' guard (``_guarded_fast_step``).
    ``drift_scale`` multiplies the slow drift: 1, anything else is a mutant for the tests.
    A particle whose move came out non-finite (the target's gradient at y / sqrt(lambda) was not
    finite: the log density undefined there, or the user's function raised) is put back where it
    was, as the other samplers reject such a proposal, and counted in ``undone[p]``: unadjusted,
    the NaN went on into x and the draws (benchmarks/api_fuzz.py: a target that raises for
    x0 < -1; a target NaN for x0 > 2 in d = 2 gave 171 NaN draws of 1,000). Taking the noise form
    of the drift there instead gave the same draws within their noise (mean 0.21 / 0.15, sds
    1.4-1.6 / 1.3 on that target), so the simpler rule stays."""
    n, d = xs.shape
    inv_mass = np.ones(d)
    scaled, force, xbuf = work[10], work[11], work[12]
    x_save, v_save = np.empty(d), np.empty(d)
    for r in range(lam_c.size):
        lc, ln = lam_c[r], lam_n[r]
        target_c, target_n = lc >= lam_tilde, ln >= lam_tilde
        reuse = target_c and cache[0] == lc
        k, inv_tau = _fast_pull(ln, noise_kind, alpha, noise_var, d)
        beta = 1.0 / np.sqrt(ln)
        total = 0.0
        for p in range(n):
            x, y = xs[p], ys[p]
            for i in range(d):
                x_save[i] = x[i]
                v_save[i] = vs[p, i]
            ng = _slow_drift(logp_grad, args, frame, lc, x, y, target_c, not reuse, noise_kind, alpha, noise_var,
                             gys[p], scaled, xbuf, force)
            for i in range(d):
                force[i] *= drift_scale
            if underdamped:
                v = vs[p]
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
                b_step(v, force, 0.5 * h)
                a_step(x, v, inv_mass, h)
            else:
                ula_step(rng, x, force, h)
            ng += _guarded_fast_step(logp_grad, args, frame, rng, y, deltas[r], guard, p, bound, theta, mu, nu, kappa, x,
                                     k, inv_tau, beta, beta, work)
            if underdamped:
                # the second half-kick at the new (x, y); its target gradient is the next first half-kick's
                ng += _slow_drift(logp_grad, args, frame, ln, x, y, target_n, True, noise_kind, alpha, noise_var,
                                  gys[p], scaled, xbuf, force)
                for i in range(d):
                    force[i] *= drift_scale
                b_step(v, force, 0.5 * h)
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
            n_grad[p] += ng
            finite = True
            for i in range(d):
                finite = finite and np.isfinite(x[i]) and np.isfinite(vs[p, i])
            if not finite:
                for i in range(d):
                    x[i] = x_save[i]
                    vs[p, i] = v_save[i]
                undone[p] += 1
                continue
            total += norm(force)
        cache[0] = ln if (underdamped and target_n) else -1.0
        out_norm[r] = total / n


@_jit
def multcdiff_ou_chunk(logp_grad, args, frame, rng, xs, ys, a_now, var_now, a_next, var_next, etas, deltas, mu, nu,
                       kappa, guard, bound, theta, work, n_grad, out_norm):
    """Reverse Ornstein-Uhlenbeck steps s -> s - eta with the Tweedie score (y - x) / var_s from the
    scaled fast variable y (the estimate of a_s E[x0 | x]), then an SK-ROCK step (``deltas``) of y
    towards rho(y) proportional to pi(y / a) N(x; y, var) at the step's end."""
    n, d = xs.shape
    score = work[10]
    for r in range(etas.size):
        a, var, eta = a_now[r], var_now[r], etas[r]
        k = 1.0 / var_next[r]
        beta = 1.0 / a_next[r]
        total = 0.0
        for p in range(n):
            x, y = xs[p], ys[p]
            for i in range(d):
                score[i] = (y[i] - x[i]) / var
            total += norm(score)
            exponential_integrator_step(rng, x, score, eta, 2.0)
            n_grad[p] += _guarded_fast_step(logp_grad, args, frame, rng, y, deltas[r], guard, p, bound, theta, mu, nu,
                                            kappa, x, k, 0.0, beta, beta, work)
        out_norm[r] = total / n


@_jit
def _linear_half(rng, x, v, e, chol):
    """(x_i, v_i) <- e (x_i, v_i) + chol xi per coordinate (the 2x2 linear SDE's exact transition)."""
    for i in range(x.size):
        z1 = rng.standard_normal()
        z2 = rng.standard_normal()
        xi, vi = x[i], v[i]
        x[i] = e[0, 0] * xi + e[0, 1] * vi + chol[0, 0] * z1
        v[i] = e[1, 0] * xi + e[1, 1] * vi + chol[1, 0] * z1 + chol[1, 1] * z2


@_jit
def multcdiff_cld_chunk(logp_grad, args, frame, rng, xs, vs, ys, trans, chols, forcing, pull, mix_x, mix_v, scale,
                        etas, deltas, mu, nu, kappa, guard, bound, theta, work, n_grad, out_norm):
    """Reverse critically damped steps: half the linear part exactly (``trans``, ``chols``), the
    Euler step v += eta ``forcing`` y of the Y-dependent drift, an SK-ROCK step (``deltas``) of y
    towards pi(y / c_x) N((x, v); y c / c_x, Sigma) (pull k = ``pull``, centre mix_x x + mix_v v,
    scale 1 / c_x = ``scale``), and the other half of the linear part."""
    n, d = xs.shape
    centre = work[10]
    for r in range(etas.size):
        total = 0.0
        for p in range(n):
            x, v, y = xs[p], vs[p], ys[p]
            _linear_half(rng, x, v, trans[r], chols[r])
            for i in range(d):
                v[i] += etas[r] * forcing[r] * y[i]
                centre[i] = mix_x[r] * x[i] + mix_v[r] * v[i]
            total += abs(forcing[r]) * norm(y)
            n_grad[p] += _guarded_fast_step(logp_grad, args, frame, rng, y, deltas[r], guard, p, bound, theta, mu, nu,
                                            kappa, centre, pull[r], 0.0, scale[r], scale[r], work)
            _linear_half(rng, x, v, trans[r], chols[r])
        out_norm[r] = total / n


# -- plans: the per-iteration schedule of a run, and its exact cost -----------------------------


def multalmc_plan(settings: MultALMC, n_steps: int, friction=None) -> dict:
    """Per iteration l < L: lambda at its start and end (clamped), the friction (from the pair
    ``friction``, default the settings'), and whether it is a plain-Langevin iteration
    (lambda_l >= 1 - lambda_delta)."""
    lo, hi = settings.lambda_delta, 1.0 - settings.lambda_delta
    t = np.arange(n_steps + 1) / n_steps
    lam = path_schedule(t, settings.schedule)
    final = lam[:-1] >= hi
    g0, g1 = friction if friction is not None else (settings.friction or _FRICTION)
    half = n_steps / 2
    fric = np.where(np.arange(n_steps) < half, g0, g0 + (g1 - g0) * (np.arange(n_steps) - half) / max(half, 1))
    return {"lambda": lam[:-1], "lam_c": np.clip(lam[:-1], lo, hi), "lam_n": np.clip(lam[1:], lo, hi),
            "friction": fric, "final": final}


def multalmc_cost(settings: MultALMC, plan: dict) -> np.ndarray:
    """Gradients per particle for each iteration of ``plan`` (exactly what the kernels spend)."""
    s = settings.stages
    final = plan["final"]
    target_c = plan["lam_c"] >= settings.lambda_tilde
    target_n = plan["lam_n"] >= settings.lambda_tilde
    cost = np.full(final.size, s, dtype=np.int64)
    if settings.underdamped:
        cached = np.zeros(final.size, bool)
        cached[1:] = target_n[:-1] & ~final[:-1]
        cost += (target_c & ~cached) + target_n
    else:
        cost += target_c
    first = np.flatnonzero(final)
    cost[final] = 1
    if first.size:
        cost[first[0]] += 1
    return cost


def cdiff_plan(settings: MultCDiff, n_steps: int) -> dict:
    """The reverse grid (uniform in lambda from lambda_delta to 1 - lambda_delta) for
    L - round(final_fraction L) steps, then the plain-Langevin iterations."""
    n_final = int(round(settings.final_fraction * n_steps))
    n_rev = n_steps - n_final
    if n_rev < 1:
        raise ValueError("multcdiff: no reverse-diffusion step left; lower final_fraction or raise n_steps")
    lam = np.linspace(settings.lambda_delta, 1.0 - settings.lambda_delta, n_rev + 1)
    if settings.underdamped:
        s = _cld_times(lam, settings.cld_friction)
    else:
        s = -0.5 * np.log(lam)
    return {"lambda": np.concatenate([lam[:-1], np.ones(n_final)]), "s": s, "n_rev": n_rev, "n_final": n_final}


def _cld_times(lam: np.ndarray, friction: float) -> np.ndarray:
    """Forward times s with c_x(s)^2 = lambda, c_x(s) = e^{-r}(1 + r), r = 2 s / Gamma (Newton)."""
    target = np.sqrt(lam)
    r = np.full(lam.shape, 1.0)
    for _ in range(100):
        f = np.exp(-r) * (1 + r) - target
        step = f / (-r * np.exp(-r))
        r = np.maximum(r - step, 1e-12)
        if np.max(np.abs(step)) < 1e-14:
            break
    return r * friction / 2.0


def cdiff_total_cost(settings: MultCDiff, n_steps: int) -> int:
    """Gradients per particle of an L-iteration run (``cdiff_cost`` summed, without the grid)."""
    n_final = int(round(settings.final_fraction * n_steps))
    return settings.stages * (n_steps - n_final) + n_final + (1 if n_final else 0)


def cdiff_cost(settings: MultCDiff, plan: dict) -> np.ndarray:
    cost = np.full(plan["n_rev"] + plan["n_final"], settings.stages, dtype=np.int64)
    if plan["n_final"]:
        cost[plan["n_rev"]:] = 1
        cost[plan["n_rev"]] += 1
    return cost


def steps_for_budget(name: str, cost_of, per_particle: float) -> int:
    """The largest L whose plan costs at most ``per_particle`` gradients (cost is increasing in L)."""
    lo, hi = 1, max(2, int(per_particle))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost_of(mid) <= per_particle:
            lo = mid
        else:
            hi = mid - 1
    if lo < MIN_STEPS:
        raise ValueError(f"{name}: a budget of {per_particle:.3g} gradients per particle pays for {lo} iterations, "
                         f"fewer than {MIN_STEPS}; give a larger max_evals or fewer draws")
    return lo


def cld_transition_xx(s, friction):
    """c_x(s) = e^{-r}(1 + r), r = 2 s / Gamma: the weight of x0 in X_s."""
    r = 2.0 * np.asarray(s, dtype=float) / friction
    return np.exp(-r) * (1.0 + r)


def cld_scaled_precisions(s, friction):
    """For each forward time: c_hat = c_s / c_x (the mean direction in the scaled space y = c_x x0)
    and P = Sigma_s^{-1}, the precision of (X_s, V_s) | x0 with V_0 ~ N(0, 1), stacked."""
    s = np.asarray(s, dtype=float)
    m = cld_mass(friction)
    e = np.stack([cld_transition(v, friction) for v in s]) if s.size < 8 else _cld_transition_stack(s, friction)
    cov = np.diag([1.0, m]) - e @ np.diag([1.0, m - 1.0]) @ np.swapaxes(e, -1, -2)
    c_hat = np.stack([np.ones(s.size), e[:, 1, 0] / e[:, 0, 0]], axis=1)
    return c_hat, np.linalg.inv(cov)


def _cld_transition_stack(s, friction):
    r = 2.0 * s / friction
    f = np.exp(-r)
    e = np.empty((s.size, 2, 2))
    e[:, 0, 0], e[:, 0, 1] = f * (1 + r), f * 4 * s / friction**2
    e[:, 1, 0], e[:, 1, 1] = -f * s, f * (1 - r)
    return e


def chol2(q):
    """Lower Cholesky factors of a stack of 2x2 covariances, tolerating round-off below zero."""
    out = np.zeros_like(q)
    l00 = np.sqrt(np.maximum(q[:, 0, 0], 0.0))
    l10 = np.divide(q[:, 1, 0], l00, out=np.zeros_like(l00), where=l00 > 0)
    out[:, 0, 0], out[:, 1, 0] = l00, l10
    out[:, 1, 1] = np.sqrt(np.maximum(q[:, 1, 1] - l10**2, 0.0))
    return out


# -- runs ----------------------------------------------------------------------------------------


def _warn_if_diverged(run):
    """Warn when particles ended non-finite or far out (beyond 1e6 in the sampler's coordinates):
    the fast step left SK-ROCK's stability region somewhere (measured on the funnel at the paper's
    preset, whose curvature is unbounded), or the slow step was too long for the target's curvature."""
    bad = ~np.all(np.isfinite(run.xs), axis=1) | (np.abs(run.xs).max(axis=1, initial=0.0) > 1e6)
    if bad.any():
        warnings.warn(f"{run.settings.name}: {int(bad.sum())} of {bad.size} particles diverged (non-finite or beyond "
                      "1e6): the fast step is outside SK-ROCK's stability bound somewhere on the path, or the slow "
                      "step too long for the target's curvature (attrs['tuned']['lipschitz'] underestimated it); "
                      "lower step_size / stability, or raise eps", RuntimeWarning, stacklevel=2)


def _warn_if_undone(run):
    """Warn when moves were put back because the target's gradient was not finite where a fast variable
    stood (``multalmc_chunk``): the sample near that region is not the target's."""
    hit = run.undone > 0
    if hit.any():
        warnings.warn(f"{run.settings.name}: the target's log density or gradient was not finite (NaN or infinite, "
                      f"or the function raised) at {int(run.undone.sum())} moves of {int(hit.sum())} of {hit.size} "
                      "particles; those moves were undone (the particle stayed put), so the draws near "
                      "that region are not a sample from the target. If the log density is undefined in part of "
                      "the space, sample an unconstrained version (e.g. log-transform positive parameters, with the "
                      "Jacobian); if the function raised, call target.logp_grad(x) at a draw to see the error.",
                      RuntimeWarning, stacklevel=2)


def estimate_lipschitz(target, frame, rng, n_points=_CURV_POINTS, n_iter=_CURV_ITERS, quantile=1.0, points=None):
    """The curvature of log pi in the frame's coordinates u: the ``quantile`` (1: the largest) over
    ``n_points`` points (the first of ``points``, else the centre, then draws of N(0, I) in the
    frame: the pilot's Gaussian fit of the bulk) of
    the curvature -v.H v along the dominant eigenvector v of the Hessian H of log pi (``n_iter``
    power iterations on finite differences of gradients; 0 where log pi curves up). Returns (estimate, gradients spent); points with non-finite gradients are skipped."""
    d = target.dim
    if points is not None:
        pts = np.asarray(points, dtype=float)[:n_points]
    else:
        pts = rng.standard_normal((n_points, d))
        pts[0] = 0.0
    ests, n = [], 0
    h = 1e-5

    def grad_u(u):
        _, g = target.logp_grad(frame_to_x(frame, u))
        g = np.asarray(g, dtype=float)
        kind, _, scale, chol = frame
        return chol.T @ g if kind == 2 else (scale * g if kind == 1 else g)

    for u in pts:
        g0 = grad_u(u)
        n += 1
        if not np.all(np.isfinite(g0)):
            continue
        v = rng.standard_normal(d)
        v /= np.linalg.norm(v)
        est = 0.0
        for _ in range(n_iter):
            hv = (grad_u(u + h * v) - g0) / h
            n += 1
            size = float(np.linalg.norm(hv))
            if not np.isfinite(size) or size == 0.0:
                break
            # stiffness is -v.Hv > 0 (a well's curvature); a direction where log pi curves up (the
            # ridge between two modes) is not a stability limit of SK-ROCK, whose stability region
            # is along the negative real axis: on a 1-D two-mode mixture it read 890 against the
            # wells' 33 and made h 5x too short
            est, v = max(0.0, -float(v @ hv)), hv / size
        ests.append(est)
    return (float(np.quantile(ests, quantile)) if ests else 0.0), n


def _axis_second_moments(target, frame, rng, spread, n):
    """Per axis of the frame, the target's second moment E u_i^2 from one importance round with
    N(0, spread I) (the ladder's covering variance): a frame whose searches under-fitted one axis
    (sd 2.5 instead of 10 beside a well-fitted sd 0.1) widened isotropically made the fitted axis
    3x too wide for the base law, and the samplers' output there 20-55% too wide at L = 800.
    Falls back to ``spread`` on every axis when the weights' ESS is below 10 d + 10 (high d).
    Returns (moments (d,), evaluations)."""
    d = frame[1].size
    u = np.sqrt(spread) * rng.standard_normal((n, d))
    lps = np.empty(n)
    log_densities(target.logp_fn, target.kernel_args, np.ascontiguousarray(frame_to_x(frame, u)), lps)
    log_w = lps + 0.5 * np.sum(u * u, axis=1) / spread
    log_w[~np.isfinite(log_w)] = -np.inf
    if not np.isfinite(log_w.max()):
        return np.full(d, spread), n
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    if 1.0 / np.sum(w * w) < 10 * d + 10:
        return np.full(d, spread), n
    m2 = w @ (u * u)
    return np.maximum(m2, 1e-6 * m2.max()), n


def _resample_pool(target, frame, rng, n_pool, draws):
    """Starting points of the fast chains, in the frame's units: ``n_pool`` draws of N(0, 2 I) (the
    pilot's fit, widened as ``pooled_bulk``'s importance round) resampled in proportion to
    (pi / N(0, 2 I))^beta: beta = 1 unless the weights' ESS is below ``_MIN_POOL_ESS``, then the
    largest beta that reaches it (high dimension: a partial correction rather than every chain
    in one basin). Returns (points (draws, d), the ESS at beta, beta, evaluations)."""
    d = target.dim
    u = np.sqrt(2.0) * rng.standard_normal((n_pool, d))
    lps = np.empty(n_pool)
    log_densities(target.logp_fn, target.kernel_args, np.ascontiguousarray(frame_to_x(frame, u)), lps)
    log_w = lps + 0.25 * np.sum(u * u, axis=1)
    log_w[~np.isfinite(log_w)] = -np.inf
    if not np.isfinite(log_w.max()):
        return u[:draws] if n_pool >= draws else u[rng.integers(n_pool, size=draws)], 0.0, 0.0, n_pool

    def ess(beta):
        w = np.exp(beta * (log_w - log_w.max()))
        return w.sum() ** 2 / np.sum(w * w), w

    # tempering biases the mode weights (a factor q^(1 - beta) remains: two_modes d = 2 gave 0.84
    # for 0.67 when the ESS was held at a tenth of the pool), so it is kept for degenerate weights
    beta, lo, hi = 1.0, 0.0, 1.0
    if ess(1.0)[0] < _MIN_POOL_ESS:
        for _ in range(40):
            beta = 0.5 * (lo + hi)
            lo, hi = (beta, hi) if ess(beta)[0] >= _MIN_POOL_ESS else (lo, beta)
        beta = lo
    e, w = ess(beta)
    idx = rng.choice(n_pool, size=draws, p=w / w.sum())
    return u[idx], float(e), float(beta), n_pool


class _MultiscaleRun(ParticleRun):
    step_stat_dtypes: ClassVar[dict] = {"lambda": np.float64, "friction": np.float64, "drift_norm": np.float64,
                                        "regime": np.int8, "fast_step": np.float64}
    redo_share: ClassVar[float] = _REDO_SHARE  # the tests' mutant sets 0 (the plan of the old behaviour)

    def _pilot(self, settings, target, rng, init, draws, budget_per_particle):
        """Standardisation (frame), curvature and the tuned h and frictions; returns the budget
        per particle left for the iterations (None: no budget)."""
        d = target.dim
        sizes = settings.pilot_sizes(d, None if budget_per_particle is None else budget_per_particle * draws)
        self.pilot_logp = self.pilot_grad = 0
        self.spread = np.nan
        if settings.uses_pilot:
            starts = (np.tile(np.asarray(init, float), (sizes.searches, 1)) if init is not None
                      else rng.uniform(-2.0, 2.0, (sizes.searches, d)))
            mean, cov, n_evals = pooled_bulk(target.logp_fn, target.kernel_args, starts, rng, n_importance=sizes.pooled,
                                             max_evals=sizes.search_evals)
            frame = covariance_frame(mean, cov)
            # widen the frame to the covering scale: searches that found one mode of a multimodal
            # target fit that mode, and N(0, I) there (the base law and the initial pool) would
            # never see the others (mog8: the frame of one mode, the ladder's second moment ~150)
            self.spread, n_ladder = covering_variance(target.logp_fn, target.kernel_args, frame, rng,
                                                      n=sizes.ladder, max_rungs=_LADDER_RUNGS)
            if self.spread > _COVERED:
                widen, n_axes = _axis_second_moments(target, frame, rng, self.spread, sizes.ladder)
                self.frame = dense_frame(mean, frame[3] * np.sqrt(widen))
            else:  # the searches' frame covers the target: widening only lengthens the path (eight schools:
                # frames widened 1-2x gave Lipschitz estimates 25-56 against 1-13, and sds 1.4-2.4x too wide at 2e5)
                self.frame, n_axes = frame, 0
            self.pilot_logp += n_evals + n_ladder + n_axes
        else:
            self.frame = identity_frame(d)
        tune = settings.step_size is None or settings.eps is None or settings.friction is None
        self.lipschitz = np.nan
        self.ys = rng.standard_normal((draws, d))
        self.init_ess = self.init_beta = np.nan
        pool_u = None
        if settings.resamples_init:
            # 20 pool draws per particle without a budget: in d = 8 (two_modes) a pool of 2,000 had an ESS of
            # 10, and the mode shares of 10 distinct starts are a coin toss
            pool = max(sizes.pool, draws) if budget_per_particle is not None else max(sizes.pool, 20 * draws)
            pool_u, self.init_ess, self.init_beta, n = _resample_pool(target, self.frame, rng, pool, draws)
            self.pilot_logp += n
        if tune:
            # at the resampled starts (draws of about the target), not at N(0, I) in the frame: where the frame
            # is wider than the target (funnel10: searches widened by the ladder) N(0, I) reaches into the
            # neck, and the estimate ranged 1.4 to 3.8e8 between runs; at the starts, 1.9 to 3.0e3 over seeds
            # 1-2 (benchmarks/results/multiscale_defaults.md)
            self.lipschitz, n = estimate_lipschitz(target, self.frame, rng, max(2, sizes.curv_points),
                                                   quantile=_CURV_QUANTILE, points=pool_u)
            self.pilot_grad += n
            if not (np.isfinite(self.lipschitz) and self.lipschitz > 0):
                raise ValueError(f"{settings.name}: the pilot found no finite curvature of the target (gradients "
                                 "non-finite or zero at every probe); give step_size, eps and friction")
        if pool_u is not None:
            self.ys = np.sqrt(settings.lambda_delta) * pool_u
        floor = 1.0 / self._noise_var(settings)
        stiff = max(self.lipschitz, floor) if tune else np.nan
        self.h = settings.step_size if settings.step_size is not None else settings.step_scale / np.sqrt(stiff)
        self.friction = (tuple(settings.friction) if settings.friction is not None
                         else tuple(f * np.sqrt(stiff) for f in _FRICTION))
        if budget_per_particle is None:
            return None
        # the allowance, not what this run's pilot spent: every run of a sample() gets the same grid
        allowance = _pilot_allowance(sizes._replace(pool=max(sizes.pool, draws) if sizes.pool else 0))
        return budget_per_particle - allowance / draws

    @staticmethod
    def _noise_var(settings):
        return getattr(settings, "noise_scale", 1.0) ** 2

    @staticmethod
    def _fast_steps(settings, steps, pull, stiff_target):
        """The SK-ROCK step per iteration: ``steps`` / eps with eps given, else the largest step with
        Delta Lip(f) = stability x bound, Lip(f) = ``pull`` (the Gaussian tilt's, linear) +
        ``stiff_target`` (the target part's), and Delta x ``stiff_target`` at most ``accuracy``."""
        if settings.eps is not None:
            return np.asarray(steps, dtype=float) / settings.eps
        stable = settings.stability * stability_bound(settings.stages, settings.damping) / (pull + stiff_target)
        # SK-ROCK's long stable steps are for the stiff linear part; the target's part is not linear, and across
        # basins a long step's stages overshoot: at Delta x Lip / lambda = 19 (half the bound), fast chains on
        # 40-MoG started from exact draws of rho jumped up to 74 units and piled into isolated modes (mode TV 0.11 ->
        # 0.39 in 400 steps); at 3.8 they kept rho's weights (benchmarks/results/multiscale_gmm40.md)
        accurate = settings.accuracy / stiff_target
        # at most one unit of fast time a step: the probe's Lipschitz constant misses the tails' curvature, and
        # steps of 5-10 there let a MultCDiff fast chain on eight schools run off (1e34) with no unstable stage
        return np.minimum(np.minimum(stable, accurate), _MAX_FAST_STEP)

    def _common(self, settings, target, rng, draws, n_steps):
        super().__init__(settings, target, rng, 0, draws, n_steps)
        d = target.dim
        self.extra_logp += self.pilot_logp
        self.extra_grad += self.pilot_grad
        self.coef = skrock_coefficients(settings.stages, settings.damping)
        self.xs = np.empty((draws, d))
        self.vs = np.zeros((draws, d))
        self.gs = np.zeros((draws, d))
        self.work = np.zeros((13, d))
        self.guard = np.zeros((draws, _GUARD_COLUMNS))
        self.guard[:, _LEFT] = np.inf  # without a budget; the runs set it from theirs
        self.bound = stability_bound(settings.stages, settings.damping)
        self.cache = np.array([-1.0, 0.0])  # [which gradients gs / gys hold, final-phase rejections]
        self.lps = np.zeros(draws)
        self.norms = np.zeros(n_steps)
        self.undone = np.zeros(draws, dtype=np.int64)  # moves put back because they came out non-finite

    def _allow_redos(self, left, planned):
        """The gradients each particle may spend on redone fast steps: with a budget, what is left of
        its share after the planned iterations (``_REDO_SHARE`` of it was kept back for this);
        without one, no limit."""
        if left is not None:
            self.guard[:, _LEFT] = np.floor(left - planned)

    def _finish(self):
        self.particles[:] = frame_to_x(self.frame, self.xs)
        _warn_if_diverged(self)
        _warn_if_undone(self)
        if self.settings.uses_pilot:
            warn_if_frame_did_not_standardise(self.xs, self.settings.name)

    def tuned(self):
        s = self.settings
        fast = self.step_stats["fast_step"]
        fast = fast[np.isfinite(fast) & (fast > 0)]
        kind, centre, scale, chol = self.frame
        out = {"n_steps": int(self.total), "step_size": float(self.h), "friction": [float(f) for f in self.friction],
               "lipschitz": float(self.lipschitz), "standardised": bool(kind != 0),
               "fast_step_min": float(fast.min()) if fast.size else np.nan,
               "fast_step_max": float(fast.max()) if fast.size else np.nan,
               "skrock_bound": stability_bound(s.stages, s.damping),
               "pilot_evals": int(self.pilot_logp + self.pilot_grad), "covering_variance": float(self.spread),
               "final_rejections": int(self.cache[1]), "redone_evals": int(self.guard[:, _REDONE].sum()),
               "steps_not_redone": int(self.guard[:, _REFUSED].sum()), "moves_undone": int(self.undone.sum())}
        if s.resamples_init:
            out.update(init_ess=self.init_ess, init_beta=self.init_beta)
        if kind:
            out["frame_scale"] = [float(v) for v in np.sqrt(np.sum(chol ** 2, axis=1))]
        return out


class MultALMCRun(_MultiscaleRun):
    drift_scale: ClassVar[float] = 1.0  # the tests' mutant subclass changes it

    def __init__(self, settings: MultALMC, target, rng, init, draws, budget_per_particle):
        left = self._pilot(settings, target, rng, init, draws, budget_per_particle)
        n_steps = settings.n_steps
        if left is not None:
            n_steps = steps_for_budget("multalmc", lambda L: int(multalmc_cost(settings, multalmc_plan(settings, L,
                                                                                                       self.friction)).sum()),
                                       (1.0 - self.redo_share) * left)
        self._common(settings, target, rng, draws, n_steps)
        self.plan = multalmc_plan(settings, n_steps, self.friction)
        self._allow_redos(left, multalmc_cost(settings, self.plan).sum())
        d = target.dim
        sigma = settings.noise_scale
        z = rng.standard_normal((draws, d))
        if settings.noise == "student":
            z /= np.sqrt(rng.chisquare(settings.tail_index, draws) / settings.tail_index)[:, None]
        self.xs[:] = sigma * z
        if settings.underdamped:
            self.vs[:] = rng.standard_normal((draws, d))
        lam_n = self.plan["lam_n"]
        if settings.noise == "gaussian":
            pull = 1.0 / ((1.0 - lam_n) * sigma**2)
        else:
            pull = (settings.tail_index + d) / (settings.tail_index * sigma**2 * (1.0 - lam_n))
        self.deltas = self._fast_steps(settings, np.full(n_steps, self.h), pull, self.lipschitz / lam_n)
        self.time = self.plan["lambda"].copy()
        self.step_stats["lambda"][:] = self.plan["lambda"]
        self.step_stats["friction"][:] = self.plan["friction"] if settings.underdamped else np.nan
        self.step_stats["regime"][:] = np.where(self.plan["final"], 2, self.plan["lam_c"] >= settings.lambda_tilde)
        self.step_stats["fast_step"][:] = np.where(self.plan["final"], np.nan, self.deltas)

    def advance(self, start, stop):
        s, t, c, p = self.settings, self.target, self.coef, self.plan
        final = p["final"]
        split = start + int(np.searchsorted(final[start:stop], True)) if final[start:stop].any() else stop
        if split > start:
            multalmc_chunk(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.xs, self.vs, self.ys, self.gs,
                           p["lam_c"][start:split], p["lam_n"][start:split], p["friction"][start:split], self.h,
                           self.deltas[start:split], s.lambda_tilde, s.underdamped, NOISES.index(s.noise),
                           s.tail_index, s.noise_scale**2, c.mu, c.nu, c.kappa, self.guard, self.bound, s.stability,
                           self.cache, self.work, self.n_grad,
                           self.norms[start:split], self.drift_scale, self.undone)
        if stop > split:
            langevin_phase_chunk(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.xs, self.vs, self.gs,
                                 self.lps, stop - split, self.h, p["friction"][split:stop], np.ones(t.dim),
                                 s.underdamped, s.adjust_final, self.cache, self.work, self.n_grad,
                                 self.norms[split:stop])
        self.step_stats["drift_norm"][start:stop] = self.norms[start:stop]
        if stop == self.total:
            self._finish()


class MultCDiffRun(_MultiscaleRun):
    def __init__(self, settings: MultCDiff, target, rng, init, draws, budget_per_particle):
        left = self._pilot(settings, target, rng, init, draws, budget_per_particle)
        n_steps = settings.n_steps
        if left is not None:
            n_steps = steps_for_budget("multcdiff", lambda L: cdiff_total_cost(settings, L), (1.0 - self.redo_share) * left)
        self._common(settings, target, rng, draws, n_steps)
        self.plan = cdiff_plan(settings, n_steps)
        self._allow_redos(left, cdiff_total_cost(settings, n_steps))
        d = target.dim
        self.xs[:] = rng.standard_normal((draws, d))
        g = settings.cld_friction
        self.mass = cld_mass(g)
        lip = self.lipschitz
        if settings.underdamped:
            self.vs[:] = np.sqrt(self.mass) * rng.standard_normal((draws, d))
            self._cld_tables(g)
            self.deltas = self._fast_steps(settings, self.etas, self.pull, lip * self.scale**2)
        else:
            s = self.plan["s"]
            self.ou = {"a_now": np.exp(-s[:-1]), "var_now": -np.expm1(-2 * s[:-1]), "a_next": np.exp(-s[1:]),
                       "var_next": -np.expm1(-2 * s[1:]), "eta": s[:-1] - s[1:]}
            self.deltas = self._fast_steps(settings, self.ou["eta"], 1.0 / self.ou["var_next"], lip / self.ou["a_next"]**2)
        n_rev = self.plan["n_rev"]
        self.time = self.plan["lambda"].copy()
        self.step_stats["lambda"][:] = self.plan["lambda"]
        self.step_stats["regime"][:] = np.where(np.arange(self.total) < n_rev, 0, 2)
        self.final_friction = self.friction[1] if not settings.underdamped else g
        self.step_stats["friction"][:] = np.where(np.arange(self.total) < n_rev, g if settings.underdamped else np.nan,
                                                  self.final_friction if settings.underdamped else np.nan)
        self.step_stats["fast_step"][:n_rev] = self.deltas
        self.step_stats["fast_step"][n_rev:] = np.nan

    def _cld_tables(self, g):
        """Per reverse step: the half-step transition of the linear part (coefficients frozen at
        the step's start s_l), the Y forcing 2 Gamma [P c_hat]_v, and the fast pull at s_{l+1}."""
        s = self.plan["s"]
        m = self.mass
        c_hat, p = cld_scaled_precisions(s, g)
        w = np.einsum("nij,nj->ni", p, c_hat)  # P c_hat
        drift = np.zeros((s.size - 1, 2, 2))
        drift[:, 0, 1] = -1.0 / m
        drift[:, 1, 0] = 1.0 - 2 * g * p[:-1, 1, 0]
        drift[:, 1, 1] = g / m - 2 * g * p[:-1, 1, 1]
        self.etas = s[:-1] - s[1:]
        self.trans, q = linear_sde_transition(drift, np.diag([0.0, 2.0 * g]), 0.5 * self.etas)
        self.chols = chol2(q)
        self.forcing = 2 * g * w[:-1, 1]
        self.pull = np.einsum("ni,ni->n", c_hat[1:], w[1:])
        self.mix_x, self.mix_v = w[1:, 0] / self.pull, w[1:, 1] / self.pull
        self.scale = 1.0 / cld_transition_xx(s[1:], g)

    def advance(self, start, stop):
        s, t, c = self.settings, self.target, self.coef
        n_rev = self.plan["n_rev"]
        split = min(max(start, n_rev), stop)
        if split > start:
            sl = slice(start, split)
            if s.underdamped:
                multcdiff_cld_chunk(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.xs, self.vs, self.ys,
                                    self.trans[sl], self.chols[sl], self.forcing[sl], self.pull[sl], self.mix_x[sl],
                                    self.mix_v[sl], self.scale[sl], self.etas[sl], self.deltas[sl], c.mu, c.nu,
                                    c.kappa, self.guard, self.bound, s.stability, self.work, self.n_grad, self.norms[sl])
            else:
                o = self.ou
                multcdiff_ou_chunk(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.xs, self.ys,
                                   o["a_now"][sl], o["var_now"][sl], o["a_next"][sl], o["var_next"][sl], o["eta"][sl],
                                   self.deltas[sl], c.mu, c.nu, c.kappa, self.guard, self.bound, s.stability, self.work,
                                   self.n_grad, self.norms[sl])
        if stop > split:
            inv_mass = np.full(t.dim, 1.0 / self.mass)
            fr = np.full(stop - split, self.final_friction)
            # a tuned h is for unit mass: with mass M the Verlet part's stability is h sqrt(Lip / M)
            h = self.h * np.sqrt(self.mass) if (s.step_size is None and s.underdamped) else self.h
            langevin_phase_chunk(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, self.xs, self.vs, self.gs,
                                 self.lps, stop - split, h, fr, inv_mass, s.underdamped, s.adjust_final, self.cache,
                                 self.work, self.n_grad, self.norms[split:stop])
        self.step_stats["drift_norm"][start:stop] = self.norms[start:stop]
        if stop == self.total:
            self._finish()
