"""Ensemble score sampler: gradient-free Föllmer sampling with a shared pool of evaluations.

Riel & Bischoff (2025), "Gradient-free score-based sampling methods with ensembles", Applied
Mathematical Modelling 147:116224, arXiv:2401.17539 (v1: Bischoff & Riel 2024, "Enhancing
score-based sampling methods with ensembles"); built on the Monte Carlo Föllmer drift of Huang,
Jiao, Kang, Liao, Liu & Liu (2021), "Schrödinger-Föllmer sampler", arXiv:2106.10880.

The Föllmer process moves a point mass at 0 to the target in unit time,

    X_0 = 0,   dX_t = b(X_t, t) dt + sqrt(gamma) dB_t,   X_1 ~ p,
    b(x, t) = (E[X_1 | X_t = x] - x) / (1 - t),
    X_1 | X_t = x  ~  g(x_1) N(x_1; x, gamma (1 - t) I),   g = p / N(0, gamma I),

so the drift is a posterior mean under a Gaussian likelihood, the same denoiser as rdMC's, here
with the reference N(0, gamma I) divided out. Each step estimates it by self-normalised importance
sampling, then moves every particle (Euler-Maruyama by default) on a grid 0 = t_0 < ... < t_K = 1
that never evaluates the drift at t = 1.

Drift estimators (``estimator``):

- "ensemble" (default): the particles' candidates are pooled. Each step draws ``n_candidates``
  points about every particle and evaluates the target once at each; every particle then weighs the
  pool of its group of ``group_size`` particles against the mixture it came from (multiple
  importance sampling, balance heuristic; streamed, no N x J matrix). An evaluation informs a whole
  group, which is the ensemble's gain; the price is O(G r d) flops per particle and step, and errors
  shared by the particles of a group (run several chains to see them). Groups bound the flops: one
  pool of 1000 particles x 16 candidates took 270 s for 2 runs of 100 steps in d = 3.
  The paper's body could not be read here (arXiv's HTML of v1 and v2 is indexed only to the first
  paragraph of the introduction): this is the reconstruction in the project's notes (shared-pool
  mixture importance sampling), not a transcription.
- "particle": Huang et al.'s per-particle Monte Carlo drift: the same kernel with groups of one.

Proposal (``proposal``): X_1 | X_t = x is p(c) N(c; x / t, gamma (1 - t) / t I). "reference" draws
candidates from N(x, gamma (1 - t) I), bounded at t = 0 (Huang et al.'s form); a particle bound for
a far arm of a banana sits near t X_1, so that proposal misses its posterior by (1 - t) |X_1|.
"mixed" (default) draws every other candidate from the likelihood N(x / t, gamma (1 - t) / t I)
instead, and weighs both against their mixture. Banana, curved coordinate's sd ratio, one run of
1000 particles per seed: "reference" 0.66 / 0.78 (seeds 1, 2), "mixed" 0.84 / 0.96 / 0.88 (seeds
1-3), "mixed" with the pilot below 0.88 / 0.91 / 0.98 / 0.84 / 0.96 (seeds 1-5). What is left is
the arms' tips: there the banana is ~0.05 frame units thick and the likelihood ~1 wide, few
candidates land on it, and the tip particles' ESS is ~1 (min ESS per step; mean ESS 130-230).

Allocation (``allocation``): "ess" (default) gives every particle half of the step's mean
candidates and spreads the other half in proportion to 1 / ESS of its previous estimate (at most
16x the mean); "equal" gives everyone the same. The pool's mixture density weighs each parent by
its count, so the estimate stays consistent. A particle in the bulk draws most of its ESS from its
neighbours' candidates and loses little; a particle alone at the tip of a banana's arm sees almost
only its own. Banana, curved sd ratio, one run of 1000 particles, seeds 1-5: "equal" 0.875 / 0.914
/ 0.977 / 0.838 / 0.955, "ess" 0.875 / 0.982 / 1.046 / 0.880 / 0.990 (min ESS per step from ~1 to
2-10). The sd of 1000 exact draws' ratio is 0.057 here (heavy tail), so single runs decide little;
``benchmarks/results/ensemble_score_accuracy.md`` has 4 runs per seed.

Groups (``grouping``): "local" (default) forms each step's groups from neighbouring particles
(``local_order``, a k-d split of the ensemble into blocks of ``group_size``), "index" from fixed
blocks of the index. With local groups a particle's group holds its neighbours, whose candidates
are the ones its likelihood weighs: banana, mean ESS at the last steps 260-430 against 50-150, and
the curved sd ratio 0.896 / 0.897 / 0.998 on seeds 1, 4, 2 (index groups 0.875 / 0.880 / 0.982).
What is left there is the estimate's bias at 16 candidates: 32 (twice the evaluations) gave 0.974 /
1.041 on seeds 1 and 4, 200 steps 1.010 / 0.936.

Gradient variant (``gradient=True``, needs ``logp_grad``): the same candidates and weights, plus a
control variate from the posterior's score s = grad log q, which has mean 0 and E[c_i s_i] = -1:
m_i ~ cbar_i + sbar_i / E_w[s_i^2], exact on a Gaussian posterior up to the error of E_w[s_i^2].
One gradient evaluation per candidate replaces the log density (counted in ``n_grad``).

Standardisation: the process starts at a point and its reference N(0, gamma I) must cover the
target, or the weights near t = 0 degenerate. Before the run, ``n_searches`` gradient-free bulk
searches (``_core.bulk.search_rounds``, pooled by ``pool_bulks``) from uniform(-2, 2) starts (or
``init``), in up to ``search_rounds`` rounds while every search so far ended in one mode, give a
first mean and covariance, and ``covering_variance`` a gamma that covers what they found. A
reference that misses a mode cannot be repaired later in high dimension: with one round, all 8
searches ended in the heavier mode of two_modes (d = 8) on 3 seeds of 20 and those runs put no
particle in the other; with the rounds none of the 20 did (a second round on those 3 seeds, ~10
evaluations a particle; ``benchmarks/results/ensemble_score_two_modes.md``). A unimodal target runs
every round: 32 searches. A pilot ensemble of ``pilot`` x draws particles then runs the sampler in
that frame, and its output's mean and covariance become the frame of the run (gamma found again):
the searches' covariance can be far off (correlated d = 10: sds 0.46 for 1, correlation 0.42 for
0.9), which an isotropic gamma cannot repair. Log densities enter every weight (searches, pooling,
covering ladders, pilot, steps) only less an anchor that moves with them (``_log_g``,
``_core.bulk.anchor``), so a constant added to log p changes no bit of the draws where lp + c is
exact (a log density rounded to multiples of 2^-20, c = 123 or -1e4; tests), and moves them by
rounding only (~1e-14) otherwise. Every evaluation is counted (``attrs["n_logp"]``,
``attrs["n_grad"]``). The output is a sample of the discretised process with estimated drifts:
biased for any finite K and pool (no Metropolis correction), like the other diffusion samplers.

Warnings. Before the run, when d > 10 (the largest dimension where it was measured to work:
``_MEASURED``); after it, when the median over the steps of the drift's mean importance ESS is
below max(5, d / 2) (``weights_collapsed``: the answers were wrong below about d / 2, so a fixed
threshold of 5 missed the Gaussian at d = 20, ESS 8.5, means 0.14-0.16 sd off, and two_modes at
d = 20 losing a mode at ESS 9.0). The throwaway
run with which ``sample()`` compiles the kernels skips the standardisation
(``for_compile_run``): at d = 200 its searches cost as much as the run's own.

Steps (``step``): "euler" (default); "bridge", the reference's Brownian bridge towards the
estimated E[X_1 | X_t] (exact for a point mass); "posterior", the bridge towards one candidate
drawn from the weights (exact in law for exact posterior draws). On the banana the curved
coordinate's sd ratio, averaged over seeds, moved by at most 0.035 between them (bridge 0.70 against
Euler 0.72 with the reference proposal, seeds 1-2; posterior 0.86 against 0.89 with the mixed one,
seeds 1-3; no pilot): the drift's estimate, not the step, sets the error.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.bulk import covering_variance, pool_bulks, search_evals, search_rounds, search_starts
from .._core.posterior_mean import _add_weighted, _square_distance, _square_norm, logp_grad_in_frame
from .._core.slice import _inline, covariance_frame, frame_to_x, identity_frame, logp_in_frame
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

ESTIMATORS = ("ensemble", "particle")
PROPOSALS = ("mixed", "reference")
STEPS = ("euler", "bridge", "posterior")
GRIDS = ("uniform", "refined")
ALLOCATIONS = ("ess", "equal")
GROUPINGS = ("local", "index")
# "ess" allocation: no particle gets more than this many times the mean candidates a step
_CAP = 16
# The ensemble estimator costs O(N G r d) flops a step: with a budget, the pool per particle is
# capped so that a step costs at most this many kernel terms (N x G r x d), ~0.3 s a step.
_MAX_TERMS_PER_STEP = 1e8
# the collapse warning: the drift's median ESS below max(_ESS_WARN, _ESS_PER_DIM d) (weights_collapsed)
_ESS_WARN = 5.0
_ESS_PER_DIM = 0.5
# with a budget, the search rounds after the first run only if they fit in this share of it
_SEARCH_SHARE = 0.25
# what the dimension table measured (benchmarks/results/ensemble_score.md, section 3)
_MEASURED_DIM = 10
_MEASURED = ("defaults, 500 particles: a Gaussian's means within 0.1 sd and sds within 10%, and two_modes' mode "
             "weights within TV 0.05, up to d = 10; at d = 20 two_modes lost a mode (TV 0.22-0.33) and the "
             "Gaussian was at the edge (means 0.095-0.103 sd off), at d = 50 Gaussian means 0.20-0.27 sd and sds "
             "23-30% off")


@dataclass(frozen=True)
class EnsembleScore(ParticleSettings):
    """Settings of the ensemble score sampler (see the module docstring).

    n_steps : K, Euler-Maruyama steps on [0, 1] (the Schrödinger-Föllmer demos use 100).
    estimator : "ensemble" (shared pool) or "particle" (per-particle Monte Carlo drift).
    n_candidates : evaluations per particle and step (the pool's r, or the per-particle sample).
    antithetic : pair each candidate with its reflection about the particle.
    gamma : variance of the reference N(0, gamma I), in standardised units; None (default): the
        ``covering_variance`` of the target in those units (a ladder of importance-sampling rounds).
    grid : "uniform", or "refined" (t_k = 1 - (1 - k/K)^2: finer steps near t = 1, where the drift
        grows like 1 / (1 - t)).
    denoise : output the last step's posterior mean E[X_1 | X_{t_{K-1}}] instead of X_1 (smoother,
        slightly under-dispersed).
    standardise : "search" (bulk searches before the run) or "none" (identity frame).
    n_searches : bulk searches for the standardisation, per round.
    search_rounds : up to this many rounds of ``n_searches`` searches, a new round only while every
        search so far ended in one mode (``_core.bulk.search_rounds``; rdMC's rule). With a budget,
        only the rounds whose searches fit in a quarter of it (at least one).
    group_size : particles that share a pool ("ensemble" estimator).
    proposal : "mixed" (the reference's N(x, v) and the likelihood N(x / t, v / t)) or "reference".
    pilot : particles of the pilot ensemble that fits the frame, as a fraction of ``draws`` (0: no
        pilot; skipped below 2 (d + 1) particles and with ``standardise="none"``).
    gradient : add the score control variate (needs ``logp_grad``; one gradient per candidate).
    step : "euler", "bridge" or "posterior" (see the module docstring).
    allocation : "ess" (half of each step's candidates shared equally, half in proportion to 1 / ESS
        of each particle's previous estimate; see ``allocate_candidates``) or "equal".
    grouping : which particles share a pool: "local" (neighbours, ``local_order``) or "index" (fixed
        blocks of the particle index, i.e. random with respect to position).
    """

    name: ClassVar[str] = "ensemble_score"
    citation: ClassVar[str] = ("Riel & Bischoff (2025), Gradient-free score-based sampling methods with ensembles, "
                               "Appl. Math. Model. 147, arXiv:2401.17539; Huang et al. (2021), arXiv:2106.10880")

    n_steps: int = 100
    estimator: str = "ensemble"
    n_candidates: int = 16
    antithetic: bool = True
    gamma: float | None = None
    grid: str = "uniform"
    denoise: bool = False
    standardise: str = "search"
    n_searches: int = 8
    search_rounds: int = 4
    group_size: int = 100
    proposal: str = "mixed"
    pilot: float = 0.25
    gradient: bool = False
    step: str = "euler"
    allocation: str = "ess"
    grouping: str = "local"

    @property
    def needs_grad(self) -> bool:
        return bool(self.gradient)

    def validate(self, dim: int) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.proposal not in PROPOSALS:
            raise ValueError(f"proposal must be one of {PROPOSALS}, got {self.proposal!r}")
        if self.step not in STEPS:
            raise ValueError(f"step must be one of {STEPS}, got {self.step!r}")
        if self.grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {self.grid!r}")
        if self.grouping not in GROUPINGS:
            raise ValueError(f"grouping must be one of {GROUPINGS}, got {self.grouping!r}")
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {self.allocation!r}")
        if self.standardise not in ("search", "none"):
            raise ValueError(f"standardise must be 'search' or 'none', got {self.standardise!r}")
        for name in ("n_steps", "n_candidates", "n_searches", "search_rounds", "group_size"):
            if int(getattr(self, name)) < (2 if name == "n_steps" else 1):
                raise ValueError(f"{name} must be a positive integer (n_steps >= 2), got {getattr(self, name)!r}")
        if not (np.isfinite(self.pilot) and 0.0 <= self.pilot <= 4.0):
            raise ValueError(f"pilot must be a fraction of draws in [0, 4], got {self.pilot!r}")
        if self.gamma is not None and not (np.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"gamma must be a positive number, got {self.gamma}")
        if dim > _MEASURED_DIM:
            warnings.warn(f"ensemble_score: d = {dim} is beyond where it was measured to work ({_MEASURED}); expect a "
                          "biased sample and a long standardisation (up to "
                          f"{self.search_rounds} x {self.n_searches} bulk searches of up to {search_evals(dim)} "
                          "evaluations each, before the first step)", RuntimeWarning, stacklevel=2)

    def for_compile_run(self):
        """Without the standardisation: its searches compile nothing that the covering ladder does not,
        and they cost as much as the run's own (at d = 200, 8 x 102,000 evaluations, ~2 min)."""
        return dataclasses.replace(self, standardise="none") if self.standardise == "search" else self

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Particles so that each gets at least 4 candidates a step at ``n_steps`` steps. At
        mc.compare's 2e5 (4 runs) that is 125 a run, as good as 80 and better than 20-40 or 250 on
        gmm40_d2, eight schools, a Student-t (nu 5, d 5) and two_modes (d 4), seeds 1-3
        (benchmarks/results/particle_split.md)."""
        return int(np.clip(budget_per_run // (4 * self.n_steps), 20, self.default_draws))

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return EnsembleRun(self, target, rng, init, draws, budget_per_particle)


def foellmer_grid(n_steps: int, kind: str) -> np.ndarray:
    """0 = t_0 < ... < t_K = 1, uniform or refined towards 1."""
    k = np.arange(n_steps + 1) / n_steps
    return k if kind == "uniform" else 1.0 - (1.0 - k) ** 2


# -- one step ----------------------------------------------------------------------------------


@_jit
def euler_foellmer_move(rng, xs, means, t, h, gamma):
    """x <- x + h (m - x) / (1 - t) + sqrt(gamma h) xi for every particle; returns the mean drift norm."""
    noise = np.sqrt(gamma * h)
    total = 0.0
    for p in range(xs.shape[0]):
        sq = 0.0
        for i in range(xs.shape[1]):
            b = (means[p, i] - xs[p, i]) / (1.0 - t)
            sq += b * b
            xs[p, i] += h * b + noise * rng.standard_normal()
        total += np.sqrt(sq)
    return total / xs.shape[0]


@_jit
def bridge_move(rng, xs, ends, t, h, gamma):
    """The Brownian bridge of the reference from x at t towards ``ends`` at t = 1, over [t, t + h]:
    x <- x + h (e - x) / (1 - t) + sqrt(gamma h (1 - t - h) / (1 - t)) xi. Exact in law when e is a
    draw from X_1 | X_t = x. Returns the mean norm of (e - x) / (1 - t)."""
    r = h / (1.0 - t)
    noise = np.sqrt(gamma * h * (1.0 - t - h) / (1.0 - t))
    total = 0.0
    for p in range(xs.shape[0]):
        sq = 0.0
        for i in range(xs.shape[1]):
            b = (ends[p, i] - xs[p, i]) / (1.0 - t)
            sq += b * b
            xs[p, i] += r * (ends[p, i] - xs[p, i]) + noise * rng.standard_normal()
        total += np.sqrt(sq)
    return total / xs.shape[0]


# -- the drift's posterior means ------------------------------------------------------------------
#
# X_1 | X_t = x has density q(c) ~ g(c) N(c; x, v I), v = gamma (1 - t), g = p / N(0, gamma I).
# Rewritten, q(c) ~ p(c) N(c; x / t, v / t I): the Gaussian factor is the likelihood of x, centred at
# x / t, while the reference-tilted proposal N(x, v I) is centred at x. A particle bound for a far arm
# of a banana sits at x ~ t X_1, so N(x, v) misses its posterior by (1 - t) |X_1|, many of its sds
# (measured: the curved coordinate's sd 28% low). The "mixed" proposal draws half of each particle's
# candidates from each and weighs them against the mixture (balance heuristic): N(x, v) carries the
# early steps, where N(x / t, v / t) is too wide, and the likelihood the later ones.


@_inline
def _is_likelihood_slot(slot, antithetic, mix):
    """Whether a particle's candidate ``slot`` comes from the likelihood N(x / t, var / t): with
    ``mix``, every other draw (pair of draws if ``antithetic``)."""
    return mix and (slot // (2 if antithetic else 1)) % 2 == 1


@_inline
def _draw_candidate(rng, x, slot, antithetic, t, var, mix, pool, j):
    """Candidate j of the pool, the particle x's ``slot``-th: from N(x, var) or, in a likelihood
    slot, from N(x / t, var / t); with ``antithetic`` odd slots reflect the previous one about its
    centre."""
    shrunk = _is_likelihood_slot(slot, antithetic, mix)
    scale = 1.0 / t if shrunk else 1.0
    sd = np.sqrt(var * scale)
    if antithetic and slot % 2 == 1:
        for i in range(x.size):
            pool[j, i] = 2.0 * scale * x[i] - pool[j - 1, i]
    else:
        for i in range(x.size):
            pool[j, i] = scale * x[i] + sd * rng.standard_normal()


@_jit
def _log_mixture(c, xs, t, var, log_ref, log_lik):
    """log of the pool's proposal density at c, up to a constant shared by the pool: the mixture
    over particles k of N(x_k, var I) and N(x_k / t, var / t I), weighted by how many candidates
    particle k drew from each (``log_ref``, ``log_lik``: their logs, -inf for none)."""
    log_max = -np.inf
    total = 0.0
    half_d_log_t = 0.5 * c.size * np.log(t) if t > 0.0 else 0.0
    for k in range(xs.shape[0]):
        for like in (False, True):
            lc = log_lik[k] if like else log_ref[k]
            if lc == -np.inf:
                continue
            s = 0.0
            if like:
                for i in range(c.size):
                    r = c[i] - xs[k, i] / t
                    s += r * r
                v = lc + half_d_log_t - 0.5 * s * t / var
            else:
                v = lc - 0.5 * _square_distance(c, xs[k]) / var
            if v > log_max:
                total = total * np.exp(log_max - v) + 1.0
                log_max = v
            else:
                total += np.exp(v - log_max)
    return log_max + np.log(total)


@_jit
def _draw_pool(rng, xs, counts, antithetic, t, var, mix, pool, log_ref, log_lik):
    """Every particle's ``counts[p]`` candidates, in particle order, into ``pool``; the log
    counts per proposal into ``log_ref`` / ``log_lik``. Returns the pool's size."""
    j = 0
    for p in range(xs.shape[0]):
        n_lik = 0
        for slot in range(counts[p]):
            _draw_candidate(rng, xs[p], slot, antithetic, t, var, mix, pool, j)
            n_lik += _is_likelihood_slot(slot, antithetic, mix)
            j += 1
        n_ref = counts[p] - n_lik
        log_ref[p] = np.log(n_ref) if n_ref > 0 else -np.inf
        log_lik[p] = np.log(n_lik) if n_lik > 0 else -np.inf
    return j


@_jit
def _log_g(pool, pool_lw, gamma):
    """log g(c) = log p(c) + |c|^2 / (2 gamma) of the pool's candidates, in place from their log
    densities, less the largest of these first. Why first: the weights depend on log p only through
    differences, and lp - max is exact when lp + c is, so a constant c added to log p changes no
    bit of the draws (lp + |c|^2 / (2 gamma) + c would round differently from lp + |c|^2 / (2 gamma))."""
    top = -np.inf
    for j in range(pool_lw.size):
        if pool_lw[j] > top:
            top = pool_lw[j]
    if not np.isfinite(top):
        return
    for j in range(pool_lw.size):
        if pool_lw[j] > -np.inf:
            pool_lw[j] = (pool_lw[j] - top) + 0.5 * _square_norm(pool[j]) / gamma


@_jit
def _divide_by_mixture(xs, t, var, log_ref, log_lik, pool, pool_lw):
    for j in range(pool.shape[0]):
        if pool_lw[j] > -np.inf:
            pool_lw[j] -= _log_mixture(pool[j], xs, t, var, log_ref, log_lik)


@_jit
def _weigh(rng, xs, var, pool, pool_lw, pool_s, use_grad, pick, sums, means, ess, picks):
    """Every particle's self-normalised estimate of E[X_1 | X_t = x_p] from the pool, with the
    weights g(c_j) N(c_j; x_p, var) / mixture(c_j) streamed (no N x J matrix).

    With ``use_grad`` it adds a control variate: the posterior's score s = grad log q has mean 0, so
    m = E[c_i - beta_i s_i] for any beta_i, and E[c_i s_i] = -1 (integration by parts) makes
    beta_i = -1 / E[s_i^2] the regression coefficient: m_i ~ cbar_i + sbar_i / E_w[s_i^2]. On a
    Gaussian posterior s is linear in c and the estimate is exact up to E_w[s_i^2]'s error.
    ``pool_s`` holds grad log g(c_j) = grad log p(c_j) + c_j / gamma; the likelihood's part
    -(c_j - x_p) / var is added here. ``sums``: (3, d) scratch. If ``pick``, ``picks[p]`` receives
    one candidate drawn from the weights (streamed multinomial)."""
    n, d = xs.shape
    for p in range(n):
        acc = np.array([-np.inf, 0.0, 0.0])  # see _add_weighted
        sums[:] = 0.0
        for j in range(pool.shape[0]):
            if not pool_lw[j] > -np.inf:
                continue
            lw = pool_lw[j] - 0.5 * _square_distance(pool[j], xs[p]) / var
            if use_grad and lw > acc[0]:
                r = np.exp(acc[0] - lw)
                for k in (1, 2):  # _add_weighted rescales sums[0]
                    for i in range(d):
                        sums[k, i] *= r
            w = _add_weighted(acc, lw, pool[j], sums[0])
            if use_grad:
                for i in range(d):
                    s = pool_s[j, i] - (pool[j, i] - xs[p, i]) / var
                    sums[1, i] += w * s
                    sums[2, i] += w * s * s
            if pick and rng.random() * acc[1] < w:
                for i in range(d):
                    picks[p, i] = pool[j, i]
        if acc[1] == 0.0:  # nothing finite in the pool: stay put
            for i in range(d):
                means[p, i] = xs[p, i]
                picks[p, i] = xs[p, i]
            ess[p] = 0.0
            continue
        for i in range(d):
            means[p, i] = sums[0, i] / acc[1]
            if use_grad and sums[2, i] > 0.0:
                means[p, i] += sums[1, i] / sums[2, i]
        ess[p] = acc[1] * acc[1] / acc[2]


@_jit
def pool_means(logp, args, frame, rng, xs, t, gamma, counts, antithetic, mix, group, pick, pool, pool_lw,
               pool_s, buf, sums, means, ess, picks):
    """Posterior means of every particle from pools shared by groups of ``group`` particles
    (group 1: Huang et al.'s per-particle estimate); particle p adds ``counts[p]`` evaluations of
    log p to its group's pool. Returns the evaluations."""
    n = xs.shape[0]
    var = gamma * (1.0 - t)
    use_mix = mix and t > 0.0
    log_ref, log_lik = np.empty(group), np.empty(group)
    spent = 0
    for lo in range(0, n, group):
        hi = min(lo + group, n)
        m = _draw_pool(rng, xs[lo:hi], counts[lo:hi], antithetic, t, var, use_mix, pool, log_ref, log_lik)
        for j in range(m):
            pool_lw[j] = logp_in_frame(logp, args, frame, pool[j], buf)
        _log_g(pool[:m], pool_lw[:m], gamma)
        _divide_by_mixture(xs[lo:hi], t, var, log_ref, log_lik, pool[:m], pool_lw[:m])
        _weigh(rng, xs[lo:hi], var, pool[:m], pool_lw[:m], pool_s[:m], False, pick, sums, means[lo:hi], ess[lo:hi],
               picks[lo:hi])
        spent += m
    return spent


@_jit
def pool_means_grad(logp_grad, args, frame, rng, xs, t, gamma, counts, antithetic, mix, group, pick, pool,
                    pool_lw, pool_s, buf, sums, means, ess, picks):
    """``pool_means`` with the score control variate: one gradient evaluation per candidate (log p
    comes with it). Returns the gradient evaluations."""
    n, d = xs.shape
    var = gamma * (1.0 - t)
    use_mix = mix and t > 0.0
    log_ref, log_lik = np.empty(group), np.empty(group)
    spent = 0
    for lo in range(0, n, group):
        hi = min(lo + group, n)
        m = _draw_pool(rng, xs[lo:hi], counts[lo:hi], antithetic, t, var, use_mix, pool, log_ref, log_lik)
        for j in range(m):
            lp, finite = logp_grad_in_frame(logp_grad, args, frame, pool[j], buf, pool_s[j])
            if finite:
                pool_lw[j] = lp
                for i in range(d):
                    pool_s[j, i] += pool[j, i] / gamma
            else:
                pool_lw[j] = -np.inf
        _log_g(pool[:m], pool_lw[:m], gamma)
        _divide_by_mixture(xs[lo:hi], t, var, log_ref, log_lik, pool[:m], pool_lw[:m])
        _weigh(rng, xs[lo:hi], var, pool[:m], pool_lw[:m], pool_s[:m], True, pick, sums, means[lo:hi], ess[lo:hi],
               picks[lo:hi])
        spent += m
    return spent


def allocate_candidates(ess, per_step, antithetic, cap=16):
    """Candidates per particle for the next step, ``per_step`` on average: half of them (in whole
    antithetic pairs) to every particle, the other half in proportion to 1 / ESS of the particle's
    last estimate, at most ``cap`` x ``per_step`` each (water-filling, then largest remainders).

    Why: a particle's ESS comes mostly from its neighbours' candidates, so where the ensemble is
    dense its own candidates add little, while a particle alone at the edge of the target (the tips
    of a banana's arms) sees almost only its own and its estimate rests on ~1 of them (measured:
    min ESS 1-3 from t = 0.25 on, mean ESS 150-250). The ESS of the previous step predicts the next
    one's, since particles move little per step."""
    n = ess.size
    pair = 2 if antithetic else 1
    base = (per_step // 2) // pair * pair
    if base < pair:
        return np.full(n, per_step, dtype=np.int64)
    extra_total = n * (per_step - base)
    room = cap * per_step - base
    need = 1.0 / np.maximum(np.where(np.isfinite(ess), ess, 0.0), 1.0)
    lo, hi = 0.0, room / need.min()
    for _ in range(60):  # lambda with sum(min(lambda need, room)) = extra_total
        mid = 0.5 * (lo + hi)
        if np.minimum(mid * need, room).sum() > extra_total:
            hi = mid
        else:
            lo = mid
    share = np.minimum(lo * need, room) / pair
    extra = np.floor(share).astype(np.int64)
    left = extra_total // pair - int(extra.sum())
    if left > 0:
        order = np.argsort(-(share - extra), kind="stable")
        order = order[extra[order] * pair < room][:left]
        extra[order] += 1
    return base + pair * extra


def local_order(xs, group):
    """A permutation of the particles whose consecutive blocks of ``group`` are compact: recursive
    median splits along the coordinate of largest variance (a k-d tree whose leaves are the blocks).

    Why: a particle's estimate uses the candidates of its group, weighed by its own likelihood, so
    only candidates drawn near it count. In blocks of the index a group is a random tenth of the
    ensemble and a particle's useful neighbours are a tenth of its neighbours; in local blocks
    they are all in. Any partition fixed before the candidates are drawn keeps the estimate
    consistent."""
    order = np.arange(len(xs))
    stack = [(0, len(xs))]
    while stack:
        lo, hi = stack.pop()
        if hi - lo <= group:
            continue
        idx = order[lo:hi]
        sub = xs[idx]
        axis = int(np.argmax(sub.var(axis=0)))
        order[lo:hi] = idx[np.argsort(sub[:, axis], kind="stable")]
        mid = lo + group * ((-(-(hi - lo) // group) + 1) // 2)  # whole blocks on the left
        stack += [(lo, mid), (mid, hi)]
    return order


def ess_needed(dim):
    """The median over the steps of the drift's mean importance ESS below which a run warns:
    max(5, d / 2) (``weights_collapsed``)."""
    return max(_ESS_WARN, _ESS_PER_DIM * dim)


def weights_collapsed(median_ess, dim):
    """Whether the drift rested on too few candidates for the dimension: the median over the steps
    of the particles' mean importance ESS below ``ess_needed(d)`` = max(5, d / 2).

    Why it grows with d: a self-normalised estimate of a d-dimensional posterior mean from n
    effective candidates errs by ~ d / n posterior variances summed over the coordinates, and its
    O(1 / n) bias is shared by a group's particles and by neighbouring steps, so it does not average
    out. Why d / 2: measured where the answers turn wrong
    (``benchmarks/results/ensemble_score_ess_rule.md`` and ``ensemble_score.md``, 500 particles; the
    candidates per step varied to move the ESS at a fixed d): wrong at ESS / d <= 0.18 (Gaussian d =
    30 at ESS 2.2 and 5.3, means 0.14-0.16 sd off; two_modes d = 20 at 3.1, TV 0.22) and at
    0.42-0.45 (Gaussian d = 20, ESS 8.4-8.5, 0.14-0.16 sd, two seeds of an older version; two_modes
    d = 20 at ESS 9.0, a mode lost); right at 0.8 and more at d = 10 (two_modes at 8.2, Gaussian at
    13) and at 0.29-0.47 in three runs at d = 20 (the Gaussian at ESS 9.3: rms mean error
    0.041-0.050 sd, exact draws' 0.045), which the rule flags. d / 2 is the border's conservative
    side. At d <= 10 the old floor of 5 stays: funnel10 (ESS 4.0) is sampled badly, two_modes d = 8,
    correlated d = 10, mog8, gmm40_d2 and banana (15-226) well."""
    return median_ess < ess_needed(dim)


# -- the run -----------------------------------------------------------------------------------


class EnsembleRun(ParticleRun):
    """One ensemble: the standardisation at construction, then ``n_steps`` steps."""

    step_stat_dtypes: ClassVar[dict] = {"importance_ess": np.float64, "min_importance_ess": np.float64,
                                        "drift_norm": np.float64, "n_candidates": np.int64}

    def __init__(self, settings: EnsembleScore, target, rng, init, draws, budget_per_particle):
        d = target.dim
        if settings.gradient and not target.has_grad:
            raise ValueError(f"ensemble_score: gradient=True needs a target with logp_grad; {target.name!r} has none")
        super().__init__(settings, target, rng, 0, draws, settings.n_steps)
        self.frame, search_evals = self._standardise(settings, target, rng, init, budget_per_particle, draws)
        self.gamma, ladder_evals = settings.gamma, 0
        if self.gamma is None:
            self.gamma, ladder_evals = covering_variance(target.logp_fn, target.kernel_args, self.frame, rng,
                                                         anchored=True)
            search_evals += ladder_evals
        self.group = min(draws, settings.group_size) if settings.estimator == "ensemble" else 1
        n_pilot = int(np.ceil(settings.pilot * draws)) if settings.standardise == "search" else 0
        if n_pilot < 2 * (d + 1):  # too few for a covariance (and the driver's 2-particle compile run)
            n_pilot = 0
        if n_pilot and budget_per_particle is not None:
            # the pilot is a refinement: a budget that cannot pay for it, its covering ladder (about
            # what the first one cost) and 4 candidates a step for everyone runs without it
            room = budget_per_particle * draws - search_evals - ladder_evals
            if room < 4 * (draws + n_pilot) * settings.n_steps:
                n_pilot = 0
        per_step = settings.n_candidates
        if budget_per_particle is not None:
            per_step = int((budget_per_particle * draws - search_evals) // ((draws + n_pilot) * settings.n_steps))
            if per_step < 1:
                raise ValueError(f"ensemble_score: a budget of {budget_per_particle:.3g} evaluations per particle "
                                 f"pays for fewer than one candidate per step ({settings.n_steps} steps, "
                                 f"{search_evals} spent on standardisation, a pilot of {n_pilot} particles); give a "
                                 "larger max_evals or fewer draws")
            per_step = max(1, min(per_step, int(_MAX_TERMS_PER_STEP / (draws * self.group * d))))
        if settings.antithetic and per_step > 1:
            per_step -= per_step % 2
        self.per_step = per_step
        self.grid = foellmer_grid(settings.n_steps, settings.grid)
        self.time = self.grid[:-1].copy()
        # a group's pool: at most every particle at the cap, at most the whole step's candidates
        size = min(self.group * per_step * (_CAP if settings.allocation == "ess" else 1), draws * per_step)
        self.pool = np.zeros((size, d))
        self.pool_lw = np.zeros(size)
        self.pool_s = np.zeros((size if settings.gradient else 1, d))
        self.work = np.zeros((4, d))
        if n_pilot:
            search_evals += self._pilot(n_pilot)
            if budget_per_particle is not None:  # the pilot's covering ladder was not in the plan
                left = budget_per_particle * draws - search_evals - self.extra_grad
                self.per_step = min(per_step, int(left // (draws * settings.n_steps)))
                if self.per_step < 1:
                    raise ValueError(f"ensemble_score: a budget of {budget_per_particle:.3g} evaluations per particle "
                                     f"leaves fewer than one candidate per step after the standardisation and "
                                     f"the pilot ({search_evals + self.extra_grad} evaluations); give a larger "
                                     "max_evals or fewer draws")
                if settings.antithetic and self.per_step > 1:
                    self.per_step -= self.per_step % 2
        self.extra_logp += search_evals
        self.xs, self.means, self.picks = np.zeros((draws, d)), np.zeros((draws, d)), np.zeros((draws, d))
        self.ess = np.zeros(draws)

    @staticmethod
    def _standardise(settings, target, rng, init, budget_per_particle=None, draws=0):
        """(frame, evaluations): up to ``search_rounds`` rounds of bulk searches (one from ``init``),
        pooled (``_core.bulk.pool_bulks``). Why rounds: two_modes d = 8, 20 seeds of 500 particles:
        with one round of 8 searches all ended in the heavier mode on 3 seeds, and the other mode got
        no particle; with up to 4 rounds on none."""
        d = target.dim
        if settings.standardise == "none":
            return identity_frame(d), 0
        rounds = settings.search_rounds if init is None else 1
        if budget_per_particle is not None:  # a round costs at most n_searches full searches
            per_round = settings.n_searches * search_evals(d)
            rounds = int(np.clip(_SEARCH_SHARE * budget_per_particle * draws // per_round, 1, rounds))
        starts = search_starts(settings.n_searches, d, init)
        found, n_evals = search_rounds(target.logp_fn, target.kernel_args, starts, rng, rounds)
        mean, cov, n = pool_bulks(target.logp_fn, target.kernel_args, found, rng, anchored=True)
        return covariance_frame(mean, cov), n_evals + n

    def _pilot(self, n_pilot):
        """A first, smaller ensemble in the searches' frame; its mean and covariance become the
        frame, and the covering variance is found again in it. Returns the log-density evaluations
        (with ``gradient`` the pilot's gradient evaluations go to ``extra_grad``).

        Why: the searches' covariance can be far off (correlated d = 10, rho = 0.9: frame sds 0.46
        and correlation 0.42 against 1 and 0.9; banana: the curved coordinate's sd 1.3 against 4.4),
        and an isotropic gamma cannot repair a reference whose shape is wrong: the run then came out
        up to 31% too narrow. The pilot's own output, even if too narrow, has the target's shape."""
        d = self.target.dim
        xs, means, picks, ess = np.zeros((n_pilot, d)), np.zeros((n_pilot, d)), np.zeros((n_pilot, d)), np.zeros(n_pilot)
        spent = 0
        for k in range(self.total):
            n = self._step(k, xs, means, ess, picks, self._counts(k, ess), denoise=False)
            if self.settings.gradient:
                self.extra_grad += n
            else:
                spent += n
        x = frame_to_x(self.frame, xs)
        if not np.all(np.isfinite(x)):
            return spent
        self.frame = covariance_frame(x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False)))
        if self.settings.gamma is None:
            self.gamma, n = covering_variance(self.target.logp_fn, self.target.kernel_args, self.frame, self.rng,
                                              anchored=True)
            spent += n
        return spent

    def _counts(self, k, ess):
        """Candidates per particle at step k, from the ESS of step k - 1 (``allocation="ess"``)."""
        if k == 0 or self.settings.allocation == "equal":
            return np.full(ess.size, self.per_step, dtype=np.int64)
        return allocate_candidates(ess, self.per_step, self.settings.antithetic, _CAP)

    def _step(self, k, xs, means, ess, picks, counts, denoise):
        """Step k of the grid for the particles ``xs`` (in place), ``counts[p]`` candidates for
        particle p; returns the evaluations."""
        s = self.settings
        fn = self.target.logp_grad_fn if s.gradient else self.target.logp_fn
        estimate = pool_means_grad if s.gradient else pool_means
        t, h = self.grid[k], self.grid[k + 1] - self.grid[k]
        group = min(self.group, len(xs))
        order = local_order(xs, group) if s.grouping == "local" and 1 < group < len(xs) and k > 0 else None
        if order is None:
            n = estimate(fn, self.target.kernel_args, self.frame, self.rng, xs, t, self.gamma, counts,
                         s.antithetic, s.proposal == "mixed", group, s.step == "posterior", self.pool,
                         self.pool_lw, self.pool_s, self.work[0], self.work[1:], means, ess, picks)
        else:
            sorted_means, sorted_ess, sorted_picks = np.empty_like(means), np.empty_like(ess), np.empty_like(picks)
            n = estimate(fn, self.target.kernel_args, self.frame, self.rng, np.ascontiguousarray(xs[order]), t,
                         self.gamma, np.ascontiguousarray(counts[order]), s.antithetic, s.proposal == "mixed", group,
                         s.step == "posterior", self.pool, self.pool_lw, self.pool_s, self.work[0], self.work[1:],
                         sorted_means, sorted_ess, sorted_picks)
            means[order], ess[order], picks[order] = sorted_means, sorted_ess, sorted_picks
        if k == self.total - 1 and denoise:
            xs[:] = means
            return n
        if s.step == "euler":
            self.drift_norm = euler_foellmer_move(self.rng, xs, means, t, h, self.gamma)
        else:
            self.drift_norm = bridge_move(self.rng, xs, picks if s.step == "posterior" else means, t, h, self.gamma)
        return n

    def advance(self, start, stop):
        s = self.settings
        spent = self.n_grad if s.gradient else self.n_logp
        for k in range(start, stop):
            self.drift_norm = np.nan
            counts = self._counts(k, self.ess)
            self._step(k, self.xs, self.means, self.ess, self.picks, counts, s.denoise)
            spent += counts
            self.step_stats["importance_ess"][k] = self.ess.mean()
            self.step_stats["min_importance_ess"][k] = self.ess.min()
            self.step_stats["n_candidates"][k] = self.per_step
            self.step_stats["drift_norm"][k] = self.drift_norm
            if k == self.total - 1:
                self.particles[:] = frame_to_x(self.frame, self.xs)
                self._warn_if_weights_collapsed()

    def _warn_if_weights_collapsed(self):
        ess, d = float(np.median(self.step_stats["importance_ess"])), self.target.dim
        if weights_collapsed(ess, d):
            warnings.warn(f"ensemble_score: the importance weights of the drift collapsed (median over the steps of "
                          f"the mean effective sample size {ess:.1f}, below {ess_needed(d):g} for d = {d}); the "
                          "sample is unreliable. Raise n_candidates, or check the standardisation (attrs['tuned']): "
                          "a reference that misses part of the target cannot be corrected later", RuntimeWarning,
                          stacklevel=2)

    def tuned(self):
        kind, centre, _, chol = self.frame
        out = {"candidates_per_step": int(self.per_step), "gamma": float(self.gamma)}
        if kind:
            out.update(loc=centre.tolist(), chol=chol.tolist())
        return out
