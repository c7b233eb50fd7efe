"""Seed sweep of the gradient-free samplers on the catalogue's posteriordb targets (issue #11).

Every run: 4 chains, 1000 warmup iterations, default settings, a seed from 1..20. Kept draws per
chain differ by sampler so that the bulk ESS is about 400 or more on these targets (measured at
seed 1: hit-and-run has about a quarter of the others' ESS per draw): gpss 1500,
elliptical_slice 1000, hit_and_run_slice 4000, and nuts 1000 as the gradient-based control (at
the reference run's adapt_delta / max_treedepth).

A run *fails* when its largest rank-normalised split R-hat exceeds 1.05, or when some mean on the
reference (constrained) scale is further from the reference mean than 4 combined Monte Carlo
standard errors, sqrt(MCSE^2 + ref_sd^2 / n_ref). 4 rather than 2 or 3 because each run checks
every parameter (up to 10) and the sweep has 560 runs: at 4 a correct sampler is flagged about
once in 3000 sweeps of a parameter.

Costs: evaluations per kept draw, all of them (log densities for the slice samplers, gradients for
NUTS; warmup, start-point search and pilot included) and warmup's share.

    python benchmarks/slice_seed_sweep.py --label after             # runs, appends to results/*.jsonl
    PYTHONPATH=/path/to/old/checkout python benchmarks/slice_seed_sweep.py --label before \\
        --samplers gpss elliptical_slice hit_and_run_slice
    python benchmarks/slice_seed_sweep.py --report                  # results/slice_seed_sweep.md

Runs already in a label's jsonl are skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from targets import posteriordb

RESULTS = Path(__file__).resolve().parent / "results"
POSTERIORS = ("kidiq_momiq", "earnings_logearn_interaction_z", "low_dim_gauss_mix", "sblrc_blr", "arK",
              "mesquite", "eight_schools_noncentered")
SAMPLERS = ("gpss", "elliptical_slice", "hit_and_run_slice", "nuts")
DRAWS = {"gpss": 1500, "elliptical_slice": 1000, "hit_and_run_slice": 4000, "nuts": 1000}
CHAINS, TUNE = 4, 1000
RHAT_MAX, Z_MAX = 1.05, 4.0


def measure(name, sampler, seed):
    target, ref = targets.get(name)
    settings = posteriordb.reference_nuts_settings(name) if sampler == "nuts" else {}
    idata = mc.sample(target, sampler, draws=DRAWS[sampler], tune=TUNE, chains=CHAINS, seed=seed,
                      progressbar=False, **settings)
    x = ref.to_reference_scale(np.asarray(_arviz.group(idata, "posterior")["x"].values))
    stats = _arviz.group(idata, "sample_stats")
    err = np.abs(x.reshape(-1, x.shape[-1]).mean(0) - ref.mean)
    z = err / np.sqrt(_arviz.mcse_of(x, "mean") ** 2 + ref.sd ** 2 / len(ref.draws))
    rhat = _arviz.rhat_of(x)
    attrs = idata.attrs
    kept = x.shape[0] * x.shape[1]
    total = int(attrs["n_logp"]) + int(attrs["n_grad"])
    sampling = int(stats["n_logp"].values.sum() + stats["n_grad"].values.sum())
    return dict(posterior=name, sampler=sampler, seed=seed, draws=DRAWS[sampler], version=mc.__version__,
                source=str(Path(mc.__file__).resolve().parent.parent),
                rhat_max=float(rhat.max()), rhat_param=ref.names[int(np.argmax(rhat))],
                z_max=float(z.max()), z_param=ref.names[int(np.argmax(z))],
                mean_err_sd=float((err / ref.sd).max()), ess_min=float(_arviz.ess_of(x).min()),
                evals_per_draw=total / kept, warmup_evals_per_draw=(total - sampling) / kept,
                failed=bool(rhat.max() > RHAT_MAX or z.max() > Z_MAX))


def run(args):
    path = RESULTS / f"slice_seed_sweep_{args.label}.jsonl"
    done = set()
    if path.exists():
        done = {(r["posterior"], r["sampler"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
    for seed in args.seeds:  # seeds outermost: a sweep cut short still covers every cell
        for name in args.posteriors:
            for sampler in args.samplers:
                if (name, sampler, seed) in done:
                    continue
                row = measure(name, sampler, seed)
                with path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name:32s} {sampler:18s} seed {seed:2d}: R-hat {row['rhat_max']:.3f} z {row['z_max']:5.1f} "
                      f"ESS {row['ess_min']:6.0f} evals/draw {row['evals_per_draw']:6.1f}"
                      + ("  FAILED" if row["failed"] else ""), flush=True)


def load(label):
    path = RESULTS / f"slice_seed_sweep_{label}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def report():
    from _report import markdown_table
    before, after = load("before"), load("after")
    if not after:
        sys.exit("no results/slice_seed_sweep_after.jsonl yet")
    cells = dict.fromkeys((r["posterior"], r["sampler"]) for r in after)
    rows = []
    for name, sampler in cells:
        a = [r for r in after if (r["posterior"], r["sampler"]) == (name, sampler)]
        b = [r for r in before if (r["posterior"], r["sampler"]) == (name, sampler)]
        med = lambda rs, k: f"{statistics.median(r[k] for r in rs):.1f}" if rs else "-"
        fails = lambda rs: f"{sum(r['failed'] for r in rs)}/{len(rs)}" if rs else "-"
        worst = lambda rs: f"{max(r['rhat_max'] for r in rs):.3f}" if rs else "-"
        rows.append([name, sampler, DRAWS[sampler], fails(b), fails(a), worst(b), worst(a),
                     f"{min(r['ess_min'] for r in a):.0f}", med(b, "evals_per_draw"), med(a, "evals_per_draw"),
                     med(b, "warmup_evals_per_draw"), med(a, "warmup_evals_per_draw")])
    headers = ["posterior", "sampler", "draws/chain", "failed before", "failed after", "worst R-hat before",
               "worst R-hat after", "min bulk ESS after", "evals/draw before", "evals/draw after",
               "of which warmup before", "of which warmup after"]
    failures = [r for r in before + after if r["failed"]]
    lines = [f"- {'before' if r in before else 'after'}: {r['posterior']} / {r['sampler']} / seed {r['seed']}: "
             f"R-hat {r['rhat_max']:.3f} ({r['rhat_param']}), z {r['z_max']:.1f} ({r['z_param']}), "
             f"mean error {r['mean_err_sd']:.2f} sd, min ESS {r['ess_min']:.0f}" for r in failures]
    text = ("# Gradient-free samplers: seed sweep on the posteriordb targets (issue #11)\n\n"
            "Generated by `python benchmarks/slice_seed_sweep.py --report` from "
            "`results/slice_seed_sweep_{before,after}.jsonl`; method in the script's docstring. "
            f"4 chains, {TUNE} warmup iterations, seeds 1..20. A run fails at R-hat > {RHAT_MAX} or a mean "
            f"more than {Z_MAX} combined MCSEs from the reference. 'before' is commit a2c1fd5 (no bulk search, "
            "frame variances shrunk towards Stan's 1e-3), 'after' the bulk search of `mcsample/_core/bulk.py` and "
            "frame variances shrunk towards the previous frame's. evals/draw: every evaluation over the kept "
            "draws (medians over seeds), warmup's share (search and pilot included) in the last columns.\n\n"
            + markdown_table(headers, rows) + "\n\n## Failed runs\n\n" + ("\n".join(lines) or "None.") + "\n")
    (RESULTS / "slice_seed_sweep.md").write_text(text)
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--posteriors", nargs="+", default=list(POSTERIORS))
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(1, 21)))
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
    else:
        run(args)


if __name__ == "__main__":
    main()
