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


# -- the shared guard (the try compiled once per machine, not per data signature) ---------------


@numba.njit
def shifted_raises_far(x, c):
    if x[0] > 10.0:
        raise ValueError("far out")
    return -0.5 * np.sum((x - c) ** 2)


@numba.njit
def shifted_grad_raises_far(x, c):
    if x[0] > 10.0:
        raise ValueError("far out")
    return -0.5 * np.sum((x - c) ** 2), -(x - c)


def test_targets_with_different_data_share_one_guard_and_keep_their_own_functions():
    # one cfunc per kind for every erased target: the per-target part (the inner function and
    # the data) travels in kernel_args, so the two must not get each other's values
    # (b without a gradient: the logp_grad guard is shared the same way, and a compile is saved)
    x = np.array([0.5, -1.0, 2.0])
    a = mc.Target(shifted_raises_far, 3, logp_grad=shifted_grad_raises_far, args=(np.ones(3),))
    b = mc.Target(shifted_raises_far, 3, args=(np.arange(3, dtype=np.int32),))
    assert a.logp_fn is b.logp_fn
    assert _call(a.logp_fn, x, a.kernel_args) == a.logp(x) != _call(b.logp_fn, x, b.kernel_args) == b.logp(x)
    lp, g = _call(a.logp_grad_fn, x, a.kernel_args)
    want_lp, want_g = a.logp_grad(x)
    assert lp == want_lp
    np.testing.assert_array_equal(g, want_g)


def test_the_shared_guard_turns_exceptions_into_nan_and_releases_x():
    # an exception skips numba's release of the references the raising frames hold; x reaches
    # the user's function by address, so no reference to it is left behind (were it passed as
    # an array, each exception would keep x alive one more time)
    import sys
    t = mc.Target(shifted_raises_far, 2, logp_grad=shifted_grad_raises_far, args=(np.zeros(2),))
    x = np.array([11.0, 0.0])
    before = sys.getrefcount(x)
    for _ in range(5):
        assert np.isnan(_call(t.logp_fn, x, t.kernel_args))
        lp, g = _call(t.logp_grad_fn, x, t.kernel_args)
        assert np.isnan(lp) and g.shape == (2,) and np.all(np.isnan(g))
    assert sys.getrefcount(x) == before
    x[0] = 1.0  # and the same guard still answers where the function does not raise
    assert _call(t.logp_fn, x, t.kernel_args) == -0.5


def test_the_guards_also_run_from_python():
    # a cfunc called from Python runs its Python function: the shared guard calls the inner
    # function's dispatcher there, inside a Python try
    t = mc.Target(shifted_raises_far, 2, logp_grad=shifted_grad_raises_far, args=(np.zeros(2),))
    x = np.array([1.0, 0.0])
    assert t.logp_fn(x, *t.kernel_args) == -0.5
    lp, g = t.logp_grad_fn(x, *t.kernel_args)
    assert lp == -0.5 and np.array_equal(g, [-1.0, 0.0])
    x[0] = 11.0
    assert np.isnan(t.logp_fn(x, *t.kernel_args))
    lp, g = t.logp_grad_fn(x, *t.kernel_args)
    assert np.isnan(lp) and np.all(np.isnan(g))
