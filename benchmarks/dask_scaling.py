"""Wall time of 16 NUTS chains on a target costing about 1 ms per gradient, on a Dask
LocalCluster of 1 and 2 worker processes (one thread each), next to the default thread executor.

    python benchmarks/dask_scaling.py [--draws 200 --tune 200 --chains 16 --workers 1 2]

Writes benchmarks/results/dask_scaling.json, .md and .png. The target is an isotropic Gaussian in
d = 10 whose log density and gradient repeat their arithmetic ``reps`` times (reps is calibrated
to ~1 ms per gradient here); it is defined in this script (``__main__``), so it also shows a
notebook-style target travelling to the workers. Every run has the same seed, and the script
checks that all executors give the same draws.

The figure's prediction for W workers: the chains are independent tasks of about equal cost,
so on W free cores the wall time is about T_1 * ceil(C / W) / C, with T_1 the measured 1-worker
time of the C chains, plus the segments' own cost (snapshot, pickling and restoring a chain's
state every ~5 s; measured here in-process and reported). On this shared 2-core machine the
2-worker point measures the contention with other jobs as much as Dask (see the load column).

    python benchmarks/dask_scaling.py --report-only   # rebuild .md and .png from the .json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import RESULTS_DIR, machine_info  # noqa: E402

import mcsample as mc  # noqa: E402


@numba.njit
def costly_logp(x, reps):
    total = 0.0
    for _ in range(reps):
        total += -0.5 * np.sum(x * x)
    return total / reps


@numba.njit
def costly_logp_grad(x, reps):
    lp = 0.0
    g = np.zeros(x.size)
    for _ in range(reps):
        lp += -0.5 * np.sum(x * x)
        g -= x
    return lp / reps, g / reps


def calibrate(dim, seconds=1e-3):
    x = np.random.default_rng(0).standard_normal(dim)
    costly_logp_grad(x, 10)
    reps = 1000
    t0 = time.perf_counter()
    for _ in range(20):
        costly_logp_grad(x, reps)
    per = (time.perf_counter() - t0) / 20
    return max(1, int(reps * seconds / per))


def run(target, executor, kw):
    t0 = time.perf_counter()
    result = mc.sample(target, "nuts", executor=executor, progressbar=False, **kw)
    return result, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        return report(json.loads((RESULTS_DIR / "dask_scaling.json").read_text()))
    from dask.distributed import Client, LocalCluster

    reps = calibrate(args.dim)
    target = mc.Target(costly_logp, args.dim, logp_grad=costly_logp_grad, args=(reps,), name="costly_gauss")
    x = np.ones(args.dim)
    t0 = time.perf_counter()
    for _ in range(200):
        target.logp_grad(x)
    ms_per_grad = (time.perf_counter() - t0) / 200 * 1e3
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=1)
    rows = []
    print(f"reps {reps}: {ms_per_grad:.2f} ms per gradient; load average {os.getloadavg()}", flush=True)
    threads, wall = run(target, None, kw)
    n_grad = int(threads.attrs["n_grad"])
    rows.append(dict(executor="threads (default, min(chains, cores) threads)", workers=os.cpu_count(), wall=wall,
                     sampling=threads.attrs["wall_time"], n_grad=n_grad, identical=True,
                     load=os.getloadavg()[0]))
    print(rows[-1], flush=True)
    for w in args.workers:
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            ex = client.get_executor()
            run(target, ex, {**kw, "draws": 5, "tune": 5, "chains": w})  # workers load the kernels first
            result, wall = run(target, ex, kw)
        same = np.array_equal(result.posterior["x"].values, threads.posterior["x"].values)
        rows.append(dict(executor=f"dask LocalCluster, {w} worker process(es) x 1 thread", workers=w, wall=wall,
                         sampling=result.attrs["wall_time"], n_grad=int(result.attrs["n_grad"]), identical=same,
                         load=os.getloadavg()[0]))
        print(rows[-1], flush=True)
        assert same, "dask draws differ from the thread executor's"

    out = dict(machine={**machine_info(), "cpu_count": os.cpu_count()},
               command=" ".join(["python", "benchmarks/dask_scaling.py"] + sys.argv[1:]),
               ms_per_grad=ms_per_grad, reps=reps, dim=args.dim, settings=kw, rows=rows,
               segment_overhead_ms=segment_overhead(target, kw))
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "dask_scaling.json").write_text(json.dumps(out, indent=2))
    report(out)


def segment_overhead(target, kw):
    """Milliseconds to snapshot, pickle, unpickle and restore one finished chain's state (what a
    remote segment adds to every ~5 s of sampling)."""
    import pickle

    from mcsample import checkpoint, samplers
    from mcsample.sample import _start
    cfg = samplers.resolve("nuts", {})
    run = _start(cfg, target, np.random.default_rng(0), None, kw["tune"], kw["draws"], 0, None)
    t0 = time.perf_counter()
    for _ in range(20):
        state, arrays = pickle.loads(pickle.dumps(checkpoint.snapshot(run, run.total, 0)))
        checkpoint.restore(state, arrays, cfg, target)
    return (time.perf_counter() - t0) / 20 * 1e3


def report(out):
    rows, c = out["rows"], out["settings"]["chains"]
    by_w = {r["workers"]: r["sampling"] for r in rows if r["executor"].startswith("dask")}
    t1 = by_w[min(by_w)] * min(by_w)  # one worker's time for all chains
    predict = {w: t1 * math.ceil(c / w) / c for w in (1, 2, 4, 8, 16)}
    efficiency = {w: by_w[min(by_w)] / (w / min(by_w) * t) for w, t in by_w.items()}

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ws = sorted(predict)
    ax.plot(ws, [predict[w] for w in ws], "--", color="grey", label="predicted on W free cores")
    ax.plot(sorted(by_w), [by_w[w] for w in sorted(by_w)], "o", color="C0", label="measured, Dask workers")
    threads = rows[0]
    ax.plot([threads["workers"]], [threads["sampling"]], "s", color="C1", label="measured, 2 threads (default)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("worker processes W")
    ax.set_ylabel("sampling wall time (s)")
    ax.set_title(f"{c} NUTS chains, {out['ms_per_grad']:.1f} ms/gradient, {threads['n_grad']} gradients\n"
                 f"shared {out['machine']['cpu_count']}-core machine, load average 6-7", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "dask_scaling.png", dpi=120)

    lines = [f"# Dask scaling: {c} NUTS chains, {out['ms_per_grad']:.2f} ms per gradient (d = {out['dim']})", "",
             f"Command: `{out['command']}` ({out['machine']['date']}); machine: {out['machine']['cpu_count']} cores "
             f"({out['machine']['cpu']}) shared with other jobs: the load average (last column) was 6-7 on 2 cores, "
             "so every process got a fraction of a core and absolute times are noisy.", "",
             "| executor | workers | sampling wall (s) | total incl. compile (s) | gradients | gradients/s | "
             "same draws as threads | load |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['executor']} | {r['workers']} | {r['sampling']:.1f} | {r['wall']:.1f} | {r['n_grad']} | "
                     f"{r['n_grad'] / r['sampling']:.0f} | {r['identical']} | {r['load']:.1f} |")
    lines += ["", "Parallel efficiency against 1 worker: " + ", ".join(f"W={w}: {e:.2f}" for w, e in efficiency.items())
              + f". A remote segment's own cost (snapshot, pickle, restore of a chain's state) is "
              f"{out['segment_overhead_ms']:.1f} ms per ~5 s segment, under 0.1%, so the segments do not explain "
              "the 2-worker point's shortfall (it reached fewer gradients/s than 2 threads measured minutes "
              "earlier at a lower load). This shared machine cannot separate other jobs' contention from "
              "Dask's own per-process costs (scheduler, nannies, the workers' event loops): "
              "repeat on free cores before trusting the efficiency. The target lets the draws be compared: "
              "they were bit-identical on every executor.", "",
              "Predicted sampling wall time on W free cores, T_1 ceil(16 / W) / 16 from the 1-worker time: "
              + ", ".join(f"W={w}: {v:.0f} s" for w, v in predict.items())
              + ". Beyond W = 16 nothing more is gained: the unit of parallelism is a chain.", "",
              "![scaling](dask_scaling.png)"]
    (RESULTS_DIR / "dask_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
