"""Warmup adaptation shared by the samplers.

- Dual averaging of the step size (Nesterov 2009; Hoffman & Gelman 2014, JMLR 15, sec. 3.2.1),
  with Stan's constants and restarts.
- Welford accumulators for the metric, with Stan's regularisation towards 1e-3.
- Stan's windowed warmup schedule (init buffer, doubling slow windows, term buffer), as a pure
  schedule that every windowed family runs its warmup on.
"""

from dataclasses import dataclass

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)

# Dual-averaging state, one float64 array per chain so that kernels can update it in place.
DA_LOG_STEP, DA_MU, DA_COUNT, DA_SBAR, DA_LOG_STEP_BAR = range(5)
DA_SIZE = 5


def dual_averaging_init(step_size: float) -> np.ndarray:
    """Fresh state with mu = log(10 * step_size), as Stan restarts after each slow window."""
    state = np.zeros(DA_SIZE)
    state[DA_LOG_STEP] = np.log(step_size)
    state[DA_MU] = np.log(10.0 * step_size)
    return state


@_jit
def dual_averaging_update(state, accept_stat, delta, gamma, t0, kappa):
    """One update with accept statistic ``accept_stat``; returns the next step size."""
    a = min(1.0, accept_stat)
    state[DA_COUNT] += 1.0
    k = state[DA_COUNT]
    eta = 1.0 / (k + t0)
    state[DA_SBAR] = (1.0 - eta) * state[DA_SBAR] + eta * (delta - a)
    x = state[DA_MU] - state[DA_SBAR] * np.sqrt(k) / gamma
    weight = k ** (-kappa)
    state[DA_LOG_STEP_BAR] = (1.0 - weight) * state[DA_LOG_STEP_BAR] + weight * x
    state[DA_LOG_STEP] = x
    return np.exp(x)


@_jit
def dual_averaging_restart(state, step_size):
    """``dual_averaging_init`` in place, for kernels that restart the adaptation themselves
    (nutpie's warmup restarts it once, when the metric first changes)."""
    for i in range(state.size):
        state[i] = 0.0
    state[DA_LOG_STEP] = np.log(step_size)
    state[DA_MU] = np.log(10.0 * step_size)


def dual_averaging_final(state) -> float:
    """The averaged step size used after warmup."""
    return float(np.exp(state[DA_LOG_STEP_BAR]))


# -- Welford accumulators --------------------------------------------------------------------


@_jit
def welford_update(count, mean, m2, x):
    """Add x to a running mean and per-coordinate sum of squared deviations. count is (1,)."""
    count[0] += 1.0
    n = count[0]
    for i in range(x.size):
        delta = x[i] - mean[i]
        mean[i] += delta / n
        m2[i] += delta * (x[i] - mean[i])


@_jit
def welford_update_dense(count, mean, m2, x):
    """As ``welford_update`` but with the full (d, d) matrix of cross deviations."""
    count[0] += 1.0
    n = count[0]
    d = x.size
    delta = np.empty(d)
    for i in range(d):
        delta[i] = x[i] - mean[i]
        mean[i] += delta[i] / n
    for i in range(d):
        for j in range(d):
            m2[i, j] += delta[i] * (x[j] - mean[j])


def regularized_variance(n: float, var: np.ndarray, towards=1e-3) -> np.ndarray:
    """Stan's shrinkage of a window's sample variance: (n/(n+5)) var + towards * 5/(n+5), with
    Stan's ``towards`` = 1e-3 by default (a scalar, or per coordinate for a diagonal)."""
    shrink = np.asarray(towards) * 5.0 / (n + 5.0)
    scaled = (n / (n + 5.0)) * var
    if var.ndim == 1:
        return scaled + shrink
    return scaled + shrink * np.eye(var.shape[0])


def grad_diag_variance(var_x: np.ndarray, var_g: np.ndarray) -> np.ndarray:
    """nutpie's diagonal inverse metric sqrt(Var x / Var grad log p), clamped to [1e-20, 1e20].
    For an independent Gaussian, Var grad = 1 / sigma^2, so this is sigma^2 exactly."""
    return np.clip(np.sqrt(var_x / np.maximum(var_g, 1e-300)), 1e-20, 1e20)


# -- Stan's windowed schedule ----------------------------------------------------------------


@dataclass(frozen=True)
class WarmupSchedule:
    """A windowed warmup as a pure schedule, shared by every family that adapts in windows (NUTS's
    metric, the slice samplers' frame, a particle family's pilot).

    ``windows`` are the slow windows as (begin, end) iteration ranges (end exclusive): a family
    collects draws inside a window and refits its metric or frame from them when the window
    closes. The schedule decides nothing else; the chain runs ``segments`` (pieces of a run that
    share one regime) and asks ``window_closing_at`` after each piece."""

    tune: int
    init_buffer: int
    term_buffer: int
    windows: tuple

    @property
    def window_ends(self) -> tuple:
        """The last iteration of each window (inclusive), as Stan states them."""
        return tuple(end - 1 for _, end in self.windows)

    @property
    def adapts_metric(self) -> bool:
        return len(self.windows) > 0

    @property
    def last_window_end(self) -> int:
        """The end (exclusive) of the last window, 0 without windows."""
        return self.windows[-1][1] if self.windows else 0

    def in_slow_window(self, i: int) -> bool:
        return self.adapts_metric and self.init_buffer <= i < self.last_window_end

    def window_closing_at(self, stop: int):
        """The window (begin, end) whose end is ``stop``, or None."""
        for window in self.windows:
            if window[1] == stop:
                return window
        return None

    def segments(self, start: int, stop: int):
        """Pieces [lo, hi) of [start, stop) cut where the regime changes: at the end of the initial
        buffer, at each window's end and at the end of warmup."""
        cuts = {self.tune} | {end for _, end in self.windows}
        if self.adapts_metric:
            cuts.add(self.init_buffer)
        lo = start
        for cut in sorted(c for c in cuts if start < c < stop) + [stop]:
            if cut > lo:
                yield lo, cut
                lo = cut

    def only_windows_of(self, min_length: int) -> "WarmupSchedule":
        """The same schedule keeping only the windows of at least ``min_length`` iterations (the
        others' draws still pass, but nothing is refitted from them)."""
        return WarmupSchedule(self.tune, self.init_buffer, self.term_buffer,
                              tuple(w for w in self.windows if w[1] - w[0] >= min_length))


def windowless_schedule(num_warmup: int) -> WarmupSchedule:
    """Warmup without slow windows (a fixed metric or frame): only its end is an event."""
    return WarmupSchedule(num_warmup, num_warmup, 0, ())


def stan_schedule(num_warmup: int, init_buffer: int = 75, term_buffer: int = 50,
                  base_window: int = 25) -> WarmupSchedule:
    """Stan's ``windowed_adaptation``: slow windows double in size, and the last is stretched
    to meet the terminal buffer. Fewer than 20 warmup iterations adapt only the step size; when
    the three stages do not fit they shrink to 15% / rest / 10%."""
    if num_warmup < 20:
        return windowless_schedule(num_warmup)
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - (init_buffer + term_buffer)
    windows = []
    window = base_window
    start = init_buffer
    last = num_warmup - term_buffer  # first iteration of the terminal buffer
    while start < last:
        end = start + window
        if end + 2 * window > last:  # the window after this one would not fit: stretch to the end
            end = last
        windows.append((start, end))
        start = end
        window *= 2
    return WarmupSchedule(num_warmup, init_buffer, term_buffer, tuple(windows))
