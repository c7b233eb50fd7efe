"""Where the time to a new target's first NUTS draw goes, step by step, in one fresh process.

    python benchmarks/first_draw_split.py            # in a fresh process, kernels cached

Complements ``time_to_first_draw.py`` (which times whole processes): a child process imports
mcsample, writes a never-seen target module (time_to_first_draw's diagonal Gaussian, d = 100,
data (float64[::1], float64[::1])) and times, in order:

1. ``import numba`` + ``import mcsample``;
2. numba's first use in the process: loading a trivial cached function (numba loads its typing
   and lowering registries the first time anything is compiled or loaded from the cache);
3. compiling the user's ``logp`` and then ``logp_grad`` (the user's own code);
4. the rest of ``Target(...)``: the guard (compiled per data layout, see mcsample.target) and
   validation;
5. ``sample(draws=1, tune=0, chains=1)``: ``compile_time`` (kernels loaded from numba's cache)
   and the rest (start point, building the result: ArviZ 0.x's import, or xarray's on 1.x).

Run it once to fill the kernels' cache (the first run also compiles the kernels); the numbers of
the second run are the ones to read. Prints a JSON line; nothing is written. The child runs with
``MCSAMPLE_PRELOAD=0``: the background import that ``Target(...)`` otherwise starts would share
the CPU with the steps timed here, so each step is timed alone and the result's import lands in
step 5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from time_to_first_draw import TARGET_SOURCE

CHILD = r'''
import sys, time, json
marks = {}
t = time.perf_counter()
import numba
import mcsample as mc
marks["import numba + mcsample"] = time.perf_counter() - t
import numpy as np
t = time.perf_counter()
from mcsample._core.hamiltonian import dot
dot(np.zeros(2), np.zeros(2))
marks["numba first use (a cached function)"] = time.perf_counter() - t
sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
dim = 100
mean, scale = np.zeros(dim), np.geomspace(0.1, 10.0, dim)
x = np.zeros(dim)
t = time.perf_counter()
module.logp(x, mean, scale)
marks["user logp compile"] = time.perf_counter() - t
t = time.perf_counter()
module.logp_grad(x, mean, scale)
marks["user logp_grad compile"] = time.perf_counter() - t
t = time.perf_counter()
target = mc.Target(module.logp, dim, logp_grad=module.logp_grad, args=(mean, scale))
marks["Target(...) rest: guard + validation"] = time.perf_counter() - t
t = time.perf_counter()
idata = mc.sample(target, "nuts", draws=1, tune=0, chains=1, seed=0, progressbar=False)
total = time.perf_counter() - t
marks["sample() compile_time (kernels from cache)"] = float(idata.attrs["compile_time"])
marks["sample() rest (result: ArviZ/xarray import)"] = total - float(idata.attrs["compile_time"])
print("RESULT " + json.dumps(marks))
'''


def main():
    with tempfile.TemporaryDirectory(prefix="mcsample_split_") as tmp:
        name = f"split_target_{uuid.uuid4().hex[:12]}"
        (Path(tmp) / f"{name}.py").write_text(TARGET_SOURCE)
        t = time.time()
        env = dict(os.environ, MCSAMPLE_PRELOAD="0")
        proc = subprocess.run([sys.executable, "-c", CHILD, tmp, name], capture_output=True, text=True, cwd=tmp,
                              env=env)
        if proc.returncode:
            raise RuntimeError(proc.stderr)
        marks = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])
        marks["process total"] = time.time() - t
    for k, v in marks.items():
        print(f"{v:8.3f} s  {k}")
    print(json.dumps(marks))


if __name__ == "__main__":
    main()
