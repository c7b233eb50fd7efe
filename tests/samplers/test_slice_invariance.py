"""k-step invariance of the three slice samplers from exact draws (notes section 4.3), with the
mutants that these checks must catch.

N replicates start from exact draws and take k = 1 and k = 10 steps each; KS tests on every
coordinate, log |x - centre|, a random projection and log p compare them with fresh exact draws.
The false-alarm budget is 1e-4 over the whole suite: each ``assert_invariant`` call gets
1e-4 / N_CALLS and splits it over its own tests (Bonferroni). Warmup is off (tune = 0), so w and the
frame are fixed: the kernel is Markov."""

from dataclasses import dataclass

import numpy as np
import pytest

import targets
from mcsample.samplers.gpss import GPSS, GPSSChain
from mcsample.testing import assert_invariant, models

N_CALLS = 16  # invariance calls below that must pass
ALPHA = 1e-4 / N_CALLS
N = 10000


def catalogue_exact(name):
    """Exact draws from a catalogue target, a fresh seed per call."""
    def exact(rng, n):
        return targets.get(name, n_exact=n, seed=int(rng.integers(2**31)))[1].draws
    return exact


def off_centre_gaussian():
    cov = np.diag([0.25, 4.0, 1.0]) + 0.3 * np.ones((3, 3))
    return models.gaussian(np.array([1.0, -2.0, 0.5]), cov, name="gauss3_off_centre")


def student_t():
    return models.student_t(np.array([0.5, 0.0, -0.5, 1.0, 0.0]), np.array([1.0, 2.0, 0.5, 1.0, 1.0]), 3.0,
                            name="student_t5")


def catalogue_model(name):
    t, _ = targets.get(name)
    return models.ExactModel(t, catalogue_exact(name), np.zeros(t.dim), name)


MODELS = {
    "gauss3": off_centre_gaussian,
    "student_t5": student_t,
    "funnel10": lambda: catalogue_model("funnel10"),
    "hyperplane_disk200": lambda: catalogue_model("hyperplane_disk200"),
}
# Widths as in the GPSS paper (funnel 5, hyperplane disk 20) or of the order of the slice.
WIDTHS = {"gauss3": 2.0, "student_t5": 5.0, "funnel10": 5.0, "hyperplane_disk200": 20.0}
SAMPLERS = ["gpss", "elliptical_slice", "hit_and_run_slice"]


def fixed_settings(sampler, model_name, **extra):
    s = dict(centring="none", **extra)
    if sampler != "elliptical_slice":
        s.update(w=WIDTHS[model_name], adapt_w=False)
    return s


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_invariance_without_a_frame(sampler, model_name, seed_offset):
    """The paper's setting, polar coordinates about x = 0: for GPSS the off-centre Gaussian and
    Student-t are the hard cases (the origin lies in their tails)."""
    m = MODELS[model_name]()
    assert_invariant(m.target, sampler, m.exact, n=N, k=(1, 10), alpha=ALPHA, seed=11 + seed_offset,
                     centre=m.centre, **fixed_settings(sampler, model_name))


FRAMES = {
    # GPSS about a point near the mean, diagonal scale
    "gpss": dict(loc=np.array([0.8, -1.5, 0.2]), cov=np.array([0.5, 3.0, 1.0])),
    # an elliptical prior that is not the target, so the likelihood is not constant
    "elliptical_slice": dict(loc=np.array([0.0, -1.0, 0.0]), cov=np.diag([1.0, 6.0, 2.0]) + 0.2),
    "hit_and_run_slice": dict(loc=np.array([1.0, 1.0, 1.0]), cov=np.diag([0.3, 5.0, 1.0]) + 0.1),
}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_invariance_in_a_fixed_frame(sampler, seed_offset):
    """x = c + L z with c, L fixed (as after warmup), diagonal and dense."""
    m = off_centre_gaussian()
    assert_invariant(m.target, sampler, m.exact, n=N, k=(1, 10), alpha=ALPHA, seed=23 + seed_offset,
                     centre=m.centre, **fixed_settings(sampler, "gauss3", **FRAMES[sampler]))


# -- mutants: each must be caught ----------------------------------------------------------------


@dataclass(frozen=True)
class MutantGPSS(GPSS):
    """GPSS whose polar density uses r^power instead of r^(d-1)."""

    power: float = 0.0

    def start_chain(self, target, rng, q0, tune, draws):
        chain = _PowerChain.__new__(_PowerChain)
        chain.mutant_power = self.power
        chain.__init__(self, target, rng, q0, tune, draws)
        return chain


class _PowerChain(GPSSChain):
    def radial_power(self, dim):
        return self.mutant_power


@pytest.mark.parametrize("power, what", [(0.0, "without the (d-1) log r term"),
                                         (-4.0, "thresholding |x|^(1-d) p(x)")])
def test_gpss_mutants_with_the_wrong_polar_density_are_caught(power, what):
    """On an isotropic Gaussian in d = 5 the radius then follows the wrong law; log |x| sees it."""
    m = models.gaussian(np.zeros(5), np.ones(5))
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(m.target, MutantGPSS(centring="none", w=2.0, adapt_w=False, power=power), m.exact,
                         n=2000, k=(1, 10), alpha=ALPHA, seed=5)


@pytest.mark.slow
def test_gpss_with_shrinkage_away_from_the_current_point_is_caught():
    """The numpy reference GPSS with both shrinkages keeping the far part of the bracket: the bias
    builds up over steps (at n = 4000, k = 1 gave min p 0.007, k = 10 gave p 1e-15 to 1e-18), so
    this runs k = 10 on pure-Python kernels, in the slow tier. The correct reference passes the
    same check (the control)."""
    from mcsample.testing.reference import gpss_step
    m = models.gaussian(np.array([0.5, -0.5, 1.0]), np.array([1.0, 2.0, 0.5]))
    logp = m.target.logp
    assert_invariant(m.target, gpss_step(logp, 2.0), m.exact, n=3000, k=(10,), alpha=ALPHA, seed=7)
    with pytest.raises(AssertionError, match="does not leave the target invariant"):
        assert_invariant(m.target, gpss_step(logp, 2.0, shrink="away", max_proposals=200), m.exact,
                         n=3000, k=(10,), alpha=ALPHA, seed=7)
