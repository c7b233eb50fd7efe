"""Gibbsian polar slice sampling (GPSS).

Schär, Habeck & Rudolf (2023), "Gibbsian Polar Slice Sampling", ICML, PMLR 202:30204-30223,
arXiv:2302.03945; polar slice sampling: Roberts & Rosenthal (2002), Stochastic Models 18(2).

Polar slice sampling splits the density p(x) = |x|^(1-d) * p1(x) with p1(x) = |x|^(d-1) p(x):
in polar coordinates x = r theta, the base measure |x|^(1-d) dx is dr dsigma(theta), so the
sampler is uniform slice sampling of p1 over (r, theta). GPSS draws one threshold t under
p1(x) per iteration and then updates, with that same t,
  1. the direction theta, by geodesic shrinkage on a random great circle through theta, at the
     old radius;
  2. the radius r, by stepping-out and shrinkage on (0, inf) along the new direction.
Each sub-step leaves the uniform law on the slice invariant, so the iteration leaves p
invariant (it is not reversible: its adjoint updates the radius first).

GPSS works around the origin of its frame. ``centring`` (on by default) fits x = c + L z during
warmup so that off-centre posteriors sit around z = 0; set ``centring="none"`` for targets
structured around x = 0 (the paper's Cauchy, funnel, hyperplane disk). The state is kept as
(r, theta) and theta is renormalised at every proposal, so |theta| stays 1 to rounding.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.slice import (_inline, adapt_width, logp_in_frame, norm, shrink_angle, shrink_interval,
                           step_out, to_x)
from ._slice_common import SliceChain, WidthSettings

_jit = numba.njit(cache=True, nogil=True)


@dataclass(frozen=True)
class GPSS(WidthSettings):
    """Settings for Gibbsian polar slice sampling (Schär, Habeck & Rudolf 2023, ICML).

    w : initial width of the radius window, in frame units (the paper used w = d on the
        Cauchy, 20 on the hyperplane disk, 5 on the funnel), tuned during warmup when
        ``adapt_w``. centring, loc, cov, max_proposals : see ``SliceSettings``.
    """

    name: ClassVar[str] = "gpss"
    citation: ClassVar[str] = "Schär, Habeck & Rudolf (2023), Gibbsian Polar Slice Sampling, ICML, arXiv:2302.03945"

    def validate(self, dim: int) -> None:
        if dim < 2:
            raise ValueError("GPSS needs dim >= 2: in one dimension there is no great circle to move "
                             "the direction on; use 'hit_and_run_slice'")
        super().validate(dim)

    def start_chain(self, target, rng, q0, tune, draws):
        return GPSSChain(self, target, rng, q0, tune, draws)


# -- kernel state ------------------------------------------------------------------------------
# Named tuples (see samplers/nuts.py): scalars a kernel updates in place are (1,) arrays.

# The chain's state in its frame, z = r * theta: the radius r (1,), the direction theta (d,) and
# lp1 (1,) = power * log r + log p(frame(z)), the log of the polar density whose slices are drawn.
GPSSState = namedtuple("GPSSState", ["r", "theta", "lp1"])

# Scratch d-vectors: the great circle's second direction, the proposed direction, a zero origin for
# the radius line, and the z and x buffers of each evaluation.
GPSSWork = namedtuple("GPSSWork", ["y", "point", "zero", "z", "x"])

# What one iteration reports: log-density evaluations of the direction and radius updates,
# step-outs, shrinks, and whether an update gave up after ``max_evals``.
GPSSInfo = namedtuple("GPSSInfo", ["n_direction_proposals", "n_radius_proposals", "n_step_out", "n_shrink",
                                   "exhausted"])

# Per-draw output buffers of a chunk, named as ``GPSSChain.stat_dtypes`` (plus the draws ``x``).
GPSSDraws = namedtuple("GPSSDraws", ["x", "lp", "n_direction_proposals", "n_radius_proposals", "n_step_out",
                                     "n_shrink", "w", "exhausted"])


def new_gpss_work(dim: int) -> GPSSWork:
    return GPSSWork(*(np.zeros(dim) for _ in GPSSWork._fields))


# -- one transition ----------------------------------------------------------------------------


@_inline
def draw_great_circle_direction(rng, theta, y):
    """y uniform on the unit sphere orthogonal to theta."""
    # Each sum rides in a pass that does other work (its serial additions hide behind it), in
    # the same order as in a pass of its own: three passes where there were five, same draws.
    along = 0.0
    for i in range(y.size):
        y[i] = rng.standard_normal()
        along += y[i] * theta[i]
    ss = 0.0
    for i in range(y.size):
        y[i] -= along * theta[i]
        ss += y[i] * y[i]
    n = np.sqrt(ss)
    for i in range(y.size):
        y[i] /= n


@_inline
def gpss_transition(logp, args, frame, rng, state, w, power, max_evals, work):
    """One GPSS iteration from ``state`` (a ``GPSSState``), which it updates in place; returns its
    ``GPSSInfo``. ``power`` is d - 1 (the polar Jacobian). If an update exhausts ``max_evals`` the
    iteration keeps what it has accepted so far."""
    r, theta = state.r[0], state.theta
    y, point, zero, z, x = work
    log_t = state.lp1[0] + np.log(rng.random())

    draw_great_circle_direction(rng, theta, y)
    log_r_term = power * np.log(r)
    f, n_dir, ok = shrink_angle(logp, args, frame, theta, y, True, r, 0.0, log_t - log_r_term, rng,
                                point, z, x, max_evals)
    if not ok:
        return GPSSInfo(n_dir, 0, 0, n_dir - 1, True)
    for i in range(theta.size):  # a loop: numba's theta[:] = point cost ~3% of an iteration
        theta[i] = point[i]
    state.lp1[0] = f + log_r_term

    lo, hi, n_out, n_expansions, ok = step_out(logp, args, frame, zero, theta, power, r, w, 0.0, log_t,
                                               rng, z, x, max_evals)
    if not ok:
        return GPSSInfo(n_dir, n_out, n_expansions, n_dir - 1, True)
    r_new, lp1_new, n_shrink, ok = shrink_interval(logp, args, frame, zero, theta, power, r, lo, hi,
                                                   log_t, rng, z, x, max_evals)
    info = GPSSInfo(n_dir, n_out + n_shrink, n_expansions, n_dir - 1 + n_shrink - 1, not ok)
    if ok:
        state.r[0] = r_new
        state.lp1[0] = lp1_new
    return info


@_jit
def gpss_chunk(logp, args, frame, rng, state, n_iter, width, adapt, power, max_evals, work, out):
    """``n_iter`` GPSS iterations from ``state``, adapting w (``width``) when ``adapt``; writes each
    draw x = frame(r theta) and its statistics into ``out`` (a ``GPSSDraws``)."""
    theta, z = state.theta, work.z
    for it in range(n_iter):
        w = np.exp(width[0])
        info = gpss_transition(logp, args, frame, rng, state, w, power, max_evals, work)
        if adapt:
            adapt_width(width, info.n_step_out)
        r = state.r[0]
        for i in range(theta.size):
            z[i] = r * theta[i]
        to_x(frame, z, out.x[it])
        out.lp[it] = state.lp1[0] - power * np.log(r)
        out.n_direction_proposals[it] = info.n_direction_proposals
        out.n_radius_proposals[it] = info.n_radius_proposals
        out.n_step_out[it] = info.n_step_out
        out.n_shrink[it] = info.n_shrink
        out.w[it] = w
        out.exhausted[it] = info.exhausted


@_jit
def polar_log_density(logp, args, frame, z, x, power):
    """(r, lp1) at z: the radius and power * log r + log p(frame(z))."""
    r = norm(z)
    return r, power * np.log(r) + logp_in_frame(logp, args, frame, z, x)


# -- the chain runner --------------------------------------------------------------------------


class GPSSChain(SliceChain):
    """One GPSS chain: state (r, theta, lp1) in the frame; warmup fits the frame and w."""

    keep_central_origin = True  # polar moves work best about the target's own centre

    stat_dtypes = {"lp": np.float64, "n_direction_proposals": np.int64, "n_radius_proposals": np.int64,
                   "n_step_out": np.int64, "n_shrink": np.int64, "w": np.float64, "exhausted": np.bool_}

    def radial_power(self, dim):
        """The exponent of r in the polar density p1: d - 1, from dx = r^(d-1) dr dsigma."""
        return dim - 1.0

    def _reset_state(self):
        d = self.target.dim
        self.power = float(self.radial_power(d))
        self.work = new_gpss_work(d)
        r, lp1 = polar_log_density(self.target.logp_fn, self.target.kernel_args, self.frame, self.z,
                                   self.work.x, self.power)
        self.extra_logp += 1
        if r == 0.0:
            raise ValueError("GPSS cannot start at the origin of its frame (x0 = 0 without centring): "
                             "the direction is undefined there; start anywhere else")
        if not np.isfinite(lp1):
            raise ValueError(f"GPSS start has log density {lp1 - self.power * np.log(r)}, not finite")
        self.state = GPSSState(np.array([r]), self.z / r, np.array([lp1]))

    def _run_chunk(self, lo, hi, adapt):
        sl = slice(lo, hi)
        out = GPSSDraws(x=self.draws[sl], **{k: v[sl] for k, v in self.stats.items()})
        gpss_chunk(self.target.logp_fn, self.target.kernel_args, self.frame, self.rng, self.state, hi - lo,
                   self.width, adapt and self.settings.adapt_w, self.power, self.settings.max_proposals,
                   self.work, out)
        self.n_logp[sl] = out.n_direction_proposals + out.n_radius_proposals
        self.z = self.state.r[0] * self.state.theta
