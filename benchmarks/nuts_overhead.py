"""The NUTS transition's own cost per gradient, against the gradient's (issue #16).

    python benchmarks/nuts_overhead.py [--reps 7] [--draws 4000]

For each target (gauss100, arK) a warmup run fixes the step size and metric; then, ``--reps``
times, interleaved so that a change in the machine's load hits every part alike, it times

* (a) gradient: a compiled loop calling the target's guarded ``logp_grad`` cfunc (as the kernels
  call it) at a point that changes every call;
* (b) leapfrog: a compiled loop of ``_core.hamiltonian.leapfrog`` steps (gradient, two half kicks,
  one drift, two velocities) with that step size and metric;
* (c) momentum: ``_core.hamiltonian.draw_momentum`` (d standard normals), once per transition;
* (d) transition: a compiled loop of ``nuts_transition`` at that step size and metric;
* (e) sample(): one chain of ``--draws`` draws (no adaptation, one thread): the process's CPU
  seconds per gradient of the draws beyond a run of ``--draws / 10`` (so that ``sample()``'s
  fixed costs cancel; they are reported as ms per call), and ``attrs["wall_time"]`` per gradient.

(a)-(d) are CPU seconds of the calling thread (``time.thread_time``), which other processes on a
shared machine inflate less than wall seconds. Each
is divided by the number of gradients of the same run ((c): by the gradients of the transitions
of (d)). The sampler's own work per gradient is (d - a) / a for the kernel and (e CPU - a) / a for
``sample()``; the goal is at most 0.3 on gauss100. The machine's load average is recorded beside
every repetition. Medians and ranges go to ``benchmarks/results/nuts_overhead.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import numba
import numpy as np

import mcsample as mc
import targets
from mcsample._core.hamiltonian import draw_momentum, leapfrog, make_metric
from mcsample.samplers.nuts import NUTSState, new_workspace, nuts_transition

import _report


@numba.njit(nogil=True)
def _gradient_loop(fn, args, x, n):
    total = 0.0
    for k in range(n):
        x[k % x.size] += 1e-12  # a new point each call, as in a trajectory
        lp, g = fn(x, *args)
        total += lp + g[0]
    return total


@numba.njit(nogil=True)
def _leapfrog_loop(fn, args, q, p, g, v, step, metric, n):
    total = 0.0
    for k in range(n):  # ten steps forward, ten back: stays on the orbit's scale
        total += leapfrog(fn, args, q, p, g, v, step if k % 20 < 10 else -step, metric)
    return total


@numba.njit(nogil=True)
def _momentum_loop(rng, metric, p, n):
    for _ in range(n):
        draw_momentum(rng, metric, p)


@numba.njit(nogil=True)
def _transition_loop(fn, args, rng, state, step, metric, max_depth, work, n):
    n_grad = 0
    for _ in range(n):
        n_grad += nuts_transition(fn, args, rng, state, step, metric, max_depth, 1000.0, work).n_steps
    return n_grad


def _cpu(f, *args):
    t0 = time.thread_time()
    out = f(*args)
    return time.thread_time() - t0, out


def tuned_settings(target, seed=1):
    idata = mc.sample(target, "nuts", draws=200, tune=1000, chains=1, seed=seed, progressbar=False)
    tuned = json.loads(idata.attrs["tuned"])[0]
    x = idata.posterior["x"].values[0, -1]
    return dict(step_size=tuned["step_size"], inv_metric=np.array(tuned["inv_metric"]),
                adapt_step_size=False), x


def _process_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def nuts_seconds_per_grad(target, settings, x0, draws, seed):
    """``sample()``'s wall time per gradient, the process's CPU time per gradient during the whole
    call (start-up and assembly included), and the number of gradients."""
    c0 = _process_cpu()
    idata = mc.sample(target, "nuts", draws=draws, tune=0, chains=1, seed=seed, progressbar=False,
                      init=x0, **settings)
    cpu = _process_cpu() - c0
    n_grad = int(idata.sample_stats["n_grad"].values.sum())
    return idata.attrs["wall_time"] / n_grad, cpu / n_grad, n_grad


class Parts:
    """The compiled loops of (a)-(d) for one target at a tuned step size and metric."""

    def __init__(self, target, settings, x0, seed):
        self.fn, self.args = target.logp_grad_fn, target.kernel_args
        self.metric = make_metric(settings["inv_metric"])
        self.step = float(settings["step_size"])
        self.x0 = np.array(x0, dtype=np.float64)
        lp, g = target.logp_grad(self.x0)
        self.lp, self.g = lp, np.array(g)
        self.rng = np.random.default_rng(seed)
        self.state = NUTSState(self.x0.copy(), np.array([lp]), self.g.copy())
        self.work = new_workspace(target.dim, 10)
        self.run(10, 2)  # compile

    def run(self, n_transitions, n_grad_min):
        """Per-gradient CPU seconds of (a)-(d) and the gradients of (d)."""
        t_tr, n_grad = _cpu(_transition_loop, self.fn, self.args, self.rng, self.state, self.step,
                            self.metric, 10, self.work, n_transitions)
        n = max(n_grad, n_grad_min)
        t_grad, _ = _cpu(_gradient_loop, self.fn, self.args, self.x0.copy(), n)
        p = np.zeros_like(self.x0)
        _momentum_loop(self.rng, self.metric, p, 1)
        t_lf, _ = _cpu(_leapfrog_loop, self.fn, self.args, self.x0.copy(), p, self.g.copy(),
                       np.zeros_like(self.x0), self.step, self.metric, n)
        t_mom, _ = _cpu(_momentum_loop, self.rng, self.metric, p, n_transitions)
        return dict(grad_us=t_grad / n * 1e6, leapfrog_us=t_lf / n * 1e6, momentum_us=t_mom / n_grad * 1e6,
                    transition_us=t_tr / n_grad * 1e6), n_grad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", nargs="+", default=["gauss100", "arK"])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--draws", type=int, default=4000)
    p.add_argument("--out", default=str(_report.RESULTS_DIR / "nuts_overhead"))
    args = p.parse_args(argv)
    machine = _report.machine_info()
    results = {}
    for name in args.targets:
        target, _ = targets.get(name)
        settings, x0 = tuned_settings(target)
        nuts_seconds_per_grad(target, settings, x0, 50, 0)  # warm the kernels
        parts = Parts(target, settings, x0, seed=1)
        reps = []
        for rep in range(args.reps):
            load = os.getloadavg()[0]
            t_nuts, cpu_nuts, n_grad = nuts_seconds_per_grad(target, settings, x0, args.draws, rep + 1)
            _, cpu_short, n_short = nuts_seconds_per_grad(target, settings, x0, args.draws // 10, rep + 1)
            # the CPU time of the extra draws: sample()'s fixed costs (its throwaway compile run,
            # thread pool, building the result) cancel
            cpu_nuts = (cpu_nuts * n_grad - cpu_short * n_short) / (n_grad - n_short)
            fixed_ms = (cpu_short - cpu_nuts) * n_short * 1e3
            r, _ = parts.run(args.draws, n_grad)
            r.update(sample_us=t_nuts * 1e6, sample_cpu_us=cpu_nuts * 1e6, fixed_ms=fixed_ms, n_grad=n_grad, load=load,
                     own_kernel=(r["transition_us"] - r["grad_us"]) / r["grad_us"],
                     own_sample=(cpu_nuts * 1e6 - r["grad_us"]) / r["grad_us"])
            reps.append(r)
            print(f"{name} rep {rep} (load {load:.1f}): gradient {r['grad_us']:.3f}, leapfrog {r['leapfrog_us']:.3f}, "
                  f"momentum {r['momentum_us']:.3f}, transition {r['transition_us']:.3f}, sample() {r['sample_cpu_us']:.3f} CPU, "
                  f"{r['sample_us']:.3f} wall, fixed {r['fixed_ms']:.1f} ms "
                  f"us per gradient; own work {r['own_kernel']:.2f}x (kernel), {r['own_sample']:.2f}x (sample())",
                  flush=True)
        results[name] = reps
    rows = []
    for name, reps in results.items():
        def med(key):
            return statistics.median(r[key] for r in reps)

        def span(key):
            v = sorted(r[key] for r in reps)
            return f"{v[0]:.2f}-{v[-1]:.2f}"
        rows.append([name, f"{med('grad_us'):.3f}", f"{med('leapfrog_us'):.3f}", f"{med('momentum_us'):.3f}",
                     f"{med('transition_us'):.3f}", f"{med('sample_cpu_us'):.3f}", f"{med('sample_us'):.3f}", f"{med('fixed_ms'):.0f}",
                     f"{med('own_kernel'):.2f} ({span('own_kernel')})", f"{med('own_sample'):.2f} ({span('own_sample')})",
                     f"{med('n_grad'):.0f}", span("load")])
    text = "\n".join([
        "# NUTS: the sampler's own work per gradient", "",
        f"Generated by `python benchmarks/nuts_overhead.py --reps {args.reps} --draws {args.draws}` "
        f"({machine['date']}, Python {machine['python']}, nproc {machine['nproc']}).", "",
        "µs per gradient, medians over interleaved repetitions at a tuned step size and metric: (a) the "
        "guarded gradient from a compiled loop; (b) one `leapfrog` step; (c) the momentum draw of a "
        "transition per gradient of it; (d) `nuts_transition` in a compiled loop; (a)-(d) in CPU time of "
        "the thread. (e) `sample()`, one chain: the process's CPU time per gradient of the draws beyond a "
        "run a tenth as long (its fixed costs, in the 'fixed' column as ms per call, cancel) and "
        "`wall_time` per gradient. Own work = (d - a) / a (kernel) and "
        "(e CPU - a) / a (sample()), median (min-max). Wall times are inflated by other processes. The machine is shared: its 1-minute load average "
        "(min-max over the repetitions) is in the last column; the ratios are measured within each "
        "repetition.", "",
        _report.markdown_table(["target", "(a) gradient", "(b) leapfrog", "(c) momentum", "(d) transition",
                                "(e) sample() CPU", "(e) sample() wall", "fixed ms", "own work, kernel", "own work, sample()", "gradients per rep",
                                "load average"], rows), ""])
    with open(args.out + ".md", "w") as f:
        f.write(text)
    with open(args.out + ".json", "w") as f:
        json.dump({"machine": machine, "results": results}, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
