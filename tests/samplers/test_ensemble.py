"""Ensemble score sampler (mcsample/samplers/ensemble.py): the Föllmer posterior-mean estimators
against the closed form, the Euler scheme with the exact drift, and the sampler end to end.

Tolerances are Monte Carlo errors: a mean of N particles is off by sd / sqrt(N), a mode weight
by sqrt(w (1 - w) / N); the bounds below are 3.5-4 of those (false alarm < 1e-3 per check)."""

import warnings

import numba
import numpy as np
import pytest

import mcsample as mc
import targets
from mcsample import _arviz, metrics
from mcsample._core.posterior_mean import importance_mean
from mcsample._core.slice import identity_frame
from mcsample.samplers import ensemble
from mcsample.testing import models

MU = np.array([1.0, -2.0, 0.5])
SD = np.array([0.5, 2.0, 1.0])


@numba.njit
def gaussian_logp(x, mu, prec):
    r = x - mu
    return -0.5 * r @ (prec @ r)


@numba.njit
def gaussian_logp_grad(x, mu, prec):
    r = x - mu
    g = -(prec @ r)
    return 0.5 * (r @ g), g


def gaussian_target(shift=0.0, grad=False):
    @numba.njit
    def logp(x, mu, prec):
        return gaussian_logp(x, mu, prec) + shift
    return mc.Target(logp if shift else gaussian_logp, dim=3, args=(MU, np.diag(SD ** -2.0)),
                     logp_grad=gaussian_logp_grad if grad else None)


def foellmer_posterior(x, t, gamma, mu=MU, sd=SD):
    """Mean and sds of X_1 | X_t = x for the target N(mu, diag sd^2): precision
    1/sd^2 + t / (gamma (1 - t)), mean (mu / sd^2 + x / (gamma (1 - t))) / precision."""
    prec = sd ** -2.0 + t / (gamma * (1.0 - t))
    return (mu / sd ** 2 + x / (gamma * (1.0 - t))) / prec, prec ** -0.5


@pytest.mark.parametrize("t", [0.0, 0.5, 0.9])
def test_tilted_importance_mean_matches_the_closed_form_foellmer_posterior_mean(t):
    target, gamma = gaussian_target(), 4.0
    frame, rng = identity_frame(3), np.random.default_rng(1)
    x = np.array([0.3, -1.0, 2.0]) * t
    mean, sd = foellmer_posterior(x, t, gamma)
    var = gamma * (1.0 - t)
    out, work = np.zeros(3), np.zeros((3, 3))
    ess, n = importance_mean(target.logp_fn, target.kernel_args, frame, rng, x, 1.0, var, 40000, True,
                             (0.0, 1.0), work[0], work[1], work[2], out, np.zeros((0, 3)), 1.0 / gamma)
    assert n == 40000 and np.all(np.abs(out - mean) < 4.0 * sd / np.sqrt(ess))


@pytest.mark.parametrize("t", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("gradient", [False, True])
def test_the_samplers_pools_match_the_closed_form_foellmer_posterior_mean(t, gradient):
    """The sampler's own kernels (``pool_means``, ``pool_means_grad``) for 50 particles spread
    where X_t is, shared pools (group 50) and per-particle ones (group 1), the mixed and the
    reference proposal, equal and unequal candidates per particle. Without gradients each mean is
    within 4 MC errors 1.3 sd / sqrt(ESS): sd / sqrt(ESS) is the error of independent posterior draws,
    and the importance estimate's error measured here over 60 seeds was up to 1.28x that. With
    them the score control variate leaves (cbar - m)(1 - Chat / C) on a Gaussian, where Chat =
    1 / E_w[s^2] has relative error ~ sqrt(2 / ESS): within 4 sqrt(2 / ESS) of 4 MC errors (a
    sign error in the control variate doubles the error instead)."""
    target, gamma = gaussian_target(grad=gradient), 4.0
    rng = np.random.default_rng(5)
    xs = t * MU + 0.5 * np.sqrt(gamma * t * (1.0 - t)) * rng.normal(size=(50, 3))
    kernel = ensemble.pool_means_grad if gradient else ensemble.pool_means
    fn = target.logp_grad_fn if gradient else target.logp_fn
    for mixed in (True, False):
        for group, per_particle in ((50, 400), (1, 2000)):
            counts = np.full(50, per_particle)
            if group > 1:  # unequal shares (the "ess" allocation): the mixture weighs parents by count
                counts[::5], counts[1::5], counts[2::5] = 3 * per_particle, 1, per_particle - 1
            pool = np.zeros((counts.sum(), 3))
            means, ess, picks, work = np.zeros((50, 3)), np.zeros(50), np.zeros((50, 3)), np.zeros((4, 3))
            n = kernel(fn, target.kernel_args, identity_frame(3), rng, xs, t, gamma, counts, True,
                       mixed, group, True, pool, np.zeros(len(pool)), np.zeros_like(pool), work[0], work[1:], means,
                       ess, picks)
            assert n == counts.sum() and ess.min() > 50
            mean, sd = foellmer_posterior(xs, t, gamma)
            bound = 4.0 * 1.3 * sd / np.sqrt(ess[:, None])
            if gradient:
                bound *= 4.0 * np.sqrt(2.0 / ess[:, None])
            assert np.all(np.abs(means - mean) < bound), (mixed, group)


def test_euler_with_the_exact_drift_reaches_the_target():
    """The grid and the Euler-Maruyama move alone: 100 uniform steps from 0 with the closed-form
    drift. The exact process ends at N(mu, sd^2); Euler's bias is O(1/K) (below 3% in variance
    here), the particles' Monte Carlo error 1/sqrt(N)."""
    n, gamma, grid = 20000, 2.0, ensemble.foellmer_grid(100, "uniform")
    rng = np.random.default_rng(3)
    xs = np.zeros((n, 3))
    for k in range(100):
        t, h = grid[k], grid[k + 1] - grid[k]
        means = foellmer_posterior(xs, t, gamma)[0]
        ensemble.euler_foellmer_move(rng, xs, np.ascontiguousarray(means), t, h, gamma)
    assert np.all(np.abs(xs.mean(0) - MU) < 4 * SD / np.sqrt(n))
    assert np.all(np.abs(xs.var(0) / SD ** 2 - 1) < 0.03 + 4 * np.sqrt(2.0 / n))


def _sample(target, seed=1, draws=1000, **settings):
    idata = mc.sample(target, "ensemble_score", draws=draws, chains=1, seed=seed, progressbar=False, **settings)
    return _arviz.group(idata, "posterior")["x"].values.reshape(-1, target.dim), idata


def gaussian_ok(x):
    """Means within 0.1 sd (3 MC errors at 1000 particles) and sds within 10%."""
    return np.all(np.abs(x.mean(0) - MU) / SD < 0.1) and np.all(np.abs(x.std(0) / SD - 1) < 0.1)


# "none": the drift does all the work (standardised, the target is close to the reference and the
# drift is small: a target equal to N(0, gamma I) has drift 0). There the per-particle estimator
# needs more than its default 16 candidates: at 16 its self-normalised bias left a mean 0.25 sd off
# and an sd 10-20% too wide (seeds 1-3), at 128 within 0.07 sd and 9%; the pool does it with 16.
@pytest.mark.parametrize("estimator", ["ensemble", "particle"])
@pytest.mark.parametrize("standardise", ["search", "none"])
def test_gaussian_means_and_sds(estimator, standardise):
    unstandardised = dict(gamma=4.0, n_candidates=128 if estimator == "particle" else 16)
    settings = unstandardised if standardise == "none" else {}
    assert gaussian_ok(_sample(gaussian_target(), estimator=estimator, standardise=standardise, **settings)[0])


def test_gradient_variant_means_and_sds():
    assert gaussian_ok(_sample(gaussian_target(grad=True), gradient=True)[0])


def test_a_drift_without_the_time_factor_is_caught(monkeypatch):
    """Mutant: b = m - x instead of (m - x) / (1 - t). The same check must fail."""
    right = ensemble.euler_foellmer_move

    def wrong(rng, xs, means, t, h, gamma):
        return right(rng, xs, np.ascontiguousarray(xs + (means - xs) * (1.0 - t)), t, h, gamma)
    monkeypatch.setattr(ensemble, "euler_foellmer_move", wrong)
    assert not gaussian_ok(_sample(gaussian_target(), standardise="none", gamma=4.0)[0])


def test_a_constant_added_to_the_log_density_changes_nothing():
    """Every weight is a difference of log densities, so the constant cancels, up to the rounding
    of lp + c: not bit for bit (lp + 123 drops lp's last bits), to 1e-12 relative."""
    a, _ = _sample(gaussian_target(), draws=200, n_steps=20, search_rounds=1)
    b, _ = _sample(gaussian_target(shift=123.0), draws=200, n_steps=20, search_rounds=1)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def quantised_target(shift):
    """The Gaussian with log p rounded to multiples of 2^-20, so that lp + shift is exact for
    |lp| << 2^32 and a shifted run can be bit-identical."""
    @numba.njit
    def logp(x, mu, prec):
        return np.round(gaussian_logp(x, mu, prec) * 1048576.0) / 1048576.0 + shift
    return mc.Target(logp, dim=3, args=(MU, np.diag(SD ** -2.0)))


def test_a_constant_added_to_an_exact_log_density_changes_no_bit():
    """Where lp + c is exact, nothing may depend on c: the searches compare their generations, the
    pooling round, the covering ladders, the pilot and every step's weights see log densities only
    less an anchor that moves with c (``_core.bulk.anchor``, ``_log_g``). Before that, c = 123
    moved draws by 1e-14 and c = -1e4 by 5e-13."""
    a, _ = _sample(quantised_target(0.0), draws=100, n_steps=10)
    for c in (123.0, -1e4):
        b, _ = _sample(quantised_target(c), draws=100, n_steps=10)
        assert np.array_equal(a, b), (c, np.max(np.abs(a - b)))


def _one_d_mixture():
    return models.mixture([0.3, 0.7], np.array([[-3.0], [3.0]]), 0.5, name="mix_0.3_0.7").target


def test_unequal_weights_of_a_one_d_mixture():
    x, idata = _sample(_one_d_mixture(), seed=4)
    w = metrics.mode_weights(x, np.array([[-3.0], [3.0]]))
    assert abs(w[0] - 0.3) < 4 * np.sqrt(0.21 / 1000) + 0.02  # MC error, plus 0.02 for bias
    steps = _arviz.group(idata, "step_stats")
    assert set(steps.data_vars) >= {"importance_ess", "min_importance_ess", "drift_norm", "n_candidates", "time"}


@pytest.mark.slow
def test_unequal_weights_over_five_seeds():
    """The issue's bar: within 0.1 in every run, within 0.05 averaged over 5 seeds."""
    errors = []
    for seed in range(5):
        x, _ = _sample(_one_d_mixture(), seed=seed)
        errors.append(metrics.mode_weights(x, np.array([[-3.0], [3.0]]))[0] - 0.3)
    assert max(map(abs, errors)) < 0.1 and abs(np.mean(errors)) < 0.05


@pytest.mark.slow
def test_mog8_mode_weights():
    target, ref = targets.get("mog8")
    idata = mc.sample(target, "ensemble_score", draws=1000, chains=4, seed=1, progressbar=False)
    x = _arviz.group(idata, "posterior")["x"].values.reshape(-1, 2)
    w = metrics.mode_weights(x, ref.extra["mode_centres"])
    assert metrics.total_variation(w, ref.extra["mode_weights"]) < 0.05


@pytest.mark.parametrize("bad, match", [
    (dict(estimator="pool"), "estimator must be one of"),
    (dict(grid="log"), "grid must be one of"),
    (dict(gamma=-1.0), "gamma must be a positive number"),
    (dict(n_steps=1), "n_steps must be"),
    (dict(standardise="pilot"), "standardise must be"),
    (dict(proposal="prior"), "proposal must be one of"),
    (dict(step="heun"), "step must be one of"),
    (dict(allocation="even"), "allocation must be one of"),
    (dict(grouping="random"), "grouping must be one of"),
    (dict(gradient=True), "needs a gradient"),
])
def test_bad_settings_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        _sample(gaussian_target(), draws=10, **bad)


def test_budget_sets_the_candidates_and_is_kept():
    target = gaussian_target()
    _, idata = _sample(target, draws=100, max_evals=100 * 100 * 8 + 40000)
    spent = idata.attrs["n_logp"]
    assert spent <= 100 * 100 * 8 + 40000
    assert _arviz.group(idata, "step_stats")["n_candidates"].values[0, 0] >= 4
    with pytest.raises(ValueError, match="fewer than one candidate per step"):
        _sample(target, draws=100, max_evals=1000)


def test_a_tight_budget_runs_without_the_pilot_instead_of_failing():
    """mc.compare's default share (5e4 per run, 125 particles) on eight schools: the pilot's second
    covering ladder did not fit and the run raised; the pilot is dropped when it cannot be paid for."""
    target = targets.get("eight_schools_noncentered")[0]
    _, idata = _sample(target, draws=125, max_evals=5e4)
    assert idata.attrs["n_logp"] <= 5e4
    assert _arviz.group(idata, "step_stats")["n_candidates"].values[0, 0] >= 1


def test_collapsed_weights_are_warned_about():
    """two_modes in d = 32: the standardisation sees one mode and the drift's weights collapse."""
    from targets import synthetic
    with pytest.warns(RuntimeWarning, match="importance weights of the drift collapsed"):
        _sample(synthetic.two_modes(32)[0], draws=100, n_steps=20)


def test_the_collapse_rule_separates_the_measured_right_and_wrong_answers():
    """``weights_collapsed(median ESS, d)`` at runs of benchmarks/results/ensemble_score*.md: the
    ones whose answers were wrong (Gaussian d = 20 means 0.14-0.16 sd off at ESS 8.5, d = 30 at
    5.3, two_modes d = 20 and 32 losing a mode at ESS 9.0 and 2.2, funnel10) and the ones that were
    right (d <= 10, two_modes d = 10 at ESS 7.7, correlated d = 10 and mog8 at 15 and more). The old
    fixed threshold of 5 misses the Gaussian and two_modes at d = 20."""
    wrong = [(8.5, 20), (8.4, 20), (9.0, 20), (3.2, 20), (5.3, 30), (2.7, 50), (2.2, 32), (4.0, 10)]
    right = [(7.7, 10), (13.0, 10), (42.0, 10), (15.0, 8), (46.0, 5), (842.0, 2), (5.0, 2)]
    assert all(ensemble.weights_collapsed(e, d) for e, d in wrong)
    assert not any(ensemble.weights_collapsed(e, d) for e, d in right)
    assert not all(e < 5.0 for e, d in wrong)


def test_a_dimension_beyond_the_measured_range_is_warned_about_before_the_run():
    """d > 10 warns in ``validate``, before ``sample()`` compiles or searches anything, and says what
    was measured; d = 10 does not."""
    with pytest.warns(RuntimeWarning, match="beyond where it was measured to work"):
        ensemble.EnsembleScore().validate(11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensemble.EnsembleScore().validate(10)


def test_the_compile_run_does_not_standardise_and_rounds_follow_the_budget(monkeypatch):
    """``sample()``'s throwaway compile run skips the standardisation (``for_compile_run``): one
    chain calls the search rounds once, not twice (at d = 200 the throwaway's searches were
    ~2 min). A unimodal target runs all 4 rounds; a budget runs only the rounds whose searches fit
    in a quarter of it, at least one."""
    calls = []
    right = ensemble.search_rounds

    def counted(*args, **kw):
        calls.append(args[4] if len(args) > 4 else kw.get("rounds"))
        return right(*args, **kw)
    monkeypatch.setattr(ensemble, "search_rounds", counted)
    _sample(gaussian_target(), draws=20, n_steps=4)
    assert calls == [4]
    calls.clear()
    _sample(gaussian_target(), draws=40, n_steps=10, max_evals=8 * 3500 * 2 * 4 + 40 * 10 * 4)
    assert calls == [2]


def test_denoised_output_is_the_last_posterior_mean():
    """denoise=True returns E[X_1 | X_{t_{K-1}}]: the same run up to the last step, then less spread
    than the Euler output (the last step's noise is not added)."""
    a, _ = _sample(gaussian_target(), draws=500, n_steps=20)
    b, _ = _sample(gaussian_target(), draws=500, n_steps=20, denoise=True)
    assert np.all(b.std(0) < a.std(0)) and np.all(np.abs(b.mean(0) - MU) / SD < 0.15)


def test_candidates_go_to_the_particles_whose_weights_collapsed():
    """``allocate_candidates``: the step's total is kept, every particle keeps half the mean in whole
    antithetic pairs, the cap holds, and a particle with ESS 1 gets the cap while ESS 200 gets the
    base (pairs, so the reflected candidate always has its partner)."""
    ess = np.full(1000, 200.0)
    ess[:10] = 1.0
    counts = ensemble.allocate_candidates(ess, 16, True, cap=16)
    assert counts.sum() <= 16 * 1000 and counts.sum() > 16 * 1000 - 2 * 1000 * 0.01
    assert np.all(counts % 2 == 0) and counts.min() >= 8 and counts.max() <= 256
    assert np.all(counts[:10] == 256) and np.all(counts[10:] < 16)
    np.testing.assert_array_equal(ensemble.allocate_candidates(np.full(7, 50.0), 16, True), np.full(7, 16))
    np.testing.assert_array_equal(ensemble.allocate_candidates(ess, 2, True), np.full(1000, 2))  # nothing to spare


def test_local_groups_are_a_permutation_into_compact_blocks():
    """``local_order``: every particle once, and each block of ``group`` (the pools) spans a small part
    of the ensemble: on 1000 uniform points in the unit square, blocks of 100 are k-d cells of area
    1/10, whose spread per axis is ~1/sqrt(10) of the whole (fixed index blocks: the whole)."""
    x = np.random.default_rng(0).uniform(size=(1000, 2))
    order = ensemble.local_order(x, 100)
    np.testing.assert_array_equal(np.sort(order), np.arange(1000))
    areas = [np.prod(np.ptp(x[order[i:i + 100]], axis=0)) for i in range(0, 1000, 100)]
    assert max(areas) < 0.15
    np.testing.assert_array_equal(np.sort(ensemble.local_order(x[:250], 100)), np.arange(250))


@numba.njit(cache=True)
def _counting_logp(x, counter):
    counter[0] += 1
    return -0.5 * np.sum((x - 1.0) ** 2)


@numba.njit(cache=True)
def _counting_logp_grad(x, counter):
    counter[1] += 1
    return -0.5 * np.sum((x - 1.0) ** 2), -(x - 1.0)


@pytest.mark.parametrize("gradient", [False, True])
def test_evaluation_counts_equal_the_calls_the_target_receives(gradient):
    """Everything the run reports spending (searches, pooling, covering ladders, pilot ensemble,
    steps) equals the calls an instrumented target receives, log densities and gradients apart."""
    counter = np.zeros(2, dtype=np.int64)
    target = mc.Target(_counting_logp, 2, logp_grad=_counting_logp_grad, args=(counter,), check_grad=False)
    counter[:] = 0
    settings = ensemble.EnsembleScore(n_steps=10, gradient=gradient)
    run = settings.start_run(target, np.random.default_rng(1), None, 0, 40, None)
    for lo in range(0, run.total, 4):  # in chunks, as the driver does
        run.advance(lo, min(lo + 4, run.total))
    assert run.spent(run.total) == counter.sum()
    logp_calls, grad_calls = run.n_logp.sum() + run.extra_logp, run.n_grad.sum() + run.extra_grad
    assert (logp_calls, grad_calls) == (counter[0], counter[1]) and (grad_calls > 0) == gradient
