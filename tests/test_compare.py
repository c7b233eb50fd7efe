"""mc.compare: equal budgets, rows for failures, files written; metrics against closed forms live
in test_metrics.py."""

from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr

import importlib

from mcsample.cli import main
from mcsample.samplers import NUTS
from targets import gaussians

cmp = importlib.import_module("mcsample.compare")  # the module; mcsample.compare is the function


@dataclass(frozen=True)
class Broken(NUTS):
    name = "broken"

    def start_chain(self, target, rng, q0, tune, draws):
        raise RuntimeError("this sampler always fails")


@pytest.fixture(scope="module")
def gauss():
    return gaussians.diagonal(np.array([1.0, -1.0]), np.array([1.0, 3.0]), "g2")


def test_budget_is_enforced_and_failures_get_a_row(gauss, tmp_path):
    target, ref = gauss
    budget = 40000
    ds = cmp.compare(target, ["nuts", Broken()], budget=budget, reference=ref, tune=200,
                     progressbar=False, out=tmp_path)
    nuts = ds.sel(sampler="nuts")
    assert str(nuts["status"].values) == "ok"
    # chains stop at their share of the budget, overshooting by at most about one iteration
    assert budget <= float(nuts["evals"]) <= budget * 1.02
    assert float(nuts["mean_error"]) < 0.2 and float(nuts["sliced_w2"]) < 0.2
    assert "error: RuntimeError: this sampler always fails" in str(ds.sel(sampler="broken")["status"].values)
    for name in ("comparison.nc", "table.md", "marginals.png", "pairs.png", "accuracy_vs_evals.png"):
        assert (tmp_path / name).exists(), name
    back = xr.open_dataset(tmp_path / "comparison.nc")
    assert list(back["sampler"].values) == ["nuts", "broken"]
    # each distance has its floor beside it, in the file and in the table ("value (floor)")
    assert np.isfinite(float(back["sliced_w2_floor"].sel(sampler="nuts")))
    assert np.isnan(float(back["sliced_w2_floor"].sel(sampler="broken")))
    table = cmp.format_table(ds)
    assert "broken" in table and f"({float(nuts['mean_error_floor']):.2g})" in table


@pytest.fixture(scope="module")
def small_ref():  # few reference draws keep the floors' many distances cheap
    return gaussians.diagonal(np.array([1.0, -1.0]), np.array([1.0, 3.0]), "g2", n_exact=1500)[1]


def test_floor_is_zero_for_the_whole_reference_and_shrinks_with_n(small_ref):
    whole = cmp.monte_carlo_floor(small_ref, 10**6, seed=1)  # capped at the reference's draws
    assert whole["sliced_w2"] == 0.0 and whole["sliced_ks"] == 0.0 and whole["mmd"] < 0
    assert whole["mean_error"] < 3 / np.sqrt(1500)  # the reference's own draws: ~N(0, 1/N) per axis
    floors = [cmp.monte_carlo_floor(small_ref, n, seed=1) for n in (20, 150)]
    for k in ("mean_error", "log_sd_ratio", "sliced_w2", "sliced_ks", "w2"):
        assert floors[0][k] > floors[1][k] > whole[k], k


def test_floor_of_the_mean_error_matches_its_sampling_law(small_ref):
    # n exact draws: the max over 2 axes of |N(0, 1/n)| has median 1.052 / sqrt(n) ((2 Phi(q) - 1)^2 = 1/2);
    # the median of 25 resamples has sd ~0.17 / sqrt(n) (density of the max at its median ~0.55)
    n = 40
    floor = cmp.monte_carlo_floor(small_ref, n, seed=2, resamples=25)["mean_error"]
    assert abs(floor * np.sqrt(n) - 1.052) < 4 * 0.17


def test_budget_too_small_for_warmup_is_reported(gauss):
    target, ref = gauss
    ds = cmp.compare(target, ["nuts"], budget=400, reference=ref, tune=1000, progressbar=False)
    assert "budget spent" in str(ds.sel(sampler="nuts")["status"].values)


def test_unknown_sampler_fails_before_running(gauss):
    with pytest.raises(ValueError, match="unknown sampler"):
        cmp.compare(gauss[0], "nuts,nope", budget=1000, reference=gauss[1])


def test_cli_compare(tmp_path, capsys):
    assert main(["compare", "--target", "std_normal", "--budget", "20000", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    assert "std_normal" in capsys.readouterr().out
    assert (tmp_path / "std_normal" / "comparison.nc").exists()
