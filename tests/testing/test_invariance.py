"""mcsample.testing.assert_invariant: passes correct kernels, catches broken ones (mutants).

Every check runs at a Bonferroni-split alpha = 1e-4 with fixed seeds: a correct kernel fails with
probability < 1e-4 whatever the seed, and each mutant below fails with p-values far below the
threshold (recorded next to it)."""

from dataclasses import dataclass

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import mcsample as mc
from mcsample.samplers.nuts import NUTS, NUTSChain, nuts_transition
from mcsample.testing import apply_kernel, assert_invariant, models, strategies


@numba.njit
def hmc_step(logp_grad, args, x, rng, step, n_steps, full_first_kick):
    """HMC with a fixed number of leapfrog steps and a Metropolis correction. With
    ``full_first_kick`` the leapfrog opens with a full momentum step: no longer time-reversible,
    so the Metropolis correction no longer gives detailed balance."""
    q = x.copy()
    p = np.empty(x.size)
    for i in range(x.size):
        p[i] = rng.standard_normal()
    lp0, g = logp_grad(q, *args)
    h0 = -lp0 + 0.5 * np.sum(p * p)
    lp = lp0
    for _ in range(n_steps):
        p += (1.0 if full_first_kick else 0.5) * step * g
        q += step * p
        lp, g = logp_grad(q, *args)
        p += 0.5 * step * g
    h = -lp + 0.5 * np.sum(p * p)
    if np.log(rng.random()) < h0 - h:
        return q
    return x.copy()


def hmc(target, step=0.9, n_steps=3, mutant=False):
    def kernel(x, rng):
        return hmc_step(target.logp_grad_fn, target.kernel_args, x, rng, step, n_steps, mutant)
    kernel.__name__ = "hmc (full first kick)" if mutant else "hmc"
    return kernel


class LastStateChain(NUTSChain):
    """Mutant: NUTS that returns the forward end of its trajectory instead of a multinomial draw."""

    def run(self, start, stop):
        state, forward = self.state, self.work.forward
        for i in range(start, stop):
            nuts_transition(self.target.logp_grad_fn, self.target.kernel_args, self.rng, state,
                            self.step_size.size[0], self.metric, self.settings.max_depth,
                            self.settings.max_energy_error, self.work)
            state.q[:] = forward.q
            state.g[:] = forward.g
            state.lp[0] = self.target.logp(state.q)
            self.draws[i] = state.q


@dataclass(frozen=True)
class LastStateNUTS(NUTS):
    name = "nuts (returns last state)"

    def start_chain(self, target, rng, q0, tune, draws):
        return LastStateChain(self, target, rng, q0, tune, draws)


@pytest.fixture(scope="module")
def gauss2():
    return models.gaussian(np.array([1.0, -2.0]), np.array([1.0, 4.0]))


FIXED_NUTS = dict(step_size=0.5, adapt_step_size=False)


def test_correct_hmc_passes(gauss2, seed_offset):
    assert_invariant(gauss2.target, hmc(gauss2.target), gauss2.exact, n=5000, k=(1, 10), seed=1 + seed_offset)


def test_mutant_leapfrog_with_full_first_kick_is_caught(gauss2):
    """Seen: smallest p-value 1e-24 against a threshold of 7e-6 (the same settings, correct
    leapfrog: smallest p 0.26). The bias grows with the step: at step 0.5 it hides below KS
    resolution for n = 5000, so the test uses a step near the smallest scale."""
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(gauss2.target, hmc(gauss2.target, mutant=True), gauss2.exact, n=5000,
                         k=(1, 10), seed=1)


def test_mutant_nuts_returning_last_state_is_caught(gauss2, seed_offset):
    """The trajectory's end is only biased through the energy error it carries uncorrected, so
    the step is large (1.5 against a smallest sd of 1). Seen: mutant p = 3e-113, correct NUTS at
    the same step: smallest p 0.07 (threshold 7e-6). At step 0.5 the mutant's smallest p was
    2e-4: a real but small bias that n = 5000 cannot resolve."""
    fixed = dict(step_size=1.5, adapt_step_size=False)
    assert_invariant(gauss2.target, NUTS(**fixed), gauss2.exact, n=5000, k=(1, 5), seed=2 + seed_offset)
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(gauss2.target, LastStateNUTS(**fixed), gauss2.exact, n=5000, k=(1, 5), seed=2)


def test_wrong_exact_sampler_is_caught():
    """A correct kernel checked against N(0, 1.2^2) draws for an N(0, 1) target."""
    model = models.gaussian(np.zeros(2), np.ones(2))
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(model.target, "nuts", lambda rng, n: 1.2 * rng.standard_normal((n, 2)),
                         n=5000, k=(1,), **FIXED_NUTS)


def test_report_names_statistic_p_value_and_threshold(gauss2):
    with pytest.raises(AssertionError) as err:
        assert_invariant(gauss2.target, hmc(gauss2.target, mutant=True), gauss2.exact, n=5000,
                         k=(10,), seed=1)
    text = str(err.value)
    assert "FAIL" in text and "p-value" in text and "fail below 2.00e-05" in text  # 1e-4 / 5 statistics


def test_user_kernel_and_settings_do_not_mix(gauss2):
    with pytest.raises(ValueError, match="settings are only accepted"):
        apply_kernel(gauss2.target, hmc(gauss2.target), np.zeros((2, 2)), 1, step_size=0.1)


@settings(derandomize=True, max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(strategies.models(max_dim=6))
def test_nuts_is_invariant_on_generated_targets(model):
    """NUTS with a fixed step (a fifth of the smallest sd) and the exact diagonal variances."""
    draws = model.exact(np.random.default_rng(0), 4000)
    sd = draws.std(axis=0)
    assert_invariant(model.target, "nuts", model.exact, n=3000, k=(1, 3), seed=3, centre=model.centre,
                     step_size=0.2 * sd.min(), adapt_step_size=False, inv_metric=sd**2)


@settings(derandomize=True, max_examples=10, deadline=None)
@given(strategies.models(max_dim=20))
def test_strategies_build_valid_models(model):
    x = model.exact(np.random.default_rng(1), 50)
    assert x.shape == (50, model.target.dim)
    assert np.all(np.isfinite([model.target.logp(xi) for xi in x]))
    assert 2 <= model.target.dim <= 20


@pytest.mark.slow
@settings(derandomize=True, max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(strategies.models(max_dim=12))
def test_nuts_is_invariant_on_generated_targets_large(model):
    """The slow tier: more and larger targets, 20000 replicates, up to 20 steps."""
    draws = model.exact(np.random.default_rng(0), 4000)
    sd = draws.std(axis=0)
    assert_invariant(model.target, "nuts", model.exact, n=20000, k=(1, 5, 20), seed=3, centre=model.centre,
                     step_size=0.3 * sd.min(), adapt_step_size=False, inv_metric=sd**2)


@pytest.mark.slow
@pytest.mark.parametrize("step", [0.5, 1.0])
def test_mutant_nuts_returning_last_state_is_caught_at_smaller_steps(gauss2, step):
    """With 10^5 replicates the bias of the trajectory's end is resolved at moderate steps too."""
    fixed = dict(step_size=step, adapt_step_size=False)
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(gauss2.target, LastStateNUTS(**fixed), gauss2.exact, n=100000, k=(5,), seed=2)
