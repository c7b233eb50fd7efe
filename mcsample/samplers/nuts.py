"""The No-U-Turn Sampler: multinomial NUTS with Stan's U-turn checks and windowed warmup.

Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15:1593-1623; multinomial sampling and
the across-subtree checks follow Betancourt (2017), "A Conceptual Introduction to Hamiltonian
Monte Carlo", arXiv:1701.02434, and Stan's ``base_nuts``. The metric estimator ``grad_diag`` is
nutpie's (Seyboldt et al.): sqrt(Var x / Var grad log p).

The tree is built iteratively, leaf by leaf, so that numba never recurses: a subtree of depth j
is complete at leaf n when 2^j divides n + 1, and the begin/end momenta and momentum sums its
U-turn checks need are kept in per-level checkpoints.

Cost (``benchmarks/nuts_overhead.py``): on a 100-d Gaussian whose gradient is one pass over the
coordinates, a transition of ~7 leaves costs ~2.8 gradients of its own per leaf, of which the
momentum draw (d normals from numpy's generator, ~10 ns each) is ~0.5; on arK ~0.1.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.adaptation import (dual_averaging_final, dual_averaging_init, dual_averaging_restart,
                                dual_averaging_update, grad_diag_variance, regularized_variance,
                                stan_schedule, welford_update, welford_update_dense, windowless_schedule)
from .._core.hamiltonian import (diagonal_metric, draw_momentum, find_reasonable_step_size, hamiltonian,
                                 make_metric, velocity)
from ._base import SamplerSettings, WindowedChain

_jit = numba.njit(cache=True, nogil=True)
# Inlined at numba-IR level into its one caller (the subtree builder into the transition). The
# per-leaf work (leapfrog, energy, checkpoints, U-turn checks) is written out in its loops on the
# workspace's rows rather than called as helpers on row views: each call or view costs atomic
# reference counts, and inlining helpers at IR level doubled the kernels' compile time.
_inline = numba.njit(cache=True, nogil=True, inline="always")

METRICS = ("diag", "dense", "grad_diag")
ADAPTATIONS = ("stan", "nutpie")


@dataclass(frozen=True)
class NUTS(SamplerSettings):
    """Settings for multinomial NUTS (Hoffman & Gelman 2014, JMLR 15). The transition and the
    step-size constants are Stan's; the default warmup is nutpie's (Seyboldt, Carlson & Carpenter,
    arXiv:2603.18845): over ten posteriordb posteriors and two Gaussians it reached 0.81-4.5x the
    effective samples per gradient of Stan's windowed warmup (median 1.13x; losses on mesquite and
    logistic_breast_cancer; benchmarks/results/nuts_adaptation.md).
    ``adaptation="stan", metric="diag"`` is Stan's warmup.

    max_depth : trees have at most 2^max_depth - 1 leapfrog steps.
    max_energy_error : a leaf whose energy exceeds the start's by this much is a divergence.
    target_accept, gamma, t0, kappa : dual averaging of the step size.
    metric : "diag" (Stan's regularised variance), "dense" (regularised covariance) or
        "grad_diag" (nutpie: sqrt(Var x / Var grad)).
    adaptation : None (default) is "nutpie" for a diagonal metric and "stan" for a dense one.
        "stan" adapts the metric in Stan's windows; "nutpie" follows nutpie's warmup
        (Seyboldt et al., nuts-rs ``adapt_strategy.rs``; diagonal metrics only): the metric starts
        at 1 / |grad log p| of the start, two estimators take every draw and the metric is refitted
        from the older one after every draw; the younger replaces it once it holds
        ``early_switch_freq`` (10) draws during the first ``early_window`` (30%) of warmup, then
        ``switch_freq`` (80). The step size is adapted by dual averaging throughout, restarted once
        when the metric first changes; the last ``step_size_window`` (15%) adapts the step only.
    init_buffer, base_window, term_buffer : Stan's warmup windows (75 / 25 doubling / 50).
    step_size : start from this step (default: Stan's heuristic from 1.0).
    adapt_step_size : False keeps ``step_size`` fixed throughout (invariance tests).
    inv_metric : a fixed inverse metric, (d,) or (d, d); disables metric adaptation.
    jitter : after warmup, each step size is drawn uniformly in step * (1 +- jitter).
    """

    name: ClassVar[str] = "nuts"
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Hoffman & Gelman (2014), JMLR 15:1593-1623; Betancourt (2017), arXiv:1701.02434"

    max_depth: int = 10
    max_energy_error: float = 1000.0
    target_accept: float = 0.8
    gamma: float = 0.05
    t0: float = 10.0
    kappa: float = 0.75
    metric: str = "grad_diag"
    adaptation: str | None = None
    early_window: float = 0.3
    step_size_window: float = 0.15
    early_switch_freq: int = 10
    switch_freq: int = 80
    init_buffer: int = 75
    base_window: int = 25
    term_buffer: int = 50
    step_size: float | None = None
    adapt_step_size: bool = True
    inv_metric: np.ndarray | None = None
    jitter: float = 0.0

    def validate(self, dim: int) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if self.adaptation is not None and self.adaptation not in ADAPTATIONS:
            raise ValueError(f"adaptation must be one of {ADAPTATIONS} or None, got {self.adaptation!r}")
        if self.warmup == "nutpie" and self.metric == "dense" and self.inv_metric is None:
            raise ValueError('adaptation="nutpie" adapts a diagonal metric: use metric="grad_diag" or '
                             '"diag", or adaptation="stan" (the default for metric="dense")')
        if not (0.0 <= self.early_window < 1.0 and 0.0 <= self.step_size_window < 1.0
                and self.early_window + self.step_size_window <= 1.0):
            raise ValueError("early_window and step_size_window must be fractions of warmup summing to <= 1, "
                             f"got {self.early_window} and {self.step_size_window}")
        if self.early_switch_freq < 1 or self.switch_freq < 1:
            raise ValueError(f"early_switch_freq and switch_freq must be >= 1, got "
                             f"{self.early_switch_freq} and {self.switch_freq}")
        if not 1 <= self.max_depth <= 30:
            raise ValueError(f"max_depth must be in 1..30, got {self.max_depth}")
        if not 0.0 < self.target_accept < 1.0:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target_accept}")
        if self.step_size is not None and not (np.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size must be a positive number, got {self.step_size}")
        if not self.adapt_step_size and self.step_size is None:
            raise ValueError("adapt_step_size=False needs a step_size")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        # dual averaging's constants (Hoffman & Gelman 2014, sec. 3.2): gamma = 0 or t0 = -1 divided by zero
        if not (np.isfinite(self.gamma) and self.gamma > 0 and np.isfinite(self.t0) and self.t0 >= 0
                and 0.0 < self.kappa <= 1.0):
            raise ValueError(f"dual averaging needs gamma > 0, t0 >= 0 and kappa in (0, 1], got gamma={self.gamma}, "
                             f"t0={self.t0}, kappa={self.kappa}")
        if not self.max_energy_error > 0:
            raise ValueError(f"max_energy_error must be positive (inf: never diverge), got {self.max_energy_error}")
        if self.inv_metric is not None:
            m = np.asarray(self.inv_metric, dtype=float)
            if m.shape not in ((dim,), (dim, dim)):
                raise ValueError(f"inv_metric must have shape ({dim},) or ({dim}, {dim}), got {m.shape}")

    @property
    def warmup(self) -> str:
        """The adaptation in use: ``adaptation``, or its default for the metric."""
        if self.adaptation is not None:
            return self.adaptation
        return "stan" if self.metric == "dense" else "nutpie"

    def start_chain(self, target, rng, q0, tune, draws):
        return NUTSChain(self, target, rng, q0, tune, draws)


# -- kernel state ------------------------------------------------------------------------------
# Named tuples of arrays (numba passes them as their fields; the classes are importable, so the
# kernels keep their on-disk cache). Scalars that a kernel updates in place are (1,) arrays.

# The chain's state: position, log density (1,) and its gradient.
NUTSState = namedtuple("NUTSState", ["q", "lp", "g"])

# One end of a trajectory (or the leaf being integrated): position, momentum, gradient, velocity.
TrajectoryEnd = namedtuple("TrajectoryEnd", ["q", "p", "g", "v"])

# A transition's scratch space is one (rows, d) array whose rows are named below. One array
# rather than a named tuple of ~30: numba reference-counts every array a function receives or
# slices (an atomic add and subtract each), and with separate arrays that bookkeeping was ~16% of
# a gauss100 transition, more than the gradient itself (benchmarks/results/nuts_overhead.md).
_P0, _V0 = 0, 1              # the initial momentum and velocity
_BACKWARD, _FORWARD = 2, 6   # the trajectory's ends, each four rows (q, p, g, v) from its base; a
_Q, _P, _G, _V = 0, 1, 2, 3  # subtree is integrated in the rows of the end it extends
_POINTS = 10, 12             # two (q, g) pairs: the trajectory's draw so far and the subtree's
_SUMS = 14, 15               # two momentum sums: the trajectory's and the one before the last merge
_CUM = 16                    # the subtree's momentum sum
_SEAM_P, _SEAM_V = 17, 18    # momentum and velocity of the end a subtree grows from
_N_ROWS = 19
# Then five blocks of max_depth + 1 per-level checkpoints of the subtree being built: the momentum
# and velocity of a subtree's first leaf, those of the last leaf of its first (init) half, and
# the momentum sum before it began.
_BEGIN_P, _BEGIN_V, _INIT_END_P, _INIT_END_V, _CUM_BEFORE = range(5)


class NUTSWorkspace(namedtuple("NUTSWorkspace", ["rows"])):
    """One chain's scratch space for a transition: ``rows`` is (19 + 5 (max_depth + 1), d)."""

    __slots__ = ()

    @property
    def forward(self) -> TrajectoryEnd:
        """The forward end of the last trajectory (views)."""
        return TrajectoryEnd(*self.rows[_FORWARD:_FORWARD + 4])


# What building one subtree reports to the transition: whether it may join the trajectory (no
# U-turn inside, no divergence), the log of its leaves' summed weights, the log density and energy
# of its candidate, its number of leapfrog steps, their summed acceptance min(1, exp(-dH)), and
# whether it diverged.
SubtreeInfo = namedtuple("SubtreeInfo", ["valid", "log_weight", "lp_candidate", "h_candidate",
                                         "n_leapfrog", "sum_accept", "divergent"])

# What one transition reports: the sample statistics of its draw.
NUTSInfo = namedtuple("NUTSInfo", ["energy", "acceptance_rate", "tree_depth", "n_steps", "diverging"])

# The step size and its dual averaging: ``size`` (1,) is the step in use (updated in place while
# it adapts), ``dual_averaging`` the state of ``mcsample._core.adaptation`` (5,), then its constants.
StepSize = namedtuple("StepSize", ["size", "dual_averaging", "target_accept", "gamma", "t0", "kappa"])

# Welford accumulators of the current metric window: ``kind`` is the index in METRICS; ``count`` is
# [draws, gradients]; ``m2_dense`` is (d, d) for "dense" ((1, 1) otherwise); ``grad_mean`` and
# ``grad_m2`` serve "grad_diag" only.
MetricWindow = namedtuple("MetricWindow", ["kind", "count", "mean", "m2", "m2_dense", "grad_mean", "grad_m2"])

# nutpie's warmup (``adaptation="nutpie"``): ``foreground`` is the estimator the metric is fitted
# from, ``background`` the younger one that replaces it; both are ``MetricWindow``s. ``state`` is
# [initial metric still in use (1/0), gradients spent by step-size searches since Python last read
# it]. The rest is the schedule in draws: the metric adapts before ``final_window`` (after it only
# the step size does), and the estimators switch every ``early_switch_freq`` draws before
# ``early_end``, every ``switch_freq`` after.
NutpieAdaptation = namedtuple("NutpieAdaptation", ["foreground", "background", "state", "early_end",
                                                   "final_window", "early_switch_freq", "switch_freq"])

# Per-draw output buffers of a chunk: the draws ``x`` and one array per sample statistic, named as
# ``NUTSChain.stat_dtypes``.
NUTSDraws = namedtuple("NUTSDraws", ["x", "lp", "energy", "acceptance_rate", "step_size", "tree_depth",
                                     "n_steps", "diverging"])


def new_workspace(dim: int, max_depth: int) -> NUTSWorkspace:
    return NUTSWorkspace(np.zeros((_N_ROWS + 5 * (max_depth + 1), dim)))


def new_metric_window(kind: int, dim: int) -> MetricWindow:
    return MetricWindow(kind, np.zeros(2), np.zeros(dim), np.zeros(dim),
                        np.zeros((dim, dim) if kind == 1 else (1, 1)), np.zeros(dim), np.zeros(dim))


# -- one transition ----------------------------------------------------------------------------
# The kernels index the workspace's rows (w[row, i]) rather than hand row views to helpers, since
# every view or array argument costs a reference count. Each loop keeps the floating-point
# operations, and their order, of the plain formulas (the leapfrog step of
# mcsample._core.hamiltonian, H = -log p + p.v / 2, Stan's U-turn checks), so that the draws do
# not depend on how the loops are fused; the dot products of one check share a pass over the
# coordinates, which overlaps their otherwise serial additions.


@_jit
def _copy(dst, src):
    for i in range(src.size):
        dst[i] = src[i]


@_jit
def _no_u_turn(w, v_minus, v_plus, rho):
    """Stan's criterion on rows of ``w``: the span keeps going while both end velocities point
    along rho."""
    s_minus = 0.0
    s_plus = 0.0
    for i in range(w.shape[1]):
        s_minus += w[v_minus, i] * w[rho, i]
        s_plus += w[v_plus, i] * w[rho, i]
    return s_minus > 0.0 and s_plus > 0.0


@_jit
def _no_u_turn_extended(w, v_minus, v_plus, rho, p_extra):
    """``_no_u_turn`` with rho + p_extra: the span extended by one more leaf."""
    s_minus = 0.0
    s_plus = 0.0
    for i in range(w.shape[1]):
        r = w[rho, i] + w[p_extra, i]
        s_minus += w[v_minus, i] * r
        s_plus += w[v_plus, i] * r
    return s_minus > 0.0 and s_plus > 0.0


@_jit
def _dense_velocity(w, p, v, inv_dense):
    """Row v := M^-1 row p."""
    d = w.shape[1]
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += inv_dense[i, j] * w[p, j]
        w[v, i] = s


@_jit
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    # exp(0) of the larger term is exactly 1: one exp fewer per leaf, the same bits
    if a >= b:
        return a + np.log(1.0 + np.exp(b - a))
    return b + np.log(np.exp(a - b) + 1.0)


@_inline
def _build_subtree(logp_grad, args, rng, depth, step, h0, metric, max_dh, w, end, cand):
    """Extend the trajectory's end (rows from ``end``) by 2^depth leapfrog steps of size ``step``.

    The subtree's multinomial draw is left in rows ``cand`` (q), ``cand + 1`` (g); returns a
    ``SubtreeInfo``. Leaf n begins the subtrees of levels 0..m, m its number of trailing zero bits
    (at most ``depth``); their checkpoints are equal, so it stores them once, in slot m. No later
    leaf of those subtrees has as many trailing zeros, so the slot survives until they end."""
    d = w.shape[1]
    stride = (w.shape[0] - _N_ROWS) // 5
    begin_p = _N_ROWS + _BEGIN_P * stride
    begin_v = _N_ROWS + _BEGIN_V * stride
    init_end_p = _N_ROWS + _INIT_END_P * stride
    init_end_v = _N_ROWS + _INIT_END_V * stride
    cum_before = _N_ROWS + _CUM_BEFORE * stride
    q, p, g, v = end + _Q, end + _P, end + _G, end + _V
    dense, inv_diag = metric.dense, metric.inv_diag
    half = 0.5 * step
    for i in range(d):
        w[_CUM, i] = 0.0
    log_w_sub = -np.inf
    lp_c = 0.0
    h_c = 0.0
    n_leapfrog = 0
    sum_accept = 0.0
    valid = True
    divergent = False
    for n in range(1 << depth):
        # one leapfrog step (as _core.hamiltonian.leapfrog), the kinetic energy in its last pass
        for i in range(d):
            w[p, i] += half * w[g, i]
        if dense:
            _dense_velocity(w, p, v, metric.inv_dense)
        else:
            for i in range(d):
                w[v, i] = inv_diag[i] * w[p, i]
        for i in range(d):
            w[q, i] += step * w[v, i]
        lp, grad = logp_grad(w[q], *args)
        for i in range(d):
            w[g, i] = grad[i]
            w[p, i] += half * w[g, i]
        kinetic = 0.0
        if dense:
            _dense_velocity(w, p, v, metric.inv_dense)
            for i in range(d):
                kinetic += w[p, i] * w[v, i]
        else:
            for i in range(d):
                w[v, i] = inv_diag[i] * w[p, i]
                kinetic += w[p, i] * w[v, i]
        n_leapfrog += 1
        h = -lp + 0.5 * kinetic
        if np.isnan(h):  # counts as a divergence
            h = np.inf
        log_w = h0 - h
        sum_accept += 1.0 if log_w > 0.0 else np.exp(log_w)
        if h - h0 > max_dh:
            divergent = True
            valid = False
            break
        # uniform progressive sampling inside the subtree: multinomial over its leaves
        log_w_new = _logaddexp(log_w_sub, log_w)
        if rng.random() < np.exp(log_w - log_w_new):
            for i in range(d):
                w[cand, i] = w[q, i]
                w[cand + 1, i] = w[g, i]
            lp_c = lp
            h_c = h
        log_w_sub = log_w_new
        # the momentum sum, and the checkpoint of the subtrees that begin at this leaf
        slot = 0
        while slot < depth and n % (1 << (slot + 1)) == 0:
            slot += 1
        for i in range(d):
            w[_CUM, i] += w[p, i]
            w[begin_p + slot, i] = w[p, i]
            w[begin_v + slot, i] = w[v, i]
            w[cum_before + slot, i] = w[_CUM, i] - w[p, i]
        # U-turn checks for every subtree that ends at this leaf (Stan's three per merge): the
        # whole subtree, its init half extended by its final half's first leaf, and the final
        # half extended by the init half's last leaf
        level = 1
        while level <= depth and (n + 1) % (1 << level) == 0:
            first = n + 1 - (1 << level)
            s_init = 0  # the slot of the subtree's first leaf
            while s_init < depth and first % (1 << (s_init + 1)) == 0:
                s_init += 1
            s_final = level - 1  # the slot of its final half's first leaf
            a_minus = a_plus = b_minus = b_plus = c_minus = c_plus = 0.0
            for i in range(d):
                rho_sub = w[_CUM, i] - w[cum_before + s_init, i]
                rho_final = w[_CUM, i] - w[cum_before + s_final, i]
                rho_init_ext = rho_sub - rho_final + w[begin_p + s_final, i]
                rho_final_ext = rho_final + w[init_end_p + level, i]
                a_minus += w[begin_v + s_init, i] * rho_sub
                a_plus += w[v, i] * rho_sub
                b_minus += w[begin_v + s_init, i] * rho_init_ext
                b_plus += w[begin_v + s_final, i] * rho_init_ext
                c_minus += w[init_end_v + level, i] * rho_final_ext
                c_plus += w[v, i] * rho_final_ext
            if not (a_minus > 0.0 and a_plus > 0.0 and b_minus > 0.0 and b_plus > 0.0
                    and c_minus > 0.0 and c_plus > 0.0):
                valid = False
                break
            level += 1
        if not valid:
            break
        # the highest subtree ending here is the first half of its parent when its index is even
        top = 0
        while top < depth and (n + 1) % (1 << (top + 1)) == 0:
            top += 1
        if top < depth and ((n + 1) >> top) & 1 == 1:
            for i in range(d):
                w[init_end_p + top + 1, i] = w[p, i]
                w[init_end_v + top + 1, i] = w[v, i]
    return SubtreeInfo(valid, log_w_sub, lp_c, h_c, n_leapfrog, sum_accept, divergent)


@_jit
def nuts_transition(logp_grad, args, rng, state, step, metric, max_depth, max_dh, work):
    """One multinomial NUTS transition from ``state`` (a ``NUTSState``), which it updates in
    place; returns the draw's ``NUTSInfo``."""
    w = work.rows
    d = w.shape[1]
    stride = (w.shape[0] - _N_ROWS) // 5
    begin_p = _N_ROWS + _BEGIN_P * stride
    begin_v = _N_ROWS + _BEGIN_V * stride
    p0, v0 = w[_P0], w[_V0]
    draw_momentum(rng, metric, p0)
    velocity(metric, p0, v0)
    h0 = hamiltonian(state.lp[0], p0, v0)
    for i in range(d):
        w[_BACKWARD + _Q, i] = w[_FORWARD + _Q, i] = state.q[i]
        w[_BACKWARD + _P, i] = w[_FORWARD + _P, i] = w[_P0, i]
        w[_BACKWARD + _G, i] = w[_FORWARD + _G, i] = state.g[i]
        w[_BACKWARD + _V, i] = w[_FORWARD + _V, i] = w[_V0, i]
    # which of the paired rows hold the draw so far and the momentum sum: swapped, not copied
    selected, candidate = _POINTS
    rho, rho_old = _SUMS
    for i in range(d):
        w[selected, i] = state.q[i]
        w[selected + 1, i] = state.g[i]
        w[rho, i] = w[_P0, i]
    lp_s = state.lp[0]
    h_s = h0
    log_w = 0.0
    n_leapfrog = 0
    sum_accept = 0.0
    depth = 0
    divergent = False
    while depth < max_depth:
        forward = rng.random() > 0.5
        # continue from the end being extended; keep its momentum for the seam checks
        end = _FORWARD if forward else _BACKWARD
        for i in range(d):
            w[_SEAM_P, i] = w[end + _P, i]
            w[_SEAM_V, i] = w[end + _V, i]
        sub = _build_subtree(logp_grad, args, rng, depth, step if forward else -step, h0, metric, max_dh, w,
                             end, candidate)
        n_leapfrog += sub.n_leapfrog
        sum_accept += sub.sum_accept
        if sub.divergent:
            divergent = True
        if not sub.valid:
            break
        depth += 1
        # biased progressive sampling favours the new subtree (Betancourt 2017, A.3.2)
        log_w_sub = sub.log_weight
        if log_w_sub > log_w or rng.random() < np.exp(log_w_sub - log_w):
            selected, candidate = candidate, selected
            lp_s = sub.lp_candidate
            h_s = sub.h_candidate
        log_w = _logaddexp(log_w, log_w_sub)
        rho, rho_old = rho_old, rho
        for i in range(d):
            w[rho, i] = w[rho_old, i] + w[_CUM, i]
        if not _no_u_turn(w, _BACKWARD + _V, _FORWARD + _V, rho):
            break
        # old trajectory extended by the new subtree's first leaf (its checkpoint is in the slot
        # of the subtree's depth), and vice versa
        outer_old_v = (_BACKWARD if forward else _FORWARD) + _V
        if not _no_u_turn_extended(w, outer_old_v, begin_v + depth - 1, rho_old, begin_p + depth - 1):
            break
        outer_new_v = (_FORWARD if forward else _BACKWARD) + _V
        if not _no_u_turn_extended(w, _SEAM_V, outer_new_v, _CUM, _SEAM_P):
            break
    for i in range(d):
        state.q[i] = w[selected, i]
        state.g[i] = w[selected + 1, i]
    state.lp[0] = lp_s
    return NUTSInfo(h_s, sum_accept / max(n_leapfrog, 1), depth, n_leapfrog, divergent)


# -- a chunk of iterations, with step-size and metric adaptation ------------------------------


@_jit
def metric_window_update(window, q, g):
    """Feed a draw (and for grad_diag its gradient) to the window's Welford accumulators."""
    if window.kind == 1:
        welford_update_dense(window.count, window.mean, window.m2_dense, q)
    else:
        welford_update(window.count, window.mean, window.m2, q)
        if window.kind == 2:  # the gradients' accumulator keeps its own count in count[1]
            welford_update(window.count[1:], window.grad_mean, window.grad_m2, g)


@_jit
def nuts_chunk(logp_grad, args, rng, state, n_iter, step_size, jitter, adapt_step, metric, window,
               collect, max_depth, max_dh, work, out):
    """Run ``n_iter`` transitions from ``state``, writing draws and statistics into ``out`` (a
    ``NUTSDraws`` of buffers of length ``n_iter``).

    ``adapt_step`` updates ``step_size.size[0]`` by dual averaging; ``collect`` feeds each draw to
    the metric window's accumulators."""
    for it in range(n_iter):
        step = step_size.size[0]
        if jitter > 0.0:
            step *= 1.0 + jitter * (2.0 * rng.random() - 1.0)
        info = nuts_transition(logp_grad, args, rng, state, step, metric, max_depth, max_dh, work)
        _copy(out.x[it], state.q)
        out.lp[it] = state.lp[0]
        out.energy[it] = info.energy
        out.acceptance_rate[it] = info.acceptance_rate
        out.step_size[it] = step
        out.tree_depth[it] = info.tree_depth
        out.n_steps[it] = info.n_steps
        out.diverging[it] = info.diverging
        if adapt_step:
            step_size.size[0] = dual_averaging_update(step_size.dual_averaging, info.acceptance_rate,
                                                      step_size.target_accept, step_size.gamma,
                                                      step_size.t0, step_size.kappa)
        if collect:
            metric_window_update(window, state.q, state.g)


@_jit
def _fit_diagonal(window, inv_diag):
    """Refit a diagonal metric in place from a window's accumulators (grad_diag: nutpie's
    sqrt(Var x / Var grad); diag: Stan's regularised variance); False below 3 draws."""
    n = window.count[0]
    if n < 3.0:
        return False
    for i in range(inv_diag.size):
        var_x = window.m2[i] / (n - 1.0)
        if window.kind == 2:
            var_g = window.grad_m2[i] / (window.count[1] - 1.0)
            v = np.sqrt(var_x / max(var_g, 1e-300))
        else:
            v = (n / (n + 5.0)) * var_x + 1e-3 * 5.0 / (n + 5.0)
        inv_diag[i] = min(max(v, 1e-20), 1e20)
    return True


@_jit
def _reset_window(window):
    window.count[:] = 0.0
    window.mean[:] = 0.0
    window.m2[:] = 0.0
    window.grad_mean[:] = 0.0
    window.grad_m2[:] = 0.0


@_jit
def _copy_window(dst, src):
    dst.count[:] = src.count
    dst.mean[:] = src.mean
    dst.m2[:] = src.m2
    dst.grad_mean[:] = src.grad_mean
    dst.grad_m2[:] = src.grad_m2


@_jit
def nutpie_warmup_chunk(logp_grad, args, rng, state, start, n_iter, step_size, adapt_step, metric, adapt,
                        max_depth, max_dh, work, out):
    """Warmup iterations [start, start + n_iter) of nutpie's adaptation (see ``NUTS.adaptation``),
    writing draws and statistics into ``out`` as ``nuts_chunk`` does. The metric (diagonal) and
    the step size are updated in place after every draw."""
    fg, bg, flags = adapt.foreground, adapt.background, adapt.state
    da = step_size.dual_averaging
    for it in range(n_iter):
        draw = start + it
        lp_before = state.lp[0]
        info = nuts_transition(logp_grad, args, rng, state, step_size.size[0], metric, max_depth, max_dh, work)
        _copy(out.x[it], state.q)
        out.lp[it] = state.lp[0]
        out.energy[it] = info.energy
        out.acceptance_rate[it] = info.acceptance_rate
        out.step_size[it] = step_size.size[0]
        out.tree_depth[it] = info.tree_depth
        out.n_steps[it] = info.n_steps
        out.diverging[it] = info.diverging
        restarted = False
        if draw < adapt.final_window:
            freq = adapt.early_switch_freq if draw < adapt.early_end else adapt.switch_freq
            # a draw that stayed at the start or diverged says little about the posterior's scale
            if state.lp[0] != lp_before and not info.diverging:
                metric_window_update(fg, state.q, state.g)
                metric_window_update(bg, state.q, state.g)
            # switch only when the younger estimator's window can still be used before the end
            if bg.count[0] >= freq and draw + freq <= adapt.final_window:
                _copy_window(fg, bg)
                _reset_window(bg)
            if _fit_diagonal(fg, metric.inv_diag) and flags[0] == 1.0 and adapt_step:
                # the first fitted metric can differ from 1/|grad| by orders of magnitude: search
                # for a step afresh rather than let dual averaging walk there
                flags[0] = 0.0
                step, n_grad = find_reasonable_step_size(logp_grad, args, rng, state.q, state.lp[0], state.g,
                                                         step_size.size[0], metric, step_size.target_accept)
                flags[1] += n_grad
                step_size.size[0] = step
                dual_averaging_restart(da, step)
                restarted = True
        if adapt_step and not restarted:
            step_size.size[0] = dual_averaging_update(da, info.acceptance_rate, step_size.target_accept,
                                                      step_size.gamma, step_size.t0, step_size.kappa)


# -- warmup and the chain runner ---------------------------------------------------------------


class NUTSChain(WindowedChain):
    """One chain: Stan's warmup (step-size search, dual averaging, windowed metric), then draws."""

    stat_dtypes = {"lp": np.float64, "energy": np.float64, "acceptance_rate": np.float64,
                   "step_size": np.float64, "tree_depth": np.int64, "n_steps": np.int64,
                   "diverging": np.bool_}

    def __init__(self, settings: NUTS, target, rng, q0, tune, draws):
        super().__init__(settings, target, rng, q0, tune, draws)
        d = target.dim
        s = settings
        self.kind = METRICS.index(s.metric)
        lp, g = self.eval_logp_grad(self.q)
        self.state = NUTSState(self.q, np.array([lp], dtype=np.float64), np.array(g, dtype=np.float64))
        # no warmup, no adaptation: a run with tune=0 keeps the unit metric (or the given one)
        self.nutpie = s.warmup == "nutpie" and s.inv_metric is None and tune > 0
        self.metric = self._initial_metric(d)
        self.schedule = stan_schedule(tune, s.init_buffer, s.term_buffer, s.base_window)
        if s.inv_metric is not None or self.nutpie:
            # a fixed metric adapts the step size only; nutpie's warmup adapts inside its kernel
            self.schedule = windowless_schedule(tune)
        self.work = new_workspace(d, s.max_depth)
        self.step_size = StepSize(np.array([s.step_size if s.step_size is not None else 1.0]),
                                  dual_averaging_init(1.0), float(s.target_accept), float(s.gamma),
                                  float(s.t0), float(s.kappa))
        self.window = new_metric_window(self.kind, d)
        if self.nutpie:
            self.adapt = self._nutpie_adaptation(tune, d)
        if s.adapt_step_size:
            if s.step_size is None:
                self._search_step_size()
            self.step_size.dual_averaging[:] = dual_averaging_init(self.step_size.size[0])

    def _nutpie_adaptation(self, tune, d):
        s = self.settings
        step_window = int(s.step_size_window * tune)
        adapt = NutpieAdaptation(new_metric_window(self.kind, d), new_metric_window(self.kind, d),
                                 np.array([1.0, 0.0]), int(s.early_window * tune), tune - step_window,
                                 int(s.early_switch_freq), int(s.switch_freq))
        for window in (adapt.foreground, adapt.background):  # the start is the first draw of both
            metric_window_update(window, self.state.q, self.state.g)
        return adapt

    def _initial_metric(self, d):
        s = self.settings
        if s.inv_metric is not None:
            return make_metric(s.inv_metric)
        if self.nutpie or (self.kind == 2 and s.warmup == "stan"):
            # nutpie starts from the first gradient: var_i = 1 / |g_i|
            return diagonal_metric(np.clip(1.0 / np.maximum(np.abs(self.state.g), 1e-20), 1e-20, 1e20))
        if self.kind == 1:
            return make_metric(np.eye(d))
        return diagonal_metric(np.ones(d))

    def _search_step_size(self):
        step, n_grad = find_reasonable_step_size(
            self.target.logp_grad_fn, self.target.kernel_args, self.rng, self.state.q, self.state.lp[0],
            self.state.g, self.step_size.size[0], self.metric, self.settings.target_accept)
        self.step_size.size[0] = step
        self.extra_grad += n_grad

    def _window_metric(self):
        w = self.window
        n = w.count[0]
        if self.kind == 1:
            return regularized_variance(n, w.m2_dense / (n - 1.0))
        var = w.m2 / (n - 1.0)
        if self.kind == 2:
            return grad_diag_variance(var, w.grad_m2 / (w.count[1] - 1.0))
        return regularized_variance(n, var)

    def _end_window(self, begin, end):
        m = self._window_metric()
        if not np.all(np.isfinite(m)):
            raise ValueError("metric adaptation produced non-finite variances; the chain may "
                             "have diverged during warmup")
        self.metric = make_metric(m)
        self.window = new_metric_window(self.kind, self.target.dim)
        if self.settings.adapt_step_size:
            self._search_step_size()
            self.step_size.dual_averaging[:] = dual_averaging_init(self.step_size.size[0])

    def _advance(self, lo, hi):
        s = self.settings
        warm = lo < self.tune
        sl = slice(lo, hi)
        out = NUTSDraws(x=self.draws[sl], **{k: v[sl] for k, v in self.stats.items()})
        if warm and self.nutpie:
            nutpie_warmup_chunk(self.target.logp_grad_fn, self.target.kernel_args, self.rng, self.state, lo,
                                hi - lo, self.step_size, s.adapt_step_size, self.metric, self.adapt, s.max_depth,
                                float(s.max_energy_error), self.work, out)
            self.extra_grad += int(self.adapt.state[1])
            self.adapt.state[1] = 0.0
            self.n_grad[sl] = out.n_steps
            return
        nuts_chunk(self.target.logp_grad_fn, self.target.kernel_args, self.rng, self.state, hi - lo,
                   self.step_size, 0.0 if warm else float(s.jitter), warm and s.adapt_step_size,
                   self.metric, self.window, warm and self.schedule.in_slow_window(lo), s.max_depth,
                   float(s.max_energy_error), self.work, out)
        self.n_grad[sl] = out.n_steps

    def _end_warmup(self):
        if self.settings.adapt_step_size:
            self.step_size.size[0] = dual_averaging_final(self.step_size.dual_averaging)

    def tuned(self):
        m = self.metric
        return {"step_size": float(self.step_size.size[0]),
                "inv_metric": (m.inv_dense if m.dense else m.inv_diag).tolist()}
