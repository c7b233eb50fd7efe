"""rdMC (issue 12) on two posteriordb posteriors with default settings: are the means within
0.15 reference sd?

    python benchmarks/rdmc_posteriors.py > benchmarks/results/rdmc_posteriors.jsonl
    python benchmarks/rdmc_posteriors.py --posteriors arK --seeds 1 --draws 250
    python benchmarks/rdmc_posteriors.py --settings '{"estimator": "smc", "search_rounds": 4}'  # session 6's rows

Per (posterior, seed): ``mc.sample(target, "rdmc", draws, chains=4, tune=1000)`` with the default
settings (since session 6: the smc estimator, 100 geometric steps from T = 6 to 0.01 x the modes'
variance in the frame of up to 4 rounds of 8 bulk searches, no budget; the rows before it are the
older default, IS-initialised MALA with one round, and, older still, the GPSS pilot's frame). On the reference (constrained) scale: the largest |mean error| /
reference sd and its parameter, its Monte Carlo standard error (particles are independent: sd /
sqrt(n), with the reference's own 1 / sqrt(10000) added in quadrature; ``z`` = error / se, so a
miss with z below ~3 is noise, a large z is bias), the largest |sd ratio - 1|, evaluations per
particle (pilot included) and wall seconds.
"""

import argparse
import json
import time

import numpy as np

import mcsample as mc
import targets


def one(name, seed, draws, **settings):
    target, ref = targets.get(name)
    t0 = time.time()
    idata = mc.sample(target, "rdmc", draws=draws, chains=4, tune=1000, seed=seed, progressbar=False, **settings)
    x = ref.to_reference_scale(idata["posterior"]["x"].values.reshape(-1, target.dim))
    err = np.abs(x.mean(0) - ref.mean) / ref.sd
    sd_ratio = x.std(0, ddof=1) / ref.sd
    se = np.sqrt((sd_ratio**2) / len(x) + 1.0 / 10000)
    j = int(np.argmax(err))
    names = list(getattr(ref, "names", None) or [f"x[{i}]" for i in range(len(err))])
    steps = idata["step_stats"]
    return dict(posterior=name, d=target.dim, seed=seed, particles=len(x), settings=settings,
                max_mean_err=round(float(err[j]), 3), worst=names[j], se=round(float(se[j]), 3),
                z=round(float(err[j] / se[j]), 1), max_sd_ratio_err=round(float(np.abs(sd_ratio - 1).max()), 3),
                evals_per_particle=round((idata.attrs["n_logp"] + idata.attrs["n_grad"]) / len(x)),
                min_importance_ess=round(float(steps["importance_ess"].values.min()), 1),
                mean_acceptance=round(float(np.nanmean(steps["inner_acceptance"].values)), 3),
                seconds=round(time.time() - t0, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--posteriors", nargs="+", default=["eight_schools_noncentered", "arK"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--draws", type=int, default=500, help="particles per chain (4 chains)")
    p.add_argument("--settings", default="{}", help="JSON of RDMC settings, e.g. '{\"estimator\": \"is\"}'")
    a = p.parse_args()
    for name in a.posteriors:
        for seed in a.seeds:
            print(json.dumps(one(name, seed, a.draws, **json.loads(a.settings))), flush=True)


if __name__ == "__main__":
    main()
