"""The chain-agreement check that sample() runs (mcsample/convergence.py)."""

import warnings

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz
from mcsample.convergence import (ConvergenceWarning, bulk_ess, bulk_ess_all, chain_disagreements, ess_shortfall,
                                  split_rhat)


@pytest.mark.parametrize("shift", [0.0, 0.3, 3.0])
def test_split_rhat_agrees_with_arviz(shift):
    rng = np.random.default_rng(1)
    x = rng.standard_t(3, size=(4, 500)).cumsum(axis=1) * 0.05 + rng.standard_normal((4, 500))
    x[2] += shift
    assert split_rhat(x) == pytest.approx(_arviz.rhat_of(x[..., None])[0], rel=1e-9)


def test_agreeing_chains_raise_nothing():
    rng = np.random.default_rng(2)
    draws = rng.standard_normal((4, 1000, 3))
    lp = -0.5 * (draws ** 2).sum(-1)
    assert chain_disagreements(draws, lp, ["a", "b", "c"]) == []


def test_a_stuck_chain_is_named():
    rng = np.random.default_rng(3)
    draws = rng.standard_normal((4, 1000, 3))
    draws[2] += np.array([0.0, 40.0, 0.0])  # chain 2 stuck far out in b
    lp = -0.5 * (draws ** 2).sum(-1)
    problems = chain_disagreements(draws, lp, ["a", "b", "c"])
    assert len(problems) == 2
    assert problems[0].startswith("chain 2's mean log density") and "below" in problems[0]
    assert "R-hat > 1.05 for 1 of 3 parameters (b " in problems[1] and "chain 2's mean" in problems[1]


@numba.njit
def _two_far_modes(x):
    """Equal modes 60 sd apart, one of them lower by 2 nats: no slice move crosses between them."""
    return np.logaddexp(-0.5 * np.sum((x - 30.0) ** 2), -2.0 - 0.5 * np.sum((x + 30.0) ** 2))


def test_sample_warns_naming_the_disagreeing_chain():
    target = mc.Target(_two_far_modes, dim=2, name="two_far_modes")
    init = np.array([[30.0, 30.0], [30.0, 30.0], [-30.0, -30.0], [30.0, 30.0]])
    with pytest.warns(ConvergenceWarning, match="chain 2's mean log density"):
        mc.sample(target, "hit_and_run_slice", draws=200, tune=100, seed=1, init=init, progressbar=False,
                  pilot="self", find_bulk=False)  # a GPSS pilot crosses: both modes lie on one circle about 0


def test_sample_is_quiet_when_chains_agree():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        mc.sample(mc.Target(_std_normal, dim=3), "hit_and_run_slice", draws=500, tune=200, seed=1,
                  progressbar=False)


@numba.njit
def _std_normal(x):
    return -0.5 * np.sum(x ** 2)


def _ar1(rng, chains, n, phi):
    x = rng.standard_normal((chains, n))
    for t in range(1, n):
        x[:, t] += phi * x[:, t - 1]
    return x


@pytest.mark.parametrize("chains, n, phi", [(1, 1000, 0.9), (4, 300, 0.5), (2, 57, 0.0), (1, 200, -0.5)])
def test_bulk_ess_agrees_with_arviz(chains, n, phi):
    x = _ar1(np.random.default_rng(4), chains, n, phi)
    assert bulk_ess(x) == pytest.approx(_arviz.ess_of(x[..., None])[0], rel=1e-9)


def test_ess_shortfall_names_the_slow_parameter_only():
    rng = np.random.default_rng(5)
    draws = np.stack([rng.standard_normal((1, 1000)), _ar1(rng, 1, 1000, 0.99)], axis=-1)
    problems = ess_shortfall(draws, ["fast", "slow"])
    assert len(problems) == 1 and "1 of 2 parameters (slow " in problems[0]
    assert ess_shortfall(draws[:, :, :1], ["fast"]) == []


def test_bulk_ess_of_all_parameters_at_once_is_the_one_by_one_value():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 501, 6)).cumsum(axis=1) * 0.1 + rng.standard_normal((3, 501, 6))
    x[1, :, 2] += 2.0
    x[0, 7, 4] = np.nan
    one_by_one = [bulk_ess(x[..., j]) for j in range(6)]
    np.testing.assert_allclose(bulk_ess_all(x), one_by_one, rtol=1e-12)


def test_one_chain_with_a_tiny_ess_warns_with_the_sampler_and_what_to_do():
    """Hit-and-run moves each coordinate by ~1/sqrt(d) per iteration: at d = 50 its 300 draws
    have a bulk ESS of a few, and one chain has no R-hat to show it."""
    with pytest.warns(ConvergenceWarning, match=r"hit_and_run_slice: bulk ESS < 30 for .* use 'nuts'"):
        mc.sample(mc.Target(_std_normal, dim=50), "hit_and_run_slice", draws=300, tune=100, chains=1, seed=1,
                  progressbar=False, find_bulk=False)


def test_particles_that_the_frame_did_not_standardise_warn():
    """The draws' sds along a pilot frame's axes: ~1 when the bulk searches fitted the target's
    scales (quiet, 200 draws in d = 50), spread 0.3-3 when they did not (the badly scaled Gaussian
    of benchmarks/results/particle_dimension.md: 0.53-2.59)."""
    from mcsample.convergence import warn_if_frame_did_not_standardise
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warn_if_frame_did_not_standardise(rng.standard_normal((200, 50)), "rdmc")
    with pytest.warns(ConvergenceWarning, match="rdmc: the draws. sds along the pilot.s frame axes range 0.2"):
        warn_if_frame_did_not_standardise(rng.standard_normal((200, 50)) * np.logspace(-0.5, 0.5, 50), "rdmc")


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["rdmc", "multalmc", "multcdiff"])
def test_a_badly_scaled_gaussian_in_d50_warns(sampler):
    """sds log-spaced 0.1-10 in d = 50, 2,000 evaluations a particle: the draws come out 0.07-0.2x
    too narrow along the widest axes; the run must say so (it was silent)."""
    s = np.logspace(-1, 1, 50)
    t = mc.Target(_scaled_normal, dim=50, args=(s,), logp_grad=_scaled_normal_grad)
    with pytest.warns(ConvergenceWarning, match="did not standardise"):
        mc.sample(t, sampler, chains=1, draws=200, max_evals=4e5, seed=1, progressbar=False)


@numba.njit
def _scaled_normal(x, s):
    return -0.5 * np.sum((x / s) ** 2)


@numba.njit
def _scaled_normal_grad(x, s):
    return -0.5 * np.sum((x / s) ** 2), -x / s**2
