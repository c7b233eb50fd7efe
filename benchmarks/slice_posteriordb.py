"""The gradient-free slice samplers against the posteriordb reference posteriors, at default settings.

Run from the repository root (a few minutes on 2 cores)::

    python benchmarks/slice_posteriordb.py
    python benchmarks/slice_posteriordb.py --posteriors arK --samplers gpss nuts --seeds 1 2

Method
------
Posteriors ``kidiq_momiq`` (d = 3), ``arK`` (d = 7) and ``eight_schools_noncentered`` (d = 10), from
the ``targets`` package with their posteriordb reference draws (Stan, 10 x 1000).

Samplers ``gpss``, ``elliptical_slice`` and ``hit_and_run_slice`` with their default settings: a
dense affine frame fitted during warmup (``centring="dense"``), w tuned in warmup, and for
elliptical and hit-and-run a GPSS pilot during warmup; ``nuts`` as the gradient-based reference
point, at the reference run's adapt_delta / max_treedepth (as ``posteriordb_accuracy.py``). Every
run is 4 chains x 2000 draws after 1000 warmup iterations, seeds 1..5. A second, small table runs
GPSS with ``centring="none"`` (no frame), seeds 1..3, to show what the frame is for.

Per run, on the reference (constrained) scale:

* max mean err / sd: max over parameters of |posterior mean - reference mean| / reference sd.
  The issue's bar: < 0.1 for every parameter ("bar" column).
* z: the same errors in combined Monte Carlo standard errors (ArviZ MCSE of ours, reference sd /
  sqrt(10000) of the reference's), the maximum over parameters: a miss of the bar with z below
  ~3 is Monte Carlo noise (too few effective draws), a large z is bias.
* max |sd ratio - 1|: max over parameters of |pooled sd / reference sd - 1|.
* min ESS: ArviZ bulk ESS, minimum over parameters; R-hat: ArviZ rank-normalised split R-hat,
  maximum over parameters.
* evals/draw: ``attrs["n_logp"] + attrs["n_grad"]`` (everything spent, warmup, pilot and start-point
  search included) over the 8000 kept draws; NUTS spends only gradients, the slice samplers only
  log densities. "of which sampling": the per-draw ``sample_stats`` counts of the kept draws only.
* min ESS / 1k evals and min ESS / s: min ESS over those evaluations and over
  ``attrs["wall_time"]`` (warmup + sampling, compilation excluded).
* exhausted: kept-draw updates flagged ``exhausted`` (gave up at max_proposals); NUTS reports
  divergences instead.
* others' load: the machine may be shared; each run first waits (up to ``--max-wait`` s) for other
  processes to use < 0.2 cores and records how many cores they kept busy during the run. Above
  ~0.2 the seconds of that run are inflated.

The summary table gives, per (posterior, sampler), the runs meeting the bar, the worst and median
max mean error, and medians of the cost columns. Writes ``benchmarks/results/slice_posteriordb.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from targets import posteriordb

import _report

POSTERIORS = ("kidiq_momiq", "arK", "eight_schools_noncentered")
SAMPLERS = ("gpss", "elliptical_slice", "hit_and_run_slice", "nuts")
CHAINS, TUNE, DRAWS = 4, 1000, 2000
BAR = 0.1  # max |mean error| in reference sds
PACKAGES = ("mcsample", "numba", "numpy", "scipy", "arviz")
KNOWN_ISSUE = ""  # printed under the tables when set (e.g. a reproducibility problem being fixed)


def measure(name, sampler, seed, max_wait, **settings):
    """One run; returns a dict of the per-run quantities (see the module docstring)."""
    target, ref = targets.get(name)
    if sampler == "nuts":
        settings = {**posteriordb.reference_nuts_settings(name), **settings}
    _report.wait_for_quiet(max_wait=max_wait)
    start = _report.cpu_snapshot()
    idata = mc.sample(target, sampler, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progressbar=False,
                      **settings)
    load = _report.others_load(start, _report.cpu_snapshot())
    x = ref.to_reference_scale(idata.posterior["x"].values)  # (chain, draw, k)
    flat = x.reshape(-1, x.shape[-1])
    err = np.abs(flat.mean(0) - ref.mean)
    n_ref = len(ref.draws)
    z = err / np.sqrt(_arviz.mcse_of(x, "mean") ** 2 + ref.sd**2 / n_ref)
    ratio = flat.std(0, ddof=1) / ref.sd
    ess = _arviz.ess_of(x)
    rhat = _arviz.rhat_of(x)
    a, stats = idata.attrs, idata.sample_stats
    evals = int(a["n_logp"]) + int(a["n_grad"])
    kept = x.shape[0] * x.shape[1]
    return dict(
        posterior=name, sampler=sampler, seed=seed, settings=settings,
        mean_err=float((err / ref.sd).max()), worst_param=ref.names[int(np.argmax(err / ref.sd))],
        z_max=float(z.max()), sd_dev=float(np.abs(ratio - 1).max()),
        ess_min=float(ess.min()), rhat_max=float(rhat.max()),
        n_logp=int(a["n_logp"]), n_grad=int(a["n_grad"]), evals_per_draw=evals / kept,
        sampling_evals_per_draw=float(stats["n_logp"].sum() + stats["n_grad"].sum()) / kept,
        ess_per_1k=1000.0 * float(ess.min()) / evals, wall=float(a["wall_time"]),
        ess_per_s=float(ess.min()) / float(a["wall_time"]),
        exhausted=int(stats["exhausted"].sum()) if "exhausted" in stats else None,
        divergences=int(stats["diverging"].sum()) if "diverging" in stats else None,
        others_load=load, passes=bool((err / ref.sd).max() < BAR),
    )


HEADERS = ["posterior", "sampler", "seed", "max mean err / sd", "(param)", "z", "max abs(sd ratio - 1)",
           "min ESS", "R-hat max", "evals/draw", "of which sampling", "min ESS / 1k evals", "min ESS / s",
           "wall s", "exhausted (div)", "others' load", "bar"]


def run_row(r):
    flags = f"{r['exhausted']}" if r["exhausted"] is not None else f"({r['divergences']})"
    load = "-" if r["others_load"] is None else f"{r['others_load']:.2f}"
    return [r["posterior"], r["sampler"], r["seed"], f"{r['mean_err']:.3f}", r["worst_param"], f"{r['z_max']:.1f}",
            f"{r['sd_dev']:.3f}", f"{r['ess_min']:.0f}", f"{r['rhat_max']:.3f}", f"{r['evals_per_draw']:.1f}",
            f"{r['sampling_evals_per_draw']:.1f}", f"{r['ess_per_1k']:.2f}", f"{r['ess_per_s']:.0f}",
            f"{r['wall']:.2f}", flags, load, "met" if r["passes"] else "**MISSED**"]


SUMMARY_HEADERS = ["posterior", "sampler", "bar met", "worst max mean err / sd", "median max mean err / sd",
                   "worst z", "worst abs(sd ratio - 1)", "median min ESS", "worst R-hat", "median evals/draw",
                   "of which sampling", "median min ESS / 1k evals", "median min ESS / s", "exhausted (div), all runs"]


def summary_rows(rows):
    out = []
    for name in dict.fromkeys(r["posterior"] for r in rows):
        for sampler in dict.fromkeys(r["sampler"] for r in rows):
            rs = [r for r in rows if r["posterior"] == name and r["sampler"] == sampler]
            if not rs:
                continue
            med = lambda k: statistics.median(r[k] for r in rs)
            if rs[0]["exhausted"] is not None:
                flags = str(sum(r["exhausted"] for r in rs))
            else:
                flags = f"({sum(r['divergences'] for r in rs)})"
            out.append([name, sampler, f"{sum(r['passes'] for r in rs)}/{len(rs)}",
                        f"{max(r['mean_err'] for r in rs):.3f}", f"{med('mean_err'):.3f}",
                        f"{max(r['z_max'] for r in rs):.1f}", f"{max(r['sd_dev'] for r in rs):.3f}",
                        f"{med('ess_min'):.0f}", f"{max(r['rhat_max'] for r in rs):.3f}",
                        f"{med('evals_per_draw'):.1f}", f"{med('sampling_evals_per_draw'):.1f}",
                        f"{med('ess_per_1k'):.2f}", f"{med('ess_per_s'):.0f}", flags])
    return out


def git_state() -> str:
    """The commit of the checkout and the files changed since (others may be editing alongside)."""
    import subprocess
    root = Path(__file__).resolve().parent.parent
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, check=True).stdout
        commit = run("rev-parse", "--short", "HEAD").strip()
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", "mcsample", "targets").split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [f for f in dirty if f.startswith(("mcsample/", "targets/"))]
    return commit + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def misses_markdown(rows) -> str:
    missed = [r for r in rows if not r["passes"]]
    if not missed:
        return "Every run met the bar.\n\n"
    lines = [f"Runs missing the bar ({len(missed)} of {len(rows)}):", ""]
    for r in missed:
        lines.append(f"- {r['posterior']} / {r['sampler']} / seed {r['seed']}: max mean err {r['mean_err']:.3f} sd "
                     f"({r['worst_param']}, z = {r['z_max']:.1f}), min ESS {r['ess_min']:.0f}, "
                     f"R-hat {r['rhat_max']:.3f}, max abs(sd ratio - 1) {r['sd_dev']:.3f}")
    return "\n".join(lines) + "\n\n"


def markdown_report(rows, none_rows, args, machine, versions, loadavg) -> str:
    cmd = "python benchmarks/slice_posteriordb.py" + "".join(f" {a}" for a in sys.argv[1:])
    text = (f"# Slice samplers against posteriordb references\n\n"
            f"Generated by `{cmd}`.\n\n{_report.environment_markdown(machine, versions)}"
            f"- git: {args.git}\n"
            f"- `uptime` load average (1, 5, 15 min): {loadavg[0][0]:.2f}, {loadavg[0][1]:.2f}, {loadavg[0][2]:.2f} "
            f"at the start, {loadavg[1][0]:.2f}, {loadavg[1][1]:.2f}, {loadavg[1][2]:.2f} at the end; "
            f"total run time {loadavg[2]:.0f} s\n\n"
            f"{CHAINS} chains x {DRAWS} draws after {TUNE} warmup iterations per run, seeds "
            f"{', '.join(map(str, args.seeds))}. Slice samplers at their default settings (dense frame fitted "
            "in warmup, w tuned in warmup, GPSS pilot in the warmup of elliptical and hit-and-run); NUTS at the "
            "reference run's adapt_delta / max_treedepth. Everything on the reference (constrained) scale. "
            f"**Bar: every reference mean within {BAR} reference sd** (max mean err / sd < {BAR}). "
            "'z' is the largest mean error in combined Monte Carlo standard errors (ours and the reference's): "
            "large z means bias, not noise. 'evals/draw' is every log-density (slice) or gradient (NUTS) "
            "evaluation including warmup over the kept draws, 'of which sampling' only those spent on the kept "
            "draws (the rest is warmup, pilot and start-point search). 'exhausted' counts kept-draw updates that "
            "gave up at max_proposals; NUTS shows its divergences in brackets. 'others' load' is how many cores other "
            "processes kept busy during the run: above ~0.2 the seconds are inflated. Definitions in the "
            "docstring of `benchmarks/slice_posteriordb.py`.\n\n"
            "'z' is meaningful only where R-hat is near 1: chains that have not mixed have huge Monte Carlo "
            "standard errors, so even enormous errors get a small z.\n\n"
            + (f"Known issue at the time of this run: {KNOWN_ISSUE}\n\n" if KNOWN_ISSUE else "")
            + "## Summary per posterior and sampler\n\n"
            + _report.markdown_table(SUMMARY_HEADERS, summary_rows(rows)) + "\n\n"
            + misses_markdown(rows)
            + "## Every run\n\n" + _report.markdown_table(HEADERS, [run_row(r) for r in rows]) + "\n")
    if none_rows:
        text += ("\n## GPSS without the frame (`centring=\"none\"`)\n\n"
                 f"Same runs as above, seeds {', '.join(map(str, args.none_seeds))}, GPSS with `centring=\"none\"` "
                 "(w still tuned in warmup): the sampler then works on the raw unconstrained coordinates.\n\n"
                 + _report.markdown_table(SUMMARY_HEADERS, summary_rows(none_rows)) + "\n\n"
                 + _report.markdown_table(HEADERS, [run_row(r) for r in none_rows]) + "\n")
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posteriors", nargs="+", default=list(POSTERIORS))
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--none-seeds", type=int, nargs="*", default=[1, 2, 3],
                   help="seeds of the GPSS centring='none' runs (none: skip them)")
    p.add_argument("--max-wait", type=float, default=5.0, help="seconds to wait for a quiet machine before each run")
    p.add_argument("--out", default=str(_report.RESULTS_DIR / "slice_posteriordb.md"))
    args = p.parse_args()
    machine, versions = _report.machine_info(), _report.package_versions(PACKAGES)
    args.git = git_state()
    load0, t0 = os.getloadavg(), time.monotonic()

    def go(name, sampler, seed, **settings):
        r = measure(name, sampler, seed, args.max_wait, **settings)
        print("  ".join(str(c) for c in run_row(r)), flush=True)
        return r

    rows = [go(name, sampler, seed) for name in args.posteriors for sampler in args.samplers for seed in args.seeds]
    none_rows = [go(name, "gpss", seed, centring="none") for name in args.posteriors for seed in args.none_seeds]
    text = markdown_report(rows, none_rows, args, machine, versions, (load0, os.getloadavg(), time.monotonic() - t0))
    print()
    print(_report.text_table(SUMMARY_HEADERS, summary_rows(rows)))
    if none_rows:
        print()
        print(_report.text_table(SUMMARY_HEADERS, summary_rows(none_rows)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
