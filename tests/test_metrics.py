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
