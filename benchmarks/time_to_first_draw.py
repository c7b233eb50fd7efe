"""Time from process start to the first NUTS draw of a new target, in fresh processes.

Run from the repository root (2-4 minutes on 2 cores, most of it (0)'s compile)::

    python benchmarks/time_to_first_draw.py            # 3 repetitions
    python benchmarks/time_to_first_draw.py --reps 1

Method
------
Each measurement is a fresh ``python -c ...`` subprocess that imports mcsample, imports a target
module, builds ``mc.Target(logp, 100, logp_grad=..., args=data)`` and calls
``mc.sample(target, "nuts", draws=1, tune=0, chains=1)``. The target module is a small file
written to a temporary directory: a diagonal Gaussian whose numba ``logp`` / ``logp_grad``
(``cache=True``) take their data as ``args``. ``NUMBA_CACHE_DIR`` points every process of one
repetition at the same fresh directory, so each repetition starts from an empty numba cache and,
in order:

(0) first use on the machine: empty cache, a target whose data are one ``float64[:, ::1]`` array
    (mean and scale as rows); mcsample's kernels and the target are compiled. Reported, no goal.
(a) new data signature: target module A with data ``(float64[::1] mean, float64[::1] scale)``,
    types no process has seen. Before type erasure every sampler kernel was compiled again for
    new data types; now the kernels come from (0)'s cache and only the target's functions and
    its small guard are compiled.
(b) kernels cached, never-seen target: a new module B (another file) with A's data types; the
    target's functions are compiled.
(c) the same target again: module B in another new process; everything comes from the cache.

"Since spawn" is measured from the parent's ``time.time()`` just before ``subprocess.run`` (passed
to the child), so it includes interpreter start-up. The child reports the split of its own time:
interpreter start-up (spawn until its first statement), ``import mcsample``, importing the target
module, ``Target(...)``, ``sample()`` in total, and ``sample()``'s ``attrs["compile_time"]`` and
``attrs["wall_time"]``; "sample other" is the rest of ``sample()`` (argument checks, start-point
search, building the result, which on ArviZ 0.x imports ArviZ on first use; on ArviZ 1.x the
DataTree is built with xarray alone). For context, a bare
``python -c pass`` is timed from spawn to exit, and ``import arviz`` inside a fresh process that
has already imported mcsample.

``Target(...)`` starts importing ArviZ (0.x) or xarray (1.x) in a background thread, so that
it overlaps the compile and the cache loads; ``--no-preload`` runs every child with
``MCSAMPLE_PRELOAD=0`` (the import then happens when ``sample()`` builds its result), to measure
what the overlap gains. On ArviZ 0.x mcsample imports ArviZ with its numba ufunc cached (see
``mcsample._arviz._cached_numba_ufuncs``); the context line gives that import beside a plain one.

The machine may be shared: before each child the script waits (up to ``--max-wait`` s) until
other processes use less than 0.2 cores, and records how many cores they kept busy meanwhile.

Goals (issue #16): (a) and (b) first draw <= 5 s after spawn; (c) <= 1.5 s after spawn.
The table shows medians over the repetitions; every repetition is in
``benchmarks/results/time_to_first_draw.json`` (table: ``time_to_first_draw.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _report

GOALS = {"0": None, "a": 5.0, "b": 5.0, "c": 1.5}  # seconds from spawn to first draw (issue #16: (a) <= 5 s, (c) <= 1.5 s)
SITUATIONS = {
    "0": "first use: empty numba cache, data (float64[:, ::1],)",
    "a": "new data signature (float64[::1], float64[::1]), kernels cached",
    "b": "kernels cached, never-seen target module",
    "c": "same target again, new process",
}
DIM = 100
PACKAGES = ("mcsample", "numba", "numpy", "arviz", "llvmlite")

PRIME_SOURCE = '''"""A diagonal Gaussian written for time_to_first_draw.py; data: one (2, d) array."""
import numba
import numpy as np


@numba.njit(cache=True)
def logp(x, ms):
    s = 0.0
    for i in range(x.size):
        z = (x[i] - ms[0, i]) / ms[1, i]
        s += z * z
    return -0.5 * s


@numba.njit(cache=True)
def logp_grad(x, ms):
    g = np.empty(x.size)
    s = 0.0
    for i in range(x.size):
        z = (x[i] - ms[0, i]) / ms[1, i]
        s += z * z
        g[i] = -z / ms[1, i]
    return -0.5 * s, g
'''

TARGET_SOURCE = '''"""A diagonal Gaussian written for time_to_first_draw.py."""
import numba
import numpy as np


@numba.njit(cache=True)
def logp(x, mean, scale):
    s = 0.0
    for i in range(x.size):
        z = (x[i] - mean[i]) / scale[i]
        s += z * z
    return -0.5 * s


@numba.njit(cache=True)
def logp_grad(x, mean, scale):
    g = np.empty(x.size)
    s = 0.0
    for i in range(x.size):
        z = (x[i] - mean[i]) / scale[i]
        s += z * z
        g[i] = -z / scale[i]
    return -0.5 * s, g
'''

# Runs in the child: argv = [spawn time.time(), module directory, module name, dim, data kind].
CHILD = r'''
import sys, time
spawn = float(sys.argv[1])
marks = {"python_startup": time.time() - spawn}

t = time.perf_counter()
import mcsample as mc
marks["import_mcsample"] = time.perf_counter() - t

t = time.perf_counter()
sys.path.insert(0, sys.argv[2])
import importlib
module = importlib.import_module(sys.argv[3])
marks["import_target_module"] = time.perf_counter() - t

import numpy as np
dim = int(sys.argv[4])
mean, scale = np.zeros(dim), np.geomspace(0.1, 10.0, dim)
t = time.perf_counter()
data = (np.stack([mean, scale]),) if sys.argv[5] == "stacked" else (mean, scale)
target = mc.Target(module.logp, dim, logp_grad=module.logp_grad, args=data, name=sys.argv[3])
marks["target"] = time.perf_counter() - t

t = time.perf_counter()
idata = mc.sample(target, "nuts", draws=1, tune=0, chains=1, seed=0, progressbar=False)
marks["sample_total"] = time.perf_counter() - t
marks["first_draw_since_spawn"] = time.time() - spawn
marks["compile_time"] = float(idata.attrs["compile_time"])
marks["wall_time"] = float(idata.attrs["wall_time"])
assert idata.posterior["x"].shape == (1, 1, dim)

import json
print("RESULT " + json.dumps(marks))
'''

COLUMNS = [  # (key, header)
    ("python_startup", "python start"),
    ("import_mcsample", "import mcsample"),
    ("import_target_module", "import target"),
    ("target", "Target(...)"),
    ("sample_total", "sample() total"),
    ("compile_time", "sample() compile_time"),
    ("wall_time", "sample() wall_time"),
    ("sample_other", "sample() other"),
    ("first_draw_since_spawn", "first draw since spawn"),
    ("process_total", "process total"),
    ("process_cpu", "process CPU"),
]


# -- running children --------------------------------------------------------------------------


def write_target_module(directory: Path, source: str = TARGET_SOURCE) -> str:
    """A target module with a name never used before; returns the module name."""
    name = f"ttfd_target_{uuid.uuid4().hex[:12]}"
    (directory / f"{name}.py").write_text(source)
    return name


PRELOAD = {"MCSAMPLE_PRELOAD": "1"}  # --no-preload: "0"


def child_env(cache_dir: Path) -> dict:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(PRELOAD)
    return env


def run_child(module_dir: Path, module: str, cache_dir: Path, max_wait: float, data: str) -> dict:
    _report.wait_for_quiet(max_wait=max_wait)
    start = _report.cpu_snapshot()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawn = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, repr(spawn), str(module_dir), module, str(DIM), data],
                          capture_output=True, text=True, env=child_env(cache_dir), cwd=module_dir)
    process_total = time.time() - spawn
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (exit {proc.returncode}):\n{proc.stderr}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    marks = json.loads(line[len("RESULT "):])
    marks["sample_other"] = marks["sample_total"] - marks["compile_time"] - marks["wall_time"]
    marks["process_total"] = process_total
    # CPU seconds (user + system) of the child: what load inflates least; the child is mostly one
    # thread, so on a quiet machine its wall time is about this (minus the background import's overlap)
    marks["process_cpu"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    marks["others_load"] = _report.others_load(start, _report.cpu_snapshot())
    return marks


def time_command(code: str, cache_dir: Path) -> float:
    """Seconds from spawn to exit of ``python -c code``."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env(cache_dir), capture_output=True)
    return time.perf_counter() - t


def time_arviz_import(cache_dir: Path, through_mcsample: bool = False) -> float:
    """Seconds of ``import arviz`` in a fresh process that has imported mcsample (so numpy and
    numba are loaded): what ``sample()`` pays when it builds its first InferenceData (ArviZ 0.x;
    on 1.x ``sample()`` does not import ArviZ). ``through_mcsample``: as mcsample imports it, with
    ArviZ's numba ufunc served from the cache that (0) filled."""
    what = "from mcsample import _arviz; _arviz._az()" if through_mcsample else "import arviz"
    code = (f"import time, warnings, mcsample; t = time.perf_counter()\n"
            f"with warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n    {what}\n"
            "print(time.perf_counter() - t)")
    proc = subprocess.run([sys.executable, "-c", code], check=True, env=child_env(cache_dir),
                          capture_output=True, text=True)
    return float(proc.stdout.strip().splitlines()[-1])


def repetition(rep: int, max_wait: float) -> dict:
    """Situations (0), (a), (b), (c) in order, sharing one fresh NUMBA_CACHE_DIR."""
    with tempfile.TemporaryDirectory(prefix="mcsample_ttfd_") as tmp:
        tmp = Path(tmp)
        cache = tmp / "numba_cache"
        cache.mkdir()
        prime = write_target_module(tmp, PRIME_SOURCE)
        module_a, module_b = write_target_module(tmp), write_target_module(tmp)
        out = {}
        for key, module, data in (("0", prime, "stacked"), ("a", module_a, "pair"), ("b", module_b, "pair"),
                                  ("c", module_b, "pair")):
            out[key] = run_child(tmp, module, cache, max_wait, data)
            print(f"  rep {rep} ({key}) {SITUATIONS[key]}: first draw after "
                  f"{out[key]['first_draw_since_spawn']:.2f} s (others' load {out[key]['others_load'] or 0:.2f} cores)",
                  flush=True)
        out["context"] = {"python -c pass (spawn to exit)": time_command("pass", cache),
                          "import arviz after import mcsample (in-process)": time_arviz_import(cache),
                          "mcsample's import of arviz (numba ufunc cached)": time_arviz_import(cache, True)}
        return out


# -- summary -----------------------------------------------------------------------------------


def medians(reps: list[dict]) -> dict:
    summary = {}
    for key in SITUATIONS:
        summary[key] = {col: statistics.median(r[key][col] for r in reps) for col, _ in COLUMNS}
        summary[key]["others_load_max"] = max(r[key]["others_load"] or 0.0 for r in reps)
        goal = GOALS[key]
        summary[key]["goal_s"] = goal
        summary[key]["meets_goal"] = None if goal is None else summary[key]["first_draw_since_spawn"] <= goal
    summary["context"] = {k: statistics.median(r["context"][k] for r in reps) for k in reps[0]["context"]}
    return summary


def table(summary: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["situation"] + [h for _, h in COLUMNS] + ["goal", "others' load"]
    rows = []
    for key, what in SITUATIONS.items():
        s = summary[key]
        goal = "report only" if s["goal_s"] is None else (
            f"≤ {s['goal_s']:g} s: {'met' if s['meets_goal'] else 'NOT met'}")
        rows.append([f"({key}) {what}"] + [f"{s[col]:.3f}" for col, _ in COLUMNS]
                    + [goal, f"{s['others_load_max']:.2f}"])
    return headers, rows


def markdown_report(summary, n_reps, machine, versions, no_preload=False) -> str:
    headers, rows = table(summary)
    context = ", ".join(f"{k}: {v:.3f} s" for k, v in summary["context"].items())
    flags = f" --reps {n_reps}" + (" --no-preload" if no_preload else "")
    title = "Time to first draw" + (" without the background import (MCSAMPLE_PRELOAD=0)" if no_preload else "")
    return (f"# {title}\n\n"
            f"Generated by `python benchmarks/time_to_first_draw.py{flags}`.\n\n"
            f"{_report.environment_markdown(machine, versions)}\n"
            f"Seconds, **median over {n_reps} repetitions**, each in fresh processes sharing a fresh "
            "`NUMBA_CACHE_DIR` in the order (0), (a), (b), (c); new d=100 diagonal-Gaussian target "
            "modules, data types (float64[:, ::1],) in (0) and (float64[::1], float64[::1]) after; "
            "`mc.sample(..., draws=1, tune=0, "
            f"chains=1)`; background import of ArviZ/xarray from `Target(...)` {'off' if no_preload else 'on'}. 'sample() other' = total - compile_time - wall_time. 'process CPU': the child's "
            "user + system CPU seconds (load inflates it least). 'others' load': the "
            "largest, over the repetitions, average number of cores other processes kept busy while "
            "the child ran (each child first waits up to --max-wait s for a quiet machine). Method: "
            "docstring of `benchmarks/time_to_first_draw.py`.\n\n"
            + _report.markdown_table(headers, rows)
            + f"\n\nFor context: {context}.\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="repetitions of (0), (a), (b), (c)")
    p.add_argument("--out", default=str(_report.RESULTS_DIR), help="directory for the result files")
    p.add_argument("--max-wait", type=float, default=60.0,
                   help="seconds to wait before each process for other processes to fall below 0.2 cores")
    p.add_argument("--no-preload", action="store_true",
                   help="children run with MCSAMPLE_PRELOAD=0 (no background import; results get a _no_preload suffix)")
    args = p.parse_args(argv)
    if args.no_preload:
        PRELOAD["MCSAMPLE_PRELOAD"] = "0"
    machine = _report.machine_info()
    versions = _report.package_versions(PACKAGES)
    reps = [repetition(i + 1, args.max_wait) for i in range(args.reps)]
    summary = medians(reps)
    headers, rows = table(summary)
    print(f"\nMedian over {args.reps} repetitions (seconds):\n")
    print(_report.text_table(headers, rows))
    print("\ncontext: " + ", ".join(f"{k} {v:.3f} s" for k, v in summary["context"].items()))
    data = {"description": "time from process start to the first NUTS draw; see benchmarks/time_to_first_draw.py",
            "machine": machine, "versions": versions, "dim": DIM, "situations": SITUATIONS,
            "goals_s": GOALS, "preload": not args.no_preload, "summary_median": summary, "repetitions": reps}
    name = "time_to_first_draw_no_preload" if args.no_preload else "time_to_first_draw"
    paths = _report.write_results(name, data, markdown_report(summary, args.reps, machine, versions, args.no_preload),
                                  args.out)
    print("\nwrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    sys.exit(main())
