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
annealing time L h grows with the budget, as in the paper).

Tuning (the paper tunes by hand, Table 8; ``MultALMC.preset(name)`` has its values for the
catalogue targets): fix s = 5, lambda_tilde = 0.6, lambda_delta = 0.01; choose h; then eps so
that (h / eps) Lip(f) stays inside SK-ROCK's stability bound (37.6 for s = 5), where the fast
drift f has Lipschitz constant about 1 / (1 - lambda) + L_pi / lambda (largest at lambda_delta:
1 + 100 L_pi); then the friction pair.

Known limitation (measured, benchmarks/results/multiscale_weights.md): each slow particle has one
fast chain, and a fast chain cannot cross a high energy barrier, so the mass a particle ends in
follows the basin its fast chain started in, not the target's weights: unequal mode weights across
high barriers are not recovered. The paper's benchmarks have equal weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.diffusion import (SCHEDULES, cld_mass, cld_transition, exponential_integrator_step,
                               linear_sde_transition, path_schedule)
from .._core.langevin import a_step, b_step, o_step, obabo_step, ula_chain_step, ula_step
from .._core.skrock import skrock_coefficients, skrock_step, stability_bound
from .._core.slice import norm
from ._base import ParticleRun, ParticleSettings

_jit = numba.njit(cache=True, nogil=True)

NOISES = ("gaussian", "student")
_GAUSS, _STUDENT = 0, 1
CITATION = ("Cordero-Encinar, Duncan, Reich & Akyildiz (2025), Sampling by averaging: a multiscale approach "
            "to score estimation, arXiv:2508.15069")
MIN_STEPS = 100

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
    step_size: float = 0.005
    eps: float = 0.1
    friction: tuple = (0.07, 0.5)
    underdamped: bool = True
    lambda_delta: float = 0.01
    stages: int = 5
    damping: float = 0.05

    def validate(self, dim: int) -> None:
        if int(self.n_steps) != self.n_steps or self.n_steps < 2:
            raise ValueError(f"n_steps must be an integer >= 2, got {self.n_steps!r}")
        for name in ("step_size", "eps"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        fr = tuple(self.friction)
        if len(fr) != 2 or not all(np.isfinite(f) and f >= 0 for f in fr):
            raise ValueError(f"friction must be a pair (Gamma_min, Gamma_max) of non-negative numbers, got {self.friction!r}")
        if not 0.0 < self.lambda_delta < 0.5:
            raise ValueError(f"lambda_delta must be in (0, 0.5), got {self.lambda_delta}")
        skrock_coefficients(self.stages, self.damping)  # raises on bad stages / damping

    @staticmethod
    def _table8_row(target_name: str):
        """(schedule, eps, friction, h) of the paper's Table 8 (KeyError names the known targets)."""
        if target_name not in TABLE8:
            raise KeyError(f"no Table 8 preset for {target_name!r}; presets: {', '.join(sorted(TABLE8))}")
        return TABLE8[target_name]

    def fast_stiffness(self, lipschitz: float = 1.0) -> float:
        """(h / eps) Lip(f) at lambda_delta for a target whose log-density gradient has Lipschitz
        constant ``lipschitz``, against SK-ROCK's bound ``stability_bound(stages)``."""
        lam = self.lambda_delta
        return self.step_size / self.eps * (1.0 / (1.0 - lam) + lipschitz / lam)

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Particles for a run of ``budget_per_run`` gradients (``mc.compare``): enough for each to
        get 2,000 iterations if possible (between 4 and ``default_draws``)."""
        return int(np.clip(budget_per_run // (2000 * (self.stages + 1)), 4, self.default_draws))


@dataclass(frozen=True)
class MultALMC(_MultiscaleSettings):
    """Multiscale annealed Langevin Monte Carlo (Cordero-Encinar et al. 2025, Algorithms 1-3).

    n_steps : L, iterations (with ``max_evals``: planned from the budget per particle at fixed h).
    step_size : h. The annealing runs over lambda(l / L), l < L, in total time L h.
    eps : time-scale separation of the fast process (SK-ROCK step h / eps).
    friction : (Gamma_min, Gamma_max): Gamma_min for the first half of the iterations, then linear
        to Gamma_max (underdamped only; unit mass).
    underdamped : OBABO slow process (default, the paper's main method) or Euler-Maruyama.
    schedule : "linear" (lambda = t) or "cosine" (sin^2(pi t / 2)).
    lambda_delta : lambda is clamped below it; plain Langevin on the target above 1 - lambda_delta.
    lambda_tilde : noise-form slow drift below it, target-form above.
    stages, damping : SK-ROCK's s and eta.
    noise : base law nu: "gaussian" or "student" (tail index ``tail_index``); ``noise_scale``: its
        scale sigma (nu = N(0, sigma^2 I)): an informed scale helps (paper, Sec. 5).

    Defaults: the paper's global settings and its 8-MoG row of Table 8 (eps 0.1, Gamma 0.07 -> 0.5,
    h 0.005); ``MultALMC.preset(name)`` for the other catalogue targets. Draws: the slow particles
    X at the end. Limitation: mode weights across high barriers follow the fast chains' starting
    basins (module docstring).
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
        kw = dict(schedule=sched, eps=eps, friction=fric, step_size=h)
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
        if not (self.tail_index > 0 and self.noise_scale > 0):
            raise ValueError("tail_index and noise_scale must be positive")

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return MultALMCRun(self, target, rng, draws, budget_per_particle)


@dataclass(frozen=True)
class MultCDiff(_MultiscaleSettings):
    """Multiscale controlled diffusion (Cordero-Encinar et al. 2025, Algorithm 4 and App. B.2.1).

    n_steps : L iterations: (1 - final_fraction) L reverse-diffusion steps on a grid uniform in
        lambda from lambda_delta to 1 - lambda_delta, then plain Langevin on the target with step h.
    underdamped : critically damped Langevin forward process (default) or Ornstein-Uhlenbeck.
    cld_friction : Gamma of the critically damped process (mass Gamma^2 / 4); V_0 ~ N(0, 1).
    eps : fast time-scale: SK-ROCK step (reverse-time step) / eps.
    friction : (Gamma_min, Gamma_max) of the final underdamped phase (Gamma_max is used).
    final_fraction : share of the iterations spent in the final plain Langevin phase.
    """

    name: ClassVar[str] = "multcdiff"

    cld_friction: float = 1.0
    final_fraction: float = 0.01

    @classmethod
    def preset(cls, target_name: str, **overrides) -> "MultCDiff":
        _, eps, fric, h = cls._table8_row(target_name)
        return cls(**(dict(eps=eps, friction=fric, step_size=h) | overrides))

    def validate(self, dim: int) -> None:
        super().validate(dim)
        if not self.cld_friction > 0:
            raise ValueError(f"cld_friction must be positive, got {self.cld_friction}")
        if not 0.0 <= self.final_fraction < 1.0:
            raise ValueError(f"final_fraction must be in [0, 1), got {self.final_fraction}")

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return MultCDiffRun(self, target, rng, draws, budget_per_particle)


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
def _slow_drift(logp_grad, args, lam, x, y, target_form, fresh, noise_kind, alpha, noise_var, gy, scaled, out):
    """The one-sample estimate of grad log mu_lambda(x) from the fast variable y, into ``out``:
    target form grad log pi(y / sqrt(lam)) / sqrt(lam) (``gy`` holds grad log pi(y / sqrt(lam)),
    recomputed when ``fresh``), or the noise form (Gaussian or Student). Returns gradients spent."""
    d = x.size
    if target_form:
        n = 0
        r = 1.0 / np.sqrt(lam)
        if fresh:
            for i in range(d):
                scaled[i] = r * y[i]
            _, g = logp_grad(scaled, *args)
            gy[:] = g
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
def langevin_phase_chunk(logp_grad, args, rng, xs, vs, gs, n_rows, h, frictions, inv_mass, underdamped, cache,
                         n_grad, out_norm):
    """``n_rows`` iterations of plain Langevin on the target (OBABO, or ULA) for every particle.
    ``gs`` holds the gradients at xs when ``cache[0] == 2``; otherwise they are computed first."""
    fresh = cache[0] != 2.0
    for r in range(n_rows):
        total = 0.0
        for p in range(xs.shape[0]):
            if fresh:
                _, g = logp_grad(xs[p], *args)
                gs[p] = g
                n_grad[p] += 1
            if underdamped:
                obabo_step(logp_grad, args, rng, xs[p], vs[p], gs[p], h, frictions[r], inv_mass)
            else:
                ula_chain_step(logp_grad, args, rng, xs[p], gs[p], h)
            n_grad[p] += 1
            total += norm(gs[p])
        fresh = False
        cache[0] = 2.0
        out_norm[r] = total / xs.shape[0]


@_jit
def multalmc_chunk(logp_grad, args, rng, xs, vs, ys, gys, lam_c, lam_n, frictions, h, eps, lam_tilde, underdamped,
                   noise_kind, alpha, noise_var, mu, nu, kappa, cache, work, n_grad, out_norm, drift_scale):
    """Iterations of MultALMC before its plain-Langevin phase (one per entry of ``lam_c``: the
    clamped lambda at the iteration's start and end, and the friction), for every particle, in
    place. ``cache[0]`` is the lambda at which ``gys`` holds grad log pi(y / sqrt(lambda)) (-1: none).
    ``drift_scale`` multiplies the slow drift: 1, anything else is a mutant for the tests."""
    n, d = xs.shape
    inv_mass = np.ones(d)
    scaled, force = work[5], work[6]
    delta = h / eps
    for r in range(lam_c.size):
        lc, ln = lam_c[r], lam_n[r]
        target_c, target_n = lc >= lam_tilde, ln >= lam_tilde
        reuse = target_c and cache[0] == lc
        k, inv_tau = _fast_pull(ln, noise_kind, alpha, noise_var, d)
        beta = 1.0 / np.sqrt(ln)
        total = 0.0
        for p in range(n):
            x, y = xs[p], ys[p]
            ng = _slow_drift(logp_grad, args, lc, x, y, target_c, not reuse, noise_kind, alpha, noise_var, gys[p],
                             scaled, force)
            for i in range(d):
                force[i] *= drift_scale
            if underdamped:
                v = vs[p]
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
                b_step(v, force, 0.5 * h)
                a_step(x, v, inv_mass, h)
            else:
                ula_step(rng, x, force, h)
            ng += skrock_step(logp_grad, args, rng, y, delta, mu, nu, kappa, x, k, inv_tau, beta, beta, work[:5])
            if underdamped:
                # the second half-kick at the new (x, y); its target gradient is the next first half-kick's
                ng += _slow_drift(logp_grad, args, ln, x, y, target_n, True, noise_kind, alpha, noise_var, gys[p],
                                  scaled, force)
                for i in range(d):
                    force[i] *= drift_scale
                b_step(v, force, 0.5 * h)
                o_step(rng, v, frictions[r], inv_mass, 0.5 * h)
            n_grad[p] += ng
            total += norm(force)
        cache[0] = ln if (underdamped and target_n) else -1.0
        out_norm[r] = total / n


@_jit
def multcdiff_ou_chunk(logp_grad, args, rng, xs, ys, a_now, var_now, a_next, var_next, etas, eps, mu, nu, kappa,
                       work, n_grad, out_norm):
    """Reverse Ornstein-Uhlenbeck steps s -> s - eta with the Tweedie score (y - x) / var_s from the
    scaled fast variable y (the estimate of a_s E[x0 | x]), then an SK-ROCK step of y towards
    rho(y) proportional to pi(y / a) N(x; y, var) at the step's end."""
    n, d = xs.shape
    score = work[5]
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
            n_grad[p] += skrock_step(logp_grad, args, rng, y, eta / eps, mu, nu, kappa, x, k, 0.0, beta, beta,
                                     work[:5])
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
def multcdiff_cld_chunk(logp_grad, args, rng, xs, vs, ys, trans, chols, forcing, pull, mix_x, mix_v, scale, etas,
                        eps, mu, nu, kappa, work, n_grad, out_norm):
    """Reverse critically damped steps: half the linear part exactly (``trans``, ``chols``), the
    Euler step v += eta ``forcing`` y of the Y-dependent drift, an SK-ROCK step of y towards
    pi(y / c_x) N((x, v); y c / c_x, Sigma) (pull k = ``pull``, centre mix_x x + mix_v v, scale
    1 / c_x = ``scale``), and the other half of the linear part."""
    n, d = xs.shape
    centre = work[5]
    for r in range(etas.size):
        total = 0.0
        for p in range(n):
            x, v, y = xs[p], vs[p], ys[p]
            _linear_half(rng, x, v, trans[r], chols[r])
            for i in range(d):
                v[i] += etas[r] * forcing[r] * y[i]
                centre[i] = mix_x[r] * x[i] + mix_v[r] * v[i]
            total += abs(forcing[r]) * norm(y)
            n_grad[p] += skrock_step(logp_grad, args, rng, y, etas[r] / eps, mu, nu, kappa, centre, pull[r], 0.0,
                                     scale[r], scale[r], work[:5])
            _linear_half(rng, x, v, trans[r], chols[r])
        out_norm[r] = total / n


# -- plans: the per-iteration schedule of a run, and its exact cost -----------------------------


def multalmc_plan(settings: MultALMC, n_steps: int) -> dict:
    """Per iteration l < L: lambda at its start and end (clamped), the friction, and whether it is
    a plain-Langevin iteration (lambda_l >= 1 - lambda_delta)."""
    lo, hi = settings.lambda_delta, 1.0 - settings.lambda_delta
    t = np.arange(n_steps + 1) / n_steps
    lam = path_schedule(t, settings.schedule)
    final = lam[:-1] >= hi
    g0, g1 = settings.friction
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
    """Warn when particles ended non-finite or far out: the fast step left SK-ROCK's stability
    region somewhere (measured on the funnel at the paper's preset, whose curvature is unbounded)."""
    bad = ~np.all(np.isfinite(run.xs), axis=1) | (np.abs(run.xs).max(axis=1, initial=0.0) > 1e6)
    if bad.any():
        warnings.warn(f"{run.settings.name}: {int(bad.sum())} of {bad.size} particles diverged (non-finite or beyond "
                      "1e6): the fast step h / eps is outside SK-ROCK's stability bound somewhere on the path; "
                      "lower step_size or raise eps (MultALMC.fast_stiffness)", RuntimeWarning, stacklevel=2)


class _MultiscaleRun(ParticleRun):
    step_stat_dtypes: ClassVar[dict] = {"lambda": np.float64, "friction": np.float64, "drift_norm": np.float64,
                                        "regime": np.int8}

    def _common(self, settings, target, rng, draws, n_steps):
        super().__init__(settings, target, rng, 0, draws, n_steps)
        d = target.dim
        self.coef = skrock_coefficients(settings.stages, settings.damping)
        self.xs = np.empty((draws, d))
        self.vs = np.zeros((draws, d))
        self.ys = rng.standard_normal((draws, d))
        self.gs = np.zeros((draws, d))
        self.work = np.zeros((7, d))
        self.cache = np.array([-1.0])
        self.norms = np.zeros(n_steps)

    def tuned(self):
        s = self.settings
        return {"n_steps": int(self.total), "fast_step": s.step_size / s.eps,
                "skrock_bound": stability_bound(s.stages, s.damping)}


class MultALMCRun(_MultiscaleRun):
    drift_scale: ClassVar[float] = 1.0  # the tests' mutant subclass changes it

    def __init__(self, settings: MultALMC, target, rng, draws, budget_per_particle):
        n_steps = settings.n_steps
        if budget_per_particle is not None:
            n_steps = steps_for_budget("multalmc", lambda L: int(multalmc_cost(settings, multalmc_plan(settings, L)).sum()),
                                       budget_per_particle)
        self._common(settings, target, rng, draws, n_steps)
        self.plan = multalmc_plan(settings, n_steps)
        d = target.dim
        sigma = settings.noise_scale
        z = rng.standard_normal((draws, d))
        if settings.noise == "student":
            z /= np.sqrt(rng.chisquare(settings.tail_index, draws) / settings.tail_index)[:, None]
        self.xs[:] = sigma * z
        if settings.underdamped:
            self.vs[:] = rng.standard_normal((draws, d))
        self.time = self.plan["lambda"].copy()
        self.step_stats["lambda"][:] = self.plan["lambda"]
        self.step_stats["friction"][:] = self.plan["friction"] if settings.underdamped else np.nan
        self.step_stats["regime"][:] = np.where(self.plan["final"], 2, self.plan["lam_c"] >= settings.lambda_tilde)

    def advance(self, start, stop):
        s, t, c, p = self.settings, self.target, self.coef, self.plan
        final = p["final"]
        split = start + int(np.searchsorted(final[start:stop], True)) if final[start:stop].any() else stop
        if split > start:
            multalmc_chunk(t.logp_grad_fn, t.kernel_args, self.rng, self.xs, self.vs, self.ys, self.gs,
                           p["lam_c"][start:split], p["lam_n"][start:split], p["friction"][start:split], s.step_size,
                           s.eps, s.lambda_tilde, s.underdamped, NOISES.index(s.noise), s.tail_index,
                           s.noise_scale**2, c.mu, c.nu, c.kappa, self.cache, self.work, self.n_grad,
                           self.norms[start:split], self.drift_scale)
        if stop > split:
            langevin_phase_chunk(t.logp_grad_fn, t.kernel_args, self.rng, self.xs, self.vs, self.gs, stop - split,
                                 s.step_size, p["friction"][split:stop], np.ones(t.dim), s.underdamped, self.cache,
                                 self.n_grad, self.norms[split:stop])
        self.step_stats["drift_norm"][start:stop] = self.norms[start:stop]
        if stop == self.total:
            self.particles[:] = self.xs
            _warn_if_diverged(self)


class MultCDiffRun(_MultiscaleRun):
    def __init__(self, settings: MultCDiff, target, rng, draws, budget_per_particle):
        n_steps = settings.n_steps
        if budget_per_particle is not None:
            n_steps = steps_for_budget("multcdiff", lambda L: cdiff_total_cost(settings, L), budget_per_particle)
        self._common(settings, target, rng, draws, n_steps)
        self.plan = cdiff_plan(settings, n_steps)
        d = target.dim
        self.xs[:] = rng.standard_normal((draws, d))
        g = settings.cld_friction
        self.mass = cld_mass(g)
        if settings.underdamped:
            self.vs[:] = np.sqrt(self.mass) * rng.standard_normal((draws, d))
            self._cld_tables(g)
        else:
            s = self.plan["s"]
            self.ou = {"a_now": np.exp(-s[:-1]), "var_now": -np.expm1(-2 * s[:-1]), "a_next": np.exp(-s[1:]),
                       "var_next": -np.expm1(-2 * s[1:]), "eta": s[:-1] - s[1:]}
        n_rev = self.plan["n_rev"]
        self.time = self.plan["lambda"].copy()
        self.step_stats["lambda"][:] = self.plan["lambda"]
        self.step_stats["regime"][:] = np.where(np.arange(self.total) < n_rev, 0, 2)
        self.final_friction = settings.friction[1] if not settings.underdamped else g
        self.step_stats["friction"][:] = np.where(np.arange(self.total) < n_rev, g if settings.underdamped else np.nan,
                                                  self.final_friction if settings.underdamped else np.nan)

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
                multcdiff_cld_chunk(t.logp_grad_fn, t.kernel_args, self.rng, self.xs, self.vs, self.ys, self.trans[sl],
                                    self.chols[sl], self.forcing[sl], self.pull[sl], self.mix_x[sl], self.mix_v[sl],
                                    self.scale[sl], self.etas[sl], s.eps, c.mu, c.nu, c.kappa, self.work, self.n_grad,
                                    self.norms[sl])
            else:
                o = self.ou
                multcdiff_ou_chunk(t.logp_grad_fn, t.kernel_args, self.rng, self.xs, self.ys, o["a_now"][sl],
                                   o["var_now"][sl], o["a_next"][sl], o["var_next"][sl], o["eta"][sl], s.eps, c.mu,
                                   c.nu, c.kappa, self.work, self.n_grad, self.norms[sl])
        if stop > split:
            inv_mass = np.full(t.dim, 1.0 / self.mass)
            fr = np.full(stop - split, self.final_friction)
            langevin_phase_chunk(t.logp_grad_fn, t.kernel_args, self.rng, self.xs, self.vs, self.gs, stop - split,
                                 s.step_size, fr, inv_mass, s.underdamped, self.cache, self.n_grad,
                                 self.norms[split:stop])
        self.step_stats["drift_norm"][start:stop] = self.norms[start:stop]
        if stop == self.total:
            self.particles[:] = self.xs
            _warn_if_diverged(self)
