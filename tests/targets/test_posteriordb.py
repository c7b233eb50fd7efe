"""Tests of the posteriordb targets against finite differences, scipy and the reference draws."""

import json
import zipfile

import numpy as np
import pytest
from scipy import linalg, special, stats

from targets import posteriordb

NAMES = posteriordb.NAMES


def _raw_data(name):
    """posteriordb data read straight from the zip, independently of the module's readers."""
    path = posteriordb.DATA_DIR / posteriordb.load(name)["posterior"] / "data.json.zip"
    with zipfile.ZipFile(path) as archive:
        return {k: np.asarray(v, dtype=float) for k, v in
                json.loads(archive.read(archive.namelist()[0])).items()}


# Independent scipy versions of the Stan models: log density of the Stan parameters at the
# constrained point implied by x, plus log|d constrained / d x|. Each matches the kernel only up
# to an additive constant.

def _scipy_eight_schools(x, d):
    theta_trans, mu, tau = x[:-2], x[-2], np.exp(x[-1])
    theta = theta_trans * tau + mu
    return (stats.norm.logpdf(theta_trans).sum() + stats.norm.logpdf(d["y"], theta, d["sigma"]).sum()
            + stats.norm.logpdf(mu, 0, 5) + stats.halfcauchy.logpdf(tau, scale=5) + np.log(tau))


def _scipy_arK(x, d):
    K, T, y = int(d["K"]), int(d["T"]), d["y"]
    alpha, beta, sigma = x[0], x[1:-1], np.exp(x[-1])
    lags = np.column_stack([y[K - k:T - k] for k in range(1, K + 1)])  # y[t - k] for t >= K
    return (stats.norm.logpdf(alpha, 0, 10) + stats.norm.logpdf(beta, 0, 10).sum()
            + stats.halfcauchy.logpdf(sigma, scale=2.5)
            + stats.norm.logpdf(y[K:], alpha + lags @ beta, sigma).sum() + np.log(sigma))


def _scipy_kidiq(x, d):
    sigma = np.exp(x[-1])
    return (stats.halfcauchy.logpdf(sigma, scale=2.5)
            + stats.norm.logpdf(d["kid_score"], x[0] + x[1] * d["mom_iq"], sigma).sum()
            + np.log(sigma))


def _scipy_earnings(x, d):
    z = (d["height"] - d["height"].mean()) / np.std(d["height"], ddof=1)
    mean = x[0] + x[1] * z + x[2] * d["male"] + x[3] * z * d["male"]
    sigma = np.exp(x[-1])
    return stats.norm.logpdf(np.log(d["earn"]), mean, sigma).sum() + np.log(sigma)


def _scipy_diamonds(x, d):
    Xc = d["X"][:, 1:] - d["X"][:, 1:].mean(axis=0)
    b, intercept, sigma = x[:-2], x[-2], np.exp(x[-1])
    return (stats.norm.logpdf(b).sum() + stats.t.logpdf(intercept, 3, 8, 10)
            + stats.t.logpdf(sigma, 3, 0, 10) + np.log(sigma)
            + stats.norm.logpdf(d["Y"], intercept + Xc @ b, sigma).sum())


def _scipy_gp_pois_regr(x, d):
    rho, alpha, f_tilde = np.exp(x[0]), np.exp(x[1]), x[2:]
    dist = d["x"][:, None] - d["x"][None, :]
    cov = alpha ** 2 * np.exp(-dist ** 2 / (2 * rho ** 2)) + 1e-10 * np.eye(len(d["x"]))
    f = linalg.cholesky(cov, lower=True) @ f_tilde
    return (stats.gamma.logpdf(rho, 25, scale=1 / 4) + stats.halfnorm.logpdf(alpha, scale=2)
            + stats.norm.logpdf(f_tilde).sum() + stats.poisson.logpmf(d["k"], np.exp(f)).sum()
            + np.log(rho) + np.log(alpha))


def _scipy_low_dim_gauss_mix(x, d):
    mu = np.array([x[0], x[0] + np.exp(x[1])])
    sigma = np.exp(x[2:4])
    theta = special.expit(x[4])
    mix = np.logaddexp(np.log(theta) + stats.norm.logpdf(d["y"], mu[0], sigma[0]),
                       np.log1p(-theta) + stats.norm.logpdf(d["y"], mu[1], sigma[1]))
    jacobian = x[1] + np.log(sigma).sum() + np.log(theta) + np.log1p(-theta)
    return (stats.halfnorm.logpdf(sigma, scale=2).sum() + stats.norm.logpdf(mu, 0, 2).sum()
            + stats.beta.logpdf(theta, 5, 5) + mix.sum() + jacobian)


def _scipy_mesquite(x, d):
    design = np.column_stack([np.ones_like(d["weight"])]
                             + [np.log(d[k]) for k in ("diam1", "diam2", "canopy_height",
                                                       "total_height", "density")]
                             + [d["group"]])
    sigma = np.exp(x[-1])
    return stats.norm.logpdf(np.log(d["weight"]), design @ x[:-1], sigma).sum() + np.log(sigma)


def _scipy_sblrc(x, d):
    beta, sigma = x[:-1], np.exp(x[-1])
    return (stats.norm.logpdf(beta, 0, 10).sum() + stats.norm.logpdf(sigma, 0, 10)
            + stats.norm.logpdf(d["y"], d["X"] @ beta, sigma).sum() + np.log(sigma))


SCIPY_LOGP = {
    "eight_schools_noncentered": _scipy_eight_schools,
    "arK": _scipy_arK,
    "kidiq_momiq": _scipy_kidiq,
    "earnings_logearn_interaction_z": _scipy_earnings,
    "diamonds": _scipy_diamonds,
    "gp_pois_regr": _scipy_gp_pois_regr,
    "low_dim_gauss_mix": _scipy_low_dim_gauss_mix,
    "mesquite": _scipy_mesquite,
    "sblrc_blr": _scipy_sblrc,
}

# constrain(unconstrain(draws)) == draws holds to rounding, except for gp_pois_regr: its f is
# L(rho, alpha) f_tilde with L the Cholesky factor of a nearly singular covariance (condition
# number ~1e10), whose rounding errors turn the one-ulp change exp(log(rho)) != rho into changes of
# ~1e-8 in f.
ROUND_TRIP_ATOL = {"gp_pois_regr": 1e-6}


def test_all_nine_posteriors_are_registered():
    assert set(NAMES) == set(SCIPY_LOGP)


@pytest.fixture(scope="module", params=NAMES)
def target(request):
    return request.param, posteriordb.load(request.param)


def _test_points(t, n=4, seed=0):
    """Unconstrained images of some reference draws, jittered off the draws themselves."""
    rng = np.random.default_rng(seed)
    draws = t["reference_draws"].reshape(-1, len(t["ref_names"]))
    x = t["unconstrain"](draws[rng.choice(len(draws), n, replace=False)])
    return x + 0.1 * rng.standard_normal(x.shape)


def test_gradient_matches_finite_differences(target, assert_gradient_matches_finite_differences):
    _, t = target
    assert_gradient_matches_finite_differences(t, _test_points(t))


def test_logp_matches_scipy_up_to_constant(target):
    name, t = target
    data = _raw_data(name)
    offsets = [t["logp"](x, *t["args"]) - SCIPY_LOGP[name](x, data) for x in _test_points(t, 6)]
    scale = max(abs(t["logp"](x, *t["args"])) for x in _test_points(t, 6))
    assert np.ptp(offsets) <= 1e-8 * max(1.0, scale)


def test_constrain_round_trips(target):
    name, t = target
    draws = t["reference_draws"]
    x = t["unconstrain"](draws)
    assert x.shape == draws.shape[:-1] + (t["dim"],)
    np.testing.assert_allclose(t["constrain"](x), draws, rtol=1e-12,
                               atol=ROUND_TRIP_ATOL.get(name, 1e-12))
    np.testing.assert_allclose(t["unconstrain"](t["constrain"](x)), x, rtol=1e-9, atol=1e-9)


def test_reference_draws_shape_and_names(target):
    name, t = target
    info_path = posteriordb.DATA_DIR / t["posterior"] / "reference_draws.info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    assert t["ref_names"] == info["diagnostics"]["diagnostic_information"]["names"]
    assert t["reference_draws"].shape == (10, 1000, len(t["ref_names"]))
    assert np.isfinite(t["reference_draws"]).all()
    assert len(t["names"]) == t["dim"] == len(set(t["names"]))
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
               for a in t["args"])
    assert t["doc"]


def test_score_has_mean_zero_under_reference_draws(target):
    """E[grad log p] = 0 under the posterior: ties the kernel to posteriordb's draws.

    The reference draws are nearly independent (bulk ESS about 10,000), so each component of the
    mean score should lie within a few standard errors of zero.
    """
    _, t = target
    x = t["unconstrain"](t["reference_draws"]).reshape(-1, t["dim"])
    scores = np.array([t["logp_grad"](xi, *t["args"])[1] for xi in x])
    z = scores.mean(axis=0) / (scores.std(axis=0, ddof=1) / np.sqrt(len(x)))
    assert np.abs(z).max() < 5.0, dict(zip(t["names"], z))


def test_unknown_name_raises():
    with pytest.raises(KeyError):
        posteriordb.load("no_such_posterior")
