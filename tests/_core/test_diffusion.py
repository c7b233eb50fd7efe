"""Forward process, time grids and the reverse exponential integrator against closed forms.

Oracle (notes on rdMC, section 4 item 2): with the exact score of a Gaussian target and the exact
p_T as the start, the integrator must deliver p_delta = N(a_delta mu, a_delta^2 Sigma +
sigma_delta^2); dropping the reverse drift's factor 2 (the public SLIPS code's slip) must fail."""

import numba
import numpy as np
import pytest

from mcsample._core.diffusion import (exponential_integrator_step, ou_mean_factor, ou_variance,
                                      score_from_posterior_mean, time_grid,
                                      capped_switch_time)

MU, SIGMA2 = 3.0, 0.25


def test_ou_transition_constants():
    s = np.array([1e-8, 0.1, 2.0])
    np.testing.assert_allclose([ou_mean_factor(v) for v in s], np.exp(-s), rtol=1e-15)
    np.testing.assert_allclose([ou_variance(v) for v in s], 1 - np.exp(-2 * s), rtol=1e-7)
    assert ou_variance(1e-12) == pytest.approx(2e-12, rel=1e-9)  # no cancellation near 0


@pytest.mark.parametrize("kind", ["uniform", "geometric"])
def test_time_grid_runs_from_horizon_to_early_stop(kind):
    g = time_grid(2.0, 0.01, 50, kind)
    assert g.size == 51 and g[0] == 2.0 and g[-1] == 0.01 and np.all(np.diff(g) < 0)
    if kind == "geometric":
        np.testing.assert_allclose(g[1:] / g[:-1], (0.01 / 2.0) ** (1 / 50), rtol=1e-12)


@pytest.mark.parametrize("n_steps", [14, 30, 38, 60])
def test_capped_geometric_grid(n_steps):
    """Equal steps of max_step above s*, equal ratios below, decreasing steps throughout, and the
    plain geometric grid back when its first step is short enough."""
    horizon, delta, cap = 6.0, 0.0025, 0.5
    g = time_grid(horizon, delta, n_steps, "geometric", max_step=cap)
    steps = -np.diff(g)
    assert g.size == n_steps + 1 and g[0] == horizon and g[-1] == delta
    assert np.all(steps > 0) and steps.max() <= cap * (1 + 1e-9) and np.all(np.diff(steps) <= 1e-12)
    s_star = capped_switch_time(horizon, delta, n_steps, cap)
    above, below = g[g >= s_star], g[g <= s_star]
    np.testing.assert_allclose(-np.diff(above)[:-1], cap, rtol=1e-9)  # the step across s* is shorter
    ratios = below[1:] / below[:-1]
    np.testing.assert_allclose(ratios[1:], ratios[1], rtol=1e-9)
    np.testing.assert_array_equal(time_grid(horizon, 0.01, 100, "geometric", max_step=cap),
                                  time_grid(horizon, 0.01, 100, "geometric"))


@pytest.mark.parametrize("bad", [dict(early_stop=0.0), dict(early_stop=3.0), dict(n_steps=0), dict(kind="log"),
                                 dict(kind="geometric", max_step=0.0)])
def test_time_grid_rejects_bad_input(bad):
    kw = dict(horizon=2.0, early_stop=0.01, n_steps=10, kind="uniform") | bad
    with pytest.raises(ValueError):
        time_grid(**kw)


def test_tweedie_score_of_a_gaussian():
    """For p = N(mu, Sigma): m_s(x) = (Sigma^-1 mu + a x / var) / (Sigma^-1 + a^2 / var), and
    (a m - x) / var must equal the closed-form score -(x - a mu) / (a^2 Sigma + var)."""
    s, x = 0.7, np.array([0.3, -1.2])
    a, var = np.exp(-s), 1 - np.exp(-2 * s)
    mean = (MU / SIGMA2 + a * x / var) / (1 / SIGMA2 + a**2 / var)
    out = np.empty(2)
    score_from_posterior_mean(x, mean, a, var, out)
    np.testing.assert_allclose(out, -(x - a * MU) / (a**2 * SIGMA2 + var), rtol=1e-12)


@numba.njit
def _reverse_gaussian(rng, n, grid, mu, sigma2, drift_factor):
    """n particles from the exact p_T through the grid with the exact score of N(mu, sigma2)."""
    out = np.empty(n)
    y = np.empty(1)
    v = np.empty(1)
    a_T = np.exp(-grid[0])
    for j in range(n):
        y[0] = a_T * mu + np.sqrt(a_T**2 * sigma2 + 1 - a_T**2) * rng.standard_normal()
        for k in range(grid.size - 1):
            a = np.exp(-grid[k])
            v[0] = -(y[0] - a * mu) / (a * a * sigma2 + 1 - a * a)
            exponential_integrator_step(rng, y, v, grid[k] - grid[k + 1], drift_factor)
        out[j] = y[0]
    return out


@pytest.mark.parametrize("horizon", [-np.log(0.8), 2.0])
def test_exact_score_reproduces_p_delta_and_the_factor_one_mutant_fails(horizon, seed_offset):
    n, delta = 20000, 0.01
    grid = time_grid(horizon, delta, 400, "geometric")
    a = np.exp(-delta)
    mean, var = a * MU, a**2 * SIGMA2 + 1 - a**2
    # Monte Carlo standard errors of the mean and the variance of n Gaussian draws; 5 of them
    # bound both for this seed sweep (the 400-step discretisation bias is below 1e-3 here)
    se_mean, se_var = np.sqrt(var / n), var * np.sqrt(2 / (n - 1))
    y = _reverse_gaussian(np.random.default_rng(7 + seed_offset), n, grid, MU, SIGMA2, 2.0)
    assert abs(y.mean() - mean) < 5 * se_mean
    assert abs(y.var(ddof=1) - var) < 5 * se_var
    mutant = _reverse_gaussian(np.random.default_rng(7 + seed_offset), n, grid, MU, SIGMA2, 1.0)
    assert abs(mutant.var(ddof=1) - var) > 20 * se_var  # 0.55 or 1.6 against 0.25


# -- diffusion paths and the critically damped process (multiscale samplers, notes 3.6 and 4.6) --

from scipy.integrate import quad_vec  # noqa: E402
from scipy.linalg import expm  # noqa: E402

from mcsample._core.diffusion import (cld_conditional, cld_drift_matrix, cld_mass, cld_transition,  # noqa: E402
                                      linear_sde_transition, ou_lambda_grid, path_schedule)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_path_schedules_run_from_0_to_1_monotonically(kind):
    t = np.linspace(0, 1, 101)
    lam = path_schedule(t, kind)
    assert lam[0] == 0.0 and lam[-1] == pytest.approx(1.0) and np.all(np.diff(lam) > 0)
    if kind == "cosine":  # flat at both ends
        assert lam[1] < 0.05 * t[1] and 1 - lam[-2] < 0.05 * t[1]
    with pytest.raises(ValueError):
        path_schedule(t, "sigmoid")


def test_ou_lambda_grid_is_uniform_in_lambda():
    s = ou_lambda_grid(0.01, 0.99, 10)
    np.testing.assert_allclose(np.diff(np.exp(-2 * s)), 0.098, rtol=1e-12)
    assert np.all(np.diff(s) < 0)


@pytest.mark.parametrize("friction", [0.5, 2.0])
def test_cld_closed_forms(friction):
    """exp(A s) in closed form equals expm; the covariance from a point is the Lyapunov solution
    Sigma_inf - e Sigma_inf e^T and the integral of e D e^T; Van Loan's transition agrees."""
    a = cld_drift_matrix(friction)
    m = cld_mass(friction)
    diffusion = np.diag([0.0, 2 * friction])
    for s in [0.01, 0.4, 3.0]:
        np.testing.assert_allclose(cld_transition(s, friction), expm(a * s), rtol=1e-10, atol=1e-14)
        e = expm(a * s)
        integral, _ = quad_vec(lambda u: expm(a * u) @ diffusion @ expm(a * u).T, 0, s, epsabs=1e-13)
        np.testing.assert_allclose(integral, np.diag([1, m]) - e @ np.diag([1, m]) @ e.T, atol=1e-10)
        c, cov = cld_conditional(s, friction, v0_var=1.0)
        np.testing.assert_allclose(cov, integral + e @ np.diag([0, 1.0]) @ e.T, atol=1e-10)
        np.testing.assert_allclose(c, e[:, 0])
        if s < 1:  # Van Loan's block loses digits once exp(-A s) is huge; the samplers' steps are short
            e2, q2 = linear_sde_transition(a, diffusion, s)
            np.testing.assert_allclose(e2, e, rtol=1e-9, atol=1e-14)
            np.testing.assert_allclose(q2, integral, atol=1e-10)


def test_cld_velocity_score_from_the_posterior_mean_is_the_exact_gaussian_score():
    """For pi = N(mu, S): the posterior-mean form -[P((x, v) - y_hat c)]_v equals the exact score
    of the Gaussian marginal N(mu c, S c c^T + Sigma) (notes 4.6)."""
    mu, var, friction, s = 2.0, 0.3, 1.0, 0.7
    c, cov = cld_conditional(s, friction)
    p = np.linalg.inv(cov)
    z = np.array([0.4, -0.9])
    post_prec = 1 / var + c @ p @ c
    y_hat = (mu / var + c @ p @ z) / post_prec
    score_v = -(p @ (z - y_hat * c))[1]
    exact = -np.linalg.solve(var * np.outer(c, c) + cov, z - mu * c)[1]
    assert score_v == pytest.approx(exact, abs=1e-14)
