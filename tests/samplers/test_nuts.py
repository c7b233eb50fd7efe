"""NUTS: exact tree-building oracles, divergence detection, invariance from exact draws,
MCSE-bounded accuracy after full warmup, and the posteriordb reference posteriors."""

import json

import numba
import numpy as np
import pytest
from scipy import stats

import mcsample as mc
import targets
from mcsample import _arviz
from mcsample.testing import apply_kernel, assert_invariant, assert_matches_reference
from targets import gaussians, posteriordb


@numba.njit
def flat(x, c):
    return 0.0


@numba.njit
def flat_grad(x, c):
    return 0.0, np.zeros(x.size)


def z_threshold(alpha, n_checks):
    """Two-sided normal quantile for a Bonferroni share of ``alpha``."""
    return stats.norm.isf(alpha / (2 * n_checks))


def test_free_particle_builds_the_full_tree():
    """Constant H and no U-turn (straight lines): every weight is equal, accept_stat is 1 and the
    tree reaches max_depth with 2^max_depth - 1 leapfrog steps (Stan's mock-integrator test)."""
    t = mc.Target(flat, 3, logp_grad=flat_grad, args=(np.zeros(3),))
    idata = mc.sample(t, "nuts", draws=20, tune=0, chains=1, seed=0, progressbar=False,
                      step_size=0.1, adapt_step_size=False, max_depth=6)
    s = idata.sample_stats
    assert np.all(s["tree_depth"] == 6) and np.all(s["n_steps"] == 63)
    np.testing.assert_allclose(s["acceptance_rate"], 1.0, rtol=1e-14)
    assert not s["diverging"].any()


def std_normal_1d():
    return gaussians.diagonal(np.zeros(1), np.ones(1), "n01")[0]


def test_divergences_flagged_above_stability_limit_and_never_below():
    """Leapfrog on N(0, s^2) is stable iff step < 2 s (oracle 8). On gauss100 (s from 0.1 to 10,
    unit metric) the smallest scale goes unstable at step 0.2 while the wide coordinates keep the
    trajectory from U-turning, so the energy error explodes and every transition diverges. (In 1-D
    the U-turn check stops an unstable trajectory first, so 1-D is no oracle here.)"""
    t, _ = targets.get("gauss100")
    kw = dict(draws=100, tune=0, chains=2, seed=1, progressbar=False, adapt_step_size=False,
              init=np.zeros(100))
    unstable = mc.sample(t, "nuts", step_size=0.21, **kw).sample_stats["diverging"].values
    stable = mc.sample(t, "nuts", step_size=0.19, **kw).sample_stats["diverging"].values
    assert unstable.mean() > 0.9 and not stable.any()


@pytest.mark.parametrize("step", [0.05, 0.1])
def test_small_steps_accept_everything_and_turn_after_half_a_period(step, seed_offset):
    """In high dimension a trajectory on N(0, I) circles with period 2 pi and turns back after
    half of it, pi / step leapfrog steps: tree depth ~ log2(pi / step) (oracle 14)."""
    t, _ = targets.get("std_normal", dim=100)
    idata = mc.sample(t, "nuts", draws=200, tune=0, chains=2, seed=2 + seed_offset, progressbar=False,
                      step_size=step, adapt_step_size=False)
    s = idata.sample_stats
    assert float(s["acceptance_rate"].mean()) > 0.99
    assert abs(float(s["tree_depth"].mean()) - np.log2(np.pi / step)) < 1.0


def exact_gaussian(mean, cov):
    chol = np.linalg.cholesky(cov)
    return lambda rng, n: mean + rng.standard_normal((n, mean.size)) @ chol.T


@pytest.mark.parametrize("metric", ["diag", "dense"])
def test_nuts_leaves_an_off_centre_anisotropic_gaussian_invariant(metric, seed_offset):
    rng = np.random.default_rng(42)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T / 4 + np.diag([0.2, 0.5, 1.0, 3.0])
    mean = np.array([3.0, -2.0, 0.5, 10.0])
    t = mc.Target(gaussians.mvn_logp, 4, logp_grad=gaussians.mvn_logp_grad,
                  args=(mean, np.ascontiguousarray(np.linalg.inv(cov))), name="offcentre4")
    inv_metric = np.diag(cov) if metric == "diag" else cov * 1.3  # deliberately not exact
    report = assert_invariant(t, "nuts", exact_gaussian(mean, cov), n=10000, k=(1, 10), seed=7 + seed_offset,
                              step_size=0.4, adapt_step_size=False, inv_metric=inv_metric)
    assert len(report.rows) == 2 * 7


def test_invariance_check_catches_the_wrong_target():
    """A correct kernel checked against draws from N(0, 1.2^2) for an N(0, 1) target must fail."""
    t = gaussians.diagonal(np.zeros(2), np.ones(2), "n2")[0]
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(t, "nuts", lambda rng, n: 1.2 * rng.standard_normal((n, 2)), n=5000,
                         k=(1,), step_size=0.5, adapt_step_size=False)


def test_apply_kernel_is_reproducible():
    t = gaussians.diagonal(np.zeros(2), np.ones(2), "n2")[0]
    x0 = np.random.default_rng(0).normal(size=(5, 2))
    a = apply_kernel(t, "nuts", x0, 3, seed=1, step_size=0.5, adapt_step_size=False)
    b = apply_kernel(t, "nuts", x0, 3, seed=1, step_size=0.5, adapt_step_size=False)
    np.testing.assert_array_equal(a, b)


# ArviZ's MCSE of a second moment comes from the ESS of x^2, itself estimated from 4 chains; on
# gauss100 the standardised errors (x^2 mean - 1) / MCSE had sd 1.06, 1.16, 1.10 over the 100
# coordinates at seeds 12-14, i.e. the MCSE runs ~10-15% small. The second-moment bound allows
# for 25% so that the Bonferroni level still holds (a 5.3 z-score at one of 100 coordinates
# failed the sweep of 20 seed offsets without this).
MCSE_ESTIMATE_ALLOWANCE = 1.25


def mcse_check(idata, truth_mean, truth_sd, alpha=1e-4):
    """Means and second moments within a Bonferroni z * MCSE of the truth."""
    x = idata.posterior["x"]
    centred_sq = ((x - truth_mean) / truth_sd) ** 2  # E = 1 exactly
    n_checks = 2 * x.shape[-1]
    z = z_threshold(alpha, n_checks)
    mean_err = np.abs(x.mean(("chain", "draw")).values - truth_mean)
    mean_mcse = _arviz.mcse(x.to_dataset(name="x"))["x"].values
    sq_err = np.abs(centred_sq.mean(("chain", "draw")).values - 1.0)
    sq_mcse = _arviz.mcse(centred_sq.to_dataset(name="x"))["x"].values
    assert np.all(mean_err < z * mean_mcse), (mean_err / mean_mcse).max()
    assert np.all(sq_err < MCSE_ESTIMATE_ALLOWANCE * z * sq_mcse), (sq_err / sq_mcse).max()
    rhat = _arviz.rhat(idata)["x"].values
    assert np.all(rhat < 1.01)


@pytest.mark.parametrize("adaptation, metric", [("stan", "diag"), ("stan", "grad_diag"), ("nutpie", "grad_diag")])
def test_gauss100_after_warmup(adaptation, metric, seed_offset):
    t, ref = targets.get("gauss100")
    idata = mc.sample(t, "nuts", seed=11 + seed_offset, progressbar=False, adaptation=adaptation, metric=metric)
    mcse_check(idata, ref.mean, ref.sd)
    assert not idata.sample_stats["diverging"].any()
    # the adapted metric learns the variances (final window: 500 draws, ~6% relative error)
    for chain in json.loads(idata.attrs["tuned"]):
        ratio = np.array(chain["inv_metric"]) / ref.sd**2
        assert np.all((ratio > 0.6) & (ratio < 1.6)), (ratio.min(), ratio.max())


def ess_per_grad(idata):
    return _arviz.ess(idata)["x"].values.min() / idata.attrs["n_grad"]


def test_dense_metric_on_correlated_gaussian(seed_offset):
    """A dense metric removes the correlation a diagonal one cannot (condition number 91)."""
    t, ref = targets.get("correlated", dim=10, rho=0.9)
    diag = mc.sample(t, "nuts", seed=5 + seed_offset, progressbar=False)
    dense = mc.sample(t, "nuts", seed=5 + seed_offset, progressbar=False, metric="dense")
    mcse_check(dense, ref.mean, ref.sd)
    # The adapted metric whitens the target: condition number of L^-1 Sigma L^-T near 1 (91
    # without a metric). Entry-wise checks are too noisy: one window's estimate of the dominant
    # direction (variance 9.1) has only tens of effective draws and shifts every entry together.
    for chain in json.loads(dense.attrs["tuned"]):
        chol = np.linalg.cholesky(np.array(chain["inv_metric"]))
        whitened = np.linalg.solve(chol, np.linalg.solve(chol, ref.extra["cov"]).T)
        assert np.linalg.cond(whitened) < 4.0
    assert ess_per_grad(dense) > 5 * ess_per_grad(diag)


POSTERIORS = ["eight_schools_noncentered", "arK", "kidiq_momiq", "earnings_logearn_interaction_z",
              "gp_pois_regr", "low_dim_gauss_mix", "mesquite", "sblrc_blr", "logistic_breast_cancer"]
SLOW_POSTERIORS = ["diamonds"]  # tree depth ~10 at adapt_delta 0.99: ~20 s


def reference_settings(name):
    """The reference run's adapt_delta / max_treedepth for posteriordb posteriors, else defaults."""
    return posteriordb.reference_nuts_settings(name) if name in posteriordb.NAMES else {}


@pytest.mark.parametrize("name", POSTERIORS + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW_POSTERIORS])
def test_posteriordb_reference(name, seed_offset):
    """4 chains x 1000 draws against posteriordb's reference draws, at the reference run's
    adapt_delta, with no divergences. Every mean and sd must sit within a Bonferroni z (alpha
    1e-4 over all checks) of combined Monte Carlo standard errors (ours from ArviZ's MCSE on the
    reference scale, the reference's from its 10000 near-independent draws), and each parameter
    needs ESS >= 400 so that the bound stays tight (< 0.25 sd). The issue's fixed bar (0.1 sd,
    10%) is measured across seeds by benchmarks/posteriordb_accuracy.py: as a test it would
    flake on kidiq, whose correlated betas reach only ESS ~850-1500."""
    t, ref = targets.get(name)
    idata = mc.sample(t, "nuts", seed=2024 + seed_offset, progressbar=False, **reference_settings(name))
    x = ref.to_reference_scale(idata.posterior["x"].values)
    assert_matches_reference(x, ref.mean, ref.sd, len(ref.draws), n_checks=2 * len(POSTERIORS) * x.shape[-1])
    assert not idata.sample_stats["diverging"].any()


@pytest.mark.slow
@pytest.mark.parametrize("name", POSTERIORS + SLOW_POSTERIORS)
def test_posteriordb_reference_long(name, seed_offset):
    """The slow tier: 4 x 10000 draws, every mean within 4.4 combined standard errors (ours from
    ESS, the reference's from its 10000 near-independent draws) and every sd within 5%."""
    t, ref = targets.get(name)
    idata = mc.sample(t, "nuts", draws=10000, seed=99 + seed_offset, progressbar=False,
                      **reference_settings(name))
    x = ref.to_reference_scale(idata.posterior["x"].values.reshape(-1, t.dim))
    ess = _arviz.ess(idata)["x"].values.min()
    se = ref.sd * np.sqrt(1.0 / ess + 1.0 / len(ref.draws))
    assert np.all(np.abs(x.mean(0) - ref.mean) < z_threshold(1e-4, 4 * t.dim) * se)
    assert np.all(np.abs(x.std(0, ddof=1) / ref.sd - 1.0) < 0.05)


def test_grad_diag_window_counts_each_gradient_once():
    """The window's Welford accumulators for grad_diag: draws and gradients each counted once, so
    the variances are numpy's (a second increment of the gradient count once halved Var grad)."""
    from mcsample.samplers.nuts import METRICS, metric_window_update, new_metric_window
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(50, 3)) * [1.0, 2.0, 3.0], rng.normal(size=(50, 3)) * [0.5, 1.0, 4.0]
    window = new_metric_window(METRICS.index("grad_diag"), 3)
    for qi, gi in zip(q, g):
        metric_window_update(window, qi, gi)
    np.testing.assert_array_equal(window.count, [50, 50])
    np.testing.assert_allclose(window.m2 / 49, q.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(window.grad_m2 / 49, g.var(0, ddof=1), rtol=1e-12)


# -- nutpie's warmup (issue #16) -----------------------------------------------------------------


def reference_fit(q, g, kind):
    n = len(q)
    var_x = q.var(0, ddof=1)
    if kind == "grad_diag":
        return np.sqrt(var_x / g.var(0, ddof=1))
    return n / (n + 5.0) * var_x + 1e-3 * 5.0 / (n + 5.0)


def wrong_fit(q, g, kind):
    """A mutant estimator: Var x / Var grad without the square root (sigma^4 on a Gaussian)."""
    return q.var(0, ddof=1) / g.var(0, ddof=1)


@pytest.mark.parametrize("kind", ["grad_diag", "diag"])
def test_nutpie_refit_matches_numpy_and_catches_a_wrong_estimator(kind):
    from mcsample.samplers.nuts import METRICS, _fit_diagonal, metric_window_update, new_metric_window
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(40, 3)) * [1.0, 2.0, 3.0], rng.normal(size=(40, 3)) * [0.5, 1.0, 4.0]
    window = new_metric_window(METRICS.index(kind), 3)
    inv_diag = np.ones(3)
    for n, (qi, gi) in enumerate(zip(q, g), start=1):
        metric_window_update(window, qi, gi)
        assert _fit_diagonal(window, inv_diag) == (n >= 3)  # nutpie waits for three draws
    np.testing.assert_allclose(inv_diag, reference_fit(q, g, kind), rtol=1e-12)
    if kind == "grad_diag":
        assert not np.allclose(inv_diag, wrong_fit(q, g, kind), rtol=1e-2)


def test_nutpie_warmup_beats_stan_per_gradient_on_gauss100():
    """nutpie's warmup reaches the scales of gauss100 in a few hundred draws (Stan's spends its
    first windows near the unit metric): measured 4.5x the ESS per gradient over seeds 1-3
    (benchmarks/results/nuts_adaptation.md, seeds 1-3 from 87 to 100 per 1000 gradients against
    19-22): 2x leaves room for other seeds."""
    t, _ = targets.get("gauss100")
    kw = dict(seed=3, progressbar=False)
    nutpie = ess_per_grad(mc.sample(t, "nuts", **kw))
    stan = ess_per_grad(mc.sample(t, "nuts", adaptation="stan", metric="diag", **kw))
    assert nutpie > 2.0 * stan, (nutpie, stan)


def test_adaptation_settings_are_checked():
    t, _ = targets.get("std_normal", dim=2)
    with pytest.raises(ValueError, match="adapts a diagonal metric"):
        mc.sample(t, "nuts", adaptation="nutpie", metric="dense", progressbar=False)
    with pytest.raises(ValueError, match="adaptation must be one of"):
        mc.sample(t, "nuts", adaptation="pymc", progressbar=False)
    assert mc.samplers.resolve("nuts", {"metric": "dense"}).warmup == "stan"
    assert mc.samplers.resolve("nuts", {}).warmup == "nutpie"
