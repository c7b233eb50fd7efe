"""The output contract of sample(), on whichever ArviZ is installed: arviz.InferenceData on ArviZ
0.x (Python 3.11), xarray.DataTree on ArviZ 1.x (Python >= 3.12), with the same groups,
variables, dims, coords and attrs, readable by ArviZ's own summary, diagnostics and plots.
CI runs this file in both legs of .ci/run, so both generations are covered."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr

import mcsample as mc
from mcsample import _arviz
from targets import gaussians

AZ1 = _arviz.arviz_major() >= 1
NUTS_STATS = ("lp", "diverging", "energy", "acceptance_rate", "step_size", "tree_depth", "n_steps",
              "n_grad", "n_logp")
ATTRS = ("sampler", "settings", "seed", "n_logp", "n_grad", "wall_time", "compile_time", "mcsample_version",
         "interrupted")


@pytest.fixture(scope="module")
def gauss():
    return gaussians.diagonal(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), "g3")[0]


@pytest.fixture(scope="module")
def result(gauss):
    return mc.sample(gauss, "nuts", draws=60, tune=50, chains=2, seed=5, progressbar=False, save_warmup=True)


def az():
    return _arviz._az()


def test_result_type_is_the_installed_arvizs(result):
    if AZ1:
        assert isinstance(result, xr.DataTree)
    else:
        assert type(result).__name__ == "InferenceData"
        assert isinstance(result, az().InferenceData)


def test_groups_variables_dims_coords(result, gauss):
    assert _arviz.group_names(result) == ["posterior", "sample_stats", "warmup_posterior", "warmup_sample_stats"]
    for name, draws in (("posterior", 60), ("warmup_posterior", 50)):
        for x in (result[name]["x"], getattr(result, name)["x"], _arviz.group(result, name)["x"]):
            assert x.dims == ("chain", "draw", "param") and x.shape == (2, draws, 3)
            assert list(x["param"].values) == list(gauss.names)
            np.testing.assert_array_equal(x["chain"].values, [0, 1])
            np.testing.assert_array_equal(x["draw"].values, np.arange(draws))
    for name, draws in (("sample_stats", 60), ("warmup_sample_stats", 50)):
        stats = _arviz.group(result, name)
        assert isinstance(stats, xr.Dataset)
        for var in NUTS_STATS:
            assert var in stats and var in result[name], var
            assert stats[var].dims == ("chain", "draw") and stats[var].shape == (2, draws), var
    assert result.sample_stats["diverging"].dtype == bool
    np.testing.assert_array_equal(_arviz.draws_array(result), result.posterior["x"].values)
    with pytest.raises(KeyError):
        _arviz.group(result, "prior")


def test_attrs(result):
    for key in ATTRS:
        assert key in result.attrs, key
    a = result.attrs
    assert a["sampler"] == "nuts" and a["seed"] == 5 and a["interrupted"] == False  # noqa: E712 - 0 (netCDF)
    assert a["mcsample_version"] == mc.__version__
    assert json.loads(a["settings"])["max_depth"] == 10
    assert a["n_grad"] >= int(result.sample_stats["n_grad"].sum() + result.warmup_sample_stats["n_grad"].sum())
    assert a["n_logp"] == 0 and a["wall_time"] > 0 and a["compile_time"] >= 0
    # each group carries the attrs ArviZ's converters set, naming mcsample as the inference library
    posterior_attrs = _arviz.group(result, "posterior").attrs
    assert posterior_attrs["inference_library"] == "mcsample" and "created_at" in posterior_attrs
    if AZ1:
        assert posterior_attrs["sample_dims"] == ["chain", "draw"]


def test_no_warmup_groups_unless_asked(gauss):
    plain = mc.sample(gauss, "nuts", draws=10, tune=10, chains=1, seed=0, progressbar=False)
    assert _arviz.group_names(plain) == ["posterior", "sample_stats"]


def test_arviz_reads_the_result(result):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az().summary(result)
        ess = az().ess(result)
        rhat = az().rhat(result)
    assert list(table.index) == ["x[x[0]]", "x[x[1]]", "x[x[2]]"]
    for col in ("mean", "sd", "ess_bulk", "ess_tail", "r_hat", "mcse_mean"):
        assert col in table.columns, col
    assert np.all(np.asarray(ess["x"].values) > 0) and np.all(np.isfinite(rhat["x"].values))
    # mcsample's wrappers: a Dataset on both, rows named by parameter
    assert isinstance(_arviz.ess(result), xr.Dataset) and isinstance(_arviz.rhat(result), xr.Dataset)
    np.testing.assert_allclose(_arviz.ess(result)["x"].values, np.asarray(ess["x"].values))
    np.testing.assert_allclose(_arviz.rhat(result)["x"].values, np.asarray(rhat["x"].values))
    assert _arviz.ess(result, "tail")["x"].dims == ("param",)
    assert _arviz.mcse(result)["x"].dims == ("param",)
    assert list(_arviz.summary(result).index) == ["x[0]", "x[1]", "x[2]"]
    # the array helpers agree with the Dataset ones
    x = _arviz.draws_array(result)
    np.testing.assert_allclose(_arviz.ess_of(x), _arviz.ess(result)["x"].values)
    np.testing.assert_allclose(_arviz.ess_of(x, "tail"), _arviz.ess(result, "tail")["x"].values)
    np.testing.assert_allclose(_arviz.rhat_of(x), _arviz.rhat(result)["x"].values)
    np.testing.assert_allclose(_arviz.mcse_of(x, "mean"), _arviz.mcse(result)["x"].values, rtol=1e-10)


def test_arviz_plots_the_result(result):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az().plot_trace(result)
        if AZ1:
            az().plot_dist(result)  # ArviZ 1.x's name for 0.x's plot_posterior
        else:
            az().plot_posterior(result)
    plt.close("all")


def _draws(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def test_extra_groups_round_trip():
    step = xr.Dataset({"ess": (("chain", "step"), _draws((2, 7))),
                       "temperature": (("chain", "step"), np.linspace(0, 1, 14).reshape(2, 7))},
                      coords={"chain": [0, 1], "step": np.arange(7)}, attrs={"note": "per step"})
    r = _arviz.to_inference_data(_draws((2, 20, 2)), {"lp": _draws((2, 20), 1)}, ["a", "b"], {"seed": 1},
                                 extra_groups={"step_stats": step})
    assert _arviz.group_names(r) == ["posterior", "sample_stats", "step_stats"]
    with_warmup = _arviz.to_inference_data(_draws((2, 20, 2)), {"lp": _draws((2, 20), 1)}, ["a", "b"], {},
                                           warmup_posterior=_draws((2, 5, 2)), warmup_stats={"lp": _draws((2, 5))},
                                           extra_groups={"step_stats": step})
    assert _arviz.group_names(with_warmup) == ["posterior", "sample_stats", "step_stats", "warmup_posterior",
                                               "warmup_sample_stats"]
    got = _arviz.group(r, "step_stats")
    xr.testing.assert_identical(got.drop_attrs(), step.drop_attrs())
    assert got.attrs["note"] == "per step"
    assert r.step_stats["ess"].dims == ("chain", "step") and r["step_stats"]["temperature"].shape == (2, 7)
    assert set(step.attrs) == {"note"}  # the caller's dataset is not modified
    assert r.attrs["seed"] == 1
    with pytest.raises(ValueError, match="clashes"):
        _arviz.to_inference_data(_draws((1, 5, 1)), {}, ["a"], {}, extra_groups={"posterior": step})


def test_diagnostics_agree_across_arviz_versions():
    """ESS bulk/tail, R-hat and MCSE of fixed draws, pinned to ArviZ 0.23's values: the
    comparison table's columns mean the same on either ArviZ."""
    x = _draws((2, 50, 3))
    np.testing.assert_allclose(_arviz.ess_of(x), [114.884907, 125.427409, 25.48044], rtol=1e-6)
    np.testing.assert_allclose(_arviz.ess_of(x, "tail"), [119.591864, 79.892002, 112.861877], rtol=1e-6)
    np.testing.assert_allclose(_arviz.rhat_of(x), [1.003516, 1.043977, 1.056671], rtol=1e-6)
    np.testing.assert_allclose(_arviz.mcse_of(x, "mean"), [0.099776, 0.091383, 0.179784], rtol=1e-5)
    r = _arviz.to_inference_data(x, {}, ["a", "b", "c"], {})
    np.testing.assert_allclose(_arviz.ess(r, "tail")["x"].values, _arviz.ess_of(x, "tail"))


def test_empty_stats_give_no_group_and_integer_names_work():
    r = _arviz.to_inference_data(_draws((2, 10, 3)), {}, range(3), {})
    assert _arviz.group_names(r) == ["posterior"]
    np.testing.assert_array_equal(r.posterior["param"].values, [0, 1, 2])


def test_layout_matches_arvizs_own_from_dict():
    """Same groups, variables, dims and coords as the installed ArviZ's from_dict gives."""
    post, stats, warm = _draws((2, 20, 2)), {"lp": _draws((2, 20), 1)}, _draws((2, 8, 2), 2)
    ours = _arviz.to_inference_data(post, stats, ["a", "b"], {}, warmup_posterior=warm,
                                    warmup_stats={"lp": _draws((2, 8), 3)})
    kw = dict(coords={"param": ["a", "b"]}, dims={"x": ["param"]}, save_warmup=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if AZ1:
            theirs = az().from_dict({"posterior": {"x": post}, "sample_stats": stats,
                                     "warmup_posterior": {"x": warm}, "warmup_sample_stats": {"lp": stats["lp"][:, :8]}},
                                    **kw)
        else:
            theirs = az().from_dict(posterior={"x": post}, sample_stats=stats, warmup_posterior={"x": warm},
                                    warmup_sample_stats={"lp": stats["lp"][:, :8]}, **kw)
    assert type(ours) is type(theirs)
    assert sorted(_arviz.group_names(ours)) == sorted(_arviz.group_names(theirs))
    for name in _arviz.group_names(theirs):
        a, b = _arviz.group(ours, name), _arviz.group(theirs, name)
        assert set(a.data_vars) == set(b.data_vars), name
        for var in b.data_vars:
            assert a[var].dims == b[var].dims and a[var].dtype == b[var].dtype, (name, var)
        for coord in b.coords:
            np.testing.assert_array_equal(a[coord].values, b[coord].values)
        assert set(b.attrs) <= set(a.attrs), name
    xr.testing.assert_equal(_arviz.group(ours, "posterior"), _arviz.group(theirs, "posterior"))


def test_building_a_result_on_arviz_1_does_not_import_arviz():
    """On ArviZ 1.x sample() returns a DataTree built by xarray alone (ArviZ's import costs ~3 s
    of the time to first draw); checked in a fresh process."""
    if not AZ1:
        pytest.skip("ArviZ 0.x: InferenceData needs ArviZ")
    import subprocess
    import sys
    code = ("import sys, numpy as np\nfrom mcsample import _arviz\n"
            "r = _arviz.to_inference_data(np.zeros((1, 3, 2)), {'lp': np.zeros((1, 3))}, ['a', 'b'], {})\n"
            "assert 'arviz' not in sys.modules, 'arviz imported'\nprint(type(r).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "DataTree"


def test_preload_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("MCSAMPLE_PRELOAD", "0")
    monkeypatch.setattr(_arviz, "_PRELOAD", [])
    _arviz.preload()
    assert _arviz._PRELOAD == []


def test_importing_arviz_while_the_background_import_runs():
    """sample() imports ArviZ (0.x) or xarray (1.x) in a thread while its chains compile and run;
    a user thread importing ArviZ at the same time must neither deadlock nor see a half-imported
    module, and numba.vectorize must be numba's own again afterwards. In a fresh process, so that
    nothing is imported yet."""
    import subprocess
    import sys
    code = ("import numba\n"
            "vectorize = numba.vectorize\n"
            "from mcsample import _arviz\n"
            "_arviz.preload()\n"
            "import arviz\n"
            "assert hasattr(arviz, 'InferenceData') and hasattr(arviz, 'summary')\n"
            "_arviz._az()\n"
            "assert numba.vectorize is vectorize\n"
            "print('ok', arviz.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_arvizs_ufunc_is_cached_and_other_vectorize_calls_are_not_touched(tmp_path, monkeypatch):
    """While ArviZ 0.x is imported, numba.vectorize gives ``cache=True`` to calls from arviz.*
    modules with a signature list, and to nothing else."""
    import numba
    for thread in _arviz._PRELOAD:  # a background import in flight would wrap the stand-in below
        thread.join()
    calls = []
    monkeypatch.setattr(numba, "vectorize", lambda *a, **k: calls.append(k) or (lambda f: f))
    with _arviz._cached_numba_ufuncs():
        wrapper = numba.vectorize
        namespace = {"__name__": "arviz.stats.fake", "vectorize": wrapper}
        exec("vectorize(['float64(float64)'])(abs)\nvectorize(abs)", namespace)
        wrapper(["float64(float64)"])(abs)  # from here: tests, not arviz
    assert numba.vectorize is not wrapper
    assert calls == [{"cache": True}, {}, {}]


def test_no_warning_filter_leaks_from_a_background_import(monkeypatch):
    """The background import enters its libraries' own catch_warnings blocks (~300 for ArviZ 0.x,
    some with simplefilter("ignore")). If mcsample entered one in the main thread meanwhile, the
    two would close out of order and leave the import's "ignore" in force for the whole process.
    Here a stand-in import sits inside such a block while ``rhat`` runs: the filters must come
    back as they were (the mutant, entering the block before waiting for the import, leaks)."""
    import threading
    rng = np.random.default_rng(1)
    idata = _arviz.to_inference_data(rng.normal(size=(2, 50, 2)), {"lp": rng.normal(size=(2, 50))},
                                     ["a", "b"], {})
    inside, leave = threading.Event(), threading.Event()

    def stand_in_import():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=stand_in_import)
    monkeypatch.setattr(_arviz, "_PRELOAD", [thread])
    before = list(warnings.filters)
    thread.start()
    assert inside.wait(10)
    threading.Timer(0.2, leave.set).start()
    _arviz.rhat(idata)
    assert warnings.filters == before
