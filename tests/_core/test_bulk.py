"""The gradient-free search for the bulk (mcsample/_core/bulk.py)."""

import numba
import numpy as np
import pytest
from scipy import stats

import mcsample as mc
from mcsample._core.bulk import cma_constants, find_bulk


@numba.njit
def gaussian_logp(x, mu, prec):
    r = x - mu
    return -0.5 * r @ (prec @ r)


@numba.njit
def funnel_logp(x):
    """Neal's funnel: v ~ N(0, 3^2), x_i | v ~ N(0, e^v). Its density is largest at x = 0,
    v = -(d - 1) * 9 / 2 (v = -40.5 in d = 10), far below its mass."""
    v = x[0]
    rest = x[1:]
    return -v * v / 18.0 - 0.5 * rest.size * v - 0.5 * np.sum(rest * rest) * np.exp(-v)


def offset_gaussian(d=5):
    """Mean 50 (25 start-scales away), sds from 0.1 to 10 along random axes."""
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    cov = q @ np.diag(np.logspace(-1, 1, d) ** 2) @ q.T
    mu = np.full(d, 50.0)
    return mc.Target(gaussian_logp, dim=d, args=(mu, np.linalg.inv(cov))), mu, cov


def test_lands_in_the_bulk_of_an_offset_badly_scaled_gaussian():
    target, mu, cov = offset_gaussian()
    prec, d = np.linalg.inv(cov), target.dim
    radius = np.sqrt(stats.chi2.ppf(0.999, d))  # 99.9% of the target's mass lies within this
    whiten = np.linalg.inv(np.linalg.cholesky(cov))
    conditions = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        bulk = find_bulk(target.logp_fn, target.kernel_args, rng.uniform(-2, 2, d), rng)
        assert np.sqrt((bulk.point - mu) @ prec @ (bulk.point - mu)) < radius
        assert bulk.lp == pytest.approx(gaussian_logp(bulk.point, mu, prec))
        conditions.append(np.linalg.cond(whiten @ bulk.cov @ whiten.T))
    # the search's covariance, as a frame, is far better conditioned than the identity (1e4)
    assert np.median(conditions) < 100


def test_does_not_follow_a_funnel_into_its_neck():
    d = 10
    target = mc.Target(funnel_logp, dim=d)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        bulk = find_bulk(target.logp_fn, target.kernel_args, rng.uniform(-2, 2, d), rng)
        # v has sd 3: -9 is the 0.13% quantile; the mode is at -40.5
        assert bulk.mean[0] > -9.0 and bulk.point[0] > -9.0


def test_same_generator_state_same_result_and_the_budget_is_kept():
    target, _, _ = offset_gaussian()
    runs = [find_bulk(target.logp_fn, target.kernel_args, np.zeros(5), np.random.default_rng(3), max_evals=500)
            for _ in range(2)]
    assert np.array_equal(runs[0].point, runs[1].point) and np.array_equal(runs[0].cov, runs[1].cov)
    assert runs[0].n_evals <= 500
    assert runs[0].n_evals % cma_constants(5).lam == 0
    with pytest.raises(ValueError, match="less than one generation"):
        find_bulk(target.logp_fn, target.kernel_args, np.zeros(5), np.random.default_rng(0), max_evals=3)


@numba.njit
def half_line_logp(x):
    """An exponential on x > 0 in each coordinate: -inf outside the support."""
    if np.any(x <= 0.0):
        return -np.inf
    return -np.sum(x)


def test_a_support_boundary_is_respected():
    target = mc.Target(half_line_logp, dim=3, check_grad=False, test_point=np.ones(3))
    rng = np.random.default_rng(0)
    bulk = find_bulk(target.logp_fn, target.kernel_args, np.full(3, 0.5), rng)
    assert np.all(bulk.point > 0) and np.isfinite(bulk.elbo)


@numba.njit
def two_bumps_logp(x):
    """N(-5 e_1, 0.1^2 I) + N(5 e_1, 0.1^2 I) in d = 2."""
    a = -0.5 * ((x[0] + 5.0) ** 2 + x[1] ** 2) / 0.01
    b = -0.5 * ((x[0] - 5.0) ** 2 + x[1] ** 2) / 0.01
    m = max(a, b)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


def test_pooled_bulk_and_searches_returns_the_pooled_moments_and_each_searchs_mode():
    """The pooled covariance spans both bumps (variance ~25 along x_1); each search's covariance is
    its bump's (variance 0.01; the searches' are rough: 0.6-6x here, so the bar is 10x either way),
    not the pair's; and pooled_bulk returns
    the same moments from the same generator state."""
    from mcsample._core.bulk import pooled_bulk, pooled_bulk_and_searches
    starts = np.array([[-4.0, 0.0], [4.0, 0.0], [-6.0, 1.0], [6.0, -1.0]])
    mean, cov, n, found = pooled_bulk_and_searches(two_bumps_logp, (), starts, np.random.default_rng(3))
    assert len(found) == 4 and 15.0 < cov[0, 0] < 40.0
    for b in found:
        assert 0.001 < np.linalg.eigvalsh(b.cov).max() < 0.1 and abs(abs(b.mean[0]) - 5.0) < 0.2
    mean2, cov2, n2 = pooled_bulk(two_bumps_logp, (), starts, np.random.default_rng(3))
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(cov, cov2)
    assert n == n2


def test_high_dimension_decomposes_the_covariance_every_few_generations_and_still_lands(monkeypatch):
    """From d = 6 the covariance is decomposed every lambda / (c_1 + c_mu) / d / 10 generations
    (6 at d = 30), not every generation (the O(d^3) cost that made the search take minutes at
    d = 200), and the search still lands in the bulk of the offset, badly scaled Gaussian."""
    from mcsample._core import bulk as bulk_module
    assert [bulk_module.eigendecomposition_interval(cma_constants(d), d) for d in (2, 5, 6, 30, 200)] == \
        [1, 1, 2, 6, 42]
    target, mu, cov = offset_gaussian(d=30)
    prec, d = np.linalg.inv(cov), target.dim
    radius = np.sqrt(stats.chi2.ppf(0.999, d))
    calls = []
    eigh = np.linalg.eigh
    monkeypatch.setattr(bulk_module.np.linalg, "eigh", lambda a: calls.append(1) or eigh(a))
    for seed in range(3):
        calls.clear()
        rng = np.random.default_rng(seed)
        found = find_bulk(target.logp_fn, target.kernel_args, rng.uniform(-2, 2, d), rng)
        assert np.sqrt((found.point - mu) @ prec @ (found.point - mu)) < radius
        assert len(calls) == -(-found.generations // 6)


@numba.njit
def two_gaussians_logp(x, centre):
    """Equal Gaussians (sd 0.5) at +-centre."""
    a = -2.0 * np.sum((x - centre) ** 2)
    b = -2.0 * np.sum((x + centre) ** 2)
    m = max(a, b)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


def test_search_rounds_run_until_two_searches_end_in_different_modes():
    """``search_rounds``: round r starts from ``starts(rng)``; a round whose searches all end in the
    mode the others found is followed by another, up to ``rounds``; once two searches are
    ``separated`` no further round runs. Starts: 3 near -c, then 3 near +c, then near +c again."""
    from mcsample._core.bulk import search_rounds, separated
    centre = np.array([4.0, 4.0])
    target = mc.Target(two_gaussians_logp, dim=2, args=(centre,))
    calls = []

    def starts(rng):
        calls.append(len(calls))
        sign = -1.0 if len(calls) == 1 else 1.0
        return sign * centre + 0.1 * rng.standard_normal((3, 2))
    found, n_evals = search_rounds(target.logp_fn, target.kernel_args, starts, np.random.default_rng(0), rounds=4,
                                   max_evals=600)
    assert calls == [0, 1] and len(found) == 6 and separated(found) and not separated(found[:3])
    assert n_evals == sum(b.n_evals for b in found) and n_evals <= 6 * 600
    assert np.all(np.sign([b.mean[0] for b in found]) == [-1, -1, -1, 1, 1, 1])

    def one_mode(rng):
        calls.append(len(calls))
        return -centre + 0.1 * rng.standard_normal((3, 2))
    calls.clear()  # every search in one mode: every round runs
    found, _ = search_rounds(target.logp_fn, target.kernel_args, one_mode, np.random.default_rng(0), rounds=3,
                             max_evals=600)
    assert calls == [0, 1, 2] and len(found) == 9 and not separated(found)


def test_separated_when_two_searches_ended_in_different_modes():
    """``separated``: the rule for another round of ``search_rounds``: some two searches' means
    more than 3 sds a coordinate apart."""
    from mcsample._core.bulk import Bulk, separated

    def bulk(m, sd=0.2):
        return Bulk(np.full(8, m), sd**2 * np.eye(8), None, 0.0, 0.0, 0, 0)
    assert not separated([bulk(0.0), bulk(0.1), bulk(-0.1)])
    assert separated([bulk(0.0), bulk(0.1), bulk(2.0)])
