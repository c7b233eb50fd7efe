"""Adaptation arithmetic against closed forms (notes on NUTS, section 5, oracles 9-12)."""

import numpy as np
import pytest

from mcsample._core.adaptation import (DA_LOG_STEP_BAR, dual_averaging_final, dual_averaging_init,
                                       dual_averaging_update, grad_diag_variance,
                                       regularized_variance, stan_schedule, welford_update,
                                       welford_update_dense)

DELTA, GAMMA, T0, KAPPA = 0.8, 0.05, 10.0, 0.75


def run_dual_averaging(eps0, accept, n):
    state = dual_averaging_init(eps0)
    steps = [dual_averaging_update(state, accept, DELTA, GAMMA, T0, KAPPA) for _ in range(n)]
    return state, np.array(steps)


@pytest.mark.parametrize("accept", [0.2, 0.6, 0.95])
def test_dual_averaging_matches_telescoped_closed_form(accept):
    eps0 = 0.3
    _, steps = run_dual_averaging(eps0, accept, 50)
    k = np.arange(1, 51)
    sbar = (DELTA - accept) * k / (k + T0)
    x = np.log(10 * eps0) - sbar * np.sqrt(k) / GAMMA
    np.testing.assert_allclose(np.log(steps), x, rtol=1e-12, atol=1e-12)


def test_dual_averaging_at_target_accept_stays_at_ten_times_start():
    state, steps = run_dual_averaging(0.25, DELTA, 30)
    np.testing.assert_allclose(steps, 2.5, rtol=1e-12)
    assert dual_averaging_final(state) == pytest.approx(2.5, rel=1e-12)


def test_dual_averaging_first_average_is_first_iterate():
    state, steps = run_dual_averaging(1.0, 0.3, 1)
    assert np.exp(state[DA_LOG_STEP_BAR]) == pytest.approx(steps[0], rel=1e-12)


def test_dual_averaging_accept_above_one_is_clipped():
    _, a = run_dual_averaging(1.0, 1.0, 5)
    _, b = run_dual_averaging(1.0, 3.0, 5)
    np.testing.assert_array_equal(a, b)


def window_lengths(schedule):
    ends = np.array(schedule.window_ends)
    starts = np.r_[schedule.init_buffer, ends[:-1] + 1]
    return list(ends - starts + 1)


@pytest.mark.parametrize("warmup, init, windows, term", [
    (1000, 75, [25, 50, 100, 200, 500], 50),
    (500, 75, [25, 50, 100, 200], 50),
    (150, 75, [25], 50),
    (100, 15, [75], 10),
    (2000, 75, [25, 50, 100, 200, 400, 1100], 50),
])
def test_stan_schedule_table(warmup, init, windows, term):
    s = stan_schedule(warmup)
    assert (s.init_buffer, window_lengths(s), s.term_buffer) == (init, windows, term)
    assert s.window_ends[-1] == warmup - term - 1


def test_short_warmup_adapts_no_metric():
    assert not stan_schedule(19).adapts_metric
    assert stan_schedule(20).adapts_metric


def test_welford_matches_numpy():
    x = np.random.default_rng(3).normal(size=(57, 4)) * [1.0, 2.0, 3.0, 0.1] + 5.0
    count, mean, m2 = np.zeros(1), np.zeros(4), np.zeros(4)
    cd, meand, m2d = np.zeros(1), np.zeros(4), np.zeros((4, 4))
    for row in x:
        welford_update(count, mean, m2, row)
        welford_update_dense(cd, meand, m2d, row)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m2 / (count[0] - 1), x.var(0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(m2d / (cd[0] - 1), np.cov(x.T), rtol=1e-10)


def test_stan_regularisation_oracle():
    assert regularized_variance(25, np.array([4.0]))[0] == pytest.approx(3.3335, abs=1e-12)
    assert regularized_variance(25, np.array([0.0]))[0] == pytest.approx(1e-3 * 5 / 30, rel=1e-12)
    dense = regularized_variance(25, np.full((2, 2), 4.0))
    np.testing.assert_allclose(dense, [[3.3335, 25 / 30 * 4], [25 / 30 * 4, 3.3335]], rtol=1e-12)


def test_grad_diag_recovers_gaussian_variances_exactly():
    sigma = np.geomspace(0.1, 10, 7)
    x = np.random.default_rng(0).normal(size=(200, 7)) * sigma
    g = -x / sigma**2
    m = grad_diag_variance(x.var(0, ddof=1), g.var(0, ddof=1))
    np.testing.assert_allclose(m, sigma**2, rtol=1e-10)
