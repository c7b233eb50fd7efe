"""The ensemble score sampler at its defaults (issue #14): mode weights, accuracy, and how it
scales with the dimension; NUTS at the same evaluations as the gradient-based control.

    python benchmarks/ensemble_score.py                       # section 3 only (~10 min on 2 cores)
    python benchmarks/ensemble_score.py --sections modes accuracy dimension   # all (~1 h)
    python benchmarks/ensemble_score.py --report              # tables and figure from the jsonl

Writes results/ensemble_score.{jsonl,md} and results/ensemble_score_dimension.png; a run replaces
only the rows of the sections it runs. At the current defaults sections 1 and 2 are superseded by
ensemble_score_mode_weights.py and ensemble_score_accuracy.py (floors, 5 seeds).

Sections (every run: default settings, 1000 particles per chain unless stated; 'evals/particle' is
every log density spent, standardisation included, over the particles):

1. Mode weights: 0.3/0.7 mixture at -+3 (sd 0.5, d = 1), mog8, gmm40_d2, two_modes d = 8 and 32;
   seeds 1-5, 4 chains each, TV of the pooled 4000 particles' nearest-mode weights from the true
   weights (multinomial noise alone: ~0.04 for 40 equal modes at 4000 draws, ~0.01 for two). NUTS
   with the same total evaluations, 4 chains, for mog8 and two_modes d = 8.
2. Accuracy: `correlated` (d = 10) and `banana`: max |mean error| / sd and max |sd ratio - 1|
   against the exact reference, seeds 1-3, 4 chains.
3. Dimension: a Gaussian N(1, diag(0.5..2)^2) and two_modes in d = 2, 5, 10, 20, 50, seeds 1-2,
   one chain of 500 particles: error (max mean error / sd, max |sd ratio - 1|; mode-weight TV, whose
   floor at 500 exact draws is ~0.017), the median over the steps of the drift's mean importance
   ESS, whether the run warned that the weights collapsed, and evaluations and seconds per particle.
   "works" = means within 0.1 sd and sds within 10% (Gaussian; the Monte Carlo error of 500 draws is
   0.045 sd and 3% a coordinate, so the largest of d = 20 exact means' errors is ~0.1: the rms over
   the coordinates, 0.045 for exact draws, shows a bias better there), TV <= 0.05 (two_modes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz, metrics
from mcsample.convergence import ConvergenceWarning
from mcsample.testing import models
from targets import synthetic

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "ensemble_score.jsonl"


def mixture_1d():
    m = models.mixture([0.3, 0.7], np.array([[-3.0], [3.0]]), 0.5, name="mix_0.3_0.7")
    return m.target, np.array([[-3.0], [3.0]]), np.array([0.3, 0.7])


def catalogue_modes(name, dim=None):
    target, ref = synthetic.two_modes(dim) if dim else targets.get(name)
    return target, ref.extra["mode_centres"], ref.extra["mode_weights"]


@numba.njit
def gaussian_logp(x, mu, sd):
    r = (x - mu) / sd
    return -0.5 * r @ r


def gaussian(d):
    mu, sd = np.ones(d), np.linspace(0.5, 2.0, d)
    return mc.Target(gaussian_logp, dim=d, args=(mu, sd), name=f"gauss{d}"), mu, sd


def draws(idata, dim):
    return np.asarray(_arviz.group(idata, "posterior")["x"].values).reshape(-1, dim)


WARNED = {}  # of the last run: whether it warned of collapsed weights / of the dimension


def run(target, sampler, seed, chains, particles=1000, **kw):
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ConvergenceWarning)
        idata = mc.sample(target, sampler, draws=particles, tune=1000, chains=chains, seed=seed, progressbar=False,
                          **kw)
    seconds = time.perf_counter() - t0
    texts = [str(w.message) for w in caught]
    WARNED.update(collapse=any("collapsed" in m for m in texts), dimension=any("beyond where" in m for m in texts))
    evals = int(idata.attrs["n_logp"]) + int(idata.attrs["n_grad"])
    return idata, evals, seconds


def section_modes(write):
    cases = {"mix1d": mixture_1d, "mog8": lambda: catalogue_modes("mog8"),
             "gmm40_d2": lambda: catalogue_modes("gmm40_d2"), "two_modes8": lambda: catalogue_modes("", 8),
             "two_modes32": lambda: catalogue_modes("", 32)}
    for name, make in cases.items():
        target, centres, weights = make()
        for seed in range(1, 6):
            idata, evals, seconds = run(target, "ensemble_score", seed, 4)
            x = draws(idata, target.dim)
            per_run = [metrics.total_variation(metrics.mode_weights(x[c * 1000:(c + 1) * 1000], centres), weights)
                       for c in range(4)]
            write(dict(section="modes", target=name, sampler="ensemble_score", seed=seed,
                       tv=metrics.total_variation(metrics.mode_weights(x, centres), weights), tv_per_run=per_run,
                       evals_per_particle=evals / len(x), seconds=seconds))
            if name in ("mog8", "two_modes8") and seed <= 2:
                idata, n_evals, seconds = run(target, "nuts", seed, 4, particles=evals // 4, max_evals=evals)
                x = draws(idata, target.dim)
                write(dict(section="modes", target=name, sampler="nuts", seed=seed,
                           tv=metrics.total_variation(metrics.mode_weights(x, centres), weights), tv_per_run=None,
                           evals_per_particle=n_evals / len(x), seconds=seconds))


def section_accuracy(write):
    for name in ("correlated", "banana"):
        target, ref = targets.get(name)
        for seed in range(1, 4):
            idata, evals, seconds = run(target, "ensemble_score", seed, 4)
            x = draws(idata, target.dim)
            write(dict(section="accuracy", target=name, seed=seed,
                       mean_err=float(np.max(np.abs(x.mean(0) - ref.mean) / ref.sd)),
                       sd_err=float(np.max(np.abs(x.std(0) / ref.sd - 1))), evals_per_particle=evals / len(x),
                       seconds=seconds))


def section_dimension(write):
    for seed in (1, 2):
        for d in (2, 5, 10, 20, 50):
            target, mu, sd = gaussian(d)
            idata, evals, seconds = run(target, "ensemble_score", seed, 1, particles=500)
            x = draws(idata, d)
            error, sd_err = float(np.max(np.abs(x.mean(0) - mu) / sd)), float(np.max(np.abs(x.std(0) / sd - 1)))
            rms = float(np.sqrt(np.mean(((x.mean(0) - mu) / sd) ** 2)))
            write(dict(section="dimension", target="gaussian", dim=d, seed=seed, error=error, sd_err=sd_err,
                       rms_error=rms, works=error < 0.1 and sd_err < 0.1, median_ess=median_ess(idata), **WARNED,
                       evals_per_particle=evals / len(x), seconds_per_particle=seconds / len(x)))
            target, centres, weights = catalogue_modes("", d)
            idata, evals, seconds = run(target, "ensemble_score", seed, 1, particles=500)
            x = draws(idata, d)
            tv = metrics.total_variation(metrics.mode_weights(x, centres), weights)
            write(dict(section="dimension", target="two_modes", dim=d, seed=seed, error=tv, works=tv <= 0.05,
                       median_ess=median_ess(idata), **WARNED, evals_per_particle=evals / len(x),
                       seconds_per_particle=seconds / len(x)))


def median_ess(idata):
    return float(np.median(_arviz.group(idata, "step_stats")["importance_ess"].values))


def report():
    from _report import markdown_table
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    modes = [r for r in rows if r["section"] == "modes"]
    table1 = []
    for name in dict.fromkeys(r["target"] for r in modes):
        for sampler in ("ensemble_score", "nuts"):
            rs = [r for r in modes if r["target"] == name and r["sampler"] == sampler]
            if rs:
                per_run = [v for r in rs for v in (r["tv_per_run"] or [])]
                table1.append([name, sampler, len(rs), f"{np.median([r['tv'] for r in rs]):.3f}",
                               f"{max(r['tv'] for r in rs):.3f}", f"{max(per_run):.3f}" if per_run else "-",
                               f"{np.median([r['evals_per_particle'] for r in rs]):.0f}",
                               f"{np.median([r['seconds'] for r in rs]):.1f}"])
    acc = [r for r in rows if r["section"] == "accuracy"]
    table2 = [[r["target"], r["seed"], f"{r['mean_err']:.3f}", f"{r['sd_err']:.3f}", f"{r['evals_per_particle']:.0f}"]
              for r in acc]
    dim = sorted((r for r in rows if r["section"] == "dimension"), key=lambda r: (r["target"], r["dim"], r["seed"]))
    table3 = [[r["target"], r["dim"], r["seed"], f"{r['error']:.3f}", f"{r.get('rms_error', float('nan')):.3f}",
               f"{r.get('sd_err', float('nan')):.3f}", "yes" if r["works"] else "**no**", f"{r['median_ess']:.1f}",
               {True: "yes", False: "no"}.get(r.get("collapse"), "-"), f"{r['evals_per_particle']:.0f}",
               f"{1e3 * r['seconds_per_particle']:.1f}"] for r in dim]
    text = ("# Ensemble score sampler at its defaults\n\nGenerated by `python benchmarks/ensemble_score.py`; "
            "method in its docstring. Seconds are from a machine shared by several jobs (2 cores, load 5-9): "
            "compare them within a table only.\n\n")
    if table1:
        text += ("## 1. Mode weights (TV of nearest-mode weights)\n\n"
                 + markdown_table(["target", "sampler", "seeds", "median TV (4 chains pooled)", "worst TV",
                                   "worst single-run TV (1000 particles)", "evals/particle (NUTS: per draw)",
                                   "seconds per sample() call"], table1) + "\n\n")
    if table2:
        text += ("## 2. Accuracy\n\n" + markdown_table(["target", "seed", "max |mean err| / sd", "max |sd ratio - 1|",
                                                         "evals/particle"], table2) + "\n\n")
    text += ("## 3. Dimension (one chain of 500 particles per seed)\n\n"
             + markdown_table(["target", "d", "seed", "error (gaussian: max mean err / sd; two_modes: TV)",
                               "rms mean err / sd (exact draws: 0.045)", "max |sd ratio - 1|", "works",
                               "median ESS of the drift", "collapse warning", "evals/particle", "ms/particle"],
                              table3) + "\n")
    (RESULTS / "ensemble_score.md").write_text(text)
    print(text)
    _plot(dim)


def _plot(dim):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, marker in (("gaussian", "o"), ("two_modes", "s")):
        for seed, style in ((1, "-"), (2, "--")):
            rs = sorted((r for r in dim if r["target"] == name and r.get("seed", 1) == seed), key=lambda r: r["dim"])
            if not rs:
                continue
            label = f"{name}, seed {seed}"
            axes[0].plot([r["dim"] for r in rs], [r["error"] for r in rs], marker=marker, ls=style, label=label)
            axes[1].plot([r["dim"] for r in rs], [r["evals_per_particle"] for r in rs], marker=marker, ls=style)
            axes[2].plot([r["dim"] for r in rs], [1e3 * r["seconds_per_particle"] for r in rs], marker=marker, ls=style)
    axes[0].axhline(0.1, color="grey", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="d", ylabel="max mean err / sd, or mode TV", title="accuracy")
    axes[1].set(xscale="log", xlabel="d", ylabel="evaluations per sample", title="evaluations")
    axes[2].set(xscale="log", yscale="log", xlabel="d", ylabel="ms per sample (loaded machine)", title="wall time")
    for ax in axes:
        ax.set_xticks([2, 5, 10, 20, 50], ["2", "5", "10", "20", "50"])
        ax.minorticks_off()
    axes[1].set_ylim(0, None)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "ensemble_score_dimension.png", dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--sections", nargs="+", default=["dimension"])
    args = parser.parse_args()
    if not args.report:
        kept = [line for line in (OUT.read_text().splitlines() if OUT.exists() else [])
                if json.loads(line)["section"] not in args.sections]
        OUT.write_text("".join(line + "\n" for line in kept))

        def write(row):
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(row, flush=True)
        for section in args.sections:
            globals()[f"section_{section}"](write)
    report()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
