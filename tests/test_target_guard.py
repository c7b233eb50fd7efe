"""The guard around the user's functions (issue #16): a float64[::1] gradient passes through
uncopied, other dtypes are converted, exceptions still become NaN; errors at validation name
their cause."""

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import target as target_module


@numba.njit
def quad(x):
    return -0.5 * (x @ x)


@numba.njit
def quad_grad(x):
    return -0.5 * (x @ x), -x


@numba.njit
def quad_grad_f32(x):
    return -0.5 * (x @ x), (-x).astype(np.float32)


@numba.njit
def quad_grad_strided(x):
    g = np.empty(2 * x.size)
    g[::2] = -x
    return -0.5 * (x @ x), g[::2]


@numba.njit
def quad_grad_raises_far(x):
    if x[0] > 10.0:
        raise ValueError("far out")
    return -0.5 * (x @ x), -x


@numba.njit
def _call(fn, x, args):
    return fn(x, *args)


def guard_kind(fn, target):
    return target_module._returns_contiguous_float64(fn, (numba.float64[::1], *target._layout.user_types))


@pytest.mark.parametrize("fn, view", [(quad_grad, True), (quad_grad_f32, False), (quad_grad_strided, False)])
def test_only_contiguous_float64_gradients_skip_the_copy(fn, view):
    t = mc.Target(quad, 3, logp_grad=fn)
    assert guard_kind(fn, t) is view
    x = np.array([0.5, -1.0, 2.0])
    lp, g = _call(t.logp_grad_fn, x, t.kernel_args)
    assert lp == -0.5 * (x @ x)
    np.testing.assert_array_equal(g, -x)
    assert g.dtype == np.float64 and g.flags.c_contiguous


def test_the_uncopied_guard_still_turns_exceptions_into_nan():
    t = mc.Target(quad, 2, logp_grad=quad_grad_raises_far)
    assert guard_kind(quad_grad_raises_far, t)
    lp, g = _call(t.logp_grad_fn, np.array([11.0, 0.0]), t.kernel_args)
    assert np.isnan(lp) and g.shape == (2,) and np.all(np.isnan(g))


def test_a_call_with_the_wrong_arguments_names_the_type_error():
    with pytest.raises(ValueError, match="raised TypeError: too many arguments"):
        mc.Target(quad, dim=3, args=("abc",))


@numba.njit
def always_raises(x):
    raise ZeroDivisionError("the model divides by zero")


def test_a_function_that_raises_everywhere_reports_its_exception():
    with pytest.raises(ValueError, match="logp raised ZeroDivisionError: the model divides by zero") as info:
        mc.Target(always_raises, dim=2)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
