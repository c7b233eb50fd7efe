"""Distances against closed forms."""

import numpy as np
import pytest

from mcsample import metrics


def test_sliced_w2_of_shifted_gaussians():
    """For N(0, I) vs N(m, I) every projection is a shift by u.m, so SW2^2 = E(u.m)^2 = |m|^2/d."""
    rng = np.random.default_rng(0)
    m = np.array([1.0, -2.0, 0.5])
    x = rng.standard_normal((50000, 3))
    y = rng.standard_normal((50000, 3)) + m
    expected = np.linalg.norm(m) / np.sqrt(3)
    assert metrics.sliced_wasserstein2(x, y, n_projections=500) == pytest.approx(expected, rel=0.05)


def test_sliced_w2_of_identical_samples_is_zero():
    x = np.random.default_rng(1).standard_normal((1000, 4))
    assert metrics.sliced_wasserstein2(x, x) == 0.0


def test_mode_weights_and_total_variation():
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[0.1, 0.0], [9.0, 1.0], [10.5, -1.0], [-1.0, 0.0]])
    w = metrics.mode_weights(x, centres)
    np.testing.assert_allclose(w, [0.5, 0.5])
    assert metrics.total_variation(w, [0.25, 0.75]) == pytest.approx(0.25)
    assert metrics.total_variation([1, 0], [0, 1]) == 1.0


def test_mean_and_sd_errors():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(metrics.standardized_mean_error(x, np.array([0.0, 0.0]), np.array([1.0, 2.0])), [1.0, 1.0])
    np.testing.assert_allclose(metrics.log_sd_ratio(x, np.array([np.sqrt(2), np.sqrt(2)])), [0.0, 0.0], atol=1e-12)


def test_exact_w2_of_a_shift():
    """W2 between a sample and its translate by m is |m| exactly (the identity coupling)."""
    x = np.random.default_rng(2).standard_normal((500, 2))
    assert metrics.wasserstein2(x, x + [3.0, 4.0]) == pytest.approx(5.0, rel=1e-9)


def test_sinkhorn_w2_approaches_w2_for_separated_clouds():
    x = np.random.default_rng(3).standard_normal((200, 2)) * 0.1
    value = metrics.sinkhorn_w2(x, x + [2.0, 0.0], max_points=200)
    assert value == pytest.approx(2.0, rel=0.05)


def test_mmd_of_identical_distributions_is_near_zero_and_of_shifted_is_not():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((800, 2)), rng.standard_normal((800, 2))
    assert abs(metrics.mmd_rbf(x, y)) < 0.01
    assert metrics.mmd_rbf(x, y + 1.0) > 0.1


def test_sliced_ks_matches_scipy_in_one_dimension():
    from scipy.stats import ks_2samp
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((1000, 1)), rng.standard_normal((1000, 1)) + 0.2
    assert metrics.sliced_ks(x, y, n_projections=3) == pytest.approx(ks_2samp(x[:, 0], y[:, 0]).statistic)


def test_entropic_mode_coverage():
    centres = np.array([[0.0], [10.0]])
    assert metrics.entropic_mode_coverage(np.array([[0.0], [10.0]]), centres) == pytest.approx(1.0)
    assert metrics.entropic_mode_coverage(np.array([[0.0], [0.1]]), centres) == 0.0
