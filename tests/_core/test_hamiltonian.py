"""Leapfrog and momentum against exact answers (notes section 5, oracle 8)."""

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample._core.hamiltonian import (diagonal_metric, draw_momentum, find_reasonable_step_size, hamiltonian,
                                        leapfrog, make_metric, velocity)
from targets import gaussians


@numba.njit
def _std_normal_1d(x):
    return -0.5 * x[0] * x[0], -x.copy()


def gaussian_fn(cov):
    d = cov.shape[0]
    t = mc.Target(gaussians.mvn_logp, d, logp_grad=gaussians.mvn_logp_grad,
                  args=(np.zeros(d), np.ascontiguousarray(np.linalg.inv(cov))))
    return t.logp_grad_fn, t.kernel_args


def integrate(fn, args, q, p, step, n, metric):
    q, p = q.copy(), p.copy()
    lp, g = fn(q, *args)
    g = g.copy()
    v = np.empty_like(q)
    for _ in range(n):
        lp = leapfrog(fn, args, q, p, g, v, step, metric)
    return q, p, lp, v


@pytest.mark.parametrize("inv_metric", [np.array([1.0, 2.0, 0.5]),
                                        np.array([[1.0, 0.3, 0.1], [0.3, 2.0, 0.2], [0.1, 0.2, 0.5]])])
def test_leapfrog_is_reversible(inv_metric):
    cov = np.array([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.7]])
    fn, args = gaussian_fn(cov)
    rng = np.random.default_rng(1)
    q0, p0 = rng.normal(size=3), rng.normal(size=3)
    metric = make_metric(inv_metric)
    q1, p1, _, _ = integrate(fn, args, q0, p0, 0.3, 25, metric)
    q2, p2, _, _ = integrate(fn, args, q1, -p1, 0.3, 25, metric)
    np.testing.assert_allclose(q2, q0, atol=1e-10)
    np.testing.assert_allclose(-p2, p0, atol=1e-10)


@pytest.mark.parametrize("step", [0.1, 0.5, 1.2, 1.9])
def test_leapfrog_energy_error_on_standard_normal_is_exact(step):
    fn, args = gaussian_fn(np.eye(1))
    q0, p0 = np.array([0.7]), np.array([-1.3])
    h0 = 0.5 * q0[0] ** 2 + 0.5 * p0[0] ** 2
    for n in (1, 7, 40):
        q, p, lp, v = integrate(fn, args, q0, p0, step, n, make_metric(np.ones(1)))
        exact = step**2 / 8 * (q[0] ** 2 - q0[0] ** 2)  # leapfrog conserves p^2/2 + (1 - eps^2/4) q^2/2
        assert hamiltonian(lp, p, v) - h0 == pytest.approx(exact, abs=1e-12)


def test_leapfrog_one_step_matches_closed_form():
    fn, args = gaussian_fn(np.eye(1))
    eps, q0, p0 = 0.4, 0.9, 0.2
    q, p, _, _ = integrate(fn, args, np.array([q0]), np.array([p0]), eps, 1, make_metric(np.ones(1)))
    c, a = 1 - eps**2 / 2, 1 - eps**2 / 4
    assert q[0] == pytest.approx(c * q0 + eps * p0, abs=1e-14)
    assert p[0] == pytest.approx(-eps * a * q0 + c * p0, abs=1e-14)


def test_dense_momentum_is_solve_of_cholesky_transpose():
    m = np.array([[2.0, 0.5], [0.5, 1.0]])
    metric = make_metric(m)
    assert metric.dense
    p = np.empty(2)
    draw_momentum(np.random.default_rng(5), metric, p)
    z = np.random.default_rng(5).standard_normal(2)
    np.testing.assert_allclose(p, np.linalg.solve(metric.chol.T, z), rtol=1e-12)
    v = np.empty(2)
    velocity(metric, p, v)
    np.testing.assert_allclose(v, m @ p, rtol=1e-12)


def test_diag_momentum_has_metric_covariance():
    inv = np.array([4.0, 0.25])
    p = np.empty(2)
    rng = np.random.default_rng(0)
    draws = np.array([draw_momentum(rng, diagonal_metric(inv), p) or p.copy() for _ in range(40000)])
    # Var p = 1 / inv; the sample variance's relative sd is sqrt(2 / n) = 0.007
    np.testing.assert_allclose(draws.var(0), 1 / inv, rtol=5 * np.sqrt(2 / 40000))


def test_step_size_search_brackets_target_acceptance():
    fn, args = gaussian_fn(np.eye(1))
    q = np.array([0.5])
    lp, g = fn(q, *args)
    step, n = find_reasonable_step_size(fn, args, np.random.default_rng(0), q, lp, g.copy(), 1.0,
                                        make_metric(np.ones(1)), 0.8)
    assert n >= 2 and step in {2.0**k for k in range(-10, 11)}
    assert q[0] == 0.5  # the search never moves the chain


def test_make_metric_rejects_bad_metrics():
    with pytest.raises(ValueError, match="finite and positive"):
        make_metric(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="not positive definite"):
        make_metric(np.array([[1.0, 2.0], [2.0, 1.0]]))
