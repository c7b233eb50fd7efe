"""sample(): arguments, output layout, counting, reproducibility, interruption."""

import concurrent.futures as cf
import importlib
import json

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz
from targets import gaussians

sample_module = importlib.import_module("mcsample.sample")  # the module, not the function


@pytest.fixture(scope="module")
def gauss():
    return gaussians.diagonal(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), "g3")[0]


@numba.njit
def far_support(x, c):
    return -np.sum((x - c) ** 2) if x[0] > 100.0 else -np.inf


@numba.njit
def far_support_grad(x, c):
    return (-np.sum((x - c) ** 2), -2.0 * (x - c)) if x[0] > 100.0 else (-np.inf, np.zeros(x.size))


@numba.njit
def half_normal(x, c):
    return -0.5 * np.sum(x * x) if x[0] > 0.0 else -np.inf


@numba.njit
def half_normal_grad(x, c):
    return (-0.5 * np.sum(x * x), -x.copy()) if x[0] > 0.0 else (-np.inf, np.zeros(x.size))


def run(target, **kw):
    kw.setdefault("progressbar", False)
    kw.setdefault("draws", 100)
    kw.setdefault("tune", 100)
    kw.setdefault("chains", 2)
    kw.setdefault("seed", 3)
    return mc.sample(target, "nuts", **kw)


def test_output_layout(gauss):
    idata = run(gauss, draws=30, tune=40, chains=3)
    x = idata.posterior["x"]
    assert x.dims == ("chain", "draw", "param") and x.shape == (3, 30, 3)
    assert list(x["param"].values) == ["x[0]", "x[1]", "x[2]"]
    for name in ("lp", "diverging", "energy", "acceptance_rate", "step_size", "tree_depth", "n_steps",
                 "n_grad", "n_logp"):
        assert idata.sample_stats[name].shape == (3, 30), name
    for key in ("sampler", "settings", "seed", "n_logp", "n_grad", "wall_time", "compile_time",
                "mcsample_version"):
        assert key in idata.attrs, key
    assert idata.attrs["sampler"] == "nuts" and idata.attrs["seed"] == 3
    assert json.loads(idata.attrs["settings"])["max_depth"] == 10
    assert idata.attrs["interrupted"] == False  # noqa: E712 - stored as 0 (netCDF)
    assert "warmup_posterior" not in _arviz.group_names(idata)


def test_save_warmup(gauss):
    idata = run(gauss, draws=30, tune=40, save_warmup=True)
    assert idata.warmup_posterior["x"].shape == (2, 40, 3)
    assert idata.warmup_sample_stats["step_size"].shape == (2, 40)


def test_lp_stat_is_the_log_density_of_the_draw(gauss):
    idata = run(gauss, draws=20, tune=20, chains=1)
    x = idata.posterior["x"].values[0]
    lp = idata.sample_stats["lp"].values[0]
    np.testing.assert_allclose(lp, [gauss.logp(xi) for xi in x], rtol=1e-12)


def test_counts_add_up(gauss):
    idata = run(gauss, save_warmup=True)
    per_draw = int(idata.sample_stats["n_grad"].sum() + idata.warmup_sample_stats["n_grad"].sum())
    np.testing.assert_array_equal(idata.sample_stats["n_grad"], idata.sample_stats["n_steps"])
    extras = idata.attrs["n_grad"] - per_draw
    # per chain: the init point, the runner's own first evaluation, and step-size searches
    # (at the start and after each of the 1-2 slow windows of a 100-step warmup)
    assert 2 * 2 <= extras <= 2 * 2 + 2 * 3 * 20
    assert idata.attrs["n_logp"] == 0


def test_same_seed_is_bit_identical_across_executors(gauss):
    base = run(gauss).posterior["x"].values
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        one_thread = run(gauss, executor=ex).posterior["x"].values
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        processes = run(gauss, executor=ex).posterior["x"].values
    with_bar = run(gauss, progressbar=True).posterior["x"].values
    np.testing.assert_array_equal(base, one_thread)
    np.testing.assert_array_equal(base, processes)
    np.testing.assert_array_equal(base, with_bar)
    assert not np.array_equal(base, run(gauss, seed=4).posterior["x"].values)
    assert not np.array_equal(base[0], base[1])


def test_chain_results_do_not_depend_on_chain_count(gauss):
    two = run(gauss, chains=2).posterior["x"].values
    three = run(gauss, chains=3).posterior["x"].values
    np.testing.assert_array_equal(two, three[:2])


def test_unknown_sampler_and_settings(gauss):
    with pytest.raises(ValueError, match="unknown sampler 'hmc'; available: .*nuts"):
        mc.sample(gauss, "hmc")
    with pytest.raises(ValueError, match="unknown settings for nuts: max_treedepth.*; valid settings: .*max_depth"):
        mc.sample(gauss, "nuts", max_treedepth=5)
    with pytest.raises(ValueError, match="metric must be one of"):
        mc.sample(gauss, "nuts", metric="full")


@pytest.mark.parametrize("kw, match", [
    (dict(draws=0), "draws"), (dict(tune=-1), "tune"), (dict(chains=0), "chains"),
    (dict(draws=1.5), "draws"), (dict(init=np.zeros(2)), "init must have shape"),
    (dict(init=np.full(3, np.nan)), "non-finite"),
])
def test_bad_arguments(gauss, kw, match):
    with pytest.raises(ValueError, match=match):
        run(gauss, **kw)


def test_gradient_sampler_needs_gradient():
    t = mc.Target(gaussians.diag_gauss_logp, 2, args=(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match="needs a gradient.*gradient-free samplers"):
        mc.sample(t, "nuts")


def test_init_outside_support_and_failed_redraws():
    c = np.array([101.0, 0.0])
    t = mc.Target(far_support, 2, logp_grad=far_support_grad, args=(c,), test_point=c)
    with pytest.raises(ValueError, match="not finite at the given init"):
        run(t, init=np.zeros(2))
    with pytest.raises(ValueError, match="no finite log density.*100 uniform"):
        run(t)
    idata = run(t, init=c, draws=20, tune=20)
    assert np.all(idata.posterior["x"].values[..., 0] > 100)


def test_non_finite_log_density_mid_run_is_a_divergence_not_a_crash():
    t = mc.Target(half_normal, 2, logp_grad=half_normal_grad, args=(np.zeros(2),), test_point=np.ones(2))
    idata = run(t, init=np.ones(2), draws=300, tune=300)
    x = idata.posterior["x"].values
    assert np.all(x[..., 0] > 0)
    assert idata.sample_stats["diverging"].values.sum() > 0


def test_ctrl_c_returns_draws_so_far(gauss, monkeypatch):
    calls = {"n": 0}
    real_wait = sample_module.cf.wait

    def interrupting_wait(fs, timeout=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        # long enough for a chain thread to pass warmup on a loaded machine: at 0.05 s, CI's 3.12 leg
        # (two xdist workers beside the 3.11 leg on 2 cores) once interrupted before any draw
        return real_wait(fs, timeout=0.5)

    monkeypatch.setattr(sample_module.cf, "wait", interrupting_wait)
    idata = run(gauss, draws=200000, tune=10)
    assert idata.attrs["interrupted"] == True  # noqa: E712 - stored as 1 (netCDF)
    n = idata.posterior["x"].shape[1]
    assert 0 < n < 200000
    assert np.all(np.isfinite(idata.posterior["x"].values))


@numba.njit
def _reciprocal(v):
    return 1.0 / v  # ZeroDivisionError at v == 0 under numba's default error model


@numba.njit
def raises_off_support(x, c):
    if x[0] < -1.0:
        _reciprocal(0.0)
    return -0.5 * np.sum(x * x)


@numba.njit
def raises_off_support_grad(x, c):
    if x[0] < -1.0:
        _reciprocal(0.0)
    return -0.5 * np.sum(x * x), -x.copy()


def test_exceptions_in_the_log_density_are_rejections_not_crashes():
    """An exception inside a compiled kernel cannot propagate; unguarded, numba would return a
    garbage value (0.0, or a null gradient that crashes the process). It must count as NaN."""
    t = mc.Target(raises_off_support, 2, logp_grad=raises_off_support_grad, args=(np.zeros(2),))
    with pytest.raises(ZeroDivisionError):
        t.logp(np.array([-2.0, 0.0]))  # from Python the user's own exception surfaces
    idata = run(t, init=np.zeros(2), draws=300, tune=300)
    assert np.all(idata.posterior["x"].values[..., 0] >= -1.0)


def test_test_point_search_explains_exceptions():
    with pytest.raises(ValueError, match="not finite") as err:
        mc.Target(lambda x, c: 1 / 0, 2, args=(np.zeros(2),))
    assert isinstance(err.value.__cause__, ZeroDivisionError)
