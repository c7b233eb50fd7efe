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
    assert "broken" in cmp.format_table(ds)


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
