"""Elliptical slice sampling and hit-and-run uniform slice sampling: the two baselines of the GPSS
paper, sharing its frame (an affine map fitted during warmup) and its slice primitives.

- Elliptical slice sampling: Murray, Adams & MacKay (2010), "Elliptical slice sampling",
  AISTATS, JMLR W&CP 9:541-548. For a target p = N(mu, Sigma) * L it moves on the ellipse through
  the current point and a prior draw, shrinking the angle towards the current point. Here the
  prior is the frame: N(loc, cov) when given, the fitted frame by default, or N(0, I)
  (``centring="none"``, the GPSS paper's "naive" form); L = p / prior.
- Hit-and-run uniform slice sampling: MacKay (2003), "Information Theory, Inference, and
  Learning Algorithms", ch. 29; Neal (2003), "Slice sampling", Ann. Statist. 31(3). A uniform
  random direction, then stepping-out and shrinkage on the line, in the frame's coordinates.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from .._core.slice import (_inline, adapt_width, shrink_angle, shrink_interval, step_out, to_x,
                           uniform_direction)
from ._slice_common import SliceChain, SliceSettings, WidthSettings, new_width_state
from .gpss import GPSS, GPSSChain

PILOTS = ("gpss", "self")

_jit = numba.njit(cache=True, nogil=True)

# -- kernel state (named tuples, see samplers/nuts.py) -------------------------------------------

# The chain's state in its frame: z (d,) and log_f (1,), the log of the function whose slices are
# drawn at z: log p for hit-and-run, the likelihood log L = log p(frame(z)) + |z|^2 / 2 for
# elliptical slice sampling.
SliceState = namedtuple("SliceState", ["z", "log_f"])

# Scratch d-vectors: a prior draw (elliptical) or the line's direction (hit-and-run), the proposal
# (elliptical) or the line's origin (hit-and-run), and the z and x buffers of each evaluation.
SliceWork = namedtuple("SliceWork", ["direction", "point", "z", "x"])

# What one iteration reports, and the per-draw output buffers of a chunk (named as the chains'
# ``stat_dtypes``, plus the draws ``x`` and the evaluations ``n_logp``).
EllipticalInfo = namedtuple("EllipticalInfo", ["n_logp", "n_shrink", "exhausted"])
EllipticalDraws = namedtuple("EllipticalDraws", ["x", "lp", "n_logp", "n_shrink", "exhausted"])
HitAndRunInfo = namedtuple("HitAndRunInfo", ["n_logp", "n_step_out", "n_shrink", "exhausted"])
HitAndRunDraws = namedtuple("HitAndRunDraws", ["x", "lp", "n_logp", "n_step_out", "n_shrink", "w",
                                               "exhausted"])


def new_slice_work(dim: int) -> SliceWork:
    return SliceWork(*(np.zeros(dim) for _ in SliceWork._fields))


def _half_square_norm(z):
    return 0.5 * float(z @ z)


@dataclass(frozen=True)
class PilotSettings(SliceSettings):
    """Adds ``pilot``: the kernel of the warmup iterations that fit the frame (see
    ``GPSSPilotChain``)."""

    pilot: str = "gpss"

    def validate(self, dim: int) -> None:
        super().validate(dim)
        if self.pilot not in PILOTS:
            raise ValueError(f"pilot must be one of {PILOTS}, got {self.pilot!r}")


class GPSSPilotChain(SliceChain):
    """Runs the warmup iterations that fit the frame with GPSS moves when ``pilot="gpss"``.

    Random-direction and elliptical moves in a badly scaled starting frame can wander far into
    the tails (hit-and-run on kidiq_momiq reached |x| ~ 1e4 in 100 iterations) or crawl (elliptical
    with a prior much wider or narrower than the posterior), so the frame fitted from their own
    warmup draws is poor and never recovers. GPSS's radius moves are scale-free, and the GPSS
    paper tuned its elliptical baseline from a GPSS run in the same way. The kernel's own moves
    take over after the last refit, where the terminal buffer tunes its w.

    The pilot is a :class:`GPSSChain` in this chain's current frame, started from its state and
    kept across chunks until the next refit (so the draws do not depend on how ``sample()`` cuts
    the run); its width state lives on across refits."""

    _pilot = None
    _pilot_width = None

    def _run_pilot(self, lo, hi):
        if self.settings.pilot != "gpss" or self.target.dim < 2:
            return super()._run_pilot(lo, hi)
        if self._pilot is None:
            self._pilot = self._start_pilot(self.schedule.last_window_end)  # all of its iterations
        pilot = self._pilot
        pilot.run(lo, hi)
        sl = slice(lo, hi)
        self.draws[sl] = pilot.draws[sl]
        self.n_logp[sl] = pilot.n_logp[sl]
        for name in self.stats.keys() & pilot.stats.keys():
            self.stats[name][sl] = pilot.stats[name][sl]
        self.z = pilot.z

    def _start_pilot(self, n_iter) -> GPSSChain:
        """A GPSS chain for iterations [0, n_iter), all warmup, at this chain's current state;
        its first evaluation is counted here."""
        if self._pilot_width is None:
            self._pilot_width = new_width_state(1.0)
        settings = GPSS(centring="none", max_proposals=self.settings.max_proposals)
        pilot = GPSSChain(settings, self.target, self.rng, self.q, n_iter, 0, frame=self.frame, z=self.z,
                          width=self._pilot_width)
        self.extra_logp += pilot.extra_logp
        pilot.extra_logp = 0
        return pilot

    def compile_kernels(self):
        if self.settings.pilot == "gpss" and self.target.dim >= 2:
            self._start_pilot(1).run(0, 1)

    def _end_window(self, begin, end):
        self._pilot = None  # restarts from the new z at its next chunk
        super()._end_window(begin, end)
        if self._pilot_width is not None:
            self._pilot_width[1] = 0.0  # w restarts its adaptation in the new units


# -- elliptical slice sampling -----------------------------------------------------------------


@dataclass(frozen=True)
class EllipticalSlice(PilotSettings):
    """Settings for elliptical slice sampling (Murray, Adams & MacKay 2010, AISTATS).

    No tuning parameter: the prior N(loc, cov) is the frame (see ``SliceSettings``). With
    ``centring="none"`` and no loc/cov it is N(0, I), the GPSS paper's "naive" baseline.
    pilot : "gpss" (default) runs the warmup iterations that fit the frame with GPSS moves;
        "self" uses elliptical moves throughout (see ``GPSSPilotChain``).
    """

    name: ClassVar[str] = "elliptical_slice"
    citation: ClassVar[str] = "Murray, Adams & MacKay (2010), Elliptical slice sampling, AISTATS, JMLR W&CP 9:541-548"

    def start_chain(self, target, rng, q0, tune, draws):
        return EllipticalChain(self, target, rng, q0, tune, draws)


@_inline
def elliptical_transition(logp, args, frame, rng, state, max_evals, work):
    """One elliptical slice step in the frame, where the prior is N(0, I) and the likelihood is
    log L(z) = log p(frame(z)) + |z|^2 / 2. Updates ``state`` (a ``SliceState``) in place;
    returns its ``EllipticalInfo``."""
    z, nu, point = state.z, work.direction, work.point
    for i in range(nu.size):
        nu[i] = rng.standard_normal()
    log_t = state.log_f[0] + np.log(rng.random())
    f, n_evals, ok = shrink_angle(logp, args, frame, z, nu, False, 1.0, 0.5, log_t, rng, point,
                                  work.z, work.x, max_evals)
    if ok:
        for i in range(z.size):  # a loop: numba's z[:] = point cost ~2% of an iteration
            z[i] = point[i]
        state.log_f[0] = f
    return EllipticalInfo(n_evals, n_evals - 1, not ok)


@_jit
def elliptical_chunk(logp, args, frame, rng, state, n_iter, max_evals, work, out):
    """``n_iter`` elliptical slice steps from ``state``; writes each draw and its statistics into
    ``out`` (an ``EllipticalDraws``)."""
    z = state.z
    for it in range(n_iter):
        info = elliptical_transition(logp, args, frame, rng, state, max_evals, work)
        to_x(frame, z, out.x[it])
        sq = 0.0
        for i in range(z.size):
            sq += z[i] * z[i]
        out.lp[it] = state.log_f[0] - 0.5 * sq
        out.n_logp[it] = info.n_logp
        out.n_shrink[it] = info.n_shrink
        out.exhausted[it] = info.exhausted


# A prior narrower than the posterior makes L = p / prior grow into the tails, where the ellipses
# rarely reach; a wider one only costs a few shrinks. On eight_schools_noncentered (4 seeds x 4
# chains x 2000 draws) the smallest ESS went from 28-934 at 1.0 to 226-1338 at 1.5, with arK and
# kidiq_momiq no worse. The cost of a wider prior grows with d, though: against N(0, I) a prior
# s times wider adds (1 - 1/s^2) |z|^2 / 2 to log L, whose spread over the posterior is
# (1 - 1/s^2) sqrt(d / 2), and the ellipse's accepted arc narrows with it. In an exact frame at
# d = 200, s = 1.5 gave a bulk ESS of 30 in 1000 draws where s = 1 gave 757 (d = 50: 150 / 688).
# So 1.5 up to d = 10, where it was measured; above, s such that the spread stays at its d = 10
# value: 1 - 1/s^2 = (1 - 1/1.5^2) sqrt(10 / d).
_INFLATION, _INFLATION_DIM = 1.5, 10


def elliptical_inflation(dim: int) -> float:
    """The factor on the fitted frame's scales that makes elliptical slice sampling's prior (see
    the comment above)."""
    if dim <= _INFLATION_DIM:
        return _INFLATION
    excess = (1.0 - _INFLATION ** -2) * np.sqrt(_INFLATION_DIM / dim)
    return float(1.0 / np.sqrt(1.0 - excess))


class EllipticalChain(GPSSPilotChain):
    stat_dtypes = {"lp": np.float64, "n_shrink": np.int64, "exhausted": np.bool_}

    def __init__(self, settings, target, rng, q0, tune, draws, **kw):
        self.frame_inflation = elliptical_inflation(target.dim)  # read while the frame is first set
        super().__init__(settings, target, rng, q0, tune, draws, **kw)

    def _reset_state(self):
        self.work = new_slice_work(self.target.dim)
        lp = self._logp_at_z(self.work.x)
        self.log_f = np.array([lp + _half_square_norm(self.z)])

    def _run_chunk(self, lo, hi, adapt):
        sl = slice(lo, hi)
        out = EllipticalDraws(x=self.draws[sl], n_logp=self.n_logp[sl],
                              **{k: v[sl] for k, v in self.stats.items()})
        elliptical_chunk(self.target.logp_fn, self.target.kernel_args, self.frame, self.rng,
                         SliceState(self.z, self.log_f), hi - lo, self.settings.max_proposals, self.work,
                         out)


# -- hit-and-run uniform slice sampling --------------------------------------------------------


@dataclass(frozen=True)
class HitAndRunSlice(PilotSettings, WidthSettings):
    """Settings for hit-and-run uniform slice sampling (MacKay 2003, ch. 29; Neal 2003).

    w : initial stepping-out width on each line, in frame units, tuned during warmup when
        ``adapt_w``. centring, loc, cov, max_proposals : see ``SliceSettings``.
    pilot : "gpss" (default) runs the warmup iterations that fit the frame with GPSS moves;
        "self" uses hit-and-run moves throughout (see ``GPSSPilotChain``).
    """

    name: ClassVar[str] = "hit_and_run_slice"
    citation: ClassVar[str] = "MacKay (2003), ITILA ch. 29; Neal (2003), Slice sampling, Ann. Statist. 31(3):705-767"

    def start_chain(self, target, rng, q0, tune, draws):
        return HitAndRunChain(self, target, rng, q0, tune, draws)


@_inline
def hit_and_run_transition(logp, args, frame, rng, state, w, max_evals, work):
    """One hit-and-run slice step from ``state`` (a ``SliceState`` with log_f = log p) in the
    frame, which it updates in place; returns its ``HitAndRunInfo``."""
    z, v, origin = state.z, work.direction, work.point
    log_t = state.log_f[0] + np.log(rng.random())
    uniform_direction(rng, v)
    for i in range(z.size):
        origin[i] = z[i]  # z itself is overwritten by every evaluation
    lo, hi, n_out, n_expansions, ok = step_out(logp, args, frame, origin, v, 0.0, 0.0, w, -np.inf, log_t,
                                               rng, z, work.x, max_evals)
    if not ok:
        z[:] = origin
        return HitAndRunInfo(n_out, n_expansions, 0, True)
    _, lp_new, n_shrink, ok = shrink_interval(logp, args, frame, origin, v, 0.0, 0.0, lo, hi, log_t,
                                              rng, z, work.x, max_evals)
    if ok:  # z holds the accepted point
        state.log_f[0] = lp_new
    else:
        z[:] = origin
    return HitAndRunInfo(n_out + n_shrink, n_expansions, n_shrink - 1, not ok)


@_jit
def hit_and_run_chunk(logp, args, frame, rng, state, n_iter, width, adapt, max_evals, work, out):
    """``n_iter`` hit-and-run slice steps from ``state``, adapting w (``width``) when ``adapt``;
    writes each draw and its statistics into ``out`` (a ``HitAndRunDraws``)."""
    for it in range(n_iter):
        w = np.exp(width[0])
        info = hit_and_run_transition(logp, args, frame, rng, state, w, max_evals, work)
        if adapt:
            adapt_width(width, info.n_step_out)
        to_x(frame, state.z, out.x[it])
        out.lp[it] = state.log_f[0]
        out.n_logp[it] = info.n_logp
        out.n_step_out[it] = info.n_step_out
        out.n_shrink[it] = info.n_shrink
        out.w[it] = w
        out.exhausted[it] = info.exhausted


class HitAndRunChain(GPSSPilotChain):
    stat_dtypes = {"lp": np.float64, "n_step_out": np.int64, "n_shrink": np.int64, "w": np.float64,
                   "exhausted": np.bool_}

    def _reset_state(self):
        self.work = new_slice_work(self.target.dim)
        self.log_f = np.array([self._logp_at_z(self.work.x)])

    def _run_chunk(self, lo, hi, adapt):
        sl = slice(lo, hi)
        out = HitAndRunDraws(x=self.draws[sl], n_logp=self.n_logp[sl],
                             **{k: v[sl] for k, v in self.stats.items()})
        hit_and_run_chunk(self.target.logp_fn, self.target.kernel_args, self.frame, self.rng,
                          SliceState(self.z, self.log_f), hi - lo, self.width,
                          adapt and self.settings.adapt_w, self.settings.max_proposals, self.work, out)
