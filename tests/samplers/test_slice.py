"""Elliptical and hit-and-run slice sampling: exact properties (notes sections 4.2 and 5), bad
input, and, with GPSS, the posteriordb reference posteriors after warmup with the fitted frame.
Invariance from exact draws for all three slice samplers is in test_slice_invariance.py."""

import json

import numba
import numpy as np
import pytest

import mcsample as mc
import targets
from mcsample.testing import assert_matches_reference, check_exchangeability, models


def run(target, sampler, draws=200, **kw):
    kw = {"tune": 0, "chains": 1, "seed": 1, "progressbar": False, **kw}
    return mc.sample(target, sampler, draws=draws, **kw)


def test_elliptical_with_the_target_as_prior_costs_one_evaluation_per_step():
    """With prior N(loc, cov) equal to the target the likelihood is constant: the first point on
    every ellipse is accepted (oracle 7)."""
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    m = models.gaussian(np.array([1.0, -3.0]), cov)
    idata = run(m.target, "elliptical_slice", draws=2000, loc=np.array([1.0, -3.0]), cov=cov)
    assert np.all(idata.sample_stats["n_logp"] == 1) and np.all(idata.sample_stats["n_shrink"] == 0)


@numba.njit
def shifted_gauss(x, shift):
    return -0.5 * np.sum((x - shift) ** 2 * np.array([1.0, 4.0, 0.25]))


def test_hit_and_run_is_translation_equivariant():
    """Shifting the target by c and the start by c shifts every draw by c, with the same seed."""
    c = np.array([3.0, -7.0, 0.5])
    kw = dict(draws=300, centring="none", w=1.5, adapt_w=False)
    a = run(mc.Target(shifted_gauss, 3, args=(np.zeros(3),)), "hit_and_run_slice", init=np.ones(3), **kw)
    b = run(mc.Target(shifted_gauss, 3, args=(c,)), "hit_and_run_slice", init=np.ones(3) + c, **kw)
    np.testing.assert_allclose(b.posterior["x"].values - c, a.posterior["x"].values, atol=1e-12)


@pytest.mark.parametrize("sampler", ["gpss", "elliptical_slice", "hit_and_run_slice"])
def test_same_seed_same_draws_other_seed_other_draws(sampler):
    t, _ = targets.get("funnel10")
    kw = dict(draws=100, tune=100, chains=2)
    a, b = run(t, sampler, seed=5, **kw), run(t, sampler, seed=5, **kw)
    c = run(t, sampler, seed=6, **kw)
    np.testing.assert_array_equal(a.posterior["x"].values, b.posterior["x"].values)
    assert not np.array_equal(a.posterior["x"].values, c.posterior["x"].values)


@pytest.mark.parametrize("sampler", ["gpss", "elliptical_slice", "hit_and_run_slice"])
def test_evaluations_and_lp_are_what_was_computed(sampler):
    """``lp`` is log p at the draw, n_logp counts real calls (the target's own counter agrees),
    and nothing is exhausted on a well-behaved target."""
    m = models.gaussian(np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.3, 2.0]))
    idata = run(m.target, sampler, draws=300, tune=100)
    x = idata.posterior["x"].values[0]
    lp = np.array([m.target.logp(xi) for xi in x])
    np.testing.assert_allclose(idata.sample_stats["lp"].values[0], lp, rtol=1e-9, atol=1e-9)
    assert idata.attrs["n_logp"] >= idata.sample_stats["n_logp"].values.sum() > 0
    assert idata.attrs["n_grad"] == 0 and not idata.sample_stats["exhausted"].any()


@pytest.mark.parametrize("bad, match", [
    (dict(centring="full"), "centring must be one of"),
    (dict(w=0.0), "w must be a positive number"),
    (dict(max_proposals=2), "max_proposals must be at least 4"),
    (dict(loc=np.zeros(2)), r"loc must be a finite array of shape \(3,\)"),
    (dict(cov=-np.ones(3)), "variances must be finite and positive"),
    (dict(cov=np.ones((3, 3))), "not positive definite"),
    (dict(pilot="nuts"), "pilot must be one of"),
])
def test_bad_settings_are_named(bad, match):
    m = models.gaussian(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=match):
        run(m.target, "hit_and_run_slice", **bad)


def test_exhausted_updates_keep_the_point_and_are_counted():
    """A density whose slice floating point cannot hit within max_proposals: each update gives up,
    keeps the current point and is flagged, never hangs."""
    m = models.gaussian(np.zeros(2), np.full(2, 1e-30))
    idata = run(m.target, "hit_and_run_slice", draws=20, init=np.full(2, 1e-16), centring="none", max_proposals=8)
    s = idata.sample_stats
    assert s["exhausted"].all() and np.all(s["n_logp"] <= 2 * 8)  # stepping-out, then shrinkage
    np.testing.assert_array_equal(idata.posterior["x"].values[0], np.full((20, 2), 1e-16))


@pytest.mark.parametrize("sampler, kw", [("elliptical_slice", {}),
                                         ("hit_and_run_slice", dict(w=2.0, adapt_w=False))])
def test_baselines_are_reversible(sampler, kw, seed_offset):
    """Both baselines satisfy detailed balance, so one step from exact draws gives exchangeable
    pairs. (GPSS is not reversible, but this check lacks the power to see it at n = 20000.)"""
    m = models.gaussian(np.array([1.0, -2.0, 0.5]), np.diag([0.25, 4.0, 1.0]) + 0.3)
    check_exchangeability(m.target, sampler, m.exact, n=20000, seed=41 + seed_offset, centring="none", **kw)


# -- posteriors with the fitted frame ---------------------------------------------------------

POSTERIORS = ["arK", "kidiq_momiq", "eight_schools_noncentered"]
SAMPLERS = ["gpss", "elliptical_slice", "hit_and_run_slice"]


@pytest.mark.parametrize("name", POSTERIORS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_posteriordb_reference_with_fitted_frame(sampler, name, seed_offset):
    """Default settings (dense frame fitted in warmup, w tuned, then both frozen), 4 x 2000 draws
    after 1000 warmup iterations: every mean and sd within a Bonferroni z (alpha 1e-4 over all
    checks here) of the combined Monte Carlo standard error, and ESS >= 100 per parameter.
    The issue's fixed bar (0.1 reference sd) is measured across seeds in
    benchmarks/slice_posteriordb.py."""
    t, ref = targets.get(name)
    idata = mc.sample(t, sampler, draws=2000, tune=1000, chains=4, seed=31 + seed_offset, progressbar=False)
    x = ref.to_reference_scale(idata.posterior["x"].values)
    n_checks = 2 * len(SAMPLERS) * sum(len(targets.get(n)[1].mean) for n in POSTERIORS)
    assert_matches_reference(x, ref.mean, ref.sd, len(ref.draws), n_checks=n_checks, min_ess=100)
    assert not idata.sample_stats["exhausted"].any()
    assert json.loads(idata.attrs["tuned"])[0]["frame"] == "dense"


@pytest.mark.parametrize("sampler", ["gpss", "elliptical_slice", "hit_and_run_slice"])
def test_draws_do_not_depend_on_how_the_run_is_chunked(sampler):
    """sample() cuts a chain into chunks by wall-clock time; the draws must not depend on the cut
    (the GPSS pilot of the baselines once restarted its state at every chunk)."""
    t, _ = targets.get("kidiq_momiq")
    whole = mc.samplers.resolve(sampler, {}).start_chain(t, np.random.default_rng(3), np.ones(3), 300, 100)
    whole.run(0, 400)
    pieces = mc.samplers.resolve(sampler, {}).start_chain(t, np.random.default_rng(3), np.ones(3), 300, 100)
    for a, b in [(0, 7), (7, 50), (50, 51), (51, 180), (180, 333), (333, 400)]:
        pieces.run(a, b)
    np.testing.assert_array_equal(whole.draws, pieces.draws)


def test_one_dimensional_target_fits_a_diagonal_frame():
    """d = 1 has no correlations to fit: the dense frame fit used to fail (np.fill_diagonal on a
    scalar correlation) once a warmup window had 10 draws."""
    m = models.gaussian(np.array([1.0]), np.array([4.0]))
    idata = mc.sample(m.target, "hit_and_run_slice", draws=200, tune=300, chains=2, seed=1, progressbar=False)
    assert json.loads(idata.attrs["tuned"])[0]["frame"] == "diag"
