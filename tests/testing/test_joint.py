"""mcsample.testing.joint on a conjugate model with a known posterior.

theta ~ N(0, I_2), y_1..y_3 | theta ~ N(theta, I_2): the posterior is N(3 ybar / 4, I / 4). Each
check must pass NUTS with a fixed step and an exact random-walk Metropolis kernel (controls) and
fail broken kernels (mutants): RWM targeting the prior or a tempered posterior, and RWM whose
output is shrunk towards 0 by 5%. Thresholds are the checks' own (alpha = 1e-4, Bonferroni
split); sizes are chosen for speed with margin on the mutants, never seeds or thresholds.
"""

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample.testing.joint import (JointTestReport, KernelFactory, SBCReport, check_exchangeability,
                                    geweke_test, rank_test, sbc)

SIGMA = 1.0
N_OBS = 3
POST_SD = 1.0 / np.sqrt(1.0 + N_OBS / SIGMA**2)
NUTS = dict(step_size=0.5, adapt_step_size=False)


@numba.njit(cache=True)
def post_logp(x, y, par):
    """log N(x; 0, I) + par[1] * sum_k log N(y_k; x, par[0]^2 I): par[1] = 1 is the posterior,
    0 the prior, other values a tempered posterior."""
    s2 = par[0] * par[0]
    lp = -0.5 * (x @ x)
    for k in range(y.shape[0]):
        for i in range(x.size):
            r = y[k, i] - x[i]
            lp -= 0.5 * par[1] * r * r / s2
    return lp


@numba.njit(cache=True)
def post_logp_grad(x, y, par):
    s2 = par[0] * par[0]
    lp = -0.5 * (x @ x)
    g = -x.copy()
    for k in range(y.shape[0]):
        for i in range(x.size):
            r = y[k, i] - x[i]
            lp -= 0.5 * par[1] * r * r / s2
            g[i] += par[1] * r / s2
    return lp, g


@numba.njit(cache=True)
def rwm_step(x, rng, y, par, scale, shrink):
    """Random-walk Metropolis on post_logp(., y, par), its output multiplied by ``shrink``."""
    prop = x + scale * rng.standard_normal(x.size)
    if np.log(rng.random()) < post_logp(prop, y, par) - post_logp(x, y, par):
        return shrink * prop
    return shrink * x


def rwm(temper=1.0, shrink=1.0, scale=0.8):
    """RWM as a user kernel reading the (in-place updated) data through the Target."""
    par = np.array([SIGMA, temper])

    def make_step(target):
        y = target.args[0]
        return lambda x, rng: rwm_step(x, rng, y, par, scale, shrink)
    return KernelFactory(make_step, name=f"rwm(temper={temper}, shrink={shrink})")


def prior_draw(rng):
    return rng.standard_normal(2)


def simulate(theta, rng):
    return theta + SIGMA * rng.standard_normal((N_OBS, 2))


def make_target(y, temper=1.0):
    return mc.Target(post_logp, 2, logp_grad=post_logp_grad, args=(y, np.array([SIGMA, temper])),
                     name="conjugate")


MODEL = (prior_draw, simulate, make_target)
CONTROLS = {"nuts": ("nuts", NUTS), "rwm": (rwm(), {})}
MUTANTS = {"rwm-prior": rwm(temper=0.0), "rwm-tempered": rwm(temper=0.5),
           "rwm-shrink": rwm(shrink=0.95)}

# the posterior at one fixed data set, mean (1, -0.5), for the exchangeability check
Y_FIXED = np.array([[1.5, -0.5], [1.0, -1.0], [1.5, -0.5]])
POST_MEAN = N_OBS / (N_OBS + SIGMA**2) * Y_FIXED.mean(axis=0)


def exact_posterior(rng, n):
    return POST_MEAN + POST_SD * rng.standard_normal((n, 2))


def exact_kernel():
    """A draw from the exact posterior given the current data: reversible (it ignores x)."""
    def make_step(target):
        y = target.args[0]
        return lambda x, rng: N_OBS / (N_OBS + SIGMA**2) * y.mean(axis=0) + POST_SD * rng.standard_normal(2)
    return KernelFactory(make_step, name="exact posterior draw")


def run(check, kernel, **kw):
    """Run a check on the conjugate model (at Y_FIXED for the exchangeability check)."""
    sampler, settings = CONTROLS[kernel] if kernel in CONTROLS else (MUTANTS[kernel], {})
    if check is check_exchangeability:
        return check(make_target(Y_FIXED.copy()), sampler, exact_posterior, **kw, **settings)
    return check(*MODEL, sampler, **kw, **settings)


# Sizes: NUTS controls are smaller (each transition costs a Python-level chain start); the RWM
# control runs at the mutants' size, so the same configuration passes it and fails them.
SIZES = {
    check_exchangeability: {"nuts": dict(n=10000), "other": dict(n=20000)},
    geweke_test: {"nuts": dict(n_iter=10000), "other": dict(n_iter=40000)},
    rank_test: {"nuts": dict(n_reps=1000, chain_length=10), "other": dict(n_reps=1000, chain_length=10)},
}
CHECKS = {"exchangeability": check_exchangeability, "geweke": geweke_test, "rank": rank_test}


def sizes(check, kernel):
    return SIZES[check]["nuts" if kernel == "nuts" else "other"]


@pytest.mark.parametrize("kernel", list(CONTROLS))
@pytest.mark.parametrize("check", list(CHECKS))
def test_valid_kernels_pass(check, kernel):
    check = CHECKS[check]
    report = run(check, kernel, **sizes(check, kernel))
    assert isinstance(report, JointTestReport) and report.passed
    assert all(p >= report.threshold for p in report.p_values.values())


@pytest.mark.parametrize("kernel", list(MUTANTS))
@pytest.mark.parametrize("check", list(CHECKS))
def test_broken_kernels_fail(check, kernel):
    check = CHECKS[check]
    with pytest.raises(AssertionError, match="FAIL") as err:
        run(check, kernel, **sizes(check, kernel))
    assert "conjugate" in str(err.value)


def test_theta_only_statistics_miss_a_kernel_that_ignores_the_data():
    """Why the defaults include log p(theta | y): theta is marginally a prior draw, so an RWM
    that targets the prior keeps every theta-only statistic right; only log p rows fail."""
    with pytest.raises(AssertionError) as err:
        run(geweke_test, "rwm-prior", **sizes(geweke_test, "rwm-prior"))
    failed = [line for line in str(err.value).splitlines() if line.endswith("<-- FAIL")]
    assert len(failed) == 1 and failed[0].startswith("log p(theta | y)")


def test_sbc_passes_nuts_with_warmup_and_fails_a_misspecified_model():
    """SBC of full mcsample.sample runs (adapted NUTS): calibrated for the right model; for a
    model whose likelihood is tempered by 2 (it assumes noise sd 1/sqrt(2), the data have sd 1)
    the posterior is over-confident and the ranks pile up at both ends."""
    kw = dict(n_sims=400, n_draws=99, thin=2, bins=10, tune=200, seed=3)
    report = sbc(prior_draw, simulate, make_target, "nuts", assert_uniform=True, **kw)
    assert isinstance(report, SBCReport) and report.passed
    assert set(report.ranks) == {"theta[0]", "theta[1]"}
    for r in report.ranks.values():
        assert r.shape == (400,) and r.min() >= 0 and r.max() <= 99

    def overconfident(y):
        return make_target(y, temper=2.0)
    with pytest.raises(AssertionError, match="not uniform"):
        sbc(prior_draw, simulate, overconfident, "nuts", assert_uniform=True, **kw)


def test_geweke_z_scores_are_calibrated_across_seeds():
    """With an exact kernel (a fresh posterior draw) the joint chain is an AR(1) in theta with
    coefficient 3/4, so the batch-means variance matters. Over 40 seeds the sum of z^2 of each
    test function is about chi2(40); too large would mean false alarms."""
    from scipy import stats
    z = []
    for seed in range(40):
        report = geweke_test(*MODEL, exact_kernel(), n_iter=2000, seed=seed)
        z.append([row[1] for row in report.rows])
    z = np.array(z)
    p_upper = stats.chi2.sf((z**2).sum(axis=0), df=z.shape[0])
    assert np.all(p_upper > 1e-4 / z.shape[1]), p_upper
    print("upper-tail p of sum z^2 per function:", p_upper)


# -- the model contract and the reports ---------------------------------------------------------


@numba.njit(cache=True)
def logp_from_mean(x, y, ybar):
    r = ybar - x
    return -0.5 * (x @ x) - 0.5 * N_OBS * (r @ r)


def test_make_target_must_keep_the_data_array():
    def copies(y):
        return make_target(y.copy())
    with pytest.raises(ValueError, match="must pass the array y itself"):
        rank_test(prior_draw, simulate, copies, rwm(), n_reps=100, chain_length=5)


def test_make_target_must_not_precompute_from_the_data():
    def precomputes(y):
        return mc.Target(logp_from_mean, 2, args=(y, y.mean(axis=0)), name="stale")
    with pytest.raises(ValueError, match="does not follow its data"):
        geweke_test(prior_draw, simulate, precomputes, rwm(), n_iter=200)


def test_argument_errors():
    with pytest.raises(ValueError, match="name or a settings object"):
        sbc(prior_draw, simulate, make_target, rwm(), n_sims=100, bins=10)
    with pytest.raises(ValueError, match="divisible"):
        sbc(prior_draw, simulate, make_target, "nuts", n_draws=100, bins=10)
    with pytest.raises(ValueError, match="settings are only accepted"):
        rank_test(*MODEL, rwm(), n_reps=100, chain_length=5, step_size=0.5)
    with pytest.raises(ValueError, match="5 \\* chain_length"):
        rank_test(*MODEL, rwm(), n_reps=10, chain_length=5)


def test_identity_kernel_is_trivially_exchangeable():
    report = check_exchangeability(make_target(Y_FIXED.copy()), lambda x, rng: x, exact_posterior, n=1000)
    assert all(z == 0.0 and p == 1.0 for _, z, p in report.rows)


def test_report_lists_every_test_and_flags_failures():
    report = JointTestReport([("a", 1.0, 0.5), ("b", 9.0, 1e-9)], 1e-5, title="t", statistic="z")
    text = str(report)
    assert text.splitlines()[0] == "t"
    assert "fail below 1.00e-05" in text
    assert [line.endswith("<-- FAIL") for line in text.splitlines()[2:]] == [False, True]
    assert [r[0] for r in report.failures] == ["b"] and not report.passed


def test_random_ranks_break_ties_uniformly():
    from mcsample.testing.joint import _random_ranks
    rng = np.random.default_rng(0)
    values = np.zeros((20000, 4))  # all tied: the rank of any position is uniform on 1..4
    ranks = _random_ranks(values, rng.integers(0, 4, 20000), rng)
    counts = np.bincount(ranks, minlength=5)[1:]
    assert counts.min() > 4500 and counts.max() < 5500
    values = np.array([[3.0, 1.0, 1.0, 0.0]] * 1000)  # position 1 ties with position 2
    ranks = _random_ranks(values, np.ones(1000, dtype=np.int64), rng)
    assert set(np.unique(ranks)) == {2, 3}
