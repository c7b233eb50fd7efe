"""Posterior-mean estimators against the closed-form mean of q(x0 | x) for a Gaussian target
(notes on rdMC, section 4 item 1). Tolerances are Monte Carlo errors: for importance sampling
from the estimator's own effective sample size, for the chains from the iterates' spread."""

import numpy as np
import pytest

from mcsample._core.posterior_mean import importance_mean, logp_grad_in_frame, mala_mean, ula_mean
from mcsample._core.slice import dense_frame, diagonal_frame, identity_frame, x_to_frame
from mcsample.testing import models

MEAN, VAR = np.array([1.0, -2.0]), np.array([0.5, 2.0])
X, A, NOISE = np.array([0.4, 0.9]), 0.6, 0.64  # q(x0 | x) with a = 0.6, var = 0.64
IDENTITY = identity_frame(2)
NO_DEFENSE = (0.0, 1.0)


@pytest.fixture(scope="module")
def target():
    return models.gaussian(MEAN, VAR).target


def q_moments():
    precision = 1 / VAR + A**2 / NOISE
    return (MEAN / VAR + A * X / NOISE) / precision, 1 / precision


@pytest.mark.parametrize("antithetic, defensive", [(False, (0.0, 1.0)), (True, (0.0, 1.0)), (False, (0.3, 2.0))])
def test_importance_mean_converges_to_the_closed_form(target, antithetic, defensive, seed_offset):
    rng = np.random.default_rng(1 + seed_offset)
    out, z, xi = np.empty(2), np.empty(2), np.empty(2)
    ess, n_eval = importance_mean(target.logp_fn, target.kernel_args, IDENTITY, rng, X, A, NOISE, 20000, antithetic, defensive,
                                  z, xi, np.empty(2), out, np.empty((0, 2)))
    assert n_eval == 20000 and 0 < ess < 20000
    m, v = q_moments()
    assert np.all(np.abs(out - m) < 5 * np.sqrt(v / ess))  # antithetic pairs only shrink this


def test_defensive_draws_keep_a_far_point_pulled_towards_the_target(target):
    """At x far out, the likelihood factor's draws all miss the target: the estimate then sits a
    few proposal sds from x / a. With a defensive component it lands on the closed form."""
    rng = np.random.default_rng(5)
    a, var = 0.05, 1 - 0.05**2
    x = np.array([3.0, 3.0])  # x / a = (60, 60), proposal sd ~ 20; the target sits near (1, -2)
    precision = 1 / VAR + a**2 / var
    exact = (MEAN / VAR + a * x / var) / precision
    out = {}
    for beta in (0.0, 0.2):  # defensive N(0, 3^2 I) covers the target
        m = np.empty(2)
        importance_mean(target.logp_fn, target.kernel_args, IDENTITY, rng, x, a, var, 256, False, (beta, 3.0),
                        np.empty(2), np.empty(2), np.empty(2), m, np.empty((0, 2)))
        out[beta] = m
    assert np.linalg.norm(out[0.0] - exact) > 20
    assert np.linalg.norm(out[0.2] - exact) < 0.5


def test_importance_resampled_starts_are_draws_from_q(target, seed_offset):
    rng = np.random.default_rng(2 + seed_offset)
    out, z, xi = np.empty(2), np.empty(2), np.empty(2)
    starts = np.empty((4000, 2))
    ess, _ = importance_mean(target.logp_fn, target.kernel_args, IDENTITY, rng, X, A, NOISE, 4000, False, NO_DEFENSE, z, xi,
                             np.empty(2), out, starts)
    m, v = q_moments()
    # multinomial resampling of an ESS-sized weighted sample: each start has q's law up to the
    # weights' own error, and the 4000 starts average it to within ~ sd / sqrt(ess) (duplicates)
    assert np.all(np.abs(starts.mean(0) - m) < 6 * np.sqrt(v / ess))
    assert np.all(np.abs(np.log(starts.var(0) / v)) < 0.15)


def test_importance_with_no_finite_weight_falls_back_to_the_proposal_centre():
    import mcsample as mc
    import numba

    @numba.njit
    def nowhere(x):
        return -np.inf if x[0] > -1e9 else 0.0
    t = mc.Target(nowhere, 2, test_point=np.array([-2e9, 0.0]))
    out, z, xi = np.empty(2), np.empty(2), np.empty(2)
    ess, n = importance_mean(t.logp_fn, t.kernel_args, IDENTITY, np.random.default_rng(0), X, A, NOISE, 10, False, NO_DEFENSE,
                             z, xi, np.empty(2), out, np.empty((0, 2)))
    assert ess == 0.0 and n == 10
    np.testing.assert_allclose(out, X / A)


def test_ula_mean_is_unbiased_for_a_gaussian(target, seed_offset):
    """ULA on a Gaussian has the exact mean (only its variance is off by O(step)), so the average
    of the kept iterates must sit within Monte Carlo error of m(x)."""
    rng = np.random.default_rng(3 + seed_offset)
    m, v = q_moments()
    chains = np.tile(X / A, (8, 1))
    out = np.empty(2)
    step, n_steps, n_burn = 0.05, 4000, 500
    n_grad, n_kept = ula_mean(target.logp_grad_fn, target.kernel_args, IDENTITY, rng, X, A, NOISE, chains,
                              n_steps, n_burn, step, np.empty((3, 2)), out)
    assert n_grad == 8 * n_steps and n_kept == 8 * (n_steps - n_burn)
    # integrated autocorrelation time of the slowest coordinate ~ 2 / (step * precision)
    iat = 2 / (step / v.max())
    assert np.all(np.abs(out - m) < 5 * np.sqrt(v * iat / n_kept))


def test_mala_mean_adapts_its_steps_and_is_unbiased(target, seed_offset):
    rng = np.random.default_rng(4 + seed_offset)
    m, v = q_moments()
    chains = np.tile(X / A, (8, 1))
    steps = np.array([1.0] * 4 + [1e-3] * 4)  # far above and far below a good step
    out, work = np.empty(2), np.empty((5, 2))
    n_grad, accept = mala_mean(target.logp_grad_fn, target.kernel_args, IDENTITY, rng, X, A, NOISE, chains, steps,
                               3000, 500, work, out)
    assert n_grad == 8 * (3000 + 1)
    # the rule drives each chain's per-step acceptance probability around 0.75 (the mean over a
    # run sits lower: the probabilities are skewed); both starts end in one band of steps
    assert 0.5 < accept < 0.9
    assert steps.max() / steps.min() < 3 and 0.05 < steps.min()
    iat = 10.0  # MALA at its tuned step on a 2-d Gaussian mixes within a few steps
    assert np.all(np.abs(out - m) < 5 * np.sqrt(v * iat / (8 * 2500)))


@pytest.mark.parametrize("make_frame", [
    lambda: diagonal_frame(np.array([0.5, -1.0]), np.array([2.0, 0.3])),
    lambda: dense_frame(np.array([0.5, -1.0]), np.array([[2.0, 0.0], [0.7, 0.3]])),
])
def test_log_density_and_gradient_in_a_frame(target, make_frame):
    """In u with x = c + L u: the log density is p(x) and the gradient is L^T grad log p(x)."""
    frame = make_frame()
    u = np.array([0.3, -0.8])
    x = frame[1] + (frame[3] @ u if frame[0] == 2 else frame[2] * u)
    g = np.empty(2)
    lp, finite = logp_grad_in_frame(target.logp_grad_fn, target.kernel_args, frame, u, np.empty(2), g)
    lp_x, g_x = target.logp_grad(x)
    chol = frame[3] if frame[0] == 2 else np.diag(frame[2])
    assert finite and lp == pytest.approx(lp_x, rel=1e-12)
    np.testing.assert_allclose(g, chol.T @ g_x, rtol=1e-12)
    np.testing.assert_allclose(x_to_frame(frame, x), u, rtol=1e-12)


@pytest.mark.parametrize("antithetic", [False, True])
def test_importance_score_mean_gives_tweedies_denoiser(target, antithetic, seed_offset):
    """The gradient variant (a = 1): x + var E_q[grad log p] is the closed-form mean of q. Its
    Monte Carlo error is var x the sd of the gradient under q over sqrt(ESS)."""
    from mcsample._core.posterior_mean import importance_score_mean
    rng = np.random.default_rng(11 + seed_offset)
    var = 0.8
    out, scratch = np.empty(2), np.empty((4, 2))
    ess, n_eval = importance_score_mean(target.logp_grad_fn, target.kernel_args, IDENTITY, rng, X, var, 20000,
                                        antithetic, scratch[0], scratch[1], scratch[2], scratch[3], out)
    assert n_eval == 20000 and 0 < ess < 20000
    precision = 1 / VAR + 1 / var
    m, v = (MEAN / VAR + X / var) / precision, 1 / precision
    grad_sd = np.sqrt(v) / VAR
    assert np.all(np.abs(X + var * out - m) < 5 * var * grad_sd / np.sqrt(ess))
    # a wrong estimate (the point average put through Tweedie) is caught at this tolerance
    assert not np.all(np.abs(X + var * (m - X) - m) < 5 * var * grad_sd / np.sqrt(ess))
