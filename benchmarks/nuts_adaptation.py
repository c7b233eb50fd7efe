"""NUTS warmup variants on the posteriordb set, gauss100 and a correlated Gaussian: accuracy and
ESS per gradient, to choose the default adaptation (issue #16).

    python benchmarks/nuts_adaptation.py                      # every target, 3 seeds, all variants
    python benchmarks/nuts_adaptation.py --targets gauss100 arK --seeds 1 --variants stan nutpie

Each (target, variant, seed) runs 4 chains x (1000 warmup + 1000 draws) at the posteriordb
reference run's adapt_delta / max_treedepth (defaults elsewhere). Reported per run: the smallest
bulk ESS (ArviZ) over parameters, gradients including warmup (``attrs["n_grad"]``), ESS per 1000
gradients, max |mean - reference| / reference sd and the sd ratio range on the reference scale,
divergences. Per-gradient efficiency does not depend on the machine's load, so this is the
comparison that decides the default; wall time is recorded but not used. Rows: the median over
seeds of each column; the ratio column is the variant's median ESS/1k grad over "stan"'s.

Results: ``benchmarks/results/nuts_adaptation.jsonl`` (every run) and ``nuts_adaptation.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from targets import posteriordb

import _report

VARIANTS = {
    "stan": dict(adaptation="stan", metric="diag"),
    "stan-grad_diag": dict(adaptation="stan", metric="grad_diag"),
    "nutpie": dict(adaptation="nutpie", metric="grad_diag"),
    "nutpie-diag": dict(adaptation="nutpie", metric="diag"),
}
TARGETS = ["gauss100", "arK", "eight_schools_noncentered", "kidiq_momiq", "earnings_logearn_interaction_z",
           "gp_pois_regr", "low_dim_gauss_mix", "mesquite", "sblrc_blr", "logistic_breast_cancer",
           "correlated10", "diamonds"]


def load(name):
    if name == "correlated10":
        return targets.get("correlated", dim=10, rho=0.9)
    return targets.get(name)


def reference_settings(name):
    return posteriordb.reference_nuts_settings(name) if name in posteriordb.NAMES else {}


def measure(name, variant, seed):
    target, ref = load(name)
    idata = mc.sample(target, "nuts", draws=1000, tune=1000, chains=4, seed=seed, progressbar=False,
                      **{**reference_settings(name), **VARIANTS[variant]})
    x = idata.posterior["x"].values.reshape(-1, target.dim)
    if hasattr(ref, "to_reference_scale"):
        x = ref.to_reference_scale(x)
    ratio = x.std(0, ddof=1) / ref.sd
    ess = float(_arviz.ess(idata)["x"].values.min())
    n_grad = int(idata.attrs["n_grad"])
    stats = idata.sample_stats
    return dict(target=name, variant=variant, seed=seed, ess_min=ess, n_grad=n_grad,
                ess_per_kgrad=1000 * ess / n_grad,
                n_grad_sampling=int(stats["n_steps"].values.sum()),
                step_size=float(np.median(stats["step_size"].values)),
                mean_err=float((np.abs(x.mean(0) - ref.mean) / ref.sd).max()),
                sd_min=float(ratio.min()), sd_max=float(ratio.max()),
                divergences=int(stats["diverging"].values.sum()), wall=float(idata.attrs["wall_time"]))


def summarise(rows):
    out = []
    for name in dict.fromkeys(r["target"] for r in rows):
        base = None
        for variant in dict.fromkeys(r["variant"] for r in rows):
            runs = [r for r in rows if r["target"] == name and r["variant"] == variant]
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("ess_min", "n_grad", "ess_per_kgrad", "step_size", "mean_err", "wall")}
            med.update(sd_min=min(r["sd_min"] for r in runs), sd_max=max(r["sd_max"] for r in runs),
                       divergences=sum(r["divergences"] for r in runs), n=len(runs),
                       spread=(min(r["ess_per_kgrad"] for r in runs), max(r["ess_per_kgrad"] for r in runs)))
            if variant == "stan":
                base = med["ess_per_kgrad"]
            out.append(dict(target=name, variant=variant, ratio=med["ess_per_kgrad"] / base if base else None,
                            bar=med["mean_err"] < 0.1 and max(1 - med["sd_min"], med["sd_max"] - 1) < 0.1, **med))
    return out


def markdown(summary, args, machine):
    headers = ["target", "variant", "seeds", "ESS_bulk min", "grads", "ESS/1k grad (min-max)", "÷ stan",
               "step", "max mean err/sd", "sd ratio range", "div (all seeds)", "bar"]
    rows = [[s["target"], s["variant"], s["n"], f"{s['ess_min']:.0f}", f"{s['n_grad']:.0f}",
             f"{s['ess_per_kgrad']:.2f} ({s['spread'][0]:.2f}-{s['spread'][1]:.2f})",
             "" if s["ratio"] is None else f"{s['ratio']:.2f}", f"{s['step_size']:.3g}",
             f"{s['mean_err']:.3f}", f"{s['sd_min']:.3f}-{s['sd_max']:.3f}", s["divergences"],
             "met" if s["bar"] else "MISSED"] for s in summary]
    return "\n".join([
        "# NUTS warmup variants: ESS per gradient and accuracy", "",
        f"Generated by `python benchmarks/nuts_adaptation.py --targets {' '.join(args.targets)} "
        f"--variants {' '.join(args.variants)} --seeds {' '.join(map(str, args.seeds))}`.", "",
        f"- date: {machine['date']}; Python {machine['python']}; mcsample {mc.__version__}", "",
        "4 chains x (1000 warmup + 1000 draws); posteriordb reference settings (adapt_delta, max_treedepth). "
        "Medians over seeds of each column; 'grads' include warmup; '÷ stan' is the variant's median ESS/1k grad "
        "over Stan's windowed diag. Bar (posteriordb_accuracy.py's): max |mean err| < 0.1 sd and every sd within "
        "10% (here the median mean error, the extreme sd ratios over seeds). Variants: " +
        "; ".join(f"`{k}` = {v}" for k, v in VARIANTS.items() if k in args.variants) + ".", "",
        _report.markdown_table(headers, rows), ""])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", nargs="+", default=TARGETS)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--out", default=str(_report.RESULTS_DIR / "nuts_adaptation"))
    args = p.parse_args(argv)
    machine = _report.machine_info()
    rows = []
    with open(args.out + ".jsonl", "w") as f:
        for name in args.targets:
            for variant in args.variants:
                for seed in args.seeds:
                    row = measure(name, variant, seed)
                    rows.append(row)
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    print(f"{name:32s} {variant:15s} seed {seed}: ESS/1k grad {row['ess_per_kgrad']:7.2f} "
                          f"err {row['mean_err']:.3f} sd {row['sd_min']:.3f}-{row['sd_max']:.3f} "
                          f"div {row['divergences']}", flush=True)
    text = markdown(summarise(rows), args, machine)
    with open(args.out + ".md", "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
