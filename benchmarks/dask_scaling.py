"""Wall time of 16 NUTS chains on a target costing about 1 ms per gradient, on a Dask
LocalCluster of 1 and 2 worker processes (one thread each), next to the default thread executor.

    python benchmarks/dask_scaling.py [--draws 200 --tune 200 --chains 16 --workers 1 2]

Writes benchmarks/results/dask_scaling.json, .md and .png. The target is an isotropic Gaussian in
d = 10 whose log density and gradient repeat their arithmetic ``reps`` times, reps calibrated at
run time to 1 ms of CPU per gradient (CPU time, so the load does not move the calibration; the
wall time per gradient and the cost inside the workers are reported beside it). It is defined in
this script (``__main__``), so it also shows a notebook-style target travelling to the workers.
Every run has the same seed, and the script checks that all executors give the same draws.

The figure's prediction for W workers: a chain runs on one worker at a time (as ~5 s segments),
so on W free cores the sampling takes about max(G / W, G_max) gradient-times, G being all
chains' gradients, G_max the costliest chain's and a gradient-time the measured 1-worker CPU
time per gradient (NUTS's and the worker's own work included; the workers' CPU seconds are read
with ``client.run(time.process_time)`` around each run). The segments' own cost (snapshot, pickling and
restoring a chain's state) is measured in-process and reported. On this shared 2-core machine
the 2-worker point measures the contention with other jobs as much as Dask: the load average is
recorded at the start and end of every run.

    python benchmarks/dask_scaling.py --report-only   # rebuild .md and .png from the .json
"""

from __future__ import annotations

import argparse
import json
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


def cpu_seconds_per_grad(x, reps, calls=50):
    t0 = time.thread_time()
    for _ in range(calls):
        costly_logp_grad(x, reps)
    return (time.thread_time() - t0) / calls


def calibrate(dim, seconds=1e-3):
    """``reps`` for which one gradient costs ``seconds`` of CPU time. CPU time of this thread, not
    wall time: on a shared machine a call's wall time includes waiting for a core, so a wall-time
    calibration lands wherever the load happened to be (the previous run aimed at 1 ms and
    measured 4.9 ms per gradient a minute later). Three rounds of rescaling, as the cost is
    linear in reps."""
    x = np.random.default_rng(0).standard_normal(dim)
    costly_logp_grad(x, 10)
    reps = 1000
    for _ in range(3):
        reps = max(1, round(reps * seconds / cpu_seconds_per_grad(x, reps)))
    for _ in range(2):  # the median of 5 measurements: a core's sibling thread busy or not moves each one
        per = float(np.median([cpu_seconds_per_grad(x, reps, calls=100) for _ in range(5)]))
        reps = max(1, round(reps * seconds / per))
    return reps


def worker_cpu_ms_per_grad(dim, reps):
    """What one gradient costs inside a worker process (run there by ``client.run``)."""
    x = np.random.default_rng(0).standard_normal(dim)
    costly_logp_grad(x, 10)
    return cpu_seconds_per_grad(x, reps, calls=200) * 1e3


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
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(200):
        target.logp_grad(x)
    ms_per_grad = (time.thread_time() - c0) / 200 * 1e3  # CPU time: what the calibration aims at
    wall_ms_per_grad = (time.perf_counter() - t0) / 200 * 1e3  # what this process got at this load
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=1)
    rows = []
    print(f"reps {reps}: {ms_per_grad:.3f} CPU ms ({wall_ms_per_grad:.3f} wall ms) per gradient; "
          f"load average {os.getloadavg()}", flush=True)
    run(target, None, {**kw, "draws": 5, "tune": 5, "chains": 2})  # compile the kernels first
    load0, cpu0 = os.getloadavg()[0], time.process_time()
    threads, wall = run(target, None, kw)
    n_grad = int(threads.attrs["n_grad"])
    cpu = time.process_time() - cpu0
    threads_cpu_ms = cpu / n_grad * 1e3
    w_threads = min(args.chains, os.cpu_count())
    rows.append(dict(executor="threads (default, min(chains, cores) threads)", workers=w_threads,
                     wall=wall, sampling=threads.attrs["wall_time"], n_grad=n_grad, identical=True,
                     load=os.getloadavg()[0], load_start=load0, cpu=cpu))
    print(rows[-1], flush=True)
    worker_ms = {}
    for w in args.workers:
        load0 = os.getloadavg()[0]
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            ex = client.get_executor()
            run(target, ex, {**kw, "draws": 5, "tune": 5, "chains": w})  # workers load the kernels first
            worker_ms[w] = sorted(client.run(worker_cpu_ms_per_grad, args.dim, reps).values())
            cpu0 = client.run(time.process_time)
            result, wall = run(target, ex, kw)
            cpu = sum(t - cpu0[k] for k, t in client.run(time.process_time).items())  # the workers' CPU seconds
        same = np.array_equal(result.posterior["x"].values, threads.posterior["x"].values)
        rows.append(dict(executor=f"dask LocalCluster, {w} worker process(es) x 1 thread", workers=w, wall=wall,
                         sampling=result.attrs["wall_time"], n_grad=int(result.attrs["n_grad"]), identical=same,
                         load=os.getloadavg()[0], load_start=load0, cpu=cpu))
        print(rows[-1], worker_ms[w], flush=True)
        assert same, "dask draws differ from the thread executor's"

    out = dict(machine={**machine_info(), "cpu_count": os.cpu_count()},
               command=" ".join(["python", "benchmarks/dask_scaling.py"] + sys.argv[1:]),
               ms_per_grad=ms_per_grad, wall_ms_per_grad=wall_ms_per_grad, threads_cpu_ms_per_grad=threads_cpu_ms,
               worker_cpu_ms_per_grad={str(w): v for w, v in worker_ms.items()},
               max_chain_share=max_chain_share(threads), reps=reps, dim=args.dim, settings=kw, rows=rows,
               segment_overhead_ms=segment_overhead(target, kw))
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "dask_scaling.json").write_text(json.dumps(out, indent=2))
    report(out)


def max_chain_share(result):
    """The costliest chain's share of the post-warmup gradients."""
    per_chain = result.sample_stats["n_steps"].sum("draw").values.astype(float)
    return float(per_chain.max() / per_chain.sum())


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


def predicted(out, workers):
    """Sampling wall time on W free cores. A chain is one task at a time, so W workers finish
    after max(all gradients / W, the costliest chain's gradients) gradient-times, a gradient-time
    (NUTS's and the worker's own work included) being the 1-worker run's CPU time per gradient:
    on a free core a worker gets all of its wall time as CPU (on this shared machine it got a
    fraction, the "share" column)."""
    one = next(r for r in out["rows"] if r["executor"].startswith("dask") and r["workers"] == 1)
    per_grad = one.get("cpu", one["sampling"]) / one["n_grad"]
    share = out.get("max_chain_share", 1.0 / out["settings"]["chains"])
    return {w: per_grad * one["n_grad"] * max(1.0 / w, share) for w in workers}


def report(out):
    rows, c = out["rows"], out["settings"]["chains"]
    by_w = {r["workers"]: r["sampling"] for r in rows if r["executor"].startswith("dask")}
    predict = predicted(out, (1, 2, 4, 8, 16, 32))
    efficiency = {w: by_w[1] / (w * t) for w, t in by_w.items()}
    dask_cpu = {r["workers"]: r["cpu"] / r["n_grad"] for r in rows if r["executor"].startswith("dask") and "cpu" in r}
    loads = [x for r in rows for x in (r.get("load_start", r["load"]), r["load"])]
    load_text = f"{min(loads):.1f}-{max(loads):.1f}"

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ws = sorted(predict)
    ax.plot(ws, [predict[w] for w in ws], "--", color="grey", label="predicted on W free cores")
    ax.plot(sorted(by_w), [by_w[w] for w in sorted(by_w)], "o", color="C0", label="measured, Dask workers")
    threads = rows[0]
    ax.plot([threads["workers"]], [threads["sampling"]], "s", color="C1",
            label=f"measured, {threads['workers']} threads (default)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("worker processes W")
    ax.set_ylabel("sampling wall time (s)")
    ax.set_title(f"{c} NUTS chains, {out['ms_per_grad']:.2f} CPU ms/gradient, {threads['n_grad']} gradients\n"
                 f"{out['machine']['cpu_count']}-core machine, load average {load_text}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / "dask_scaling.png", dpi=120)

    worker_ms = out.get("worker_cpu_ms_per_grad", {})
    lines = [f"# Dask scaling: {c} NUTS chains, {out['ms_per_grad']:.2f} ms of CPU per gradient (d = {out['dim']})",
             "", f"Command: `{out['command']}` ({out['machine']['date']}); machine: {out['machine']['cpu_count']} "
             f"cores ({out['machine']['cpu']}), shared with other jobs: load average {load_text} during the runs "
             "(columns: at the start and end of each run).", "",
             f"The target: an isotropic Gaussian (d = {out['dim']}) repeating its arithmetic reps = {out['reps']} "
             "times, calibrated at run time on this process's CPU time (not wall time, which counts the waits "
             f"for a core). One gradient costs {out['ms_per_grad']:.3f} ms of CPU here "
             f"({out.get('wall_ms_per_grad', float('nan')):.3f} ms of wall time at that moment)"
             + (", " + "; ".join(f"{', '.join(f'{v:.3f}' for v in ms)} ms in the {w}-worker cluster's worker(s)"
                                for w, ms in worker_ms.items()) if worker_ms else "")
             + ".", "",
             "CPU columns: the CPU seconds the sampling processes used during the timed run (this process "
             "for threads, the sum over the workers for Dask), per gradient, and as a share of the W cores "
             "the run could have used (CPU s / (W x wall)): a share below 1 is time spent waiting for a core "
             "(or idle), a CPU per gradient above the target's own cost is NUTS's and the executor's work.", "",
             "| executor | workers W | sampling wall (s) | run wall (s) | gradients | gradients/s | "
             "CPU (s) | CPU ms / gradient | share of W cores | same draws as threads | load start / end |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = r.get("cpu", float("nan"))
        lines.append(f"| {r['executor']} | {r['workers']} | {r['sampling']:.1f} | {r['wall']:.1f} | {r['n_grad']} | "
                     f"{r['n_grad'] / r['sampling']:.0f} | {cpu:.1f} | {cpu / r['n_grad'] * 1e3:.2f} | "
                     f"{cpu / (r['workers'] * r['sampling']):.2f} | {r['identical']} | "
                     f"{r.get('load_start', float('nan')):.1f} / {r['load']:.1f} |")
    lines += ["", "Parallel efficiency against 1 worker (T_1 / (W T_W)): "
              + ", ".join(f"W={w}: {e:.2f}" for w, e in efficiency.items())
              + f". A remote segment's own cost (snapshot, pickle, restore of a chain's state) is "
              f"{out['segment_overhead_ms']:.1f} ms per ~5 s segment. Draws were bit-identical on every executor "
              f"({all(r['identical'] for r in rows)}).", "",
              "Prediction for more workers: a chain runs on one worker at a time, so on W free cores the "
              "sampling takes about max(G / W, G_max) gradient-times, with G all chains' gradients, G_max the "
              f"costliest chain's (here {out.get('max_chain_share', 1 / c) * c:.2f}x the mean chain, from the "
              "post-warmup leapfrog counts) and a gradient-time the 1-worker run's CPU time per gradient (a "
              "free core gives a worker all its wall time as CPU): "
              + ", ".join(f"W={w}: {v:.1f} s" for w, v in predict.items())
              + f", plus the cluster's start and each worker's first compile. The curve flattens at W = {c} "
              "chains; beyond it only more chains use more workers. "
              + (f"With 2 workers each gradient cost {dask_cpu[2] / dask_cpu[1] - 1:.0%} more CPU than with one "
                 "(the workers' event loops, heartbeats and the segments' state transfer), so read the prediction "
                 "for W >= 2 as that much optimistic. " if 1 in dask_cpu and 2 in dask_cpu else "")
              + f"This {out['machine']['cpu_count']}-core machine, shared, can only check W = 1 and 2, and there "
              "the runs got only the share of the cores in the table: the wall times measure the contention "
              "with other jobs, the CPU columns what the executors cost.", "",
              "![scaling](dask_scaling.png)"]
    (RESULTS_DIR / "dask_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
