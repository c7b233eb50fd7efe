"""Target validation: every ValueError the contract promises, counting, pickling."""

import pickle
import warnings

import numba
import numpy as np
import pytest

import mcsample as mc
from targets import gaussians


@numba.njit
def quad(x, c):
    return -0.5 * np.sum((x - c) ** 2)


@numba.njit
def quad_grad(x, c):
    return -0.5 * np.sum((x - c) ** 2), -(x - c)


@numba.njit
def quad_grad_wrong(x, c):
    return -0.5 * np.sum((x - c) ** 2), -2.0 * (x - c)


@numba.njit
def quad_grad_short(x, c):
    return -0.5 * np.sum((x - c) ** 2), -(x - c)[:-1].copy()


@numba.njit
def quad_grad_offset(x, c):
    return 1.0 - 0.5 * np.sum((x - c) ** 2), -(x - c)


@numba.njit
def returns_tuple(x, c):
    return x[0], x[1]


@numba.njit
def never_finite(x, c):
    return np.nan


@numba.njit
def positive_orthant(x, c):
    for v in x:
        if v <= 0:
            return -np.inf
    return -np.sum(x)


C = np.array([1.0, -2.0, 0.5])


def test_valid_target_evaluates_and_counts():
    t = mc.Target(quad, 3, logp_grad=quad_grad, args=(C,), names=["a", "b", "c"], name="toy")
    assert t.logp(C) == 0.0
    lp, g = t.logp_grad(np.zeros(3))
    assert lp == pytest.approx(-0.5 * C @ C) and np.allclose(g, C)
    n_logp, n_grad = t.n_logp, t.n_grad
    t.logp(np.zeros(3)), t.logp(np.ones(3)), t.logp_grad(np.ones(3))
    assert (t.n_logp - n_logp, t.n_grad - n_grad) == (2, 1)
    assert t.names == ["a", "b", "c"] and t.name == "toy"


def test_default_names():
    assert mc.Target(quad, 3, args=(C,)).names == ["x[0]", "x[1]", "x[2]"]


@pytest.mark.parametrize("dim", [0, -1, 2.5, "3", True])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        mc.Target(quad, dim, args=(C,))


def test_names_must_match_dim_and_be_unique():
    with pytest.raises(ValueError, match="names has 2 entries"):
        mc.Target(quad, 3, args=(C,), names=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        mc.Target(quad, 3, args=(C,), names=["a", "a", "b"])


def test_args_must_be_a_tuple_of_numba_types():
    with pytest.raises(ValueError, match="tuple"):
        mc.Target(quad, 3, args=C)
    with pytest.raises(ValueError, match=r"args\[0\]"):
        mc.Target(quad, 3, args=({"c": 1},))


def test_wrong_return_type_is_named():
    with pytest.raises(ValueError, match="logp must return a float, got tuple"):
        mc.Target(returns_tuple, 3, args=(C,))


def test_non_finite_everywhere_is_rejected():
    with pytest.raises(ValueError, match="not finite"):
        mc.Target(never_finite, 3, args=(C,))


def test_test_point_search_finds_restricted_support():
    t = mc.Target(positive_orthant, 3, args=(C,))
    assert np.all(t.test_point > 0)
    with pytest.raises(ValueError, match="test_point"):
        mc.Target(positive_orthant, 3, args=(C,), test_point=-np.ones(3))


def test_gradient_disagreeing_with_finite_differences():
    with pytest.raises(ValueError, match="finite differences"):
        mc.Target(quad, 3, logp_grad=quad_grad_wrong, args=(C,))
    mc.Target(quad, 3, logp_grad=quad_grad_wrong, args=(C,), check_grad=False)


@numba.njit
def scaled_quad(x, c, s):
    return -0.5 * np.sum(((x - c) / s) ** 2)


@numba.njit
def scaled_quad_grad(x, c, s):
    return -0.5 * np.sum(((x - c) / s) ** 2), -(x - c) / s**2


@numba.njit
def scaled_quad_grad_flipped(x, c, s):
    lp, g = scaled_quad_grad(x, c, s)
    g[1] = -g[1]
    return lp, g


def test_gradient_check_allows_for_rounding_at_large_log_densities():
    # the test point 0 is 1e5 sds from the first mean, so |logp| ~ 5e9 and central differences of
    # x[1]'s -3 come out -2.86: a right gradient must pass, a wrong one must still be caught
    c, s = np.array([1000.0, -3.0, 0.5]), np.array([0.01, 1.0, 100.0])
    mc.Target(scaled_quad, 3, logp_grad=scaled_quad_grad, args=(c, s))
    with pytest.raises(ValueError, match=r"component 1 \(x\[1\]\)"):
        mc.Target(scaled_quad, 3, logp_grad=scaled_quad_grad_flipped, args=(c, s))


def test_gradient_of_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        mc.Target(quad, 3, logp_grad=quad_grad_short, args=(C,))


def test_logp_grad_value_must_agree_with_logp():
    with pytest.raises(ValueError, match="differs from logp"):
        mc.Target(quad, 3, logp_grad=quad_grad_offset, args=(C,))


def test_non_callable():
    with pytest.raises(ValueError, match="callable"):
        mc.Target(3.0, 3)


def test_python_callables_work_with_one_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = mc.Target(lambda x, c: float(-0.5 * np.sum((x - c) ** 2)), 3,
                      logp_grad=lambda x, c: (float(-0.5 * np.sum((x - c) ** 2)), -(x - c)), args=(C,))
    assert sum("object mode" in str(w.message) for w in caught) == 1
    assert t.logp(C) == 0.0
    idata = mc.sample(t, "nuts", draws=50, tune=50, chains=1, seed=0, progressbar=False)
    assert np.all(np.isfinite(idata.posterior["x"].values))


def test_target_pickles_and_rebuilds():
    t, _ = gaussians.gauss100()
    t2 = pickle.loads(pickle.dumps(t))
    x = np.linspace(-1, 1, 100)
    assert t2.logp(x) == t.logp(x)
    np.testing.assert_array_equal(t2.logp_grad(x)[1], t.logp_grad(x)[1])


def test_one_compiled_function_type_for_every_data_signature():
    """Targets with different data types share the kernels' function type (type erasure)."""
    t1 = mc.Target(quad, 3, logp_grad=quad_grad, args=(C,))
    t2 = mc.Target(gaussians.diag_gauss_logp, 2, logp_grad=gaussians.diag_gauss_logp_grad,
                   args=(np.zeros(2), np.ones(2)))
    t3 = mc.Target(gaussians.diag_gauss_logp, 5, logp_grad=gaussians.diag_gauss_logp_grad,
                   args=(np.ones(5), np.ones(5)))
    ty = {numba.typeof(t.logp_grad_fn) for t in (t1, t2, t3)}
    assert len(ty) == 1
    assert {numba.typeof(t.kernel_args) for t in (t1, t2, t3)} == {numba.typeof((0,))}


def test_target_from_a_script_run_by_runpy(tmp_path):
    # runpy names the module "<run_path>": its functions cannot be imported by name, so the guard
    # must be compiled in memory instead of from a generated file (that raised SyntaxError).
    import runpy

    script = tmp_path / "script.py"
    script.write_text(
        "import numba, numpy as np, mcsample as mc\n"
        "@numba.njit\n"
        "def logp(x):\n"
        "    return -0.5 * np.sum(x * x)\n"
        "idata = mc.sample(mc.Target(logp, dim=2), sampler='gpss', draws=20, tune=20, chains=1, seed=1)\n"
    )
    result = runpy.run_path(str(script))
    assert np.isfinite(np.asarray(result["idata"].posterior["x"])).all()
