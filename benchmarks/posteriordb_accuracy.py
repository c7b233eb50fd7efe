"""NUTS against the posteriordb reference posteriors: the foundation issue's acceptance bar.

For every posteriordb posterior in the catalogue (and the logistic regression), 4 chains x 1000
draws after 1000 warmup, at the reference run's adapt_delta / max_treedepth, for several seeds:
max |mean - reference mean| / reference sd (bar: < 0.1), sd ratios (bar: within 10%),
divergences, and the smallest bulk ESS. Prints a markdown table and writes
benchmarks/results/posteriordb_accuracy.md.

    python benchmarks/posteriordb_accuracy.py [--seeds 1 2 3]
"""

import argparse
import datetime
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from targets import posteriordb

NAMES = list(posteriordb.NAMES) + ["logistic_breast_cancer"]


def reference_settings(name):
    """The reference run's adapt_delta / max_treedepth for posteriordb posteriors, else defaults."""
    return posteriordb.reference_nuts_settings(name) if name in posteriordb.NAMES else {}


def measure(name, seed):
    target, ref = targets.get(name)
    settings = reference_settings(name)
    idata = mc.sample(target, "nuts", draws=1000, tune=1000, chains=4, seed=seed, progressbar=False, **settings)
    x = ref.to_reference_scale(idata.posterior["x"].values.reshape(-1, target.dim))
    err = float((np.abs(x.mean(0) - ref.mean) / ref.sd).max())
    ratio = x.std(0, ddof=1) / ref.sd
    return dict(name=name, seed=seed, settings=settings, mean_err=err, sd_min=float(ratio.min()),
                sd_max=float(ratio.max()), divergences=int(idata.sample_stats["diverging"].sum()),
                ess_min=float(_arviz.ess(idata)["x"].values.min()), wall=idata.attrs["wall_time"],
                passes=err < 0.1 and abs(ratio - 1).max() < 0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "posteriordb_accuracy.md"))
    args = parser.parse_args()
    rows = [measure(name, seed) for name in NAMES for seed in args.seeds]
    lines = [f"# NUTS against posteriordb references ({datetime.date.today()}, mcsample {mc.__version__})", "",
             "4 chains x 1000 draws (+1000 warmup) per seed, reference run's adapt_delta / max_treedepth. "
             "Bar: max |mean error| < 0.1 reference sd and every sd within 10%.", "",
             "| posterior | seed | settings | max mean err / sd | sd ratio range | divergences | min ESS bulk | sampling s | bar |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['seed']} | {r['settings'] or 'defaults'} | {r['mean_err']:.3f} | "
                     f"{r['sd_min']:.3f}-{r['sd_max']:.3f} | {r['divergences']} | {r['ess_min']:.0f} | "
                     f"{r['wall']:.2f} | {'met' if r['passes'] else 'MISSED'} |")
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
