"""SK-ROCK against exact answers (notes on the multiscale samplers, section 4 item 5).

On f(y) = -lam y the step is linear, Y_new = A Y + B sqrt(Delta) xi, with A = R(p) the method's
stability polynomial T_s(w0 - w1 p) / T_s(w0), p = lam Delta: checked against the recursion, the
simulated stationary variance against B^2 Delta / (1 - A^2), no blow-up up to the published bound
(38 for s = 5), and exactly s target gradients a step."""

import numba
import numpy as np
import pytest

from mcsample._core.skrock import (chebyshev_t, linear_step_map, skrock_coefficients, skrock_step_in_frame,
                                   stability_bound, tilted_drift_in_frame)
from mcsample._core.slice import dense_frame, identity_frame
from mcsample.testing import models

SIGMA2 = 0.5
_TARGET = models.gaussian(np.zeros(1), np.full(1, SIGMA2)).target
_FN, _ARGS = _TARGET.logp_grad_fn, _TARGET.kernel_args
_PLAIN = identity_frame(1)  # the plain step on pi


@numba.njit(cache=True)
def _run(fn, args, frame, rng, n, steps, delta, mu, nu, kappa, k, beta):
    """n independent 1-D chains of SK-ROCK; returns the final states and the gradient count."""
    out = np.empty(n)
    y = np.empty(1)
    m = np.zeros(1)
    work = np.zeros((9, 1))
    calls = 0
    for j in range(n):
        y[0] = rng.standard_normal()
        for _ in range(steps):
            calls += skrock_step_in_frame(fn, args, frame, rng, y, delta, mu, nu, kappa, m, k, 0.0, beta, 1.0, work)[0]
        out[j] = y[0]
    return out, calls


def test_coefficients_follow_the_chebyshev_recursion():
    c = skrock_coefficients(5, 0.05)
    w0 = 1 + 0.05 / 25
    h = 1e-7
    w1 = chebyshev_t(5, w0) / ((chebyshev_t(5, w0 + h) - chebyshev_t(5, w0 - h)) / (2 * h))
    assert c.mu[1] * w0 == pytest.approx(w1, rel=1e-6)
    for j in range(2, 6):
        assert c.kappa[j] == pytest.approx(-chebyshev_t(j - 2, w0) / chebyshev_t(j, w0), rel=1e-12)
    with pytest.raises(ValueError):
        skrock_coefficients(0)
    with pytest.raises(ValueError):
        skrock_coefficients(5, 1.5)


@pytest.mark.parametrize("s", [1, 3, 5, 9])
def test_linear_map_is_the_stability_polynomial(s):
    c = skrock_coefficients(s)
    w0, w1 = 1 + 0.05 / s**2, c.mu[1] * (1 + 0.05 / s**2)
    for p in [0.0, 0.3, 2.0, 0.9 * stability_bound(s) if s > 1 else 1.5]:
        a, _ = linear_step_map(c, p)
        t_s = np.polynomial.chebyshev.Chebyshev.basis(s)
        assert a == pytest.approx(t_s(w0 - w1 * p) / t_s(w0), abs=1e-12)


def test_stable_up_to_the_published_bound_and_not_far_beyond():
    c = skrock_coefficients(5)
    bound = stability_bound(5)
    assert bound == pytest.approx(37.65)
    for p in np.linspace(1e-3, bound, 400):
        a, _ = linear_step_map(c, p)
        assert abs(a) < 1.0, p
    assert abs(linear_step_map(c, 1.05 * 2 * (1 + 0.05 / 25) / (c.mu[1] * (1 + 0.05 / 25)))[0]) > 1.0


@pytest.mark.parametrize("p", [0.2, 5.0, 37.0])
def test_stationary_variance_matches_the_linear_recursion(p):
    """The simulated variance equals B^2 Delta / (1 - A^2); close to sigma^2 for small p, and
    within Delta of it (an O(Delta) absolute error) however stiff."""
    c = skrock_coefficients(5)
    delta = p * SIGMA2
    n = 4000
    a, b = linear_step_map(c, p)
    steps = int(np.ceil(np.log(1e-4) / np.log(abs(a)) / 2))  # the start's excess decays to 1e-4
    draws, calls = _run(_FN, _ARGS, _PLAIN, np.random.default_rng(7), n, steps, delta, c.mu, c.nu, c.kappa, 0.0, 1.0)
    assert calls == n * steps * 5  # exactly s gradients a step
    exact = b * b * delta / (1 - a * a)
    assert abs(draws.var() - exact) < 4 * exact * np.sqrt(2 / n)
    assert abs(exact - SIGMA2) < delta
    if p < 1:
        assert abs(exact - SIGMA2) < 0.02 * SIGMA2


def test_pure_pull_spends_no_gradient():
    c = skrock_coefficients(5)
    draws, calls = _run(_FN, _ARGS, _PLAIN, np.random.default_rng(1), 4000, 30, 0.05, c.mu, c.nu, c.kappa, 1 / SIGMA2, 0.0)
    assert calls == 0
    a, b = linear_step_map(c, 0.05 / SIGMA2)
    exact = b * b * 0.05 / (1 - a * a)
    assert abs(draws.var() - exact) < 4 * exact * np.sqrt(2 / 4000)


def test_tilted_drift_gaussian_and_student_pulls():
    y, m = np.array([0.5, -1.0]), np.array([1.0, 1.0])
    target = models.gaussian(np.zeros(2), np.full(2, SIGMA2)).target
    out, scratch, x, g = np.empty(2), np.empty(2), np.empty(2), np.empty(2)
    k, beta, gamma = 2.0, 0.7, 1.3
    plain = identity_frame(2)
    n = tilted_drift_in_frame(target.logp_grad_fn, target.kernel_args, plain, y, m, k, 0.0, beta, gamma, scratch, x,
                              g, out)
    np.testing.assert_allclose(out, k * (m - y) + beta * (-gamma * y / SIGMA2), rtol=1e-14)
    assert n == 1
    tau = 3.0
    tilted_drift_in_frame(target.logp_grad_fn, target.kernel_args, plain, y, m, k, 1 / tau, 0.0, gamma, scratch, x,
                          g, out)
    np.testing.assert_allclose(out, k * (m - y) / (1 + np.sum((m - y) ** 2) / tau), rtol=1e-14)


def test_step_in_frame_is_the_linear_map_and_its_secant_sees_the_curvature():
    """``skrock_step_in_frame``: with the identity frame on f(y) = -y / sigma^2 the step is the
    linear map Y_new = A Y + B sqrt(Delta) xi of ``linear_step_map`` (xi the step's one normal
    draw); in a dense frame x = c + L u on N(c, L L^T) the target in u is N(0, I), so the step
    equals the identity-frame step on N(0, I); on the linear drift (stable step) the secant
    estimate is exactly 1 / sigma^2, and beyond the bound it is still the curvature (what the
    multiscale guard compares with the bound)."""
    c = skrock_coefficients(5)
    m = np.zeros(1)
    for delta in (0.3, 30.0):
        y = np.array([0.7])
        n, lip = skrock_step_in_frame(_FN, _ARGS, _PLAIN, np.random.default_rng(4), y, delta, c.mu,
                                      c.nu, c.kappa, m, 0.0, 0.0, 1.0, 1.0, np.zeros((9, 1)))
        a, b = linear_step_map(c, delta / SIGMA2)
        xi = np.random.default_rng(4).standard_normal()
        assert y[0] == pytest.approx(a * 0.7 + b * np.sqrt(delta) * xi, rel=1e-9, abs=1e-12) and n == 5
        assert lip == pytest.approx(1.0 / SIGMA2, rel=1e-9)
    # a dense frame (lower-triangular L; diagonal here so that the catalogue's Gaussian serves)
    centre, chol = np.array([1.0, -2.0]), np.array([[2.0, 0.0], [0.0, 0.3]])
    t2 = models.gaussian(centre, np.diag(chol) ** 2).target
    std = models.gaussian(np.zeros(2), np.ones(2)).target
    y_u, y_std = np.array([0.4, -0.2]), np.array([0.4, -0.2])
    skrock_step_in_frame(t2.logp_grad_fn, t2.kernel_args, dense_frame(centre, chol), np.random.default_rng(9), y_u,
                         0.5, c.mu, c.nu, c.kappa, np.zeros(2), 0.0, 0.0, 1.0, 1.0, np.zeros((9, 2)))
    skrock_step_in_frame(std.logp_grad_fn, std.kernel_args, identity_frame(2), np.random.default_rng(9), y_std, 0.5,
                         c.mu, c.nu, c.kappa, np.zeros(2), 0.0, 0.0, 1.0, 1.0, np.zeros((9, 2)))
    np.testing.assert_allclose(y_u, y_std, rtol=1e-12, atol=1e-12)
