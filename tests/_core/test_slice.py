"""Slice primitives: exact properties (notes section 4.2) of stepping-out, interval shrinkage and
angle shrinkage, on targets whose slices are known in closed form."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mcsample as mc
from mcsample._core.slice import (covariance_frame, dense_frame, diagonal_frame, frame_to_x, identity_frame, logp_in_frame,
                                  shrink_angle, shrink_interval, step_out, x_to_frame)


@numba.njit
def std_normal(x, c):
    return -0.5 * np.sum(x * x)


@numba.njit
def nan_outside_unit_ball(x, c):
    s = np.sum(x * x)
    return 0.0 if s < 1.0 else np.nan


def kernel_fn(logp, d):
    t = mc.Target(logp, d, args=(np.zeros(1),), test_point=np.full(d, 0.1))
    return t.logp_fn, t.kernel_args


D = 3
NORMAL = kernel_fn(std_normal, D)
BALL = kernel_fn(nan_outside_unit_ball, D)
FRAME = identity_frame(D)


def buffers():
    return np.zeros(D), np.zeros(D), np.zeros(D)


def line(fn, origin, direction, power, anchor, w, lower, log_t, seed, max_evals=10_000):
    """Stepping-out then shrinkage on one line, as the samplers call them."""
    logp, args = fn
    rng = np.random.default_rng(seed)
    z, x, _ = buffers()
    lo, hi, n_out, n_exp, ok = step_out(logp, args, FRAME, origin, direction, power, anchor, w, lower,
                                        log_t, rng, z, x, max_evals)
    s, f, n_shrink, ok2 = shrink_interval(logp, args, FRAME, origin, direction, power, anchor, lo, hi,
                                          log_t, rng, z, x, max_evals)
    return lo, hi, n_out, n_exp, ok, s, f, n_shrink, ok2


@settings(max_examples=40, deadline=None, derandomize=True)
@given(anchor=st.floats(-1.5, 1.5), w=st.floats(0.05, 5.0), drop=st.floats(0.01, 3.0),
       seed=st.integers(0, 2**31))
def test_line_slice_of_a_gaussian(anchor, w, drop, seed):
    """On the line through 0 along e_1 the slice {-s^2/2 > log_t} is |s| < sqrt(-2 log_t): the
    step-out ends lie outside it, bracket the anchor, are at most w beyond it, and the shrinkage
    returns a point inside."""
    log_t = -0.5 * anchor**2 - drop
    half = np.sqrt(-2.0 * log_t)
    e1 = np.array([1.0, 0.0, 0.0])
    lo, hi, n_out, n_exp, ok, s, f, n_shrink, ok2 = line(NORMAL, np.zeros(D), e1, 0.0, anchor, w, -np.inf,
                                                         log_t, seed)
    assert ok and ok2
    assert lo <= -half < half <= hi and lo < anchor < hi
    assert -half - w < lo and hi < half + w
    assert n_out == n_exp + 2  # each expansion evaluated once, plus the two ends that stopped
    assert abs(s) < half and f > log_t and np.isclose(f, -0.5 * s * s)
    assert n_shrink >= 1


def test_radius_step_out_clamps_at_zero_without_evaluating_there():
    """GPSS's radius line (origin 0, power d - 1, lower 0): a left end that would cross 0 is set
    to 0 and not evaluated; with w far wider than the slice only the right end is evaluated."""
    logp, args = NORMAL
    theta = np.array([0.0, 1.0, 0.0])
    z, x, _ = buffers()
    log_t = 2.0 * np.log(1.0) - 0.5 - 1.0  # below p1 at r = 1
    lo, hi, n_out, n_exp, ok = step_out(logp, args, FRAME, np.zeros(D), theta, D - 1.0, 1.0, 100.0, 0.0,
                                        log_t, np.random.default_rng(1), z, x, 100)
    assert ok and lo >= 0.0
    if lo == 0.0:
        assert n_out == 1 and n_exp == 0


def test_nan_is_outside_every_slice():
    """The density is NaN outside the unit ball: every accepted point lies inside it."""
    e1 = np.array([1.0, 0.0, 0.0])
    for seed in range(50):
        *_, s, f, _, ok = line(BALL, np.zeros(D), e1, 0.0, 0.3, 0.5, -np.inf, -1.0, seed)
        assert ok and abs(s) < 1.0 and f == 0.0


def test_exhausted_shrinkage_keeps_the_anchor():
    """A slice that floating point cannot hit (threshold above the maximum) exhausts max_evals and
    returns the anchor with ok = False instead of looping."""
    logp, args = NORMAL
    z, x, _ = buffers()
    s, f, n, ok = shrink_interval(logp, args, FRAME, np.zeros(D), np.array([1.0, 0.0, 0.0]), 0.0, 0.25,
                                  -1.0, 1.0, 1.0, np.random.default_rng(0), z, x, 25)
    assert not ok and s == 0.25 and n == 25


@pytest.mark.parametrize("normalize", [True, False])
def test_angle_shrinkage_on_a_level_set_accepts_the_first_proposal(normalize):
    """On the standard normal every point of a great circle (normalised) or of an ellipse with the
    quadratic term quad = 1/2 (elliptical slice sampling's likelihood under a N(0, I) prior) has
    the same value, so the first angle is accepted: one evaluation."""
    logp, args = NORMAL
    rng = np.random.default_rng(3)
    a = np.array([0.6, 0.8, 0.0])
    b = np.array([0.0, 0.0, 1.0]) if normalize else rng.standard_normal(D)
    point, z, x = buffers()
    radius, quad = (2.0, 0.0) if normalize else (1.0, 0.5)
    log_t = -0.5 * radius**2 * (a @ a) + quad * radius**2 * (a @ a) - 1e-9
    f, n, ok = shrink_angle(logp, args, FRAME, a, b, normalize, radius, quad, log_t, rng, point, z, x, 100)
    assert ok and n == 1
    if normalize:
        assert abs(np.linalg.norm(point) - 1.0) < 1e-15


def test_angle_shrinkage_returns_inside_and_near_the_current_point():
    """A narrow slice around a = e_1 on the circle through e_1 and e_2: the accepted point is
    inside (first coordinate above cos(0.1)), reached after several shrinks."""
    logp, args = NORMAL
    a, b = np.eye(D)[0], np.eye(D)[1]
    for seed in range(30):
        point, z, x = buffers()
        # slice: -|r p|^2/2 is constant on the circle, so use a shifted frame to tilt it
        frame = diagonal_frame(np.array([-5.0, 0.0, 0.0]), np.ones(D))
        log_t = logp_in_frame(logp, args, frame, np.array([np.cos(0.1), np.sin(0.1), 0.0]), x)
        f, n, ok = shrink_angle(logp, args, frame, a, b, True, 1.0, 0.0, log_t, np.random.default_rng(seed),
                                point, z, x, 200)
        assert ok and f > log_t and point[0] > np.cos(0.1)


def test_frames_round_trip():
    rng = np.random.default_rng(0)
    c = rng.standard_normal(D)
    a = rng.standard_normal((D, D))
    chol = np.linalg.cholesky(a @ a.T + np.eye(D))
    z = rng.standard_normal((5, D))
    for frame in (identity_frame(D), diagonal_frame(c, np.exp(rng.standard_normal(D))), dense_frame(c, chol)):
        np.testing.assert_allclose(x_to_frame(frame, frame_to_x(frame, z)), z, atol=1e-12)
        logp, args = NORMAL
        x = np.zeros(D)
        assert np.isclose(logp_in_frame(logp, args, frame, z[0], x), -0.5 * np.sum(frame_to_x(frame, z[0]) ** 2))


def test_covariance_frame_factors_the_covariance_and_survives_a_singular_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.1 * np.eye(4)
    frame = covariance_frame(np.arange(4.0), cov)
    np.testing.assert_allclose(frame[3] @ frame[3].T, cov, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(frame[1], np.arange(4.0))
    v = rng.normal(size=(4, 1))
    singular = covariance_frame(np.zeros(4), v @ v.T)  # rank 1: a plain Cholesky fails here
    assert np.all(np.isfinite(singular[3]))
    np.testing.assert_allclose(singular[3] @ singular[3].T, v @ v.T, atol=1e-10 * (v.T @ v).item())
