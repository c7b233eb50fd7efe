"""Type erasure at the kernel boundary (issue #16): kernels see one function type and one data
type, ``(int64 address,)``, whatever the target's data; the guard rebuilds the user's arrays and
scalars from the address. Each layout must hand the user's function exactly the values Python
would, and data that cannot be rebuilt keep their own types."""

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample.target import _call_logp, _call_logp_grad


@numba.njit
def _call(fn, x, args):
    return fn(x, *args)


@numba.njit
def uses_everything(x, a, m, k, flag, pair):
    # every leaf enters the value with its own weight, so a swapped or misread one shows
    s = -0.5 * np.sum((x - a) ** 2)
    s += 1e-1 * m[0, 1] + 1e-2 * m[1, 0] + 1e-3 * m.shape[1]
    s += 1e-4 * k + (1e-5 if flag else 0.0)
    s += 1e-6 * pair[0].sum() + 1e-7 * pair[1]
    return s


@numba.njit
def uses_everything_grad(x, a, m, k, flag, pair):
    return uses_everything(x, a, m, k, flag, pair), -(x - a)


def everything_args(rng):
    return (rng.normal(size=3), rng.normal(size=(2, 3)), 7, True,
            (np.arange(4, dtype=np.int32), np.float32(2.5)))


def test_every_kind_of_erasable_data_reaches_the_user_unchanged():
    rng = np.random.default_rng(0)
    args = everything_args(rng)
    t = mc.Target(uses_everything, 3, logp_grad=uses_everything_grad, args=args)
    assert t._layout.erased and numba.typeof(t.kernel_args) == numba.typeof((0,))
    for _ in range(3):
        x = rng.normal(size=3)
        want = uses_everything(x, *args)
        lp, g = _call_logp_grad(t.logp_grad_fn, x, t.kernel_args)
        assert lp == want
        np.testing.assert_array_equal(g, -(x - args[0]))


@numba.njit
def shifted(x, a):
    return -0.5 * np.sum((x - a) ** 2)


def test_targets_with_different_data_types_share_one_kernel_compilation():
    x = np.array([0.5, -1.0, 2.0])
    first = mc.Target(shifted, 3, args=(np.ones(3),))
    other = mc.Target(shifted, 3, args=(np.arange(3, dtype=np.int32),))
    _call_logp(first.logp_fn, x, first.kernel_args)
    before = len(_call_logp.signatures)
    assert _call_logp(other.logp_fn, x, other.kernel_args) == other.logp(x)
    assert len(_call_logp.signatures) == before  # no new kernel signature


@numba.njit
def takes_a_string(x, s):
    return -0.5 * np.sum(x * x) - len(s)


@numba.njit
def takes_a_pair(x, pair):
    return -0.5 * np.sum((x - pair[0][:, 0]) ** 2) + pair[1]


@pytest.mark.parametrize("logp, args", [
    (takes_a_string, ("abc",)),
    (takes_a_pair, ((np.arange(6.0).reshape(3, 2), 1.0),)),  # a non-contiguous slice inside a tuple
])
def test_data_numba_cannot_rebuild_keep_their_types(logp, args):
    if logp is takes_a_pair:
        args = ((args[0][0][:, :1], args[0][1]),)
    t = mc.Target(logp, 3, args=args)
    assert not t._layout.erased and t.kernel_args == t.args
    x = np.array([0.5, -1.0, 2.0])
    assert _call(t.logp_fn, x, t.kernel_args) == logp(x, *args)


def test_the_data_block_lives_as_long_as_the_kernel_args():
    # kernels hold only the address: whoever holds kernel_args (even without its Target, as
    # tests/_core do) must keep the block and every array it points into alive
    import gc

    def build():
        t = mc.Target(shifted, 3, args=(np.array([1.0, 2.0, 3.0]),))
        return t.logp_fn, t.kernel_args

    fn, args = build()
    gc.collect()
    junk = [np.full(3, 99.0) for _ in range(10000)]  # block-sized: reuses freed memory
    assert _call_logp(fn, np.zeros(3), args) == -0.5 * 14.0
    del junk
