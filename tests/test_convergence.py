"""The chain-agreement check that sample() runs (mcsample/convergence.py)."""

import warnings

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz
from mcsample.convergence import ConvergenceWarning, chain_disagreements, split_rhat


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
