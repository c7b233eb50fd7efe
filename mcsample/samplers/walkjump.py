"""Walk-jump chains: sequential multi-measurement walk-jump sampling (chain of log-concave
Markov chains).

Saremi, Park & Bach (2024), "Chain of Log-Concave Markov Chains", ICLR, arXiv:2305.19473; the
single-measurement walk-jump sampler of Saremi & Hyvärinen (2019), "Neural Empirical Bayes",
JMLR 20(181), is the case M = 1. The settings follow the public re-implementation of the method
in the SLIPS benchmark (Grenioux et al. 2024, ICML; "OAT"), with the denoiser estimated from the
unnormalised target itself instead of a trained network.

Model: noisy measurements y_t = x + sigma eps_t, t = 1..M, of one draw x of the target, with one
noise level sigma. Given y_1..y_m the posterior of x is p(x) N(x; ybar_m, sigma^2/m I): the history
enters only through the running mean ybar_m, and the jump E[x | y_1..y_m] is the ordinary
denoiser at effective noise sigma / sqrt(m). The sampler draws the measurements one at a time
(OAT), y_m from p(y_m | y_1..y_{m-1}), whose score is

    grad log p(y_m | y_1..y_{m-1}) = (E[x | y_1..y_m] - y_m) / sigma^2,

with ybar_m computed from the proposed y_m; that conditional is log-concave as soon as every
posterior covariance is below sigma^2 I, which holds for all m once it holds for m = 1
(Theorem 1: target = bounded part within radius R + N(0, tau^2): sigma^2 >= R^2 - tau^2), and its
condition number tends to 1 like 1/m. Each y_m is walked for ``n_walk`` steps of underdamped
Langevin (the splitting of Sachs et al. 2017 as the Saremi group uses it, inverse mass sigma^2 so
that step and friction are dimensionless) or of ULA, warm-started at the previous jump plus
N(0, sigma^2 I) noise; the output is the last jump E[x | y_1..y_M].

The output is the law of a posterior mean, not the target: within a mode of variance tau^2 it
has variance tau^4 / (tau^2 + sigma^2/M) (the bias W2^2 <~ sigma^2 d / M). sigma trades
tunnelling (large sigma: log-concave walks that cross between modes) against resolution
(sigma^2 / M must be small against the variances you want to see), and sets how hard the
denoiser's importance sampling is (its proposal at m = 1 has variance sigma^2).

Why particles, each one chain of measurements ending in one jump: the chain over m is not
Markov in y_m alone (it carries ybar), M is fixed in advance and the last jump of one chain is not
a valid start for another, so a "long chain" would be a sequence of restarts anyway; the
independent chains are embarrassingly parallel and their outputs are independent draws, which is
what the driver's particle runs are. A unit of the driver is one measurement of the whole
population. The intermediate jumps E[x | y_1..y_m] (``keep_jumps``) show the tunnelling.

Denoisers (``estimator``): self-normalised importance sampling with proposal
N(ybar, sigma^2/m I) and antithetic pairs (``_core.posterior_mean.importance_mean``, gradient
free; the estimate of the method's section 4.2), or its gradient variant
(``importance_score_mean``: the same weights on grad log p, lower variance). The importance
weights degenerate with dimension (worst at m = 1); the mean and minimum effective sample size
of each measurement are in ``step_stats``.

Coordinates and sigma: with ``sigma`` or ``radius`` given, the sampler runs in the target's own
coordinates and sigma is that, or sqrt(radius^2 - tau^2) (the log-concavity rule). Otherwise a
cheap pilot picks both: gradient-free bulk searches (``_core.bulk.pooled_bulk``) fit a frame
x = c + L u, a ladder of importance rounds (``covering_variance``) measures the target's second
moment s^2 per coordinate in it (s^2 = 1 when the searches found every mode, more when they
missed some), and sigma^2 = ``sigma_scale`` s^2 in those units. sigma_scale = 2 puts sigma at the
log-concavity threshold for modes spread on a circle (R^2 = 2 x the per-coordinate variance) and
above it for two modes whose lighter weight is at least 0.15; the paper found the best sigma to
lie above the threshold. Its evaluations are counted (``attrs["n_logp"]``).
"""

from __future__ import annotations

import warnings
from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.bulk import covering_variance, pooled_bulk, pooling_evals, search_evals
from .._core.langevin import a_step, b_step, o_step, ula_step
from .._core.posterior_mean import importance_mean, importance_score_mean
from .._core.slice import covariance_frame, frame_to_x, identity_frame
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

ESTIMATORS = ("is", "gradient")
WALKS = ("ulmc", "ula")
# Budget planning: below MIN_MEASUREMENTS measurements at the settings' importance sample size,
# that size shrinks (not below _SMALLEST_IMPORTANCE) before M does: M sets the resolution
# sigma^2 / M, the sample size only the denoiser's noise.
MIN_MEASUREMENTS, _SMALLEST_IMPORTANCE = 16, 32
# ``draws_for_budget`` keeps 20 particles a run while each still gets POPULATION_MEASUREMENTS
# measurements at the smallest sample size, and only then takes fewer: at mc.compare's 2e5 (4 runs)
# 20 particles of 6 measurements beat 9 of 14 on gmm40_d2 (mode TV 0.29, at its floor, against
# 0.37) and a Student-t (nu 5, d 5; mean error 0.14 against 0.40), 40 of 3 fell above the floor
# (benchmarks/results/particle_split.md, seeds 1-3). On eight schools (d = 10), where the weights
# collapse at this budget either way, 9 of 14 did better (0.48 against 0.63 sd).
POPULATION_MEASUREMENTS = 6
# With a budget, the pilot takes at most this share of a run's budget (``WalkJump.pilot_sizes``).
_PILOT_SHARE, _LADDER_RUNGS = 0.25, 8
PilotSizes = namedtuple("PilotSizes", ["searches", "search_evals", "pooled", "ladder"])
_ESS_WARN = 5.0


@dataclass(frozen=True)
class WalkJump(ParticleSettings):
    """Settings of walk-jump chains (Saremi, Park & Bach 2024, ICLR; see the module docstring).

    n_measurements : M, measurements per chain (M = 1: classic walk-jump); with ``max_evals`` it
        is planned from the budget per particle instead.
    n_walk : K, walk steps per measurement (SLIPS's benchmark configuration: 8).
    walk : "ulmc" (underdamped Langevin, Sachs et al. splitting, inverse mass sigma^2) or "ula".
    step : ULMC step delta (dimensionless with inverse mass sigma^2), or the ULA step in units of
        sigma^2 (eta = step sigma^2; the conditional score is sigma^-2-Lipschitz).
    friction : ULMC friction gamma (gamma delta = 0.5 at the defaults).
    sigma : the noise level, in the target's coordinates; None: from ``radius`` or the pilot.
    radius, tau : the log-concavity rule sigma = sqrt(radius^2 - tau^2) (radius of the mode
        layout about its centre, tau^2 the modes' own variance).
    sigma_scale : the pilot's sigma^2 = sigma_scale x the target's per-coordinate second moment
        in the pilot's frame.
    estimator : "is" (importance sampling, gradient free) or "gradient" (the same weights on
        grad log p; needs the target's gradient).
    n_importance : evaluations per denoiser call, on average over the measurements (antithetic
        pairs count two).
    schedule : how the calls' sizes vary with m: "decreasing" (proportional to m^-1/2, the
        same total; the notes' advice, section 3.9 item 2) or "flat": the proposal
        N(ybar, sigma^2/m I) is widest, and the weights poorest, at small m, where the chains also
        choose their modes (two_modes d = 8 at 3e5 evaluations per sample, 400 chains: first
        mode's weight 0.605 flat, 0.642 decreasing, truth 0.667).
    antithetic : pair each importance draw with its reflection about the proposal's centre.
    warm_start : "jump" (each y_{m+1} starts at the last jump plus N(0, sigma^2 I)) or "restart"
        (at N(0, (s^2 + sigma^2) I) about the frame's centre).
    keep_jumps : keep every intermediate jump E[x | y_1..y_m] on the run (``run.jumps``).
    standardise : "auto" (the pilot's frame unless sigma or radius is given), "search" or "none".
    n_searches : bulk searches of the pilot.
    mixture : (weights, means, variance) of a Gaussian mixture target whose components share one
        diagonal covariance (variance: a number or d numbers): use its exact denoiser instead of an
        estimate (an oracle for tests; no target evaluations; identity frame).

    ``tune`` is not used (the pilot is the bulk search); ``init`` centres its searches.
    """

    name: ClassVar[str] = "walk_jump"
    citation: ClassVar[str] = ("Saremi, Park & Bach (2024), Chain of Log-Concave Markov Chains, ICLR, "
                               "arXiv:2305.19473; Saremi & Hyvärinen (2019), Neural Empirical Bayes, JMLR 20(181)")
    default_draws: ClassVar[int] = 1000

    n_measurements: int = 32
    n_walk: int = 8
    walk: str = "ulmc"
    step: float = 0.5
    friction: float = 1.0
    sigma: float | None = None
    radius: float | None = None
    tau: float = 0.0
    sigma_scale: float = 2.0
    estimator: str = "is"
    n_importance: int = 256
    antithetic: bool = True
    schedule: str = "decreasing"
    warm_start: str = "jump"
    keep_jumps: bool = False
    standardise: str = "auto"
    n_searches: int = 8
    mixture: tuple | None = None

    def validate(self, dim: int) -> None:
        if self.walk not in WALKS:
            raise ValueError(f"walk must be one of {WALKS}, got {self.walk!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.schedule not in ("flat", "decreasing"):
            raise ValueError(f"schedule must be 'flat' or 'decreasing', got {self.schedule!r}")
        if self.warm_start not in ("jump", "restart"):
            raise ValueError(f"warm_start must be 'jump' or 'restart', got {self.warm_start!r}")
        if self.standardise not in ("auto", "search", "none"):
            raise ValueError(f"standardise must be 'auto', 'search' or 'none', got {self.standardise!r}")
        for name in ("n_measurements", "n_walk", "n_importance", "n_searches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("step", "friction", "sigma_scale"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.sigma is not None and not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {self.sigma!r}")
        if not (np.isfinite(self.tau) and self.tau >= 0):
            raise ValueError(f"tau must be a finite number >= 0, got {self.tau!r}")
        if self.radius is not None and not (np.isfinite(self.radius) and self.radius > self.tau >= 0):
            raise ValueError(f"radius must be a number above tau >= 0, got radius={self.radius!r}, tau={self.tau!r}")
        if self.mixture is not None:
            if not isinstance(self.mixture, (tuple, list)) or len(self.mixture) != 3:
                raise ValueError("mixture must be a triple (weights, means, variances), got "
                                 f"{type(self.mixture).__name__} of length {len(self.mixture)}")
            w, means, var = self.mixture
            means = np.atleast_2d(np.asarray(means, float))
            if (means.shape != (np.size(w), dim) or not np.all(np.asarray(w) > 0) or np.size(var) not in (1, dim)
                    or not np.all(np.asarray(var) > 0)):
                raise ValueError(f"mixture must be (weights (K,), means (K, {dim}), variance > 0 or (d,) variances)")

    def measurement_cost(self, n_importance: int | None = None) -> int:
        """Evaluations per particle and measurement: n_walk denoiser calls and one jump."""
        return (self.n_walk + 1) * (self.n_importance if n_importance is None else n_importance)

    def pilot_sizes(self, dim: int, budget_per_run: float | None = None) -> PilotSizes:
        """The pilot's sizes: ``n_searches`` bulk searches of at most 2000 + 500 d evaluations,
        the pooled importance round's 200 d + 1000 and the ladder's 4000 a rung; with a budget,
        all scaled down so that the pilot costs at most a quarter of the run's budget (each at
        least what makes it work: one search of 10 CMA-ES generations, 50 and 100 draws)."""
        full = PilotSizes(self.n_searches, search_evals(dim), pooling_evals(dim), 4000)
        cap = None if budget_per_run is None else _PILOT_SHARE * budget_per_run
        if cap is None or self._allowance(full) <= cap:
            return full
        f = cap / self._allowance(full)
        lam = 4 + int(3 * np.log(dim))
        return PilotSizes(max(1, int(full.searches * f)), max(10 * lam, int(full.search_evals * f)),
                          max(50, int(full.pooled * f)), max(100, int(full.ladder * f)))

    def _allowance(self, sizes: PilotSizes) -> int:
        if self.sigma is not None or self.radius is not None or self.mixture is not None:
            return 0
        return sizes.searches * sizes.search_evals + sizes.pooled + _LADDER_RUNGS * sizes.ladder

    def pilot_allowance(self, dim: int, budget_per_run: float | None = None) -> int:
        """An upper bound on the pilot's evaluations (searches, pooled importance round, ladder)."""
        return self._allowance(self.pilot_sizes(dim, budget_per_run))

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Particles for a run of ``budget_per_run`` evaluations (``mc.compare``): each gets the
        default M's worth, between 20 and ``default_draws``; a budget that cannot pay 20 particles
        ``POPULATION_MEASUREMENTS`` measurements at the smallest sample size gets fewer (at least
        4): few particles are only noisy, few measurements biased (resolution sigma^2 / M), and
        below ~6 measurements that bias outgrew the noise of 20 particles (module constants)."""
        usable = budget_per_run - self.pilot_allowance(dim, budget_per_run)
        draws = int(np.clip(usable // (self.n_measurements * self.measurement_cost()), 20, self.default_draws))
        smallest = POPULATION_MEASUREMENTS * self.measurement_cost(_SMALLEST_IMPORTANCE)
        if usable < draws * smallest:
            draws = int(max(4, usable // smallest))
        return draws

    def plan_for_budget(self, per_particle: float) -> tuple[int, int]:
        """(M, n_importance) for ``per_particle`` evaluations: the settings' sample size and as
        many measurements as it pays for; below ``MIN_MEASUREMENTS`` the sample size shrinks
        (down to ``_SMALLEST_IMPORTANCE``, kept even for antithetic pairs) to keep them."""
        n = self.n_importance
        m = int(per_particle // self.measurement_cost(n))
        if m < MIN_MEASUREMENTS:
            n = max(min(n, _SMALLEST_IMPORTANCE), int(per_particle // ((self.n_walk + 1) * MIN_MEASUREMENTS)))
            n = min(n, self.n_importance)
            if self.antithetic and n > 1:
                n -= n % 2
            m = int(per_particle // self.measurement_cost(n))
        if m < 1:
            raise ValueError(f"walk_jump: a budget of {per_particle:.3g} evaluations per particle pays for no "
                             f"measurement ({self.measurement_cost(n)} evaluations each at n_importance={n}); give a "
                             "larger max_evals, fewer draws, or smaller n_walk")
        return m, n

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return WalkJumpRun(self, target, rng, init, draws, budget_per_particle)


# -- denoisers for the whole population ---------------------------------------------------------


@_jit
def effective_means(ybars, ys, m, out):
    """The running mean ybar_m with each particle's proposed y as its m-th measurement."""
    for p in range(ys.shape[0]):
        for i in range(ys.shape[1]):
            out[p, i] = ybars[p, i] + (ys[p, i] - ybars[p, i]) / m


@_jit
def denoise_importance(logp, args, frame, rng, centres, var, n, antithetic, work, means, ess):
    """E[x | ybar] for every row of ``centres`` by ``importance_mean`` (proposal N(ybar, var I));
    Kish's ESS into ``ess``. Returns evaluations per particle."""
    no_starts = np.zeros((0, centres.shape[1]))
    k = 0
    for p in range(centres.shape[0]):
        ess[p], k = importance_mean(logp, args, frame, rng, centres[p], 1.0, var, n, antithetic, (0.0, 1.0),
                                    work[0], work[1], work[2], means[p], no_starts)
    return k


@_jit
def denoise_gradient(logp_grad, args, frame, rng, centres, var, n, antithetic, work, means, ess):
    """E[x | ybar] = ybar + var E[grad log p(x) | ybar] (Tweedie with the gradient identity),
    the expectation by ``importance_score_mean``. Returns gradient evaluations per particle."""
    k = 0
    for p in range(centres.shape[0]):
        ess[p], k = importance_score_mean(logp_grad, args, frame, rng, centres[p], var, n, antithetic,
                                          work[0], work[1], work[2], work[3], means[p])
        for i in range(centres.shape[1]):
            means[p, i] = centres[p, i] + var * means[p, i]
    return k


@_jit
def denoise_mixture(centres, var, log_weights, mus, tau2, means, ess):
    """The exact E[x | ybar] of the mixture sum_k w_k N(mu_k, diag tau2) (variances ``tau2`` (d,)
    shared by the components), per coordinate sum_k r_k (tau2 ybar + var mu_k) / (tau2 + var),
    r_k proportional to w_k N(ybar; mu_k, diag(tau2 + var))."""
    n_comp, d = mus.shape
    logr = np.empty(n_comp)
    for p in range(centres.shape[0]):
        top = -np.inf
        for k in range(n_comp):
            q = 0.0
            for i in range(d):
                r = centres[p, i] - mus[k, i]
                q += r * r / (tau2[i] + var)
            logr[k] = log_weights[k] - 0.5 * q
            top = max(top, logr[k])
        total = 0.0
        for k in range(n_comp):
            logr[k] = np.exp(logr[k] - top)
            total += logr[k]
        for i in range(d):
            acc = 0.0
            for k in range(n_comp):
                acc += logr[k] * mus[k, i]
            means[p, i] = (tau2[i] * centres[p, i] + var * acc / total) / (tau2[i] + var)
        ess[p] = np.nan


# -- the walk ------------------------------------------------------------------------------------


@_jit
def conditional_scores(means, ys, sigma2, scores):
    """grad log p(y_m | y_1..y_{m-1}) = (E[x | y_1..y_m] - y_m) / sigma^2."""
    for p in range(ys.shape[0]):
        for i in range(ys.shape[1]):
            scores[p, i] = (means[p, i] - ys[p, i]) / sigma2


@_jit
def ulmc_position_half(ys, ps, inv_mass, delta):
    """The first A(delta/2) of the Sachs et al. step for every particle: y <- y + (delta/2) u p."""
    for p in range(ys.shape[0]):
        a_step(ys[p], ps[p], inv_mass, 0.5 * delta)


@_jit
def ulmc_kick_ou_kick_position(rng, ys, ps, scores, inv_mass, delta, friction):
    """The rest of the Sachs et al. (2017) step as the Saremi group writes it (velocity v = u p):

        y <- y + (delta/2) v;  psi = score(y);  v <- v + (u delta/2) psi;
        v <- zeta v + (u delta/2) psi + sqrt(u (1 - zeta^2)) xi;  y <- y + (delta/2) v,

    zeta = exp(-friction delta), one score per step: A B O B A with the O part exact
    (``_core.langevin``'s pieces, whose friction is per unit inverse mass, hence friction / u)."""
    for p in range(ys.shape[0]):
        b_step(ps[p], scores[p], 0.5 * delta)
        o_step(rng, ps[p], friction / inv_mass[0], inv_mass, delta)
        b_step(ps[p], scores[p], 0.5 * delta)
        a_step(ys[p], ps[p], inv_mass, 0.5 * delta)


@_jit
def ula_move(rng, ys, scores, eta):
    """y <- y + eta score + sqrt(2 eta) xi for every particle."""
    for p in range(ys.shape[0]):
        ula_step(rng, ys[p], scores[p], eta)


@_jit
def renoise(rng, ys, centres, sd):
    """y <- centre + sd xi (the warm start of the next measurement)."""
    for p in range(ys.shape[0]):
        for i in range(ys.shape[1]):
            ys[p, i] = centres[p, i] + sd * rng.standard_normal()


def importance_sizes(n_mean, n_meas, schedule, antithetic):
    """Evaluations per denoiser call at each measurement: ``n_mean`` each ("flat"), or in
    proportion to m^-1/2 with at most the same total ("decreasing"); even for antithetic pairs."""
    if schedule == "flat":
        n = np.full(n_meas, n_mean, dtype=np.int64)
    else:
        f = np.arange(1, n_meas + 1) ** -0.5
        n = np.maximum(np.floor(n_mean * n_meas * f / f.sum()), 2).astype(np.int64)
    if antithetic:
        n = np.where(n > 1, n - n % 2, n)
    return n


# -- conditioning (Saremi et al. 2024, Prop. 4) ----------------------------------------------------


def oat_condition_number(variances, sigma, m):
    """Condition number of -grad^2 log p(y_m | y_1..y_{m-1}) for the target N(mu, diag variances):
    its eigenvalues are sigma^-2 ((m - 1) lambda + sigma^2) / (m lambda + sigma^2), so
    kappa_OAT(m) = [1 + l_max / (sigma^2 + (m-1) l_max)] / [1 + l_min / (sigma^2 + (m-1) l_min)] -> 1."""
    lam = np.asarray(variances, float)
    curv = ((m - 1) * lam + sigma ** 2) / (m * lam + sigma ** 2)
    return float(curv.max() / curv.min())


def aao_condition_number(variances, sigma, m):
    """The same for all m measurements sampled jointly ("all at once"): the joint covariance of
    y_1..y_m is sigma^2 I + lambda 1 1^T per coordinate, so kappa_AAO(m) = 1 + m l_max / sigma^2."""
    return float(1.0 + m * np.max(variances) / sigma ** 2)


# -- the run -------------------------------------------------------------------------------------


class WalkJumpRun(ParticleRun):
    """One population of independent measurement chains: the pilot at construction, then one
    driver step per measurement (``n_walk`` walk steps, the running mean, the jump)."""

    step_stat_dtypes: ClassVar[dict] = {"importance_ess": np.float64, "min_importance_ess": np.float64,
                                        "jump_ess": np.float64, "noise_sd": np.float64, "jump_shift": np.float64,
                                        "n_importance": np.int64}

    def __init__(self, settings: WalkJump, target, rng, init, draws, budget_per_particle):
        d = target.dim
        s = settings
        s.validate(d)
        if s.estimator == "gradient" and not target.has_grad:
            raise ValueError("walk_jump estimator='gradient' needs the target's gradient; the target has none "
                             "(use estimator='is', gradient-free)")
        n_meas, self.n_is = s.n_measurements, s.n_importance
        sizes = s.pilot_sizes(d, None if budget_per_particle is None else budget_per_particle * draws)
        if budget_per_particle is not None:
            n_meas, self.n_is = s.plan_for_budget(budget_per_particle - s._allowance(sizes) / draws)
        self.n_is_m = importance_sizes(self.n_is, n_meas, s.schedule, s.antithetic)
        super().__init__(s, target, rng, 0, draws, n_meas)
        self.frame, self.sigma, self.spread, pilot_evals = self._pilot(s, target, rng, init, sizes)
        self.extra_logp += pilot_evals
        self.time = np.arange(1, n_meas + 1, dtype=np.float64)
        self.ys = np.zeros((draws, d))
        self.ps = np.zeros((draws, d))  # ULMC momenta (velocity u p), reset to 0 at each measurement
        self.ybars = np.zeros((draws, d))
        self.centres = np.zeros((draws, d))
        self.means = np.zeros((draws, d))
        self.scores = np.zeros((draws, d))
        self.jump = np.zeros((draws, d))
        self.ess = np.zeros(draws)
        self.inv_mass = np.full(d, self.sigma ** 2)  # u = sigma^2: the conditional score is sigma^-2-Lipschitz
        self.work = np.zeros((4, d))
        self.jumps = np.zeros((draws, n_meas, d)) if s.keep_jumps else None
        if s.mixture is not None:
            w, mus, var = s.mixture
            mus = np.atleast_2d(np.asarray(mus, float))
            self.mixture = (np.log(np.asarray(w, float) / np.sum(w)), mus, np.broadcast_to(np.asarray(var, float), d).copy())
        # y_1 from N(0, (s^2 + sigma^2) I) about the frame's centre: the law of y_1 when the target
        # is N(0, s^2 I) in the frame, which the pilot measured it to be in second moment
        renoise(rng, self.ys, self.centres, np.sqrt(self.spread + self.sigma ** 2))

    # -- the pilot

    @staticmethod
    def _pilot(s: WalkJump, target, rng, init, sizes: PilotSizes):
        """(frame, sigma in its units, per-coordinate second moment there, evaluations)."""
        d = target.dim
        if s.mixture is not None:
            w, mus, var = s.mixture
            mus = np.atleast_2d(np.asarray(mus, float))
            centred = mus - np.average(mus, axis=0, weights=w)
            spread = float(np.average(np.sum(centred ** 2, axis=1), weights=w) / d + np.mean(var))
            sigma = s.sigma if s.sigma is not None else (
                np.sqrt(s.radius ** 2 - s.tau ** 2) if s.radius is not None else np.sqrt(s.sigma_scale * spread))
            return identity_frame(d), float(sigma), spread, 0
        given = s.sigma is not None or s.radius is not None
        search = s.standardise == "search" or (s.standardise == "auto" and not given)
        n_evals = 0
        if search:
            starts = (np.tile(np.asarray(init, float), (sizes.searches, 1)) if init is not None
                      else rng.uniform(-2.0, 2.0, (sizes.searches, d)))
            mean, cov, n_evals = pooled_bulk(target.logp_fn, target.kernel_args, starts, rng, n_importance=sizes.pooled,
                                             max_evals=sizes.search_evals)
            frame = covariance_frame(mean, cov)
        else:
            frame = identity_frame(d)
        if given:  # in the target's coordinates (or the frame's, if asked to search as well)
            sigma = s.sigma if s.sigma is not None else np.sqrt(s.radius ** 2 - s.tau ** 2)
            return frame, float(sigma), float(sigma) ** 2, n_evals
        spread, n = covering_variance(target.logp_fn, target.kernel_args, frame, rng, n=sizes.ladder,
                                      max_rungs=_LADDER_RUNGS)
        return frame, float(np.sqrt(s.sigma_scale * spread)), float(spread), n_evals + n

    # -- one measurement

    def _denoise(self, centres, var, n):
        """E[x | centre] at noise variance ``var`` for every particle into ``self.means``; counts
        the evaluations and returns (mean ESS, min ESS)."""
        s, t = self.settings, self.target
        if s.mixture is not None:
            denoise_mixture(centres, var, *self.mixture, self.means, self.ess)
            return np.nan, np.nan
        if s.estimator == "gradient":
            k = denoise_gradient(t.logp_grad_fn, t.kernel_args, self.frame, self.rng, centres, var, n,
                                 s.antithetic, self.work, self.means, self.ess)
            self.n_grad += k
        else:
            k = denoise_importance(t.logp_fn, t.kernel_args, self.frame, self.rng, centres, var, n,
                                   s.antithetic, self.work, self.means, self.ess)
            self.n_logp += k
        return float(self.ess.mean()), float(self.ess.min())

    def advance(self, start, stop):
        s = self.settings
        sigma2 = self.sigma ** 2
        for k in range(start, stop):
            m = k + 1
            var = sigma2 / m
            if m > 1:
                if s.warm_start == "jump":
                    renoise(self.rng, self.ys, self.jump, self.sigma)
                else:
                    renoise(self.rng, self.ys, np.zeros_like(self.ys), np.sqrt(self.spread + sigma2))
            self.ps[:] = 0.0
            sum_ess, min_ess = 0.0, np.inf
            for _ in range(s.n_walk):
                if s.walk == "ulmc":
                    ulmc_position_half(self.ys, self.ps, self.inv_mass, s.step)
                effective_means(self.ybars, self.ys, m, self.centres)
                mean_ess, low = self._denoise(self.centres, var, self.n_is_m[k])
                sum_ess += mean_ess
                min_ess = min(min_ess, low)
                conditional_scores(self.means, self.ys, sigma2, self.scores)
                if s.walk == "ulmc":
                    ulmc_kick_ou_kick_position(self.rng, self.ys, self.ps, self.scores, self.inv_mass, s.step,
                                               s.friction)
                else:
                    ula_move(self.rng, self.ys, self.scores, s.step * sigma2)
            # y_m is the walk's last state; the jump is the denoiser at the new running mean
            self.ybars += (self.ys - self.ybars) / m
            jump_ess, _ = self._denoise(self.ybars, var, self.n_is_m[k])
            shift = np.nan if m == 1 else float(np.mean(np.linalg.norm(self.means - self.jump, axis=1)))
            self.jump[:] = self.means
            if self.jumps is not None:
                self.jumps[:, k] = frame_to_x(self.frame, self.jump)
            st = self.step_stats
            st["importance_ess"][k] = sum_ess / s.n_walk
            st["min_importance_ess"][k] = min_ess
            st["jump_ess"][k] = jump_ess
            st["noise_sd"][k] = np.sqrt(var)
            st["jump_shift"][k] = shift
            st["n_importance"][k] = 0 if s.mixture is not None else self.n_is_m[k]
        if stop == self.total:
            self.particles[:] = frame_to_x(self.frame, self.jump)
            self._warn_if_weights_collapsed()

    def _warn_if_weights_collapsed(self):
        ess = self.step_stats["importance_ess"]
        s = self.settings
        if s.mixture is not None or np.median(ess) >= _ESS_WARN:
            return
        # With collapsed weights the estimated score is ~0: the walks stay near their start, the
        # pilot's Gaussian, so the output shows the pilot's frame more than the target (eight
        # schools at mc.compare's 2e5: mu 1.5 sd off where that frame was, seed 0)
        why = "Raise n_importance, lower sigma (resolution and tunnelling suffer), or see the dimension limits in docs/samplers.md (walk-jump chains)"
        if self.n_is < s.n_importance:
            full = s.n_measurements * s.measurement_cost()
            why = (f"The budget shrank the denoiser's sample to {self.n_is} evaluations a call (settings: "
                   f"{s.n_importance}) and M to {self.total}: give walk_jump at least {full:,} evaluations per "
                   f"particle (the defaults' M x (n_walk + 1) x n_importance; max_evals = that x draws x chains, "
                   "plus the pilot) or fewer draws")
        warnings.warn(f"walk_jump: the denoiser's importance weights collapsed (median over the measurements "
                      f"of the mean effective sample size {np.median(ess):.1f}, below {_ESS_WARN:g}); the "
                      "sample is unreliable: with a near-zero estimated score the draws stay near the pilot's "
                      f"Gaussian fit. {why}", RuntimeWarning, stacklevel=2)

    def tuned(self):
        kind, centre, _, chol = self.frame
        out = {"sigma": self.sigma, "n_measurements": self.total, "n_importance": self.n_is,
               "second_moment": self.spread, "frame": ["identity", "diag", "dense"][kind]}
        if kind:
            out.update(loc=centre.tolist(), chol=chol.tolist())
        return out


def trace(target, settings: WalkJump | None = None, *, draws=200, seed=None, init=None, max_evals=None, **overrides):
    """Run one population with ``keep_jumps=True`` and return the run: ``run.jumps`` (draws, M, d)
    holds every chain's intermediate jumps E[x | y_1..y_m] in the target's coordinates (the
    tunnelling between modes), ``run.particles`` the output, ``run.step_stats`` the diagnostics."""
    import dataclasses
    settings = dataclasses.replace(settings or WalkJump(), keep_jumps=True, **overrides)
    settings.validate(target.dim)
    rng = np.random.default_rng(seed)
    run = settings.start_run(target, rng, init, 0, draws, None if max_evals is None else max_evals / draws)
    run.advance(0, run.total)
    return run
