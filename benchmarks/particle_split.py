"""How a particle family splits ``mcsample compare``'s budget: particles x evaluations per particle.

    python benchmarks/particle_split.py run SEED [family ...]   # draws to /tmp/s6/split (npz + jsonl)
    python benchmarks/particle_split.py report                  # results/particle_split.{md,json}

At ``mc.compare``'s protocol (2e5 evaluations for 4 runs together, pilot included; seed given), each
family runs with several population sizes per run: its budget planner's choice
(``draws_for_budget``) and others around it. The family then plans its own steps from the
evaluations per particle left after its pilot, exactly as in ``mc.compare``. Targets: the main
job's two (gmm40_d2, eight_schools_noncentered) and two nobody tuned for: a Student-t (nu 5, d 5)
and a 2-mode mixture in d = 4 (two_modes: weights 2/3 and 1/3, sd 0.22). ``report`` measures each
run with ``mc.compare``'s distances and their Monte Carlo floors (the same metric for as many exact
draws), and writes the table.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz, metrics

BUDGET, CHAINS = 2e5, 4
OUT = Path("/tmp/s6/split")
SPLITS = {  # draws per run; the planner's choice at 2e5 is added
    "walk_jump": (4, 9, 20, 40, 80, 160),
    "ensemble_score": (20, 40, 80, 125, 250, 500),
    "rdmc": (8, 20, 40, 80, 160, 320),
    "multalmc": (6, 13, 26, 52, 104, 208),
    "multcdiff": (6, 13, 26, 52, 104, 208),
}
TARGETS = {
    "gmm40_d2": lambda: targets.get("gmm40_d2"),
    "eight_schools_noncentered": lambda: targets.get("eight_schools_noncentered"),
    "student_t5_nu5": lambda: targets.get("student_t", dim=5, nu=5.0),
    "two_modes4": lambda: targets.get("two_modes", dim=4),
}


def run(seed, families):
    OUT.mkdir(parents=True, exist_ok=True)
    for tname, build in TARGETS.items():
        target, ref = build()
        for fam in families:
            cfg = mc.samplers.resolve(fam, {})
            planned = cfg.draws_for_budget(BUDGET / CHAINS, target.dim)
            for n in sorted(set(SPLITS[fam]) | {planned}):
                key = f"{tname}-{fam}-{n}-{seed}"
                if (OUT / f"{key}.npz").exists():
                    continue
                row = dict(target=tname, sampler=fam, draws_per_run=n, planned=planned, seed=seed)
                t0 = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        idata = mc.sample(target, fam, draws=n, tune=1000, chains=CHAINS, seed=seed,
                                          progressbar=False, max_evals=BUDGET)
                    except Exception as err:  # a split the family cannot plan: recorded, not fatal
                        row.update(status=f"{type(err).__name__}: {err}")
                        idata = None
                row["warnings"] = sorted({str(w.message)[:120] for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))})
                row["wall"] = time.perf_counter() - t0
                if idata is not None:
                    x = _arviz.draws_array(idata).reshape(-1, target.dim)
                    a = idata.attrs
                    row.update(status="ok", evals=int(a["n_logp"] + a["n_grad"]),
                               tuned=a.get("tuned", None) if isinstance(a.get("tuned"), str) else None)
                    np.savez(OUT / f"{key}.npz", x=x)
                else:
                    np.savez(OUT / f"{key}.npz", x=np.zeros((0, target.dim)))
                with open(OUT / "runs.jsonl", "a") as f:
                    f.write(json.dumps(row, default=str) + "\n")
                print(json.dumps(row, default=str)[:300], flush=True)


METRICS = ("mean_error", "log_sd_ratio", "sliced_w2", "mode_tv")


def distances(ref, x, seed):
    """``mc.compare``'s cheap distances (its definitions), without the O(n^2) ones."""
    out = {"mean_error": float(metrics.standardized_mean_error(x, ref.mean, ref.sd).max()),
           "log_sd_ratio": float(np.abs(metrics.log_sd_ratio(x, ref.sd)).max()),
           "sliced_w2": metrics.sliced_wasserstein2(x, ref.draws, seed=seed)}
    centres = ref.extra.get("mode_centres")
    if centres is not None:
        w = ref.extra.get("mode_weights")
        truth = w if w is not None else metrics.mode_weights(ref.draws, centres)
        out["mode_tv"] = metrics.total_variation(metrics.mode_weights(x, centres), truth)
    return out


def floor(ref, n, seed, resamples=5):
    """As ``mc.compare.monte_carlo_floor`` (same resampling), for these distances."""
    n = min(n, len(ref.draws))
    rng = np.random.default_rng([seed, n, 0xF1])
    values = [distances(ref, ref.draws[rng.choice(len(ref.draws), n, replace=False)], seed) for _ in range(resamples)]
    return {k: float(np.median([v[k] for v in values])) for k in values[0]}


def report():
    from _report import environment_markdown, machine_info, markdown_table, package_versions, write_results
    rows = [json.loads(line) for line in open(OUT / "runs.jsonl")]
    refs, floors, out = {}, {}, []
    for r in rows:
        r.pop("tuned", None)
        if r["status"] != "ok":
            out.append(r)
            continue
        if r["target"] not in refs:
            refs[r["target"]] = TARGETS[r["target"]]()[1]
        ref = refs[r["target"]]
        x = np.load(OUT / f"{r['target']}-{r['sampler']}-{r['draws_per_run']}-{r['seed']}.npz")["x"]
        if not np.all(np.isfinite(x)):
            r["status"] = "non-finite draws"
            out.append(r)
            continue
        key = (r["target"], len(x), r["seed"])
        if key not in floors:
            floors[key] = floor(ref, len(x), r["seed"])
        r.update(distances(ref, ref.to_reference_scale(x), r["seed"]))
        r.update({f"{k}_floor": v for k, v in floors[key].items()})
        out.append(r)
    headers = (["target", "sampler", "draws/run", "evals/particle"]
               + [f"{m} (floor), seeds 1 / 2 / 3" for m in METRICS] + ["warned"])
    lines, groups = [], {}
    for r in out:
        groups.setdefault((r["target"], r["sampler"], r["draws_per_run"]), []).append(r)
    for (t, fam, n), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        planned = rs[0]["planned"] == n
        cells = [t, fam, f"**{n}**" if planned else n, f"{BUDGET / CHAINS / n:.0f}"]
        for m in METRICS:
            vals = [r.get(m) for r in rs]
            if all(v is None for v in vals):
                cells.append("")
                continue
            mean = np.median([r[m] for r in rs if m in r])
            fl = np.median([r[m + "_floor"] for r in rs if m in r])
            cells.append(f"{mean:.3g} ({fl:.3g}): " + " / ".join("-" if v is None else f"{v:.2g}" for v in vals))
        errs = sorted({r["status"][:60] for r in rs if r["status"] != "ok"})
        cells.append("; ".join(errs) or sum(bool(r.get("warnings")) for r in rs))
        lines.append(cells)
    md = ("# Particle families: the split of a 2e5 budget (4 runs) into particles x evaluations per particle\n\n"
          "`python benchmarks/particle_split.py run SEED` for seeds 1-3, then `python benchmarks/particle_split.py "
          "report`. Each cell: the median over the seeds of the metric (of its Monte Carlo floor: the median of "
          "the same metric for as many exact draws, as `mc.compare` computes it), then the three seeds' values. "
          "draws/run in bold: the family's budget planner's choice (`draws_for_budget`) when the runs were made. "
          "evals/particle: the run's budget (5e4) over its particles, pilot included. warned: runs that warned.\n\n"
          + markdown_table(headers, lines) + "\n\n"
          + environment_markdown(machine_info(), package_versions(["numpy", "numba"])))
    write_results("particle_split", {"rows": out}, md)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(int(sys.argv[2]), sys.argv[3:] or list(SPLITS))
    else:
        report()
