"""Warmup adaptation shared by the gradient-based samplers.

- Dual averaging of the step size (Nesterov 2009; Hoffman & Gelman 2014, JMLR 15, sec. 3.2.1),
  with Stan's constants and restarts.
- Welford accumulators for the metric, with Stan's regularisation towards 1e-3.
- Stan's windowed warmup schedule (init buffer, doubling slow windows, term buffer).
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


def regularized_variance(n: float, var: np.ndarray) -> np.ndarray:
    """Stan's shrinkage of a window's sample variance: (n/(n+5)) var + 1e-3 * 5/(n+5)."""
    shrink = 1e-3 * 5.0 / (n + 5.0)
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
    """Iterations of warmup at whose end the metric is updated (0-based, inclusive)."""

    init_buffer: int
    term_buffer: int
    window_ends: tuple

    @property
    def adapts_metric(self) -> bool:
        return len(self.window_ends) > 0

    def in_slow_window(self, i: int) -> bool:
        return self.adapts_metric and self.init_buffer <= i <= self.window_ends[-1]


def stan_schedule(num_warmup: int, init_buffer: int = 75, term_buffer: int = 50,
                  base_window: int = 25) -> WarmupSchedule:
    """Stan's ``windowed_adaptation``: slow windows double in size, and the last is stretched
    to meet the terminal buffer. Fewer than 20 warmup iterations adapt only the step size; when
    the three stages do not fit they shrink to 15% / rest / 10%."""
    if num_warmup < 20:
        return WarmupSchedule(num_warmup, 0, ())
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - (init_buffer + term_buffer)
    ends = []
    window = base_window
    start = init_buffer
    last = num_warmup - term_buffer  # first iteration of the terminal buffer
    while start < last:
        end = start + window
        if end + 2 * window > last:  # the window after this one would not fit: stretch to the end
            end = last
        ends.append(end - 1)
        start = end
        window *= 2
    return WarmupSchedule(init_buffer, term_buffer, tuple(ends))
