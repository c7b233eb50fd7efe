"""The No-U-Turn Sampler: multinomial NUTS with Stan's U-turn checks and windowed warmup.

Hoffman & Gelman (2014), "The No-U-Turn Sampler", JMLR 15:1593-1623; multinomial sampling and
the across-subtree checks follow Betancourt (2017), "A Conceptual Introduction to Hamiltonian
Monte Carlo", arXiv:1701.02434, and Stan's ``base_nuts``. The metric estimator ``grad_diag`` is
nutpie's (Seyboldt et al.): sqrt(Var x / Var grad log p).

The tree is built iteratively, leaf by leaf, so that numba never recurses: a subtree of depth j
is complete at leaf n when 2^j divides n + 1, and the begin/end momenta and momentum sums its
U-turn checks need are kept in per-level checkpoints.
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
from .._core.hamiltonian import (diagonal_metric, dot, draw_momentum, find_reasonable_step_size,
                                 hamiltonian, leapfrog, make_metric, velocity)
from ._base import SamplerSettings, WindowedChain

_jit = numba.njit(cache=True, nogil=True)
# Inlined at numba-IR level into its one caller: a call costs an atomic reference count on every
# array it is passed, and the workspace holds ~30 (NUTS on arK ran ~2.5% slower as a call).
# Inlining the per-leaf helpers too (leapfrog, dot, the U-turn checks, copies) cut the sampler's
# own work per gradient on gauss100 by ~15% but doubled the kernels' compile time (64 -> 135 s on
# a loaded machine), so they stay calls. That was measured when kernels were compiled per data
# signature; since the data's types are erased (mcsample.target) it is a once-per-machine cost,
# not re-measured.
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

# A point drawn from a trajectory: position and gradient (its log density and energy are scalars
# of the transition).
Point = namedtuple("Point", ["q", "g"])

# Per-level checkpoints of a subtree being built, each (max_depth + 1, d): the momentum and velocity
# of the first leaf of the subtree starting at each level, those of the last leaf of its first
# (init) half, and the cumulative momentum before it began.
Checkpoints = namedtuple("Checkpoints", ["begin_p", "begin_v", "init_end_p", "init_end_v", "cum_before"])

# One chain's scratch space for a transition (all d-vectors but ``checkpoints``):
#   p0, v0              the initial momentum and velocity
#   backward, forward   the trajectory's two ends
#   leaf                the leaf being integrated while a subtree is built
#   candidate           the subtree's multinomial draw
#   selected            the trajectory's draw so far
#   rho, rho_old, cum   momentum sums: the trajectory's, before the last merge, and the subtree's
#   seam_p, seam_v      momentum and velocity of the end a subtree grows from
#   tmp                 scratch for the U-turn checks
NUTSWorkspace = namedtuple("NUTSWorkspace", ["p0", "v0", "backward", "forward", "leaf", "candidate",
                                             "selected", "rho", "rho_old", "cum", "seam_p", "seam_v",
                                             "tmp", "checkpoints"])

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
    def vector():
        return np.zeros(dim)

    def end():
        return TrajectoryEnd(vector(), vector(), vector(), vector())

    return NUTSWorkspace(p0=vector(), v0=vector(), backward=end(), forward=end(), leaf=end(),
                         candidate=Point(vector(), vector()), selected=Point(vector(), vector()),
                         rho=vector(), rho_old=vector(), cum=vector(), seam_p=vector(), seam_v=vector(),
                         tmp=vector(), checkpoints=Checkpoints(*(np.zeros((max_depth + 1, dim)) for _ in range(5))))


def new_metric_window(kind: int, dim: int) -> MetricWindow:
    return MetricWindow(kind, np.zeros(2), np.zeros(dim), np.zeros(dim),
                        np.zeros((dim, dim) if kind == 1 else (1, 1)), np.zeros(dim), np.zeros(dim))


# -- one transition ----------------------------------------------------------------------------


@_jit
def _no_u_turn(v_minus, v_plus, rho):
    """Stan's criterion: the span keeps going while both end velocities point along rho."""
    return dot(v_minus, rho) > 0.0 and dot(v_plus, rho) > 0.0


@_jit
def _no_u_turn_extended(v_minus, v_plus, rho, p_extra, tmp):
    for i in range(rho.size):
        tmp[i] = rho[i] + p_extra[i]
    return _no_u_turn(v_minus, v_plus, tmp)


@_jit
def _copy(dst, src):
    for i in range(src.size):
        dst[i] = src[i]


@_jit
def _copy_end(dst, src):
    _copy(dst.q, src.q)
    _copy(dst.p, src.p)
    _copy(dst.g, src.g)
    _copy(dst.v, src.v)


@_jit
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


@_inline
def _build_subtree(logp_grad, args, rng, depth, step, h0, metric, max_dh, work):
    """Extend ``work.leaf`` by 2^depth leapfrog steps of size ``step``.

    The subtree's multinomial draw is left in ``work.candidate``; returns a ``SubtreeInfo``."""
    q, p, g, v = work.leaf
    cand_q, cand_g = work.candidate
    begin_p, begin_v, init_end_p, init_end_v, cum_before = work.checkpoints
    cum, tmp, rho_final = work.cum, work.tmp, work.rho_old  # rho_old is free during subtree building
    cum[:] = 0.0
    log_w_sub = -np.inf
    lp_c = 0.0
    h_c = 0.0
    n_leapfrog = 0
    sum_accept = 0.0
    valid = True
    divergent = False
    for n in range(1 << depth):
        lp = leapfrog(logp_grad, args, q, p, g, v, step, metric)
        n_leapfrog += 1
        h = hamiltonian(lp, p, v)
        log_w = h0 - h
        sum_accept += 1.0 if log_w > 0.0 else np.exp(log_w)
        if h - h0 > max_dh:
            divergent = True
            valid = False
            break
        # uniform progressive sampling inside the subtree: multinomial over its leaves
        log_w_new = _logaddexp(log_w_sub, log_w)
        if rng.random() < np.exp(log_w - log_w_new):
            _copy(cand_q, q)
            _copy(cand_g, g)
            lp_c = lp
            h_c = h
        log_w_sub = log_w_new
        for i in range(q.size):
            cum[i] += p[i]
        # checkpoints for every subtree that begins at this leaf
        level = 0
        while level <= depth and n % (1 << level) == 0:
            _copy(begin_p[level], p)
            _copy(begin_v[level], v)
            for i in range(q.size):
                cum_before[level, i] = cum[i] - p[i]
            level += 1
        # U-turn checks for every subtree that ends at this leaf (Stan's three per merge)
        level = 1
        while level <= depth and (n + 1) % (1 << level) == 0:
            rho_sub = tmp
            for i in range(q.size):
                rho_sub[i] = cum[i] - cum_before[level, i]
            if not _no_u_turn(begin_v[level], v, rho_sub):
                valid = False
                break
            for i in range(q.size):
                rho_final[i] = cum[i] - cum_before[level - 1, i]
            # init half extended by the final half's first leaf
            for i in range(q.size):
                rho_sub[i] = rho_sub[i] - rho_final[i] + begin_p[level - 1, i]
            if not _no_u_turn(begin_v[level], begin_v[level - 1], rho_sub):
                valid = False
                break
            # final half extended by the init half's last leaf
            if not _no_u_turn_extended(init_end_v[level], v, rho_final, init_end_p[level], rho_sub):
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
            _copy(init_end_p[top + 1], p)
            _copy(init_end_v[top + 1], v)
    return SubtreeInfo(valid, log_w_sub, lp_c, h_c, n_leapfrog, sum_accept, divergent)


@_jit
def nuts_transition(logp_grad, args, rng, state, step, metric, max_depth, max_dh, work):
    """One multinomial NUTS transition from ``state`` (a ``NUTSState``), which it updates in
    place; returns the draw's ``NUTSInfo``."""
    p0, v0 = work.p0, work.v0
    backward, forward_end, leaf, candidate, selected = (work.backward, work.forward, work.leaf,
                                                        work.candidate, work.selected)
    rho, rho_old, cum, seam_p, seam_v, tmp = work.rho, work.rho_old, work.cum, work.seam_p, work.seam_v, work.tmp
    begin_p, begin_v = work.checkpoints.begin_p, work.checkpoints.begin_v
    draw_momentum(rng, metric, p0)
    velocity(metric, p0, v0)
    h0 = hamiltonian(state.lp[0], p0, v0)
    for end in (backward, forward_end):
        _copy(end.q, state.q)
        _copy(end.p, p0)
        _copy(end.g, state.g)
        _copy(end.v, v0)
    _copy(selected.q, state.q)
    _copy(selected.g, state.g)
    _copy(rho, p0)
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
        end = forward_end if forward else backward
        _copy_end(leaf, end)
        _copy(seam_p, end.p)
        _copy(seam_v, end.v)
        sub = _build_subtree(logp_grad, args, rng, depth, step if forward else -step, h0, metric,
                             max_dh, work)
        n_leapfrog += sub.n_leapfrog
        sum_accept += sub.sum_accept
        if sub.divergent:
            divergent = True
        if not sub.valid:
            break
        # the subtree becomes the trajectory's new end
        _copy_end(end, leaf)
        depth += 1
        # biased progressive sampling favours the new subtree (Betancourt 2017, A.3.2)
        log_w_sub = sub.log_weight
        if log_w_sub > log_w or rng.random() < np.exp(log_w_sub - log_w):
            _copy(selected.q, candidate.q)
            _copy(selected.g, candidate.g)
            lp_s = sub.lp_candidate
            h_s = sub.h_candidate
        log_w = _logaddexp(log_w, log_w_sub)
        _copy(rho_old, rho)
        for i in range(rho.size):
            rho[i] = rho_old[i] + cum[i]
        if not _no_u_turn(backward.v, forward_end.v, rho):
            break
        # old trajectory extended by the new subtree's first leaf, and vice versa
        outer_old_v = backward.v if forward else forward_end.v
        if not _no_u_turn_extended(outer_old_v, begin_v[depth - 1], rho_old, begin_p[depth - 1], tmp):
            break
        outer_new_v = forward_end.v if forward else backward.v
        if not _no_u_turn_extended(seam_v, outer_new_v, cum, seam_p, tmp):
            break
    _copy(state.q, selected.q)
    _copy(state.g, selected.g)
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
