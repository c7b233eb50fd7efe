"""Tests of the breast-cancer logistic regression against finite differences, scipy and its
reference draws."""

import csv
import json

import numpy as np
import pytest
from scipy import special, stats

from targets import logistic


@pytest.fixture(scope="module")
def t():
    return logistic.load()


def _raw_csv():
    """Features and labels parsed straight from the CSV, independently of the module's reader."""
    with open(logistic.CSV_PATH, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    values = np.array(rows[1:], dtype=float)
    return rows[0], values[:, :-1], values[:, -1]


def _scipy_logp(x, features, labels):
    """Independent version: z-scores recomputed from the CSV, scipy densities, log-sigmoid."""
    z = (features - features.mean(axis=0)) / features.std(axis=0)
    eta = x[0] + z @ x[1:]
    loglik = np.where(labels == 1, special.log_expit(eta), special.log_expit(-eta)).sum()
    return stats.norm.logpdf(x[0], 0, 2.5) + stats.norm.logpdf(x[1:], 0, 1).sum() + loglik


def _test_points(t, n=4, seed=0):
    rng = np.random.default_rng(seed)
    draws = t["reference_draws"].reshape(-1, t["dim"])
    x = draws[rng.choice(len(draws), n, replace=False)]
    far = 5.0 * rng.standard_normal((2, t["dim"]))  # linear predictors in the hundreds
    return np.vstack([x + 0.3 * rng.standard_normal(x.shape), far])


def test_data_file():
    header, features, labels = _raw_csv()
    assert features.shape == (569, 30) and header[-1] == "target"
    assert np.bincount(labels.astype(int)).tolist() == [212, 357]  # malignant, benign
    info = json.loads(logistic.STANDARDISATION_PATH.read_text(encoding="utf-8"))
    assert info["features"] == header[:-1]
    np.testing.assert_allclose(info["mean"], features.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(info["sd"], features.std(axis=0), rtol=1e-13)


def test_gradient_matches_finite_differences(t, assert_gradient_matches_finite_differences):
    assert_gradient_matches_finite_differences(t, _test_points(t))


def test_logp_matches_scipy_up_to_constant(t):
    _, features, labels = _raw_csv()
    points = _test_points(t, 6)
    offsets = [t["logp"](x, *t["args"]) - _scipy_logp(x, features, labels) for x in points]
    scale = max(abs(t["logp"](x, *t["args"])) for x in points)
    assert np.ptp(offsets) <= 1e-9 * max(1.0, scale)


def test_extreme_linear_predictors_stay_finite(t):
    x = np.zeros(t["dim"])
    x[0] = 1e4  # eta = 1e4 for every row: exp(eta) would overflow
    value, grad = t["logp_grad"](x, *t["args"])
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(-212 * 1e4 - 0.5 * (1e4 / 2.5) ** 2, rel=1e-12)
    assert grad[0] == pytest.approx(-212 - 1e4 / 2.5 ** 2, rel=1e-12)


def test_reference_draws_load(t):
    info = json.loads(logistic.REFERENCE_INFO_PATH.read_text(encoding="utf-8"))
    assert t["dim"] == 31 and t["names"] == t["ref_names"] == info["names"]
    assert t["names"][0] == "intercept" and len(set(t["names"])) == 31
    assert t["reference_draws"].shape == (4, 2500, 31) == tuple(info["stored_shape"])
    assert np.isfinite(t["reference_draws"]).all()
    assert info["diagnostics_full_run"]["max_rhat"] < 1.01
    assert info["diagnostics_full_run"]["min_ess_bulk"] > 10000
    assert info["diagnostics_full_run"]["min_ess_tail"] > 10000
    np.testing.assert_array_equal(t["constrain"](t["reference_draws"]), t["reference_draws"])
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
               for a in t["args"])
    assert t["doc"] and t["posterior"] == logistic.NAME


def test_score_has_mean_zero_under_reference_draws(t):
    """E[grad log p] = 0 under the posterior (Stein's identity), independently of the sampler."""
    x = t["unconstrain"](t["reference_draws"]).reshape(-1, t["dim"])
    scores = np.array([t["logp_grad"](xi, *t["args"])[1] for xi in x])
    z = scores.mean(axis=0) / (scores.std(axis=0, ddof=1) / np.sqrt(len(x)))
    assert np.abs(z).max() < 5.0, dict(zip(t["names"], z))


def test_target_builds():
    target = logistic.target()
    assert target.dim == 31 and target.name == logistic.NAME
