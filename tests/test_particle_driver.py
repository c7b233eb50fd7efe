"""The driver's particle path end to end, on the test family (exact draws through a trivial time
grid, ``mcsample.testing.toy_particles``): budget, counting, Ctrl-C, progress, output, compare,
reproducibility, and the testing module's handling of particle samplers."""

import concurrent.futures as cf
import importlib
from dataclasses import dataclass

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz
from mcsample.testing import assert_accurate, assert_invariant, models
from mcsample.testing.toy_particles import ToyParticles, ToyRun
from targets import gaussians

sample_module = importlib.import_module("mcsample.sample")
MEAN, VAR = np.array([1.0, -2.0]), np.array([1.0, 4.0])


@pytest.fixture(scope="module")
def model():
    return models.gaussian(MEAN, VAR, name="toy target")


def toy(**kw):
    return ToyParticles(mean=tuple(MEAN), cov=tuple(VAR), **kw)


def run(model, cfg=None, **kw):
    kw.setdefault("progressbar", False)
    kw.setdefault("draws", 200)
    kw.setdefault("chains", 3)
    kw.setdefault("seed", 5)
    return mc.sample(model.target, cfg or toy(n_steps=8, evals_per_step=2), **kw)


def test_output_layout_and_exact_counts(model):
    idata = run(model)
    assert _arviz.group_names(idata)[:3] == ["posterior", "sample_stats", "step_stats"]
    x = idata["posterior"]["x"]
    assert x.dims == ("chain", "draw", "param") and x.shape == (3, 200, 2)
    # every particle: 8 steps x 2 evaluations, plus one at its exact draw (outside the steps)
    np.testing.assert_array_equal(idata["sample_stats"]["n_logp"].values, 16)
    assert idata.attrs["n_logp"] == 3 * 200 * (16 + 1) and idata.attrs["n_grad"] == 0
    assert idata.attrs["kind"] == "particles" and idata.attrs["n_steps"] == 8
    steps = _arviz.group(idata, "step_stats")
    assert steps["ess"].dims == ("chain", "step") and steps["ess"].shape == (3, 8)
    np.testing.assert_allclose(steps["time"].values[0], np.arange(1, 9) / 8)
    np.testing.assert_allclose(steps["ess"].values[:, -1], 1.0)  # the last step is the target itself
    table = _arviz.summary(idata)
    assert list(table.index) == ["x[0]", "x[1]"]


def test_budget_per_particle_is_planned_and_respected(model):
    budget = 3 * 200 * 11.5  # 11.5 per particle: 1 at the start, then 5 steps of 2
    idata = run(model, toy(n_steps=100, evals_per_step=2), max_evals=budget)
    assert idata.attrs["n_steps"] == 5
    assert idata.attrs["n_logp"] == 3 * 200 * 11 <= budget


@numba.njit
def gaussian_right_of_mean(x, mean, var):
    if x[0] < mean[0]:  # a support the toy family ignores: about half its draws fall outside
        return -np.inf
    return -0.5 * np.sum((x - mean) ** 2 / var)


def test_final_log_densities_and_particles_outside_the_support(model):
    idata = run(model)
    x, lp = idata["posterior"]["x"].values, idata["sample_stats"]["lp"].values
    assert lp.shape == (3, 200)
    np.testing.assert_allclose(lp, [[model.target.logp(p) for p in chain] for chain in x])
    assert idata.attrs["n_logp"] == 3 * 200 * (16 + 1)  # the lp statistic is not counted

    truncated = mc.Target(gaussian_right_of_mean, 2, args=(MEAN, VAR))
    with pytest.warns(mc.ConvergenceWarning, match=r"toy_particles: \d+ of 600 particles ended where log p"):
        idata = mc.sample(truncated, toy(n_steps=8, evals_per_step=2), draws=200, chains=3, seed=5,
                          progressbar=False)
    x, lp = idata["posterior"]["x"].values, idata["sample_stats"]["lp"].values
    np.testing.assert_array_equal(np.isfinite(lp), x[..., 0] >= MEAN[0])


def test_budget_that_pays_for_no_step_is_a_clear_error(model):
    with pytest.raises(ValueError, match="does not pay for one step"):
        run(model, max_evals=3 * 200 * 2)


def test_same_seed_is_bit_identical_across_executors_and_thread_counts(model):
    base = run(model)["posterior"]["x"].values
    with cf.ThreadPoolExecutor(max_workers=1) as ex:
        one_thread = run(model, executor=ex)["posterior"]["x"].values
    with cf.ProcessPoolExecutor(max_workers=2) as ex:
        processes = run(model, executor=ex)
    with_bar = run(model, progressbar=True)["posterior"]["x"].values
    np.testing.assert_array_equal(base, one_thread)
    np.testing.assert_array_equal(base, processes["posterior"]["x"].values)
    np.testing.assert_array_equal(base, with_bar)
    assert processes.attrs["n_logp"] == 3 * 200 * 17
    assert not np.array_equal(base, run(model, seed=6)["posterior"]["x"].values)


def test_progress_counts_time_steps(model, capsys):
    run(model, toy(n_steps=7), chains=1, progressbar=True)
    err = capsys.readouterr().err
    assert "7/7" in err and "step/s" in err


def interrupt_when(condition, monkeypatch):
    """Make the driver's wait loop raise KeyboardInterrupt once ``condition(finished)`` holds."""
    real_wait = sample_module.cf.wait

    def wait(fs, timeout=None):
        finished, pending = real_wait(fs, timeout=0.02)
        if condition(finished):
            raise KeyboardInterrupt
        return finished, pending
    monkeypatch.setattr(sample_module.cf, "wait", wait)


def test_ctrl_c_returns_only_finished_runs(model, monkeypatch):
    interrupt_when(lambda finished: len(finished) > 0, monkeypatch)
    slow = toy(n_steps=10, seconds_per_step=0.02)
    with cf.ThreadPoolExecutor(max_workers=1) as ex:  # runs one after another: the first finishes
        idata = run(model, slow, executor=ex)
    assert idata.attrs["interrupted"] == True  # noqa: E712 - stored as 1 (netCDF)
    assert idata.attrs["chains_returned"] == 1 and idata["posterior"]["x"].shape == (1, 200, 2)
    assert idata.attrs["n_logp"] >= 200 * 11  # the finished run; a stopped one adds its spend


def test_ctrl_c_before_any_run_finishes_says_so(model, monkeypatch):
    interrupt_when(lambda finished: True, monkeypatch)
    with pytest.raises(KeyboardInterrupt, match="before any particle run reached the end of its time grid"):
        run(model, toy(n_steps=1000, seconds_per_step=0.01))


def test_compare_row(model, tmp_path):
    target, ref = gaussians.diagonal(MEAN, np.sqrt(VAR), "toy target")
    ds = mc.compare(target, [toy(n_steps=10)], budget=4 * 500 * 11, reference=ref, chains=4,
                    progressbar=False, out=tmp_path)
    row = ds.sel(sampler="toy_particles")
    assert str(row["status"].values) == "ok"
    assert int(row["draws"]) == 500 and int(row["evals"]) == 4 * 500 * 11
    assert np.isnan(float(row["rhat"]))  # MCMC diagnostics are not reported for populations
    # 2000 exact draws: the largest of two standardised mean errors is below 4 / sqrt(2000)
    assert float(row["mean_error"]) < 4 / np.sqrt(2000)
    assert (tmp_path / "table.md").exists()


def test_invariance_checks_refuse_particle_samplers(model):
    with pytest.raises(ValueError, match="particle sampler.*assert_accurate"):
        assert_invariant(model.target, toy(), model.exact, n=100)


def test_assert_accurate_passes_the_toy(model, seed_offset):
    # 4 x 1000 exact draws: mean errors ~ 1/63 sd, log sd ratios ~ 1/90; tolerances are 6x that
    assert_accurate(model.target, toy(), model.exact, draws=1000, chains=4, seed=seed_offset,
                    mean_tol=0.1, sd_tol=0.07)


@dataclass(frozen=True)
class ShrunkToy(ToyParticles):
    """A broken particle family: it returns its population at t = 0.9, not at the end."""

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return _ShrunkRun(self, target, rng, tune, draws, self.n_steps)


class _ShrunkRun(ToyRun):
    def advance(self, start, stop):
        super().advance(start, stop)
        if stop == self.total:
            self.particles[:] = self.centre + 0.9 * (self.x - self.centre)


def test_assert_accurate_catches_a_broken_particle_family(model):
    """log sd ratio log 0.9 = -0.105, beyond the 0.07 the correct toy passes."""
    with pytest.raises(AssertionError, match="not accurate enough"):
        assert_accurate(model.target, ShrunkToy(mean=tuple(MEAN), cov=tuple(VAR)), model.exact, draws=1000,
                        chains=4, mean_tol=0.1, sd_tol=0.07)
