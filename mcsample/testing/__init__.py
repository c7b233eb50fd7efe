"""Checks that a sampler's kernel leaves its target invariant, for our samplers and yours.

- :func:`assert_invariant`: k steps from exact draws stay exact (two-sample KS tests).
- :func:`apply_kernel`: the building block, k transitions applied to many start points.
- :func:`assert_accurate`: distance checks for approximate (non-MCMC) samplers.
- :func:`assert_matches_reference`: MCMC means and sds within Monte Carlo error of a reference.
- :func:`check_exchangeability`, :func:`geweke_test`, :func:`rank_test` (Gandy-Scott) and
  :func:`sbc`: joint-distribution checks for kernels and for models with a simulator.
- :mod:`.models` (targets with exact samplers) and :mod:`.strategies` (hypothesis strategies).

A kernel is a name from ``mcsample.samplers.available()``, a settings object, or your own
``step(x, rng) -> x_new``. Adaptation must be frozen (fixed step size, metric or width).
"""

from . import models
from .accuracy import AccuracyReport, assert_accurate, assert_matches_reference
from .invariance import InvarianceReport, apply_kernel, assert_invariant
from .joint import (JointTestReport, KernelFactory, SBCReport, check_exchangeability, geweke_test,
                    rank_test, sbc)

__all__ = ["apply_kernel", "assert_invariant", "assert_accurate", "assert_matches_reference", "check_exchangeability",
           "geweke_test", "rank_test", "sbc", "KernelFactory", "InvarianceReport", "AccuracyReport",
           "JointTestReport", "SBCReport", "models", "strategies"]


def __getattr__(name):
    # strategies needs hypothesis, a dev dependency: import it only when asked for
    if name == "strategies":
        import importlib
        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
