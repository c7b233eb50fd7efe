"""The ensemble score sampler at its defaults (issue #14): mode weights, accuracy, and how it
scales with the dimension; NUTS at the same evaluations as the gradient-based control.

    python benchmarks/ensemble_score.py            # ~15 min on 2 cores; writes results/ensemble_score.{jsonl,md,png}
    python benchmarks/ensemble_score.py --report   # tables and figure from the jsonl

Sections (every run: default settings, 1000 particles per chain unless stated; 'evals/particle' is
every log density spent, standardisation included, over the particles):

1. Mode weights: 0.3/0.7 mixture at -+3 (sd 0.5, d = 1), mog8, gmm40_d2, two_modes d = 8 and 32;
   seeds 1-5, 4 chains each, TV of the pooled 4000 particles' nearest-mode weights from the true
   weights (multinomial noise alone: ~0.04 for 40 equal modes at 4000 draws, ~0.01 for two). NUTS
   with the same total evaluations, 4 chains, for mog8 and two_modes d = 8.
2. Accuracy: `correlated` (d = 10) and `banana`: max |mean error| / sd and max |sd ratio - 1|
   against the exact reference, seeds 1-3, 4 chains.
3. Dimension: a Gaussian N(1, diag(0.5..2)^2) and two_modes in d = 2, 5, 10, 20, 50, seed 1, one
   chain of 500 particles: error (max mean error / sd; mode-weight TV) and evaluations and seconds
   per particle.
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


def run(target, sampler, seed, chains, particles=1000, **kw):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        idata = mc.sample(target, sampler, draws=particles, tune=1000, chains=chains, seed=seed, progressbar=False,
                          **kw)
    seconds = time.perf_counter() - t0
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
    for d in (2, 5, 10, 20, 50):
        target, mu, sd = gaussian(d)
        idata, evals, seconds = run(target, "ensemble_score", 1, 1, particles=500)
        x = draws(idata, d)
        write(dict(section="dimension", target="gaussian", dim=d, error=float(np.max(np.abs(x.mean(0) - mu) / sd)),
                   sd_err=float(np.max(np.abs(x.std(0) / sd - 1))), evals_per_particle=evals / len(x),
                   seconds_per_particle=seconds / len(x)))
        target, centres, weights = catalogue_modes("", d)
        idata, evals, seconds = run(target, "ensemble_score", 1, 1, particles=500)
        x = draws(idata, d)
        write(dict(section="dimension", target="two_modes", dim=d,
                   error=metrics.total_variation(metrics.mode_weights(x, centres), weights),
                   evals_per_particle=evals / len(x), seconds_per_particle=seconds / len(x)))


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
    dim = [r for r in rows if r["section"] == "dimension"]
    table3 = [[r["target"], r["dim"], f"{r['error']:.3f}", f"{r.get('sd_err', float('nan')):.3f}",
               f"{r['evals_per_particle']:.0f}", f"{1e3 * r['seconds_per_particle']:.1f}"] for r in dim]
    text = ("# Ensemble score sampler at its defaults\n\nGenerated by `python benchmarks/ensemble_score.py`; "
            "method in its docstring.\n\n## 1. Mode weights (TV of nearest-mode weights)\n\n"
            + markdown_table(["target", "sampler", "seeds", "median TV (4 chains pooled)", "worst TV",
                              "worst single-run TV (1000 particles)", "evals/particle (NUTS: per draw)",
                              "seconds per sample() call"], table1)
            + "\n\n## 2. Accuracy\n\n"
            + markdown_table(["target", "seed", "max |mean err| / sd", "max |sd ratio - 1|", "evals/particle"], table2)
            + "\n\n## 3. Dimension (one chain of 500 particles, seed 1)\n\n"
            + markdown_table(["target", "d", "error (gaussian: max mean err / sd; two_modes: TV)", "max |sd ratio - 1|",
                              "evals/particle", "ms/particle"], table3) + "\n")
    (RESULTS / "ensemble_score.md").write_text(text)
    print(text)
    _plot(dim)


def _plot(dim):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, marker in (("gaussian", "o"), ("two_modes", "s")):
        rs = [r for r in dim if r["target"] == name]
        axes[0].plot([r["dim"] for r in rs], [r["error"] for r in rs], marker=marker, label=name)
        axes[1].plot([r["dim"] for r in rs], [1e3 * r["seconds_per_particle"] for r in rs], marker=marker, label=name)
    axes[0].set(xscale="log", xlabel="d", ylabel="error (mean err / sd, or mode TV)", title="accuracy")
    axes[1].set(xscale="log", yscale="log", xlabel="d", ylabel="ms per particle", title="cost")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "ensemble_score_dimension.png", dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--sections", nargs="+", default=["modes", "accuracy", "dimension"])
    args = parser.parse_args()
    if not args.report:
        OUT.unlink(missing_ok=True)

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
