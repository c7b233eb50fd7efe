"""Where the slice samplers stop working as the dimension grows: three Gaussians at d = 20, 50, 100, 200.

Run from the repository root (one process; ~1 h on a loaded 2-core machine, most of it the d = 200
bulk searches)::

    python benchmarks/slice_dimension.py --label after
    python benchmarks/slice_dimension.py --label before --samplers elliptical_slice --dims 50  # a subset
    python benchmarks/slice_dimension.py --table   # rewrite the markdown from the stored rows

Method
------
Targets, centred at 0 but one (uniform(-2, 2) starts are then inside the bulk, and GPSS keeps
the origin as its centre: ``fit_frame``'s ``keep_central_origin``):

* ``std``: N(0, I).
* ``std_off``: N(3, I), 3 sds off the origin in every coordinate: the frame's centre must be
  estimated (GPSS's polar moves and elliptical slice sampling's prior depend on it).
* ``scaled``: independent, sds log-spaced from 0.1 to 10 (condition number 1e4).
* ``ar1``: unit variances, correlation 0.9^|i - j| (an AR(1) process; eigenvalues 0.053-19).

Samplers ``gpss``, ``elliptical_slice``, ``hit_and_run_slice`` at their defaults, as the lead's
d = 200 probe ran them: one chain, ``tune=1000``, ``draws=1000``, seeds 1 and 2.

Per run: max |mean| / sd (the exact sd; independent draws give ~0.1 at d = 200 from 1000 draws:
the largest of d |N(0, 1/1000)|), the range of sd / exact sd over the coordinates (independent
draws: 0.9-1.1), the smallest bulk ESS over the coordinates (ArviZ's), the log densities spent
(warmup and bulk search included), the seconds (loaded machine: compare within a column only) and
whether ``sample()`` warned (``ConvergenceWarning``: with one chain, the bulk ESS warning).
``before`` is the tree before the dimension fixes (the ESS warning already in), ``after`` with them.

Rows go to ``benchmarks/results/slice_dimension.jsonl`` (one per run, labelled), the table to
``benchmarks/results/slice_dimension.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
ROWS = RESULTS / "slice_dimension.jsonl"
TABLE = RESULTS / "slice_dimension.md"
SAMPLERS = ("gpss", "elliptical_slice", "hit_and_run_slice")
KINDS = ("std", "std_off", "scaled", "ar1")


def gaussian(kind: str, d: int):
    """(Target, exact sds, exact means) of one of the Gaussians."""
    import mcsample as mc
    from mcsample.testing.models import diag_gauss_logp, mvn_logp
    if kind == "ar1":
        lag = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
        precision = np.ascontiguousarray(np.linalg.inv(0.9 ** lag))
        return mc.Target(mvn_logp, d, args=(np.zeros(d), precision), name=f"ar1_{d}"), np.ones(d), np.zeros(d)
    sd = np.geomspace(0.1, 10.0, d) if kind == "scaled" else np.ones(d)
    mean = np.full(d, 3.0) if kind == "std_off" else np.zeros(d)
    return mc.Target(diag_gauss_logp, d, args=(mean, sd), name=f"{kind}{d}"), sd, mean


def one_run(kind, d, sampler, seed, tune, draws):
    import mcsample as mc
    from mcsample import _arviz
    target, sd, mean = gaussian(kind, d)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = mc.sample(target, sampler, chains=1, seed=seed, tune=tune, draws=draws, progressbar=False)
    seconds = time.perf_counter() - t0
    x = _arviz.draws_array(idata)
    flat = x.reshape(-1, d)
    ess = _arviz.ess_of(x)
    warned = [str(w.message) for w in caught if type(w.message).__name__ == "ConvergenceWarning"]
    return dict(kind=kind, d=d, sampler=sampler, seed=seed, tune=tune, draws=draws,
                max_mean=float(np.max(np.abs(flat.mean(0) - mean) / sd)),
                sd_lo=float(np.min(flat.std(0) / sd)), sd_hi=float(np.max(flat.std(0) / sd)),
                min_ess=float(np.min(ess)), n_logp=int(idata.attrs["n_logp"]), seconds=seconds,
                warned=bool(warned), warning=warned[0][:200] if warned else "")


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return "?"


def load_rows():
    if not ROWS.exists():
        return []
    return [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]


def write_table():
    rows = load_rows()
    labels = list(dict.fromkeys(r["label"] for r in rows))
    lines = ["# Slice samplers against the dimension", "",
             "`python benchmarks/slice_dimension.py` (method in its docstring): one chain, tune = 1000, "
             "draws = 1000, defaults; Gaussians centred at 0 but std_off (N(3, I)). max|mean| in exact sds (independent draws: "
             "~0.1 at d = 200), sd / exact sd (min-max over coordinates; independent draws 0.9-1.1), min bulk "
             "ESS over coordinates, log densities spent (search and warmup included), seconds on a loaded "
             "2-core machine (compare within a column only), warned: a ConvergenceWarning was raised "
             "(one chain: the bulk ESS warning).", ""]
    if {"before", "after"} <= set(labels):
        lines += ["## Summary: before -> after", "",
                  "Worst max|mean| / sd and smallest min ESS over the seeds run; * = every run warned, "
                  "(*) = some did.", "",
                  "| sampler | target | " + " | ".join(f"d = {d}" for d in sorted({r['d'] for r in rows})) + " |",
                  "|---|---|" + "---|" * len({r['d'] for r in rows})]
        for sampler in SAMPLERS:
            for kind in KINDS:
                cells = []
                for d in sorted({r["d"] for r in rows}):
                    cell = []
                    for label in ("before", "after"):
                        sub = [r for r in rows if (r["label"], r["sampler"], r["kind"], r["d"]) == (label, sampler, kind, d)]
                        if not sub:
                            cell.append("-")
                            continue
                        warned = sum(r["warned"] for r in sub)
                        mark = "*" if warned == len(sub) else "(*)" if warned else ""
                        cell.append(f"{max(r['max_mean'] for r in sub):.2f} / {min(r['min_ess'] for r in sub):.0f}{mark}")
                    cells.append(" -> ".join(cell))
                lines.append(f"| {sampler} | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    for label in labels:
        sub = [r for r in rows if r["label"] == label]
        lines += [f"## {label} ({sub[0]['commit']})", "",
                  "| target | d | sampler | seed | max\\|mean\\| / sd | sd ratio | min ESS | log densities | s | warned |",
                  "|---|---:|---|---:|---:|---|---:|---:|---:|---|"]
        order = {k: i for i, k in enumerate(KINDS)}
        sub.sort(key=lambda r: (r["sampler"], order[r["kind"]], r["d"], r["seed"]))
        for r in sub:
            warned = r["warned"]
            lines.append(f"| {r['kind']} | {r['d']} | {r['sampler']} | {r['seed']} | {r['max_mean']:.2f} | "
                         f"{r['sd_lo']:.2f}-{r['sd_hi']:.2f} | {r['min_ess']:.0f} | {r['n_logp']:,} | "
                         f"{r['seconds']:.0f} | {'yes' if warned else 'no'} |")
        lines.append("")
    TABLE.write_text("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", default="after")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    p.add_argument("--kinds", nargs="+", default=list(KINDS))
    p.add_argument("--dims", nargs="+", type=int, default=[20, 50, 100, 200])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--table", action="store_true", help="only rewrite the markdown from the stored rows")
    args = p.parse_args()
    if not args.table:
        RESULTS.mkdir(exist_ok=True)
        for d in args.dims:
            for kind in args.kinds:
                for sampler in args.samplers:
                    for seed in args.seeds:
                        row = one_run(kind, d, sampler, seed, args.tune, args.draws)
                        row.update(label=args.label, commit=commit())
                        with ROWS.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        print(f"{kind:6s} d={d:3d} {sampler:18s} seed {seed}: max|mean| {row['max_mean']:.2f} "
                              f"sd {row['sd_lo']:.2f}-{row['sd_hi']:.2f} min ESS {row['min_ess']:.0f} "
                              f"n_logp {row['n_logp']} {row['seconds']:.0f} s warned {row['warned']}", flush=True)
    write_table()


if __name__ == "__main__":
    main()
