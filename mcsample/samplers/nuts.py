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

from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.adaptation import (dual_averaging_final, dual_averaging_init, dual_averaging_update,
                                grad_diag_variance, regularized_variance, stan_schedule, welford_update,
                                welford_update_dense, windowless_schedule)
from .._core.hamiltonian import (dot, draw_momentum, find_reasonable_step_size, hamiltonian,
                                 leapfrog, velocity)
from ._base import SamplerSettings, WindowedChain

_jit = numba.njit(cache=True, nogil=True)

METRICS = ("diag", "dense", "grad_diag")


@dataclass(frozen=True)
class NUTS(SamplerSettings):
    """Settings for multinomial NUTS. Defaults are Stan's (Hoffman & Gelman 2014, JMLR 15).

    max_depth : trees have at most 2^max_depth - 1 leapfrog steps.
    max_energy_error : a leaf whose energy exceeds the start's by this much is a divergence.
    target_accept, gamma, t0, kappa : dual averaging of the step size.
    metric : "diag" (Stan's regularised variance), "dense" (regularised covariance) or
        "grad_diag" (nutpie: sqrt(Var x / Var grad)), adapted in Stan's windows.
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
    metric: str = "diag"
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

    def start_chain(self, target, rng, q0, tune, draws):
        return NUTSChain(self, target, rng, q0, tune, draws)


# -- one transition ----------------------------------------------------------------------------

# Rows of the per-chain work array W (d columns each).
_P0, _V0, _QB, _PB, _GB, _VB, _QF, _PF, _GF, _VF, _Q, _P, _G, _V = range(14)
_QC, _GC, _QS, _GS, _RHO, _RHO_OLD, _CUM, _SEAM_P, _SEAM_V, _TMP = range(14, 24)
_WORK_ROWS = 24
# Per-level checkpoints C[k, level]: first leaf's momentum and velocity, the init half's last
# leaf, and the cumulative momentum before the subtree began.
_BEG_P, _BEG_V, _IEND_P, _IEND_V, _CUM_BEFORE = range(5)


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
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


@_jit
def _build_subtree(logp_grad, args, rng, depth, step, h0, dense, inv_diag, inv_dense, max_dh, W, C, out):
    """Extend the working state W[_Q.._V] by 2^depth leapfrog steps of size ``step``.

    The proposal (multinomial within the subtree) is left in W[_QC], W[_GC]; ``out`` receives
    [valid, log_weight, lp_of_proposal, h_of_proposal, lp_of_last_leaf, n_leapfrog,
    sum_accept, divergent]."""
    q, p, g, v = W[_Q], W[_P], W[_G], W[_V]
    cum, tmp = W[_CUM], W[_TMP]
    cum[:] = 0.0
    log_w_sub = -np.inf
    lp = 0.0
    lp_c = 0.0
    h_c = 0.0
    n_leapfrog = 0
    sum_accept = 0.0
    valid = True
    divergent = False
    for n in range(1 << depth):
        lp = leapfrog(logp_grad, args, q, p, g, v, step, dense, inv_diag, inv_dense)
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
            _copy(W[_QC], q)
            _copy(W[_GC], g)
            lp_c = lp
            h_c = h
        log_w_sub = log_w_new
        for i in range(q.size):
            cum[i] += p[i]
        # checkpoints for every subtree that begins at this leaf
        level = 0
        while level <= depth and n % (1 << level) == 0:
            _copy(C[_BEG_P, level], p)
            _copy(C[_BEG_V, level], v)
            for i in range(q.size):
                C[_CUM_BEFORE, level, i] = cum[i] - p[i]
            level += 1
        # U-turn checks for every subtree that ends at this leaf (Stan's three per merge)
        level = 1
        while level <= depth and (n + 1) % (1 << level) == 0:
            rho_sub = tmp
            for i in range(q.size):
                rho_sub[i] = cum[i] - C[_CUM_BEFORE, level, i]
            if not _no_u_turn(C[_BEG_V, level], v, rho_sub):
                valid = False
                break
            rho_final = W[_RHO_OLD]  # free during subtree building
            for i in range(q.size):
                rho_final[i] = cum[i] - C[_CUM_BEFORE, level - 1, i]
            # init half extended by the final half's first leaf
            for i in range(q.size):
                rho_sub[i] = rho_sub[i] - rho_final[i] + C[_BEG_P, level - 1, i]
            if not _no_u_turn(C[_BEG_V, level], C[_BEG_V, level - 1], rho_sub):
                valid = False
                break
            # final half extended by the init half's last leaf
            if not _no_u_turn_extended(C[_IEND_V, level], v, rho_final, C[_IEND_P, level], rho_sub):
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
            _copy(C[_IEND_P, top + 1], p)
            _copy(C[_IEND_V, top + 1], v)
    out[0] = 1.0 if valid else 0.0
    out[1] = log_w_sub
    out[2] = lp_c
    out[3] = h_c
    out[4] = lp
    out[5] = n_leapfrog
    out[6] = sum_accept
    out[7] = 1.0 if divergent else 0.0


@_jit
def nuts_transition(logp_grad, args, rng, q0, lp0, g0, step, dense, inv_diag, inv_dense, chol,
                    max_depth, max_dh, W, C, info):
    """One multinomial NUTS transition from (q0, lp0, g0); the new state is written back into
    q0 and g0 and its log density returned. ``info`` receives
    [energy, acceptance_rate, tree_depth, n_steps, diverging]."""
    p0, v0 = W[_P0], W[_V0]
    draw_momentum(rng, dense, inv_diag, chol, p0)
    velocity(dense, inv_diag, inv_dense, p0, v0)
    h0 = hamiltonian(lp0, p0, v0)
    for row in (_QB, _QF, _QS):
        _copy(W[row], q0)
    for row in (_GB, _GF, _GS):
        _copy(W[row], g0)
    for row in (_PB, _PF, _RHO):
        _copy(W[row], p0)
    _copy(W[_VB], v0)
    _copy(W[_VF], v0)
    lp_b = lp0
    lp_f = lp0
    lp_s = lp0
    h_s = h0
    log_w = 0.0
    n_leapfrog = 0
    sum_accept = 0.0
    depth = 0
    divergent = False
    sub = np.empty(8)
    tmp = W[_TMP]
    while depth < max_depth:
        forward = rng.random() > 0.5
        end = 0 if forward else 1
        # continue from the end being extended; keep its momentum for the seam checks
        eq, ep, eg, ev = (_QF, _PF, _GF, _VF) if forward else (_QB, _PB, _GB, _VB)
        _copy(W[_Q], W[eq])
        _copy(W[_P], W[ep])
        _copy(W[_G], W[eg])
        _copy(W[_V], W[ev])
        _copy(W[_SEAM_P], W[ep])
        _copy(W[_SEAM_V], W[ev])
        _build_subtree(logp_grad, args, rng, depth, step if forward else -step, h0, dense, inv_diag,
                       inv_dense, max_dh, W, C, sub)
        n_leapfrog += int(sub[5])
        sum_accept += sub[6]
        if sub[7] > 0.0:
            divergent = True
        if sub[0] == 0.0:
            break
        # the subtree becomes the trajectory's new end
        _copy(W[eq], W[_Q])
        _copy(W[ep], W[_P])
        _copy(W[eg], W[_G])
        _copy(W[ev], W[_V])
        if forward:
            lp_f = sub[4]
        else:
            lp_b = sub[4]
        depth += 1
        # biased progressive sampling favours the new subtree (Betancourt 2017, A.3.2)
        log_w_sub = sub[1]
        if log_w_sub > log_w or rng.random() < np.exp(log_w_sub - log_w):
            _copy(W[_QS], W[_QC])
            _copy(W[_GS], W[_GC])
            lp_s = sub[2]
            h_s = sub[3]
        log_w = _logaddexp(log_w, log_w_sub)
        rho_old, rho, cum = W[_RHO_OLD], W[_RHO], W[_CUM]
        _copy(rho_old, rho)
        for i in range(rho.size):
            rho[i] = rho_old[i] + cum[i]
        if not _no_u_turn(W[_VB], W[_VF], rho):
            break
        # old trajectory extended by the new subtree's first leaf, and vice versa
        outer_old_v = W[_VB] if forward else W[_VF]
        if not _no_u_turn_extended(outer_old_v, C[_BEG_V, depth - 1], rho_old, C[_BEG_P, depth - 1], tmp):
            break
        outer_new_v = W[_VF] if forward else W[_VB]
        if not _no_u_turn_extended(W[_SEAM_V], outer_new_v, cum, W[_SEAM_P], tmp):
            break
    _copy(q0, W[_QS])
    _copy(g0, W[_GS])
    info[0] = h_s
    info[1] = sum_accept / max(n_leapfrog, 1)
    info[2] = depth
    info[3] = n_leapfrog
    info[4] = 1.0 if divergent else 0.0
    return lp_s


# -- a chunk of iterations, with step-size and metric adaptation ------------------------------


@_jit
def nuts_chunk(logp_grad, args, rng, q, lp, g, n_iter, step_size, jitter, adapt_step, da, da_consts,
               collect, metric_kind, wf_count, wf_mean, wf_m2, wf_m2_dense, wf_gmean, wf_gm2,
               dense, inv_diag, inv_dense, chol, max_depth, max_dh, W, C,
               out_q, out_lp, out_energy, out_accept, out_step, out_depth, out_steps, out_div):
    """Run ``n_iter`` transitions from (q, lp[0], g), writing draws and stats into ``out_*``.

    ``adapt_step`` updates ``step_size[0]`` by dual averaging; ``collect`` feeds each draw (and
    for grad_diag its gradient) to the Welford accumulators of the current window."""
    info = np.empty(5)
    for it in range(n_iter):
        step = step_size[0]
        if jitter > 0.0:
            step *= 1.0 + jitter * (2.0 * rng.random() - 1.0)
        lp[0] = nuts_transition(logp_grad, args, rng, q, lp[0], g, step, dense, inv_diag,
                                inv_dense, chol, max_depth, max_dh, W, C, info)
        _copy(out_q[it], q)
        out_lp[it] = lp[0]
        out_energy[it] = info[0]
        out_accept[it] = info[1]
        out_step[it] = step
        out_depth[it] = int(info[2])
        out_steps[it] = int(info[3])
        out_div[it] = info[4] > 0.0
        if adapt_step:
            step_size[0] = dual_averaging_update(da, info[1], da_consts[0], da_consts[1],
                                                 da_consts[2], da_consts[3])
        if collect:
            if metric_kind == 1:
                welford_update_dense(wf_count, wf_mean, wf_m2_dense, q)
            else:
                welford_update(wf_count, wf_mean, wf_m2, q)
                if metric_kind == 2:
                    wf_count[1] += 1.0  # the gradient accumulator keeps its own count
                    welford_update(wf_count[1:], wf_gmean, wf_gm2, g)


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
        self.lp = np.empty(1)
        self.lp[0], g = self.eval_logp_grad(self.q)
        self.g = np.array(g, dtype=np.float64)
        self._init_metric(d)
        self.schedule = stan_schedule(tune, s.init_buffer, s.term_buffer, s.base_window)
        if s.inv_metric is not None:
            self.schedule = windowless_schedule(tune)  # a fixed metric: adapt the step size only
        self.W = np.zeros((_WORK_ROWS, d))
        self.C = np.zeros((5, s.max_depth + 1, d))
        self.step = np.array([s.step_size if s.step_size is not None else 1.0])
        self.da_consts = np.array([s.target_accept, s.gamma, s.t0, s.kappa])
        self._reset_welford(d)
        if s.adapt_step_size:
            if s.step_size is None:
                self._search_step_size()
            self.da = dual_averaging_init(self.step[0])
        else:
            self.da = dual_averaging_init(1.0)

    def _init_metric(self, d):
        s = self.settings
        self.inv_diag = np.ones(d)
        self.inv_dense = np.zeros((1, 1))
        self.chol = np.zeros((1, 1))
        self.dense = False
        if s.inv_metric is not None:
            self._set_metric(np.asarray(s.inv_metric, dtype=float))
        elif self.kind == 2:
            # nutpie starts from the first gradient: var_i = 1 / |g_i|
            self.inv_diag = np.clip(1.0 / np.maximum(np.abs(self.g), 1e-20), 1e-20, 1e20)
        elif self.kind == 1:
            self._set_metric(np.eye(d))

    def _set_metric(self, m):
        if m.ndim == 1:
            if not np.all(np.isfinite(m)) or np.any(m <= 0):
                raise ValueError("the inverse metric must be finite and positive")
            self.dense = False
            self.inv_diag = np.ascontiguousarray(m)
            return
        try:
            chol = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            raise ValueError("the dense inverse metric is not positive definite") from None
        self.dense = True
        self.inv_dense = np.ascontiguousarray(m)
        self.chol = np.ascontiguousarray(chol)
        self.inv_diag = np.ascontiguousarray(np.diag(m).copy())

    def _reset_welford(self, d):
        self.wf_count = np.zeros(2)
        self.wf_mean = np.zeros(d)
        self.wf_m2 = np.zeros(d)
        self.wf_m2_dense = np.zeros((d, d) if self.kind == 1 else (1, 1))
        self.wf_gmean = np.zeros(d)
        self.wf_gm2 = np.zeros(d)

    def _search_step_size(self):
        step, n_grad = find_reasonable_step_size(
            self.target.logp_grad_fn, self.target.kernel_args, self.rng, self.q, self.lp[0], self.g,
            self.step[0], self.dense, self.inv_diag, self.inv_dense, self.chol,
            self.settings.target_accept)
        self.step[0] = step
        self.extra_grad += n_grad

    def _window_metric(self):
        n = self.wf_count[0]
        if self.kind == 1:
            return regularized_variance(n, self.wf_m2_dense / (n - 1.0))
        var = self.wf_m2 / (n - 1.0)
        if self.kind == 2:
            return grad_diag_variance(var, self.wf_gm2 / (self.wf_count[1] - 1.0))
        return regularized_variance(n, var)

    def _end_window(self, begin, end):
        m = self._window_metric()
        if not np.all(np.isfinite(m)):
            raise ValueError("metric adaptation produced non-finite variances; the chain may "
                             "have diverged during warmup")
        self._set_metric(m)
        self._reset_welford(self.target.dim)
        if self.settings.adapt_step_size:
            self._search_step_size()
            self.da = dual_averaging_init(self.step[0])

    def _advance(self, lo, hi):
        s = self.settings
        warm = lo < self.tune
        collect = warm and self.schedule.in_slow_window(lo)
        sl = slice(lo, hi)
        st = self.stats
        nuts_chunk(self.target.logp_grad_fn, self.target.kernel_args, self.rng, self.q, self.lp,
                   self.g, hi - lo, self.step, 0.0 if warm else s.jitter,
                   warm and s.adapt_step_size, self.da, self.da_consts, collect, self.kind,
                   self.wf_count, self.wf_mean, self.wf_m2, self.wf_m2_dense, self.wf_gmean,
                   self.wf_gm2, self.dense, self.inv_diag, self.inv_dense, self.chol,
                   s.max_depth, s.max_energy_error, self.W, self.C,
                   self.draws[sl], st["lp"][sl], st["energy"][sl], st["acceptance_rate"][sl],
                   st["step_size"][sl], st["tree_depth"][sl], st["n_steps"][sl],
                   st["diverging"][sl])
        self.n_grad[sl] = st["n_steps"][sl]

    def _end_warmup(self):
        if self.settings.adapt_step_size:
            self.step[0] = dual_averaging_final(self.da)

    def tuned(self):
        return {"step_size": float(self.step[0]),
                "inv_metric": (self.inv_dense if self.dense else self.inv_diag).tolist()}
