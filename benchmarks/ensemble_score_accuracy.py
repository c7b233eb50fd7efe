"""Banana and correlated (d = 10) accuracy of the ensemble score sampler per seed (issue #14):
one run of 1000 particles per seed, settings as JSON (default: the sampler's defaults); prints,
per seed, the first coordinates' mean error / sd and sd ratio, the max over all coordinates, and
the evaluations per particle, then a summary over the seeds.

    python benchmarks/ensemble_score_accuracy.py banana '{}' 5
    python benchmarks/ensemble_score_accuracy.py correlated '{}' 5
    python benchmarks/ensemble_score_accuracy.py banana '{"proposal": "reference", "pilot": 0}' 2

Results: results/ensemble_score_accuracy.md (the printed lines of those commands).
"""

import json
import sys
import time
import warnings

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from mcsample.convergence import ConvergenceWarning


def accuracy(name, seeds, **settings):
    target, ref = targets.get(name)
    errors, ratios = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            idata = mc.sample(target, "ensemble_score", draws=1000, chains=1, seed=seed, progressbar=False,
                              **settings)
        x = np.asarray(_arviz.group(idata, "posterior")["x"].values).reshape(-1, target.dim)
        error, ratio = (x.mean(0) - ref.mean) / ref.sd, x.std(0) / ref.sd
        errors.append(error)
        ratios.append(ratio)
        evals = (idata.attrs["n_logp"] + idata.attrs["n_grad"]) / len(x)
        print(name, settings, seed, "mean_err", np.round(error[:4], 3), "max", round(float(np.abs(error).max()), 3),
              "sd_ratio", np.round(ratio[:4], 3), "maxdev", round(float(np.abs(ratio - 1).max()), 3), "ev/p",
              round(evals), "s", round(time.perf_counter() - t0, 1), flush=True)
    errors, ratios = np.array(errors), np.array(ratios)
    print("SUMMARY", name, settings, "mean|me| max-coord", round(float(np.abs(errors).max(1).mean()), 3),
          "mean sd ratio per coord", np.round(ratios.mean(0)[:4], 3), "worst |sr-1|",
          round(float(np.abs(ratios - 1).max()), 3), flush=True)


if __name__ == "__main__":
    accuracy(sys.argv[1], range(1, int(sys.argv[3]) + 1 if len(sys.argv) > 3 else 4),
             **(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
