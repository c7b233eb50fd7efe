"""Where a NUTS transition spends its time: a compiled loop of transitions for ``perf`` (issue #16).

    python benchmarks/nuts_profile.py gauss100 --transitions 400000 &
    # once it prints "profiling": attach for a few seconds, then read the split by function
    perf record -F 5000 -p <pid> -o /tmp/nuts.perf -- sleep 4
    perf report -i /tmp/nuts.perf --no-children --sort dso,symbol

numba's compiled functions have no symbols that ``perf`` can see, so the script writes the
``/tmp/perf-<pid>.map`` that ``perf report`` reads: every function of the compiled modules of
the loop (the kernels linked into it included), with its address. The gradient is the user's
function inside the target's guard, a cfunc the map does not name: it shows as unnamed
``[JIT]`` addresses. The loop runs at a fixed step size and metric (gauss100: the exact metric and
step 0.5, 7 leaves per transition; arK: unit metric, step 0.2).
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

import targets
from _report import write_perf_map
from mcsample._core.hamiltonian import diagonal_metric
from mcsample.samplers.nuts import NUTSState, new_workspace, nuts_transition


@numba.njit(nogil=True)
def transitions(fn, args, rng, state, step, metric, work, n):
    n_grad = 0
    for _ in range(n):
        n_grad += nuts_transition(fn, args, rng, state, step, metric, 10, 1000.0, work).n_steps
    return n_grad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("target", nargs="?", default="gauss100", choices=["gauss100", "arK"])
    p.add_argument("--transitions", type=int, default=400_000)
    args = p.parse_args(argv)
    target, _ = targets.get(args.target)
    d = target.dim
    if args.target == "gauss100":
        metric, step = diagonal_metric(np.geomspace(0.1, 10.0, 100) ** 2), 0.5
    else:
        metric, step = diagonal_metric(np.ones(d)), 0.2
    x = np.full(d, 0.1)
    lp, g = target.logp_grad(x)
    state = NUTSState(x.copy(), np.array([lp]), np.array(g))
    work = new_workspace(d, 10)
    rng = np.random.default_rng(1)
    fn, kernel_args = target.logp_grad_fn, target.kernel_args
    transitions(fn, kernel_args, rng, state, step, metric, work, 2)  # compile
    print(f"{write_perf_map([transitions])} functions in /tmp/perf-{os.getpid()}.map", flush=True)
    print(f"profiling: pid {os.getpid()}", flush=True)
    t0 = time.thread_time()
    n_grad = transitions(fn, kernel_args, rng, state, step, metric, work, args.transitions)
    print(f"{n_grad} gradients, {(time.thread_time() - t0) / n_grad * 1e6:.3f} µs CPU per gradient")


if __name__ == "__main__":
    main()
