"""k-step invariance from exact draws.

The workhorse is the k-step test from exact draws: if X0 ~ pi exactly and the kernel K leaves pi
invariant, then K^k(X0) ~ pi, so N independent replicates are iid draws from pi and can be
compared with fresh exact draws by two-sample Kolmogorov-Smirnov tests, with the false-alarm
budget ``alpha`` split over all tests (Bonferroni). Adaptation must be frozen (a fixed step size,
metric or width), because an adapted kernel is not Markov.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats

from .. import samplers as _samplers

__all__ = ["apply_kernel", "assert_invariant", "InvarianceReport", "kernel_name"]


def kernel_name(sampler) -> str:
    if isinstance(sampler, str):
        return sampler
    return getattr(sampler, "name", None) or getattr(sampler, "__name__", type(sampler).__name__)


def _chain_stepper(target, sampler, settings):
    """A function (x0, rng, k) -> (k, dim) applying k transitions from x0.

    ``sampler`` is a name, a settings object (its chain runner with no warmup), or a user kernel
    ``step(x, rng) -> x_new``."""
    if callable(sampler) and not isinstance(sampler, (str, _samplers.SamplerSettings)):
        if settings:
            raise ValueError("settings are only accepted with a sampler name or settings object")

        def run_user_kernel(x0, rng, k):
            out = np.empty((k, target.dim))
            x = x0
            for j in range(k):
                x = np.asarray(sampler(x, rng), dtype=float)
                out[j] = x
            return out
        return run_user_kernel
    cfg = _samplers.resolve(sampler, settings)
    if cfg.kind == _samplers.PARTICLES:
        raise ValueError(
            f"{cfg.name} is a particle sampler: its draws are the end of a run through a time grid, "
            "not states of a Markov kernel, so invariance checks do not apply; check its accuracy "
            "with mcsample.testing.assert_accurate (or mc.compare against a reference)")
    cfg.validate(target.dim)

    def run_family_kernel(x0, rng, k):
        runner = cfg.start_chain(target, rng, x0, 0, k)
        runner.run(0, k)
        return runner.draws
    return run_family_kernel


def apply_kernel(target, sampler, x0, k, *, seed=0, **settings) -> np.ndarray:
    """Apply ``k`` transitions of a kernel (no warmup) to each row of ``x0``.

    ``sampler``: a name from ``mcsample.samplers.available()``, a settings object, or your own
    kernel ``step(x, rng) -> x_new``. Returns (k, n, dim): every replicate after 1..k steps.
    Replicate i uses its own generator from ``SeedSequence(seed).spawn(n)[i]``.
    """
    step = _chain_stepper(target, sampler, settings)
    x0 = np.asarray(x0, dtype=float)
    if x0.ndim != 2 or x0.shape[1] != target.dim:
        raise ValueError(f"x0 must have shape (n, {target.dim}), got {x0.shape}")
    out = np.empty((k, x0.shape[0], target.dim))
    for i, seed_i in enumerate(np.random.SeedSequence(seed).spawn(x0.shape[0])):
        out[:, i] = step(x0[i], np.random.Generator(np.random.PCG64(seed_i)), k)
    return out


@dataclass
class InvarianceReport:
    """One row per KS test: (steps, statistic, KS distance, p-value); ``threshold`` is the
    Bonferroni-split significance level each p-value is held to."""

    rows: list
    threshold: float

    @property
    def failures(self):
        return [r for r in self.rows if r[3] < self.threshold]

    def __str__(self):
        lines = [f"{'steps':>5}  {'statistic':<22} {'KS D':>8} {'p-value':>10}   (fail below {self.threshold:.2e})"]
        for steps, name, dist, p in self.rows:
            flag = "  <-- FAIL" if p < self.threshold else ""
            lines.append(f"{steps:>5}  {name:<22} {dist:8.4f} {p:10.3e}{flag}")
        return "\n".join(lines)


def _statistics(target, x, centre, direction):
    """The 1-D projections the KS tests compare: coordinates, a random direction, log||x - c||,
    and log p."""
    cols = {f"x[{j}]": x[:, j] for j in range(x.shape[1])}
    cols["random projection"] = x @ direction
    cols["log||x - centre||"] = np.log(np.linalg.norm(x - centre, axis=1))
    cols["log p"] = np.array([target.logp(xi) for xi in x])
    return cols


def assert_invariant(target, sampler, exact, *, n=20000, k=(1, 10), alpha=1e-4, seed=0,
                     centre=None, **settings) -> InvarianceReport:
    """Raise AssertionError unless k steps of the kernel from exact draws stay exact.

    ``exact(rng, n) -> (n, dim)`` draws from the target. Settings must freeze adaptation (for
    NUTS: ``step_size=..., adapt_step_size=False``). Returns the report when every KS test passes.
    """
    rng = np.random.default_rng(seed)
    x0 = np.asarray(exact(rng, n), dtype=float)
    fresh = np.asarray(exact(rng, n), dtype=float)
    k = tuple(sorted(k))
    moved = apply_kernel(target, sampler, x0, max(k), seed=seed + 1, **settings)
    centre = fresh.mean(axis=0) if centre is None else np.asarray(centre, dtype=float)
    direction = rng.standard_normal(target.dim)
    direction /= np.linalg.norm(direction)
    reference = _statistics(target, fresh, centre, direction)
    n_tests = len(k) * len(reference)
    rows = []
    for steps in k:
        got = _statistics(target, moved[steps - 1], centre, direction)
        for name, ref_values in reference.items():
            result = _stats.ks_2samp(got[name], ref_values)
            rows.append((steps, name, float(result.statistic), float(result.pvalue)))
    report = InvarianceReport(rows, alpha / n_tests)
    if report.failures:
        raise AssertionError(f"{target.name}: the kernel of {kernel_name(sampler)} "
                             f"does not leave the target invariant:\n{report}")
    return report
