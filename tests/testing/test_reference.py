"""The numpy GPSS reference (mcsample.testing.reference) reproduces the compiled kernel draw for
draw: the same seed gives the same chain, because both make the same random-number calls in the
same order (numba's Generator.standard_normal/random are numpy's algorithms on the same bit
stream). Only rounding in sums differs (numpy's norm and dot add in another order)."""

import numpy as np
import pytest

import mcsample as mc
from mcsample.testing import models
from mcsample.testing.reference import gpss_iteration, gpss_numpy, gpss_step

N_ITER = 200


def chain_rng(seed):
    """The generator ``mc.sample`` gives chain 0: nothing is drawn from it before the kernel
    starts when ``init`` is given (the start-point check only evaluates logp)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed).spawn(1)[0]))


CASES = {
    "gauss5 off-centre, anisotropic": (
        lambda: models.gaussian([1.0, -2.0, 0.5, 3.0, 0.0], [0.25, 4.0, 1.0, 9.0, 0.01]).target,
        np.array([0.5, -1.0, 1.0, 2.0, 0.1]), 3.0),
    "cauchy10": (lambda: models.student_t(np.zeros(10), 1.0, 1.0).target, np.ones(10), 10.0),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [1, 2024])
def test_numpy_reference_reproduces_compiled_gpss(case, seed):
    make, x0, w = CASES[case]
    target = make()
    idata = mc.sample(target, "gpss", draws=N_ITER, tune=0, chains=1, seed=seed, progressbar=False,
                      init=x0, centring="none", w=w, adapt_w=False)
    compiled = idata.posterior["x"].values[0]
    n_logp = idata.sample_stats["n_logp"].values[0]
    draws, n_evals = gpss_numpy(target.logp, x0, N_ITER, w, chain_rng(seed))
    np.testing.assert_allclose(draws, compiled, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(n_evals, n_logp)
    assert n_evals.min() >= 3  # 1 direction + at least the right step-out end + 1 shrink
    assert len(np.unique(draws[:, 0])) > N_ITER // 2  # the chain moves


def test_step_kernel_is_one_iteration_from_x():
    target = models.student_t(np.zeros(10), 1.0, 1.0).target
    x = np.linspace(-1.0, 2.0, 10)
    step = gpss_step(target.logp, 10.0)
    draws, _ = gpss_numpy(target.logp, x, 1, 10.0, np.random.default_rng(5))
    np.testing.assert_array_equal(step(x, np.random.default_rng(5)), draws[0])


def test_isotropic_target_accepts_the_first_direction():
    # p1(r theta') = p1(r theta) on a rotation-invariant target: exactly one direction proposal
    logp = lambda x: -0.5 * float(x @ x)
    rng = np.random.default_rng(0)
    theta = np.ones(6) / np.sqrt(6.0)
    r = 2.0
    lp1 = 5.0 * np.log(r) + logp(r * theta)
    calls = []
    def counted(x):
        calls.append(np.linalg.norm(x))
        return logp(x)
    gpss_iteration(counted, r, theta, lp1, 1.0, rng, 5.0)
    assert calls[0] == pytest.approx(r, rel=1e-14)  # the direction update's only proposal
    assert abs(calls[1] - r) > 1e-6  # the next call is already the radius step-out


def test_mutants_are_built_and_the_away_shrinkage_is_guarded():
    target = models.gaussian(np.zeros(4), np.ones(4)).target
    x0 = np.full(4, 0.5)
    for kwargs in (dict(radial_power=0.0), dict(radial_power=-3.0)):
        draws, _ = gpss_numpy(target.logp, x0, 50, 2.0, np.random.default_rng(1), **kwargs)
        assert np.all(np.isfinite(draws))
    # shrinking away from the current point can exclude the whole slice: the guard ends the
    # update after max_proposals evaluations and the iteration keeps its current point
    draws, n_evals = gpss_numpy(target.logp, x0, 50, 2.0, np.random.default_rng(1), shrink="away",
                                max_proposals=50)
    assert np.all(np.isfinite(draws)) and n_evals.max() >= 50
    step = gpss_step(target.logp, 2.0, shrink="away", max_proposals=50)
    assert step.__name__ == "gpss (numpy reference, shrink=away)"
    with pytest.raises(ValueError, match="shrink"):
        gpss_numpy(target.logp, x0, 1, 2.0, np.random.default_rng(1), shrink="sideways")
