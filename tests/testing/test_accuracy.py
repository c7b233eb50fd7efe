"""mcsample.testing.assert_accurate: passes an accurate sampler, catches a biased answer."""

import numpy as np
import pytest

from mcsample.testing import assert_accurate, models


def test_nuts_is_accurate_on_a_gaussian_and_the_report_lists_checks(seed_offset):
    m = models.gaussian(np.array([2.0, -1.0]), np.array([1.0, 0.25]))
    report = assert_accurate(m.target, "nuts", m.exact, draws=500, tune=500, seed=seed_offset,
                             mean_tol=0.15, sd_tol=0.15, sw2_tol=0.1)
    assert [r[0] for r in report.rows] == ["max |mean error| / sd", "max |log sd ratio|", "sliced W2"]


def test_wrong_answer_is_caught():
    m = models.gaussian(np.zeros(2), np.ones(2))
    with pytest.raises(AssertionError, match="not accurate enough"):
        assert_accurate(m.target, "nuts", lambda rng, n: 1.3 * rng.standard_normal((n, 2)),
                        draws=500, tune=500, mean_tol=0.15, sd_tol=0.15)


def test_mode_weights_of_a_mixture():
    m = models.mixture([0.75, 0.25], [[-1.5, 0.0], [1.5, 0.0]], 0.7)
    centres = np.array([[-1.5, 0.0], [1.5, 0.0]])
    assert_accurate(m.target, "nuts", m.exact, draws=1000, tune=500, mean_tol=0.2, sd_tol=0.2,
                    mode_centres=centres, tv_tol=0.05)
    with pytest.raises(AssertionError, match="mode weight TV"):
        assert_accurate(m.target, "nuts", m.exact, draws=1000, tune=500, mean_tol=0.2, sd_tol=0.2,
                        mode_centres=centres, mode_weights=[0.5, 0.5], tv_tol=0.05)
