"""Shared checks for the catalogue's hand-written log densities."""

import numpy as np
import pytest


def _assert_gradient_matches_finite_differences(t, points, h=1e-5):
    """At each point: the gradient is a C-contiguous float64 vector, logp_grad's value equals
    logp's, and the gradient matches central differences of logp with step h."""
    for x in points:
        value, grad = t["logp_grad"](x, *t["args"])
        assert grad.dtype == np.float64 and grad.shape == (t["dim"],) and grad.flags.c_contiguous
        assert value == pytest.approx(t["logp"](x, *t["args"]), rel=1e-13)
        fd = np.empty(t["dim"])
        for i in range(t["dim"]):
            step = np.zeros(t["dim"])
            step[i] = h
            fd[i] = (t["logp"](x + step, *t["args"]) - t["logp"](x - step, *t["args"])) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(fd).max()))


@pytest.fixture
def assert_gradient_matches_finite_differences():
    return _assert_gradient_matches_finite_differences
