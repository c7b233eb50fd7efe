"""rdMC (issue 12): where it stops working as the dimension grows.

    python benchmarks/rdmc_dimension.py             # runs, appends to benchmarks/results/rdmc_dimension.jsonl
    # the fifth session's rows (run "s5", seed 7; "is_mala" and "smc" there had one search round, the default then):
    python benchmarks/rdmc_dimension.py --dims 10 20 32 --estimators smc is_mala smc_r4 is_mala_r4 --seeds 7
    python benchmarks/rdmc_dimension.py --dims 50 --estimators smc_r4 is_mala --seeds 7 --draws 125
    # the sixth session's (run "s6", seed 8):
    python benchmarks/rdmc_dimension.py --dims 10 20 32 --estimators smc_r4 is_mala is_mala_r4 --seeds 8 --run s6
    python benchmarks/rdmc_dimension.py --plot      # benchmarks/results/rdmc_dimension.png: runs s5 (seed 7) and s6 (seed 8)

Target: the catalogue's ``two_modes`` built at each d in {2, 5, 10, 20, 32, 50}: 2/3 N(-(2/3) 1, 0.05 I)
+ 1/3 N((4/3) 1, 0.05 I) (SLIPS's "two modes": the modes sit sqrt(d) * 2 apart, each with sd 0.22).
Per (d, estimator): ``mc.sample(target, RDMC(**VARIANTS[estimator]), draws=250, chains=2, tune=1000,
seed=seed)``, default settings otherwise (T = 6, 100 geometric steps to delta = 0.01 x the modes'
variance in the frame of 8 pooled bulk searches, 128 importance samples on average with 4x at the
wide steps, 4 MALA / ULA chains x 32 steps at the narrow ones; smc: 16 members x 8 MALA moves), no
budget. Estimators "is" (importance sampling only, gradient-free), "is_mala" (the default with a
gradient until run s6), "ula" (Langevin chains started from the likelihood factor's draws) and
"smc" (the sequential estimator), each with one round of searches; "smc_r4" (the default with a
gradient since run s6) and "is_mala_r4" with up to 4. The rows of the GPSS pilot's frame
(before issue 12's standardisation) are in ``rdmc_dimension_gpss_pilot.jsonl``.

Reported: w1, the weight of the first mode (nearest-centre assignment; truth 2/3) with its
binomial standard error over the 500 particles, |w1 - 2/3| (= the mode-weight total variation
for two modes), the largest |log sd ratio| against exact draws (the within-mode spread), the
smallest per-step importance ESS (mean over particles), evaluations per sample (everything spent,
pilot included, over the particles) and wall seconds.

"is_nodef" is importance sampling with ``defensive=0``: the default mixes 10% of the importance
draws from N(0, I) in the frame, which keeps far-out particles from drifting off (mog8); in the
GPSS pilot's frame it was centred on the one mode the pilot saw and pulled the weights towards it.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import metrics
from mcsample.samplers.rdmc import RDMC

RESULTS = Path(__file__).resolve().parent / "results"
DIMS = (2, 5, 10, 20, 32, 50)
ESTIMATORS = ("is", "is_mala", "ula", "smc")
# rows are tagged with the run that wrote them; the plot shows one run's rows
RUN = "s5"
# the extra series: importance sampling without the defensive N(0, I) component (see below)
VARIANTS = {"is_nodef": dict(estimator="is", defensive=0.0),
            # up to 4 rounds of 8 searches, a new round while they all found one mode (RDMC.search_rounds)
            "smc_r4": dict(estimator="smc", search_rounds=4), "is_mala_r4": dict(estimator="is_mala", search_rounds=4),
            # one round, as in run s5 (the default has been 4 rounds since run s6)
            "is_mala": dict(estimator="is_mala", search_rounds=1), "smc": dict(estimator="smc", search_rounds=1),
            "is": dict(estimator="is", search_rounds=1), "ula": dict(estimator="ula", search_rounds=1)}


def one(d, estimator, seed=7, draws=250, chains=2, run=RUN):
    settings = VARIANTS.get(estimator, dict(estimator=estimator))
    target, ref = targets.get("two_modes", dim=d)
    centres, truth = ref.extra["mode_centres"], ref.extra["mode_weights"]
    t0 = time.time()
    idata = mc.sample(target, RDMC(**settings), draws=draws, chains=chains, tune=1000, seed=seed,
                      progressbar=False)
    x = idata["posterior"]["x"].values.reshape(-1, d)
    w = metrics.mode_weights(x, centres)
    # per chain (each with its own searches): a chain at ~1.0 is one whose searches all found the first mode
    per_chain = [round(float(metrics.mode_weights(xc, centres)[0]), 3) for xc in idata["posterior"]["x"].values]
    steps = idata["step_stats"]
    ess = steps["importance_ess"].values
    return dict(target="two_modes", d=d, estimator=estimator, settings=settings, seed=seed, particles=len(x),
                w1=round(float(w[0]), 3), w1_se=round(float(np.sqrt(w[0] * (1 - w[0]) / len(x))), 3),
                weight_err=round(float(abs(w[0] - truth[0])), 3), w1_per_chain=per_chain,
                logsd=round(float(np.abs(metrics.log_sd_ratio(x, ref.sd)).max()), 3),
                min_importance_ess=None if np.all(np.isnan(ess)) else round(float(np.nanmin(ess)), 2),
                evals_per_sample=round((idata.attrs["n_logp"] + idata.attrs["n_grad"]) / len(x)),
                seconds=round(time.time() - t0, 1), run=run)


def plot(path=RESULTS / "rdmc_dimension.jsonl", out=RESULTS / "rdmc_dimension.png", runs=((RUN, 7), ("s6", 8))):
    """One line per estimator and (run, seed): solid for the first, dashed for the others."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(line) for line in open(path) if line.strip()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = {"is_nodef": "is, defensive=0", "smc_r4": "smc, 4 search rounds (default)",
              "is_mala_r4": "is_mala, 4 search rounds", "is_mala": "is_mala (old default)"}
    colours = {}
    for i, (run, seed) in enumerate(runs):
        ls = "-" if i == 0 else "--"
        for est in dict.fromkeys(ESTIMATORS + tuple(VARIANTS)):
            r = sorted((x for x in rows if x.get("run") == run and x["seed"] == seed and x["estimator"] == est),
                       key=lambda x: x["d"])
            if not r:
                continue
            d = [x["d"] for x in r]
            kw = dict(marker="o", ls=ls, color=colours.get(est), label=f"{labels.get(est, est)}, seed {seed}")
            line = ax1.errorbar(d, [x["w1"] for x in r], yerr=[2 * x["w1_se"] for x in r], capsize=3, **kw)
            colours.setdefault(est, line[0].get_color())
            ax2.plot(d, [x["evals_per_sample"] for x in r], **{**kw, "color": colours[est]})
    ax1.axhline(2 / 3, color="k", ls="--", lw=1, label="truth 2/3")
    ax1.axhline(0.5, color="grey", ls=":", lw=1)
    ax1.set(xscale="log", xlabel="dimension d", ylabel="weight of the first mode (±2 se)",
            title="two_modes: mode weight", ylim=(-0.05, 1.05))
    ax2.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="target evaluations per sample",
            title="cost per sample (pilot included)")
    for ax in (ax1, ax2):
        ax.set_xticks(DIMS, [str(x) for x in DIMS])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax1.legend(fontsize=6)
    fig.suptitle("rdMC on two_modes, 2 x 250 particles (2 x 125 at d = 50); "
                 + ", ".join(f"run {run!r} seed {seed}" for run, seed in runs))
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dims", nargs="+", type=int, default=list(DIMS))
    p.add_argument("--estimators", nargs="+", default=list(dict.fromkeys(ESTIMATORS + tuple(VARIANTS))))
    p.add_argument("--plot", action="store_true")
    p.add_argument("--seeds", nargs="+", type=int, default=[7])
    p.add_argument("--draws", type=int, default=250, help="particles per chain (2 chains)")
    p.add_argument("--run", default=RUN, help="the tag of the rows written (and plotted)")
    a = p.parse_args()
    if a.plot:
        plot()
        return
    with open(RESULTS / "rdmc_dimension.jsonl", "a") as f:
        for d in a.dims:
            for est in a.estimators:
                for seed in a.seeds:
                    row = json.dumps(one(d, est, seed, draws=a.draws, run=a.run))
                    print(row, flush=True)
                    f.write(row + "\n")
                    f.flush()


if __name__ == "__main__":
    main()
