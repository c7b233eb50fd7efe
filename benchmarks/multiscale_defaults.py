"""MultALMC / MultCDiff at their tuned defaults off the paper's targets (issue 13).

    python benchmarks/multiscale_defaults.py [budget ...] > benchmarks/results/multiscale_defaults.jsonl

Each row: one target, one sampler, ``mc.compare``'s protocol (4 runs, the particles
``draws_for_budget`` picks, seed 1, the budget in evaluations for all runs together, pilot
included): the largest |mean error| in reference sds over the coordinates, the range of sd ratios,
the draws, the evaluations spent and the divergence warnings. Targets: eight schools
(noncentered; the catalogue has no centered one), arK, a correlated Gaussian (d = 10, rho 0.9),
gmm40_d2, mog8 and a diagonal Gaussian with sds log-spaced from 1e-3 to 1e3 (d = 7); with
``--funnel``, funnel10 and funnel10_slips. Where the reference has exact or reference draws, also
the sliced KS distance (128 projections) to as many of them as the run returned, and its floor
(the same between two disjoint sets of reference draws), and the first coordinate's mean error and
sd ratio (the funnel's log-scale x_1, whose marginal is N(0, 9); the x_i's heavy tails make the
largest-over-coordinates error noisy there).
"""

import json
import sys
import time
import warnings

import numpy as np

import mcsample as mc
import targets
from mcsample import metrics
from mcsample.testing import models

TARGETS = ["eight_schools_noncentered", "arK", "correlated", "gmm40_d2", "mog8", "badly_scaled"]


def build(name):
    if name == "badly_scaled":
        sd = np.logspace(-3, 3, 7)
        mean = np.linspace(-5, 5, 7) * sd
        return models.gaussian(mean, sd**2).target, None, mean, sd
    t, ref = targets.get(name)
    return t, ref, None, None


def _extras(x, ref, seed):
    """Sliced KS to reference draws (and its floor) and the first coordinate's error, when the reference has draws."""
    if ref is None or getattr(ref, "draws", None) is None or len(ref.draws) < 2 * len(x):
        return {}
    rng = np.random.default_rng(1000 + seed)
    idx = rng.permutation(len(ref.draws))
    a, b = ref.draws[idx[:len(x)]], ref.draws[idx[len(x):2 * len(x)]]
    xr = ref.to_reference_scale(x)
    return dict(sliced_ks=round(float(metrics.sliced_ks(xr, a, seed=seed)), 4),
                sliced_ks_floor=round(float(metrics.sliced_ks(b, a, seed=seed)), 4),
                x1_mean_error=round(float((xr[:, 0].mean() - ref.mean[0]) / ref.sd[0]), 3),
                x1_sd_ratio=round(float(xr[:, 0].std() / ref.sd[0]), 3))


def main(budgets=(2e5,), names=TARGETS, samplers=("multalmc", "multcdiff"), chains=4, seed=1):
    for budget in budgets:
        for name in names:
            t, ref, mean, sd = build(name)
            for sampler in samplers:
                cfg = mc.samplers.MultALMC() if sampler == "multalmc" else mc.samplers.MultCDiff()
                draws = cfg.draws_for_budget(budget / chains, t.dim)
                t0 = time.time()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    idata = mc.sample(t, cfg, draws=draws, chains=chains, seed=seed, progressbar=False,
                                      max_evals=budget)
                x = idata["posterior"]["x"].values.reshape(-1, t.dim)
                extras = _extras(x[np.all(np.isfinite(x), axis=1)], ref, seed)
                if ref is not None:
                    x, mean, sd = ref.to_reference_scale(x), ref.mean, ref.sd
                finite = np.all(np.isfinite(x), axis=1)
                err = np.abs(metrics.standardized_mean_error(x[finite], mean, sd))
                ratio = np.exp(metrics.log_sd_ratio(x[finite], sd))
                tuned = idata.attrs["tuned"]
                tuned = json.loads(tuned) if isinstance(tuned, str) else tuned
                print(json.dumps(dict(
                    target=name, dim=t.dim, sampler=sampler, seed=seed, budget=budget, draws=int(x.shape[0]),
                    nonfinite=int((~finite).sum()), mean_error_max=round(float(err.max()), 3),
                    sd_ratio_min=round(float(ratio.min()), 3), sd_ratio_max=round(float(ratio.max()), 3),
                    evals=int(idata.attrs["n_grad"] + idata.attrs["n_logp"]),
                    n_steps=tuned[0]["n_steps"], lipschitz=[round(r["lipschitz"], 2) for r in tuned],
                    warnings=sorted({str(w.message)[:80] for w in caught if issubclass(w.category, RuntimeWarning)}),
                    seconds=round(time.time() - t0, 1), **extras)), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    names = TARGETS + ["funnel10", "funnel10_slips"] if "--funnel" in args else TARGETS
    seeds = [int(a.split("=")[1]) for a in args if a.startswith("--seed=")] or [1]
    budgets = [float(b) for b in args if not b.startswith("--")] or [2e5]
    for s in seeds:
        main(budgets, names=names, seed=s)
