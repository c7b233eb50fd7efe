"""Langevin splittings against exact answers.

On a Gaussian target every step is a linear map plus Gaussian noise, so the chain's stationary
covariance solves a discrete Lyapunov equation P = M P M^T + Q exactly, at any step size: the
simulated variance must match it within its Monte Carlo error (not the target's variance, which
the discretisation misses by O(h^2) for OBABO and O(h) for ULA)."""

import numba
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from mcsample.testing import models
from mcsample._core.langevin import a_step, b_step, o_step, obabo_step, ula_chain_step, ula_step

SIGMA2 = 0.5


# the kernels see the target as the library passes it (a first-class function), so the test
# drivers below compile once and are cached like the library's own kernels
_TARGET = models.gaussian(np.zeros(1), np.full(1, SIGMA2)).target
_FN, _ARGS = _TARGET.logp_grad_fn, _TARGET.kernel_args
_TARGET2 = models.gaussian(np.zeros(2), np.full(2, SIGMA2)).target


@numba.njit(cache=True)
def _run_obabo(fn, args, rng, n, steps, h, friction, inv_mass, sigma2):
    """n independent 1-D chains of OBABO on N(0, sigma2) from the exact stationary start's
    neighbourhood; returns the final (x, v)."""
    out = np.empty((n, 2))
    x = np.empty(1)
    v = np.empty(1)
    g = np.empty(1)
    m = np.full(1, inv_mass)
    for j in range(n):
        x[0] = np.sqrt(sigma2) * rng.standard_normal()
        v[0] = rng.standard_normal() / np.sqrt(inv_mass)
        g[0] = -x[0] / sigma2
        for _ in range(steps):
            obabo_step(fn, args, rng, x, v, g, h, friction, m)
        out[j, 0] = x[0]
        out[j, 1] = v[0]
    return out


@numba.njit(cache=True)
def _run_ula(fn, args, rng, n, steps, h, sigma2):
    out = np.empty(n)
    x = np.empty(1)
    g = np.empty(1)
    for j in range(n):
        x[0] = np.sqrt(sigma2) * rng.standard_normal()
        g[0] = -x[0] / sigma2
        for _ in range(steps):
            ula_chain_step(fn, args, rng, x, g, h)
        out[j] = x[0]
    return out


def obabo_stationary_cov(h, friction, inv_mass, sigma2):
    c = np.exp(-friction * inv_mass * h / 2)
    s2 = (1 - c * c) / inv_mass
    O = np.diag([1.0, c])
    B = np.array([[1.0, 0.0], [-h / (2 * sigma2), 1.0]])
    A = np.array([[1.0, h * inv_mass], [0.0, 1.0]])
    inner = O @ B @ A @ B
    noise = np.diag([0.0, s2])
    return solve_discrete_lyapunov(inner @ O, inner @ noise @ inner.T + noise)


def _var_se(var, n):
    return var * np.sqrt(2.0 / (n - 1))


@pytest.mark.parametrize("h, friction, inv_mass", [(0.3, 1.0, 1.0), (0.5, 4.0, 0.5), (0.8, 0.2, 2.0)])
def test_obabo_stationary_covariance_matches_lyapunov(h, friction, inv_mass):
    n = 10000
    draws = _run_obabo(_FN, _ARGS, np.random.default_rng(1), n, 100, h, friction, inv_mass, SIGMA2)
    exact = obabo_stationary_cov(h, friction, inv_mass, SIGMA2)
    assert abs(draws[:, 0].mean()) < 4 * np.sqrt(exact[0, 0] / n)
    got = np.var(draws[:, 0]), np.var(draws[:, 1])
    for k in range(2):
        assert abs(got[k] - exact[k, k]) < 4 * _var_se(exact[k, k], n), (k, got[k], exact[k, k])
    if h == 0.8:  # the discretisation error is resolved here, so the check can tell a wrong splitting
        assert abs(exact[0, 0] - SIGMA2) > 8 * _var_se(SIGMA2, n)


def test_o_step_is_the_exact_ou_transition():
    rng = np.random.default_rng(3)
    n, friction, t = 5000, 1.5, 0.4
    inv_mass = np.array([0.5, 2.0])
    v0 = np.array([1.0, -2.0])
    out = np.empty((n, 2))
    for j in range(n):
        v = v0.copy()
        o_step(rng, v, friction, inv_mass, t)
        out[j] = v
    c = np.exp(-friction * inv_mass * t)
    var = (1 - c**2) / inv_mass
    np.testing.assert_array_less(np.abs(out.mean(0) - c * v0), 4 * np.sqrt(var / n))
    np.testing.assert_array_less(np.abs(out.var(0) - var), 4 * _var_se(var, n))


def test_zero_friction_obabo_is_velocity_verlet():
    """With friction 0 the O steps are the identity: OBABO is one leapfrog step."""
    rng = np.random.default_rng(0)
    x, v, m = np.array([0.7, -0.2]), np.array([0.3, 1.1]), np.array([1.0, 0.5])
    g = -x / SIGMA2
    x1, v1 = x.copy(), v.copy()
    lp = obabo_step(_TARGET2.logp_grad_fn, _TARGET2.kernel_args, rng, x1, v1, g.copy(), 0.1, 0.0, m)
    vh = v + 0.05 * (-x / SIGMA2)
    xe = x + 0.1 * m * vh
    ve = vh + 0.05 * (-xe / SIGMA2)
    np.testing.assert_allclose(x1, xe, rtol=1e-14)
    np.testing.assert_allclose(v1, ve, rtol=1e-14)
    assert lp == pytest.approx(-0.5 * np.sum(xe**2) / SIGMA2)


def test_pieces_compose_to_obabo():
    """o_step, b_step, a_step in OBABO order reproduce obabo_step draw for draw."""
    x, v, m = np.array([0.4]), np.array([-0.3]), np.array([1.3])
    g = -x / SIGMA2
    x1, v1 = x.copy(), v.copy()
    obabo_step(_FN, _ARGS, np.random.default_rng(9), x1, v1, g.copy(), 0.2, 0.8, m)
    rng = np.random.default_rng(9)
    x2, v2 = x.copy(), v.copy()
    o_step(rng, v2, 0.8, m, 0.1)
    b_step(v2, g, 0.1)
    a_step(x2, v2, m, 0.2)
    b_step(v2, -x2 / SIGMA2, 0.1)
    o_step(rng, v2, 0.8, m, 0.1)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(v1, v2)


def test_ula_stationary_variance():
    """ULA on N(0, s2): x <- (1 - h/s2) x + sqrt(2h) xi has stationary variance s2 / (1 - h / (2 s2))."""
    n, h = 10000, 0.2
    draws = _run_ula(_FN, _ARGS, np.random.default_rng(2), n, 60, h, SIGMA2)
    exact = SIGMA2 / (1 - h / (2 * SIGMA2))
    assert abs(draws.var() - exact) < 4 * _var_se(exact, n)
    assert abs(exact - SIGMA2) > 8 * _var_se(SIGMA2, n)  # the bias is resolved: h matters


def test_ula_step_moves_by_the_force_and_the_noise():
    rng = np.random.default_rng(4)
    x = np.zeros(3)
    ula_step(rng, x, np.array([1.0, 0.0, -2.0]), 0.1)
    xi = np.random.default_rng(4).standard_normal(3)
    np.testing.assert_allclose(x, 0.1 * np.array([1.0, 0.0, -2.0]) + np.sqrt(0.2) * xi, rtol=1e-14)
