"""Where a GPSS iteration spends its time on cauchy100 (issue #16): a split by compiled loops.

    python benchmarks/gpss_profile.py                       # the split table
    python benchmarks/gpss_profile.py --perf --iters 3000000 &
    # once it prints "profiling": attach for a few seconds, then read the split by function
    perf record -F 5000 -p <pid> -o /tmp/gpss.perf -- sleep 4
    perf report -i /tmp/gpss.perf --no-children --sort dso,symbol

Each part of an iteration is timed as its own compiled loop, CPU time (``time.thread_time``), the
median of ``--reps``; parts the loop runs per evaluation are scaled by the chain's own evaluations
per iteration (direction and radius proposals counted separately):

- the full iteration: ``gpss_transition`` in a loop (state, w = 100, identity frame), the chain of
  ``benchmarks/gpss_vs_numpy.py`` (x0 = 1, seed 1);
- target calls: the guarded cfunc called at a moving point;
- the direction draw: d standard normals from numba's generator (numpy's ziggurat) alone, and the
  projection + normalisation that make them a great-circle direction (written as the kernel
  does them since ade7225: the sums fused into passes; in the kernel the projection's sum rides
  in the normals' pass);
- the geodesic shrinkage per direction proposal: cos/sin, point = c a + s b, its renormalisation
  (norm + division) and z = r point (as the kernel since ade7225);
- the radius stepping/shrinkage per radius proposal: z = s theta and power * log s;
- bookkeeping: the rest (threshold draw, logs, the copy of theta, the chunk's output of x).

The sum of the parts is not forced to the whole: the difference is shown as what the parts miss
(overlap in the CPU's pipeline makes it negative at times). With ``--perf`` the script writes
``/tmp/perf-<pid>.map`` (as ``benchmarks/nuts_profile.py``) and runs the full loop for perf.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numba
import numpy as np

import targets
from _report import write_perf_map
from mcsample.samplers.gpss import GPSSState, gpss_transition, new_gpss_work

D, W, POWER = 100, 100.0, 99.0


@numba.njit(nogil=True)
def full_loop(logp, args, frame, rng, state, n, work):
    n_dir = 0
    n_rad = 0
    for _ in range(n):
        info = gpss_transition(logp, args, frame, rng, state, W, POWER, 100_000, work)
        n_dir += info.n_direction_proposals
        n_rad += info.n_radius_proposals
    return n_dir, n_rad


@numba.njit(nogil=True)
def logp_loop(logp, args, x, n):
    total = 0.0
    for k in range(n):
        x[0] = 1.0 + 1e-9 * k
        total += logp(x, *args)
    return total


@numba.njit(nogil=True)
def normals_loop(rng, y, n):
    for _ in range(n):
        for i in range(y.size):
            y[i] = rng.standard_normal()
    return y[0]


@numba.njit(nogil=True)
def project_loop(theta, y, n):
    """The great-circle direction from d normals already drawn: projection and normalisation."""
    total = 0.0
    for k in range(n):
        y[0] += 1e-12 * k
        along = 0.0
        for i in range(y.size):
            along += y[i] * theta[i]
        ss = 0.0
        for i in range(y.size):
            y[i] -= along * theta[i]
            ss += y[i] * y[i]
        nrm = np.sqrt(ss)
        for i in range(y.size):
            y[i] /= nrm
        total += y[1]
    return total


@numba.njit(nogil=True)
def angle_loop(a, b, point, z, n):
    """One geodesic shrinkage proposal without its target call."""
    total = 0.0
    w = 0.1
    for _ in range(n):
        w += 1e-9
        c = np.cos(w)
        s = np.sin(w)
        ss = 0.0
        for i in range(a.size):
            p = c * a[i] + s * b[i]
            point[i] = p
            ss += p * p
        nrm = np.sqrt(ss)
        for i in range(a.size):
            p = point[i] / nrm
            point[i] = p
            z[i] = 3.0 * p
        total += z[5]
    return total


@numba.njit(nogil=True)
def radius_loop(theta, z, n):
    """One radius proposal without its target call: z = s theta and power * log s."""
    total = 0.0
    s = 1.0
    for _ in range(n):
        s += 1e-9
        for i in range(theta.size):
            z[i] = 0.0 + s * theta[i]
        total += z[3] + POWER * np.log(abs(s))
    return total


def cpu_seconds(fn, *args):
    t0 = time.thread_time()
    out = fn(*args)
    return time.thread_time() - t0, out


def fresh_state(target):
    x0 = np.ones(D)
    r = np.linalg.norm(x0)
    lp1 = POWER * np.log(r) + target.logp(x0)
    return GPSSState(np.array([r]), x0 / r, np.array([lp1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=200_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--perf", action="store_true")
    args = p.parse_args(argv)
    target, _ = targets.get("cauchy100")
    fn, kargs = target.logp_fn, target.kernel_args
    frame = (0, np.zeros(D), np.ones(D), np.zeros((1, 1)))
    work = new_gpss_work(D)
    seed_rng = lambda: np.random.Generator(np.random.PCG64(np.random.SeedSequence(1).spawn(1)[0]))
    full_loop(fn, kargs, frame, seed_rng(), fresh_state(target), 2, work)
    if args.perf:
        print(f"{write_perf_map([full_loop])} functions in /tmp/perf-{os.getpid()}.map", flush=True)
        print(f"profiling: pid {os.getpid()}", flush=True)
        sec, (nd, nr) = cpu_seconds(full_loop, fn, kargs, frame, seed_rng(), fresh_state(target), args.iters, work)
        print(f"{1e6 * sec / args.iters:.3f} µs CPU per iteration, {(nd + nr) / args.iters:.2f} evals/it")
        return
    n = args.iters
    x, y, a, b, point, z = (np.random.default_rng(k).standard_normal(D) for k in range(6))
    a /= np.linalg.norm(a)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    rng = np.random.default_rng(2)
    for f, fargs in ((logp_loop, (fn, kargs, x, 10)), (normals_loop, (rng, y, 10)), (project_loop, (a, y, 10)),
                     (angle_loop, (a, b, point, z, 10)), (radius_loop, (a, z, 10))):
        f(*fargs)  # compile
    res = {k: [] for k in ("full", "logp", "normals", "project", "angle", "radius")}
    for _ in range(args.reps):
        sec, (nd, nr) = cpu_seconds(full_loop, fn, kargs, frame, seed_rng(), fresh_state(target), n, work)
        res["full"].append(sec / n)
        m = 10 * n
        res["logp"].append(cpu_seconds(logp_loop, fn, kargs, x, m)[0] / m)
        res["normals"].append(cpu_seconds(normals_loop, rng, y, n)[0] / n)
        res["project"].append(cpu_seconds(project_loop, a, y, n)[0] / n)
        res["angle"].append(cpu_seconds(angle_loop, a, b, point, z, m)[0] / m)
        res["radius"].append(cpu_seconds(radius_loop, a, z, m)[0] / m)
    med = {k: 1e6 * statistics.median(v) for k, v in res.items()}
    dir_per_it, rad_per_it = nd / n, nr / n
    parts = [
        ("target calls", med["logp"], dir_per_it + rad_per_it),
        ("direction: d normals", med["normals"], 1.0),
        ("direction: projection + normalisation", med["project"], 1.0),
        ("geodesic shrinkage (trig, point, renorm, z)", med["angle"], dir_per_it),
        ("radius stepping/shrinkage (z = s theta, log s)", med["radius"], rad_per_it),
    ]
    total = med["full"]
    print(f"cauchy100, w = {W:g}, {n:,} iterations x {args.reps} reps (median, CPU time); "
          f"{dir_per_it:.2f} direction + {rad_per_it:.2f} radius evaluations per iteration")
    print(f"| part | µs per unit | units per it | µs per it | share |\n|---|---|---|---|---|")
    covered = 0.0
    for name, us, k in parts:
        covered += us * k
        print(f"| {name} | {us:.3f} | {k:.2f} | {us * k:.3f} | {us * k / total:.0%} |")
    print(f"| rest (bookkeeping; negative = overlap) |  |  | {total - covered:.3f} | {(total - covered) / total:.0%} |")
    print(f"| **full iteration** |  | 1 | **{total:.3f}** | 100% |")
    floor = med["logp"] * (dir_per_it + rad_per_it) + med["normals"]
    print(f"floor (target calls + d normals): {floor:.3f} µs per iteration")


if __name__ == "__main__":
    main()
