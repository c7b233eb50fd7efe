"""The slice samplers' frame above d = 10 (benchmarks/slice_dimension.py): scales and correlations
fitted from a window with few effective draws for d are pooled by as much as they are noise, and
elliptical slice sampling's prior is widened less as d grows. At d <= 10 nothing changes (the
golden runs pin it).

Mutants caught here: no pooling of the scales (``pool_scales`` returning its input), no pooling of
the correlations, and elliptical's d = 10 inflation of 1.5 at every d."""

import json
import warnings

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz
from mcsample.samplers import _slice_common as common
from mcsample.samplers.slice import elliptical_inflation


def _ar1(rng, n, d, phi):
    x = rng.standard_normal((n, d))
    for t in range(1, n):
        x[t] += phi * x[t - 1]
    return x


def test_noisy_equal_scales_are_pooled_and_unequal_ones_kept():
    """Exact scales 1: the raw IQR scales of 200 autocorrelated draws spread by ~0.1 in log, all
    of it noise, so the pooled ones are equal. Scales 0.1-10: the spread (log 100)^2 / 12 is
    signal and the pooled scales stay within the noise of the raw ones."""
    rng = np.random.default_rng(1)
    x = _ar1(rng, 200, 100, 0.5)
    raw = common.robust_scale(x)
    pooled = common.pool_scales(x, raw)
    assert np.ptp(np.log(raw)) > 0.3 and np.ptp(np.log(pooled)) < 0.05
    sd = np.geomspace(0.1, 10.0, 100)
    raw = common.robust_scale(x * sd)
    pooled = common.pool_scales(x * sd, raw)
    assert np.max(np.abs(np.log(pooled / raw))) < 0.05


def test_noise_correlations_are_pooled_and_real_ones_kept():
    """500 = 10 d draws of independent coordinates: every rank correlation is noise (sd ~0.045 per
    pair, more with autocorrelation) and the pooled matrix is the identity. Of an equicorrelated
    (0.5) Gaussian they are kept."""
    rng = np.random.default_rng(2)
    x = _ar1(rng, 500, 50, 0.5)
    corr = common.rank_correlation(x)
    off = ~np.eye(50, dtype=bool)
    assert np.abs(corr[off]).max() > 0.1
    assert np.abs(common.pool_correlations(x, corr)[off]).max() < 0.02
    y = x @ np.linalg.cholesky(np.full((50, 50), 0.5) + 0.5 * np.eye(50)).T
    corr = common.rank_correlation(y)
    assert np.abs(common.pool_correlations(y, corr) - corr)[off].max() < 0.05


def test_elliptical_inflation_keeps_the_log_likelihood_spread_of_d_10():
    assert [elliptical_inflation(d) for d in (1, 4, 10)] == [1.5, 1.5, 1.5]
    spread = [(1 - elliptical_inflation(d) ** -2) * np.sqrt(d) for d in (10, 11, 50, 200)]
    np.testing.assert_allclose(spread, spread[0], rtol=1e-12)


@numba.njit
def _std_normal(x):
    return -0.5 * np.sum(x * x)


def _run(sampler, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mc.ConvergenceWarning)
        idata = mc.sample(mc.Target(_std_normal, dim=100), sampler, chains=1, tune=1000, draws=1000, seed=seed,
                          progressbar=False, find_bulk=False)
    return idata, np.asarray(json.loads(idata.attrs["tuned"])[0]["scale"])


@pytest.mark.parametrize("sampler", ["gpss", "elliptical_slice"])
def test_d100_frame_is_isotropic_on_an_isotropic_target(sampler):
    """N(0, I) at d = 100, from a start in the bulk: the fitted scales are equal (unpooled they
    spanned 0.6-1.5 and elliptical slice sampling kept a bulk ESS of 3-37 in 1000 draws), at 1 for
    GPSS and at the inflation for elliptical slice sampling (1.5 at every d gave it an ESS of 2-3 at
    d = 50). Elliptical's bulk ESS was 87-112 over seeds 1-3 with the pooled frame."""
    idata, scale = _run(sampler, seed=1)
    target_scale = elliptical_inflation(100) if sampler == "elliptical_slice" else 1.0
    assert np.max(np.abs(np.log(scale / target_scale))) < 0.05
    if sampler == "elliptical_slice":
        assert _arviz.ess_of(_arviz.draws_array(idata)).min() > 50
