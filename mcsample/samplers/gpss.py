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


# -- one transition ----------------------------------------------------------------------------

# Rows of the work array: the great-circle direction, the proposal, a zero origin, z and x buffers.
_Y, _POINT, _ZERO, _Z, _X = range(5)
# Entries of info: proposals in the direction and radius updates, step-outs, shrinks, exhausted.
_N_DIR, _N_RAD, _N_OUT, _N_SHRINK, _EXHAUSTED = range(5)


@_inline
def draw_great_circle_direction(rng, theta, y):
    """y uniform on the unit sphere orthogonal to theta."""
    for i in range(y.size):
        y[i] = rng.standard_normal()
    along = 0.0
    for i in range(y.size):
        along += y[i] * theta[i]
    for i in range(y.size):
        y[i] -= along * theta[i]
    n = norm(y)
    for i in range(y.size):
        y[i] /= n


@_inline
def gpss_transition(logp, args, frame, rng, r, theta, lp1, w, power, max_evals, work, info):
    """One GPSS iteration from (r, theta) with cached lp1 = power * log r + log p(frame(r theta)).

    ``theta`` is updated in place; returns (r, lp1). ``power`` is d - 1 (the polar Jacobian).
    If an update exhausts ``max_evals`` the iteration keeps what it has accepted so far."""
    y, point, zero, z, x = work[_Y], work[_POINT], work[_ZERO], work[_Z], work[_X]
    info[:] = 0.0
    log_t = lp1 + np.log(rng.random())

    draw_great_circle_direction(rng, theta, y)
    log_r_term = power * np.log(r)
    f, n_dir, ok = shrink_angle(logp, args, frame, theta, y, True, r, 0.0, log_t - log_r_term, rng,
                                point, z, x, max_evals)
    info[_N_DIR] = n_dir
    info[_N_SHRINK] = n_dir - 1
    if not ok:
        info[_EXHAUSTED] = 1.0
        return r, lp1
    theta[:] = point
    lp1 = f + log_r_term

    lo, hi, n_out, n_expansions, ok = step_out(logp, args, frame, zero, theta, power, r, w, 0.0, log_t,
                                               rng, z, x, max_evals)
    info[_N_RAD] = n_out
    info[_N_OUT] = n_expansions
    if not ok:
        info[_EXHAUSTED] = 1.0
        return r, lp1
    r_new, lp1_new, n_shrink, ok = shrink_interval(logp, args, frame, zero, theta, power, r, lo, hi,
                                                   log_t, rng, z, x, max_evals)
    info[_N_RAD] += n_shrink
    info[_N_SHRINK] += n_shrink - 1
    if not ok:
        info[_EXHAUSTED] = 1.0
        return r, lp1
    return r_new, lp1_new


@_jit
def gpss_chunk(logp, args, frame, rng, state, theta, n_iter, width, adapt, power, max_evals, work,
               out_x, out_lp, out_n_dir, out_n_rad, out_n_out, out_n_shrink, out_w, out_exhausted):
    """``n_iter`` GPSS iterations from state = [r, lp1] and theta, adapting w (``width``) when
    ``adapt``; writes each draw x = frame(r theta) and its statistics."""
    info = np.zeros(5)
    for it in range(n_iter):
        w = np.exp(width[0])
        r, lp1 = gpss_transition(logp, args, frame, rng, state[0], theta, state[1], w, power,
                                 max_evals, work, info)
        state[0] = r
        state[1] = lp1
        if adapt:
            adapt_width(width, info[_N_OUT])
        for i in range(theta.size):
            work[_Z, i] = r * theta[i]
        to_x(frame, work[_Z], out_x[it])
        out_lp[it] = lp1 - power * np.log(r)
        out_n_dir[it] = int(info[_N_DIR])
        out_n_rad[it] = int(info[_N_RAD])
        out_n_out[it] = int(info[_N_OUT])
        out_n_shrink[it] = int(info[_N_SHRINK])
        out_w[it] = w
        out_exhausted[it] = info[_EXHAUSTED] > 0.0


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
        self.work = np.zeros((5, d))
        self.state = np.zeros(2)
        r, lp1 = polar_log_density(self.target.logp_fn, self.target.kernel_args, self.frame, self.z,
                                   self.work[_X], self.power)
        self.extra_logp += 1
        if r == 0.0:
            raise ValueError("GPSS cannot start at the origin of its frame (x0 = 0 without centring): "
                             "the direction is undefined there; start anywhere else")
        if not np.isfinite(lp1):
            raise ValueError(f"GPSS start has log density {lp1 - self.power * np.log(r)}, not finite")
        self.state[:] = r, lp1
        self.theta = self.z / r

    def _run_chunk(self, lo, hi, adapt):
        st = self.stats
        sl = slice(lo, hi)
        gpss_chunk(self.target.logp_fn, self.target.kernel_args, self.frame, self.rng, self.state,
                   self.theta, hi - lo, self.width, adapt and self.settings.adapt_w, self.power,
                   self.settings.max_proposals, self.work, self.draws[sl], st["lp"][sl],
                   st["n_direction_proposals"][sl], st["n_radius_proposals"][sl], st["n_step_out"][sl],
                   st["n_shrink"][sl], st["w"][sl], st["exhausted"][sl])
        self.n_logp[sl] = st["n_direction_proposals"][sl] + st["n_radius_proposals"][sl]
        self.z = self.state[0] * self.theta
