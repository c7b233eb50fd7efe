"""rdMC (issue 12, in progress): mode weights on the catalogue's mixtures with default settings.

    python benchmarks/rdmc_mode_weights.py > benchmarks/results/rdmc_mode_weights.jsonl

4 runs x 1000 particles, tune = 1000 (the GPSS pilot), seed 3, per (target, estimator): the
mode-weight total variation against the reference weights, the largest standardised mean error
and |log sd ratio|, evaluations per particle (pilot included) and wall seconds. The rows with
``standardise="none"`` skip the pilot's frame. About 20 minutes on 2 quiet cores.
"""

import json
import time

import numpy as np

import mcsample as mc
import targets
from mcsample import metrics
from mcsample.samplers.rdmc import RDMC

CASES = [("mog8", {}), ("gmm40_d2", {}), ("two_modes", {"dim": 8})]
SETTINGS = [("is", {}), ("is_mala", {}), ("is", {"standardise": "none"})]


def main():
    for name, kwargs in CASES:
        target, ref = targets.get(name, **kwargs)
        centres, weights = ref.extra["mode_centres"], ref.extra.get("mode_weights")
        truth = weights if weights is not None else metrics.mode_weights(ref.draws, centres)
        for estimator, extra in SETTINGS:
            t0 = time.time()
            idata = mc.sample(target, RDMC(estimator=estimator, **extra), draws=1000, chains=4, tune=1000,
                              seed=3, progressbar=False)
            x = idata["posterior"]["x"].values.reshape(-1, target.dim)
            print(json.dumps(dict(
                target=name, d=target.dim, est=estimator, extra=extra,
                tv=round(metrics.total_variation(metrics.mode_weights(x, centres), truth), 3),
                mean_err=round(float(metrics.standardized_mean_error(x, ref.mean, ref.sd).max()), 3),
                logsd=round(float(np.abs(metrics.log_sd_ratio(x, ref.sd)).max()), 3),
                evals_per_particle=round((idata.attrs["n_logp"] + idata.attrs["n_grad"]) / x.shape[0]),
                seconds=round(time.time() - t0, 1))), flush=True)


if __name__ == "__main__":
    main()
