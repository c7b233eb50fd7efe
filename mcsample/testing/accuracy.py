"""Distance-based accuracy checks for approximate (non-MCMC) samplers, whose output is not
exactly invariant and so cannot pass an invariance test: their draws are compared with exact
draws against stated tolerances instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import metrics
from .invariance import kernel_name


@dataclass
class AccuracyReport:
    """Rows of (check, value, tolerance)."""

    rows: list

    @property
    def failures(self):
        return [r for r in self.rows if not r[1] <= r[2]]

    def __str__(self):
        lines = [f"{'check':<34} {'value':>10} {'tolerance':>10}"]
        for name, value, tol in self.rows:
            lines.append(f"{name:<34} {value:10.4f} {tol:10.4f}{'  <-- FAIL' if not value <= tol else ''}")
        return "\n".join(lines)


def assert_accurate(target, sampler, exact, *, draws=1000, tune=1000, chains=4, seed=0, n_exact=20000,
                    mean_tol=0.1, sd_tol=0.1, sw2_tol=None, mode_centres=None, mode_weights=None,
                    tv_tol=0.05, **settings) -> AccuracyReport:
    """Raise AssertionError unless ``mcsample.sample`` output is close to exact draws.

    Checks: max |mean error| / sd <= ``mean_tol``; max |log sd ratio| <= ``sd_tol``; optionally
    the sliced W2 distance to exact draws <= ``sw2_tol``, and, given ``mode_centres`` with their
    true ``mode_weights``, the total variation between the weights of nearest-centre assignments
    <= ``tv_tol``. Tolerances are the caller's statement of what the method should achieve; keep
    them above the Monte Carlo error of the run (e.g. mean_tol >> 1 / sqrt(draws * chains)).
    """
    from ..sample import sample
    idata = sample(target, sampler, draws=draws, tune=tune, chains=chains, seed=seed,
                   progressbar=False, **settings)
    x = idata.posterior["x"].values.reshape(-1, target.dim)
    ref = np.asarray(exact(np.random.default_rng(seed + 1), n_exact), dtype=float)
    ref_mean, ref_sd = ref.mean(axis=0), ref.std(axis=0, ddof=1)
    rows = [("max |mean error| / sd", float(metrics.standardized_mean_error(x, ref_mean, ref_sd).max()), mean_tol),
            ("max |log sd ratio|", float(np.abs(metrics.log_sd_ratio(x, ref_sd)).max()), sd_tol)]
    if sw2_tol is not None:
        rows.append(("sliced W2", metrics.sliced_wasserstein2(x, ref, seed=seed), sw2_tol))
    if mode_centres is not None:
        weights = metrics.mode_weights(x, mode_centres)
        truth = mode_weights if mode_weights is not None else metrics.mode_weights(ref, mode_centres)
        rows.append(("mode weight TV", metrics.total_variation(weights, truth), tv_tol))
    report = AccuracyReport(rows)
    if report.failures:
        raise AssertionError(f"{target.name}: {kernel_name(sampler)} is not accurate enough:\n{report}")
    return report


def assert_matches_reference(x, ref_mean, ref_sd, n_ref, *, alpha=1e-4, n_checks=None, min_ess=400):
    """Raise AssertionError unless MCMC draws x (chain, draw, d) match a reference posterior.

    Every mean and sd must lie within a Bonferroni z (``alpha`` split over ``n_checks``, by
    default 2 d) of the combined Monte Carlo standard error: ours from ArviZ's MCSE (the sd's by
    the delta method), the reference's from its ``n_ref`` near-independent draws. Each parameter
    needs ESS >= ``min_ess`` so that the bound stays tight (< 0.25 sd at 400). Returns the largest
    |mean error| in reference sds."""
    from scipy import stats
    from .. import _arviz
    x = np.asarray(x, dtype=float)
    ref_mean, ref_sd = np.asarray(ref_mean, dtype=float), np.asarray(ref_sd, dtype=float)
    n_checks = 2 * x.shape[-1] if n_checks is None else n_checks
    z = stats.norm.isf(alpha / (2 * n_checks))
    ess = _arviz.ess_of(x)
    flat = x.reshape(-1, x.shape[-1])
    mean_err = np.abs(flat.mean(0) - ref_mean)
    sd_err = np.abs(flat.std(0, ddof=1) - ref_sd)
    mean_se = np.sqrt(_arviz.mcse_of(x, "mean") ** 2 + ref_sd**2 / n_ref)
    sd_se = np.sqrt(_arviz.mcse_of(x, "sd") ** 2 + ref_sd**2 / (2 * (n_ref - 1)))
    problems = []
    if np.any(ess < min_ess):
        problems.append(f"ESS below {min_ess}: {np.round(ess, 0)}")
    if np.any(mean_err >= z * mean_se):
        problems.append(f"mean errors {np.round(mean_err / mean_se, 2)} standard errors (bound {z:.2f})")
    if np.any(sd_err >= z * sd_se):
        problems.append(f"sd errors {np.round(sd_err / sd_se, 2)} standard errors (bound {z:.2f})")
    if problems:
        raise AssertionError("draws do not match the reference: " + "; ".join(problems))
    return float(np.max(mean_err / ref_sd))
