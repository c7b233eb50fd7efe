"""Walk-jump chains (mcsample/samplers/walkjump.py): the oracles of the notes' section 5 with the
exact denoiser of a Gaussian (mixture), then the sampler with its importance-sampling denoiser.

Tolerances are Monte Carlo errors at the stated number of chains (independent draws): a
variance estimated from N draws is off by a relative sqrt(2 / N), a fraction by
sqrt(f (1 - f) / N), a mean by sd / sqrt(N); bounds are about 4 of those."""

import numpy as np
import pytest

import mcsample as mc
import targets
from mcsample import _arviz, metrics
from mcsample.samplers import walkjump
from mcsample.samplers.walkjump import WalkJump, trace
from mcsample.testing import models
from targets import synthetic

LAM, SIGMA = np.array([1.0, 0.01]), 1.5  # notes O3 / O4
TWO = dict(mus=np.array([[-3.0, 0.0], [3.0, 0.0]]), w=np.array([0.7, 0.3]), tau2=0.25)  # notes O6


def gaussian_oracle(**kw):
    """N(0, diag LAM) run with its exact denoiser."""
    target = models.gaussian(np.zeros(2), LAM).target
    return target, WalkJump(mixture=(np.ones(1), np.zeros((1, 2)), LAM), sigma=SIGMA, **kw)


def jump_variance_ok(jumps, ms, n):
    """Var of the jump after m measurements against lambda^2 / (lambda + sigma^2 / m) (the law of
    E[x | ybar_m] when ybar_m ~ N(0, lambda + sigma^2 / m)), within 4 relative sqrt(2 / n)."""
    v = jumps.var(axis=0)
    return all(np.all(np.abs(v[m - 1] / (LAM ** 2 / (LAM + SIGMA ** 2 / m)) - 1) < 4 * np.sqrt(2 / n)) for m in ms)


@pytest.mark.parametrize("walk", ["ulmc", "ula"])
def test_output_variance_law_with_the_exact_denoiser(walk, seed_offset):
    """O3: the walk and OAT accumulation put ybar_m at N(0, lambda + sigma^2 / m), so the jumps have
    variance lambda^2 / (lambda + sigma^2 / m) at every m (ULA with its small step: its bias is
    O(step))."""
    target, cfg = gaussian_oracle(n_measurements=10, walk=walk, step=0.5 if walk == "ulmc" else 0.05,
                                  n_walk=8 if walk == "ulmc" else 40)
    run = trace(target, cfg, draws=4000, seed=1 + seed_offset)
    assert jump_variance_ok(run.jumps, (1, 2, 10), 4000)
    np.testing.assert_array_equal(run.particles, run.jumps[:, -1])


def test_a_score_blind_to_the_proposed_measurement_is_caught(monkeypatch, seed_offset):
    """Mutant: the conditional score's posterior mean from ybar_{m-1} instead of the running mean
    that includes the proposed y_m. At m = 1 the walk then samples N(0, sigma^2) instead of
    p_sigma = N(0, lambda + sigma^2): the same check must fail."""
    monkeypatch.setattr(walkjump, "effective_means", lambda ybars, ys, m, out: out.__setitem__(slice(None), ybars))
    target, cfg = gaussian_oracle(n_measurements=10)
    assert not jump_variance_ok(trace(target, cfg, draws=4000, seed=1 + seed_offset).jumps, (1, 2, 10), 4000)


def test_one_measurement_is_classic_walk_jump(seed_offset):
    """O12: M = 1 is Saremi & Hyvärinen's walk-jump sampler: Var x-hat = lambda^2 / (lambda + sigma^2)."""
    target, cfg = gaussian_oracle(n_measurements=1, n_walk=30)
    run = trace(target, cfg, draws=4000, seed=2 + seed_offset)
    assert run.total == 1 and jump_variance_ok(run.jumps, (1,), 4000)


def conditional_hessian(cfg, ybar_prev, y, m, h=1e-4):
    """-grad^2 log p(y_m | y_1..y_{m-1}) at y by central differences of the sampler's own
    conditional score (running mean, exact denoiser, score)."""
    run = trace(models.gaussian(np.zeros(2), LAM).target, cfg, draws=1, seed=0)
    d = y.size
    hess = np.zeros((d, d))
    for j in range(d):
        scores = []
        for sign in (1.0, -1.0):
            yy = np.atleast_2d(y.copy())
            yy[0, j] += sign * h
            centres, means, score = np.zeros_like(yy), np.zeros_like(yy), np.zeros_like(yy)
            walkjump.effective_means(np.atleast_2d(ybar_prev), yy, m, centres)
            walkjump.denoise_mixture(centres, run.sigma ** 2 / m, *run.mixture, means, np.zeros(1))
            walkjump.conditional_scores(means, yy, run.sigma ** 2, score)
            scores.append(score[0])
        hess[:, j] = -(scores[0] - scores[1]) / (2 * h)
    return hess


def test_oat_condition_numbers():
    """O4: the closed forms give the notes' values; the conditional the sampler walks on has that
    condition number (its Hessian by finite differences; any ybar_{m-1}, y: it is Gaussian)."""
    kappa_oat = [walkjump.oat_condition_number(LAM, SIGMA, m) for m in (1, 2, 5, 10, 100)]
    kappa_aao = [walkjump.aao_condition_number(LAM, SIGMA, m) for m in (1, 2, 5, 10, 100)]
    np.testing.assert_allclose(kappa_oat, [1.438, 1.302, 1.155, 1.084, 1.0068], atol=6e-4)
    np.testing.assert_allclose(kappa_aao, [1.444, 1.889, 3.222, 5.444, 45.44], atol=6e-3)
    assert np.all(np.diff(kappa_oat) < 0)
    _, cfg = gaussian_oracle()
    for m in (1, 2, 5):
        hess = conditional_hessian(cfg, np.array([0.3, -0.2]), np.array([1.0, 0.5]), m)
        eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
        assert eig.max() / eig.min() == pytest.approx(kappa_oat[[1, 2, 5].index(m)] if m > 1 else kappa_oat[0], rel=1e-5)
        assert eig.max() <= SIGMA ** -2 * (1 + 1e-6)  # the conditional score is sigma^-2-Lipschitz


@pytest.mark.parametrize("excess, concave", [(0.05, True), (-0.05, False)])
def test_log_concavity_threshold(excess, concave):
    """O5: for 1/2 N(-R e1, tau^2 I) + 1/2 N(R e1, tau^2 I), p_sigma is log-concave at 0 iff
    sigma^2 >= R^2 - tau^2 (the rule ``radius`` applies); the Hessian of the sampler's m = 1
    conditional has the closed-form eigenvalue (1 - R^2 / (sigma^2 + tau^2)) / (sigma^2 + tau^2)."""
    r, tau2 = 2.0, 0.25
    sigma = np.sqrt(r ** 2 - tau2 + excess)
    cfg = WalkJump(mixture=(np.ones(2), np.array([[-r, 0.0], [r, 0.0]]), tau2), sigma=sigma)
    hess = conditional_hessian(cfg, np.zeros(2), np.zeros(2), 1)
    s2 = sigma ** 2 + tau2
    assert hess[0, 0] == pytest.approx((1 - r ** 2 / s2) / s2, rel=1e-5, abs=1e-8)
    assert (hess[0, 0] >= 0) == concave
    assert WalkJump(radius=r, tau=np.sqrt(tau2)).start_run(models.gaussian(np.zeros(2), np.ones(2)).target,
                                                          np.random.default_rng(0), None, 0, 2, None).sigma ** 2 == \
        pytest.approx(r ** 2 - tau2)


def two_mode_target():
    return models.mixture(TWO["w"], TWO["mus"], np.sqrt(TWO["tau2"]), name="two_mode_0.7").target


def mode_fraction_and_spread(x):
    left = x[:, 0] < 0
    return left.mean(), x[left, 0].var(), x[~left, 0].var()


def test_mode_fraction_and_shrinkage_law_with_the_exact_denoiser(seed_offset):
    """O6: 0.7 / 0.3 at -+3, tau^2 = 0.25, sigma = 3, M = 30, 20 ULMC steps, 2000 chains: the left
    fraction within 0.04 of 0.7 (3.9 MC errors), the within-mode variance of x1 within 15% of the
    shrinkage law tau^4 / (tau^2 + sigma^2 / M) = 0.114 (about 4 MC errors for the 1400 chains of
    the larger mode), not tau^2 = 0.25."""
    cfg = WalkJump(mixture=(TWO["w"], TWO["mus"], TWO["tau2"]), sigma=3.0, n_measurements=30, n_walk=20)
    frac, var_left, var_right = mode_fraction_and_spread(trace(two_mode_target(), cfg, draws=2000,
                                                               seed=3 + seed_offset).particles)
    law = TWO["tau2"] ** 2 / (TWO["tau2"] + 9.0 / 30)
    assert abs(frac - 0.7) < 0.04
    assert abs(var_left / law - 1) < 0.15 and abs(var_right / law - 1) < 0.25  # ~600 chains on the right


@pytest.mark.slow
def test_mode_fraction_with_the_estimated_denoiser():
    """O6 with the importance-sampling denoiser at the sampler's defaults (n_importance 256,
    8 walk steps), sigma = 3, M = 30, 1000 chains: within 0.06 of 0.7 (the issue's bar; 4.1 MC
    errors) and the shrinkage law within 20% (measured: 0.689 and 0.128 against 0.114; with the
    flat schedule, seed 0: 0.695 and 0.114). With fewer importance draws the estimate's bias
    shows: 48 a call, 0.60 flat and 0.666 decreasing (means of 4 and 3 seeds of 400 chains)."""
    idata = mc.sample(two_mode_target(), WalkJump(sigma=3.0, n_measurements=30), draws=1000, chains=1, seed=4,
                      progressbar=False)
    x = _arviz.group(idata, "posterior")["x"].values.reshape(-1, 2)
    frac, var_left, _ = mode_fraction_and_spread(x)
    assert abs(frac - 0.7) < 0.06
    assert abs(var_left / (TWO["tau2"] ** 2 / (TWO["tau2"] + 9.0 / 30)) - 1) < 0.2


MU, SD = np.array([1.0, -2.0, 0.5]), np.array([0.5, 2.0, 1.0])


def _gaussian(shift=0.0):
    model = models.gaussian(MU, SD ** 2)
    if not shift:
        return model.target
    import numba
    from mcsample.testing.models import diag_gauss_logp

    @numba.njit
    def logp(x, mean, scale):
        return diag_gauss_logp(x, mean, scale) + shift
    return mc.Target(logp, dim=3, args=model.target.args)


def _sample(target, draws=500, seed=1, **kw):
    idata = mc.sample(target, "walk_jump", draws=draws, chains=1, seed=seed, progressbar=False, **kw)
    return _arviz.group(idata, "posterior")["x"].values.reshape(-1, target.dim), idata


@pytest.mark.parametrize("estimator", ["is", "gradient"])
def test_gaussian_with_the_pilot_and_estimated_denoisers(estimator, seed_offset):
    """Defaults but M = 16 and 64 evaluations a call: the pilot's frame whitens the target and sets
    sigma^2 = 2 there, so the output is the posterior mean's law, N(MU, SD^2 / (1 + sigma^2 / M))
    up to the frame's error: means within 4 MC errors, sds within 14% of the shrinkage law (4
    MC errors at 400 draws)."""
    x, idata = _sample(_gaussian(), draws=400, n_measurements=16, n_importance=64, estimator=estimator,
                       seed=1 + seed_offset)
    tuned = idata.attrs["tuned"]
    sigma2 = idata["step_stats"]["noise_sd"].values[0, 0] ** 2
    assert abs(sigma2 - 2.0) < 0.6  # the frame's second moment is 1 up to the pilot's error
    steps = _arviz.group(idata, "step_stats")
    assert set(steps.data_vars) >= {"importance_ess", "min_importance_ess", "jump_ess", "noise_sd", "jump_shift",
                                    "n_importance", "time"}
    ess = steps["importance_ess"].values[0]
    assert 1 <= ess[0] < ess[-1] <= 64  # the importance problem eases as sigma / sqrt(m) shrinks
    np.testing.assert_allclose(steps["noise_sd"].values[0], np.sqrt(sigma2 / np.arange(1, 17)))
    assert np.all(np.abs(x.mean(0) - MU) / SD < 4 / np.sqrt(400))
    assert np.all(np.abs(x.std(0) / (SD / np.sqrt(1 + sigma2 / 16)) - 1) < 0.14), tuned


def test_exact_evaluation_counts_and_budget():
    """Each particle spends M (K + 1) n: K denoiser calls per walk and one jump per measurement;
    the pilot is counted once per run (within the budget); a budget plans M and is kept."""
    x, idata = _sample(_gaussian(), draws=50, n_measurements=4, n_walk=3, n_importance=10, schedule="flat", sigma=1.0)
    np.testing.assert_array_equal(idata["sample_stats"]["n_logp"].values, 4 * 4 * 10)
    assert idata.attrs["n_logp"] == 50 * 160  # sigma given: no pilot
    budget = 50 * 20000
    _, idata = _sample(_gaussian(), draws=50, max_evals=budget)
    assert idata.attrs["n_logp"] <= budget
    m = idata.attrs["n_steps"]
    assert m >= walkjump.MIN_MEASUREMENTS
    np.testing.assert_array_equal(idata["sample_stats"]["n_logp"].values,
                                  9 * idata["step_stats"]["n_importance"].values[0].sum())
    _, idata = _sample(_gaussian(), draws=50, n_measurements=9, n_walk=2, n_importance=30, schedule="decreasing",
                       sigma=1.0)
    n_m = idata["step_stats"]["n_importance"].values[0]
    assert np.all(np.diff(n_m) <= 0) and n_m.sum() <= 9 * 30 and n_m[0] == 2 * (int(30 * 9 / np.sum(np.arange(1, 10) ** -0.5)) // 2)
    np.testing.assert_array_equal(idata["sample_stats"]["n_logp"].values, 3 * n_m.sum())
    with pytest.raises(ValueError, match="pays for no measurement"):  # < 9 x 32 a particle
        _sample(_gaussian(), draws=50, max_evals=50 * 200, sigma=1.0)
    # mc.compare's default 2e5 over 4 chains: the pilot shrinks to a quarter of a run's budget
    draws = WalkJump().draws_for_budget(5e4, 3)
    assert WalkJump().pilot_allowance(3, 5e4) <= 0.25 * 5e4 < WalkJump().pilot_allowance(3)
    _, idata = _sample(_gaussian(), draws=draws, max_evals=5e4)
    assert 4 <= draws and idata.attrs["n_logp"] <= 5e4 and idata.attrs["n_steps"] >= walkjump.POPULATION_MEASUREMENTS


def test_a_constant_added_to_the_log_density_changes_nothing():
    """Every weight is a difference of log densities: equal to rounding (lp + c drops lp's last
    bits). With sigma given, so no pilot (its searches only rank log densities)."""
    a, _ = _sample(_gaussian(), draws=100, n_measurements=3, n_importance=16, sigma=1.0)
    b, _ = _sample(_gaussian(shift=123.0), draws=100, n_measurements=3, n_importance=16, sigma=1.0)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad, match", [
    (dict(walk="hmc"), "walk must be one of"),
    (dict(estimator="nn"), "estimator must be one of"),
    (dict(warm_start="cold"), "warm_start must be"),
    (dict(schedule="linear"), "schedule must be"),
    (dict(n_measurements=0), "n_measurements must be"),
    (dict(sigma=-1.0), "sigma must be a positive number"),
    (dict(radius=0.1, tau=0.5), "radius must be a number above tau"),
    (dict(step=0.0), "step must be a positive number"),
    (dict(mixture=(np.ones(2), np.zeros((3, 3)), 1.0)), "mixture must be"),
])
def test_bad_settings_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        _sample(_gaussian(), draws=10, **bad)


def test_gradient_estimator_needs_a_gradient():
    target = mc.Target(models.diag_gauss_logp, dim=3, args=(MU, SD))
    with pytest.raises(ValueError, match="needs the target's gradient"):
        _sample(target, draws=10, estimator="gradient")


def test_collapsed_weights_are_warned_about():
    """sigma far above the target's scale in d = 8: the proposal N(ybar, sigma^2 I) misses it."""
    target = models.gaussian(np.zeros(8), np.full(8, 0.01)).target
    with pytest.warns(RuntimeWarning, match="importance weights collapsed"):
        _sample(target, draws=20, sigma=3.0, n_measurements=3, n_importance=16)
    # a budget that shrank the denoiser's sample: the warning says how much budget the defaults need
    with pytest.warns(RuntimeWarning, match=r"budget shrank the denoiser's sample to 32 .* at least 73,728"):
        _sample(target, draws=20, sigma=3.0, max_evals=20 * 3 * 9 * 32)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mog8", "two_modes8"])
def test_mode_weights_at_the_comparison_budget(name):
    """The issue's bar: mode-weight TV <= 0.05 at 3e5 evaluations per sample (defaults; the
    budget plans M). 1000 particles: the TV of the exact weights' MC noise is ~0.03 on mog8."""
    target, ref = targets.get("mog8") if name == "mog8" else synthetic.two_modes(8)
    x, _ = _sample(target, draws=1000, max_evals=3e5 * 1000)
    w = metrics.mode_weights(x, ref.extra["mode_centres"])
    assert metrics.total_variation(w, ref.extra["mode_weights"]) <= 0.05


@pytest.mark.slow
def test_correlated_gaussian_means():
    """The issue's bar: correlated Gaussian (d = 10, rho = 0.9) means within 0.1 sd at defaults."""
    target, ref = targets.get("correlated")
    x, _ = _sample(target, draws=1000)
    assert np.all(np.abs(x.mean(0) - ref.mean) / ref.sd < 0.1)
