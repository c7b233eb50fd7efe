"""Adversarial probes of the public API (``mc.Target``, ``mc.sample``, ``mc.compare``, the
``mcsample`` command) on inputs and targets nobody tuned for, every registered sampler.

    python benchmarks/api_fuzz.py                     # all sections -> results/api_fuzz.{md,json}
    python benchmarks/api_fuzz.py target sample cli   # some sections (the md keeps the others' last rows)
    /tmp/venv312/bin/python benchmarks/api_fuzz.py contract   # ArviZ 1.x -> results/api_fuzz_py312.json

A probe passes when the API either works (and the result is sane: finite draws, the support kept,
the layout DESIGN.md states) or raises a ``ValueError`` whose message names the argument; a
numba TypingError, an AttributeError, a ZeroDivisionError, a hang or silent garbage fails it.
``BEFORE`` records what each probe did at 79ab502 (the session's start), before the fixes of
``tests/test_api_inputs.py``; the table shows it next to what happens now.

Sections: ``target`` (constructor inputs), ``sample`` (arguments of sample()), ``settings`` (every
field of every family given a value of the wrong type, NaN, or out of range), ``odd`` (odd but valid
targets x every sampler), ``contract`` (bit-identity across executors and NUMBA_NUM_THREADS,
Ctrl-C, the result's groups/dims/coords/attrs and a netCDF round trip), ``cli`` (compare and
the command line).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import mcsample as mc
from mcsample.samplers import _REGISTRY

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MARKOV = [n for n in sorted(_REGISTRY) if _REGISTRY[n].kind == "markov"]
PARTICLE_BUDGET = 4e5  # per sample() call of a particle sampler (2 runs x 20 particles): 1e4 a particle
SMALL = dict(draws=20, tune=20, chains=2, seed=1, progressbar=False)


# -- targets ------------------------------------------------------------------------------------

@numba.njit(cache=True)
def gauss(x, c):
    return -0.5 * np.sum((x - c) ** 2)


@numba.njit(cache=True)
def gauss_grad(x, c):
    return -0.5 * np.sum((x - c) ** 2), -(x - c)


@numba.njit(cache=True)
def scaled(x, s):
    return -0.5 * np.sum(x * x) / s


@numba.njit(cache=True)
def half_space(x, c):
    return -0.5 * np.sum(x * x) if x[0] > 0 else -np.inf


@numba.njit(cache=True)
def half_space_grad(x, c):
    return (-0.5 * np.sum(x * x), -x.copy()) if x[0] > 0 else (-np.inf, np.zeros(x.size))


@numba.njit(cache=True)
def flat_box(x, c):  # zero gradient on |x_i| < 1, Gaussian tails outside
    s = 0.0
    for v in x:
        a = abs(v) - 1.0
        if a > 0:
            s -= 0.5 * a * a
    return s


@numba.njit(cache=True)
def flat_box_grad(x, c):
    s, g = 0.0, np.zeros(x.size)
    for i in range(x.size):
        a = abs(x[i]) - 1.0
        if a > 0:
            s -= 0.5 * a * a
            g[i] = -a * np.sign(x[i])
    return s, g


@numba.njit(cache=True)
def _reciprocal(v):
    return 1.0 / v


@numba.njit(cache=True)
def raises_below(x, c):  # ZeroDivisionError for x[0] < -1
    if x[0] < -1.0:
        _reciprocal(0.0)
    return -0.5 * np.sum(x * x)


@numba.njit(cache=True)
def raises_below_grad(x, c):
    if x[0] < -1.0:
        _reciprocal(0.0)
    return -0.5 * np.sum(x * x), -x.copy()


@numba.njit(cache=True)
def mixed(x, a, b, n, f):  # data of four dtypes: float32, int32, a Python int, a numpy float
    d = x - a[:x.size] - 0.0 * b[:x.size]
    return -0.5 * np.sum(d * d) * f * (n / n)


@numba.njit(cache=True)
def mixed_grad(x, a, b, n, f):
    d = x - a[:x.size] - 0.0 * b[:x.size]
    return -0.5 * np.sum(d * d) * f * (n / n), -d * f


def py_logp(x, c):
    return -0.5 * float(np.sum((x - c) ** 2))


def py_logp_grad(x, c):
    return -0.5 * float(np.sum((x - c) ** 2)), -(x - c)


def py_raises(x, c):
    if x[0] < -1.0:
        raise RuntimeError(f"undefined at {x}")
    return -0.5 * float(np.sum(x * x))


def py_raises_grad(x, c):
    if x[0] < -1.0:
        raise RuntimeError(f"undefined at {x}")
    return -0.5 * float(np.sum(x * x)), -x


@numba.njit(cache=True)
def returns_array(x, c):
    return -0.5 * x * x


@numba.njit(cache=True)
def returns_nan(x, c):
    return np.nan


@numba.njit(cache=True)
def returns_int(x, c):
    return 1 if x[0] < 5 else 0


@numba.njit(cache=True)
def returns_float32(x, c):
    return np.float32(-0.5 * np.sum(x * x))


@numba.njit(cache=True)
def grad_short(x, c):
    return -0.5 * np.sum(x * x), -x[:1].copy()


@numba.njit(cache=True)
def grad_2d(x, c):
    return -0.5 * np.sum(x * x), -x.reshape((x.size, 1))


@numba.njit(cache=True)
def grad_float32(x, c):
    return -0.5 * np.sum((x - c) ** 2), (c - x).astype(np.float32)


@numba.njit(cache=True)
def grad_list(x, c):
    return -0.5 * np.sum(x * x), [-x[0], -x[1]]


@numba.njit(cache=True)
def grad_strided(x, c):
    g = np.zeros(2 * x.size)
    g[::2] = c - x
    return -0.5 * np.sum((x - c) ** 2), g[::2]


@numba.njit(cache=True)
def column_mean(x, m):
    return -0.5 * np.sum((x - m[:, 0]) ** 2)


@numba.njit(cache=True)
def column_mean_grad(x, m):
    return -0.5 * np.sum((x - m[:, 0]) ** 2), m[:, 0] - x


def gaussian_target(dim=2):
    return mc.Target(gauss, dim, logp_grad=gauss_grad, args=(np.zeros(dim),))


# -- probing ------------------------------------------------------------------------------------

def outcome(fn, timeout_note=""):
    """(kind, text, warnings): kind "ok" with the function's summary, or the exception's type."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = fn()
            kind, text = "ok", str(summary)
        except KeyboardInterrupt as err:
            kind, text = "KeyboardInterrupt", str(err)
        except Exception as err:  # noqa: BLE001 - what the probe is for
            kind, text = type(err).__name__, re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    warned = sorted({f"{w.category.__name__}: {str(w.message)[:90]}" for w in caught
                     if not issubclass(w.category, (DeprecationWarning, FutureWarning))
                     and "plain Python callables" not in str(w.message)})
    return kind, " ".join(text.split())[:240], warned, time.perf_counter() - t0


def judge(kind, text, expect):
    """expect: "ok", "error:<regex>" (a ValueError matching it), or "either:<regex>"."""
    if expect == "ok":
        return kind == "ok" and not text.startswith("BAD")
    mode, _, pattern = expect.partition(":")
    is_value_error = kind in ("ValueError", "_ReturnTypeError", "CheckpointMismatch")
    if mode == "error":
        return is_value_error and re.search(pattern, text) is not None
    return (kind == "ok" and not text.startswith("BAD")) or (is_value_error and re.search(pattern, text) is not None)


def run_probes(probes):
    rows = []
    for pid, fn, expect in probes:
        kind, text, warned, seconds = outcome(fn)
        ok = judge(kind, text, expect)
        rows.append(dict(id=pid, kind=kind, text=text, warnings=warned, expect=expect, passed=ok,
                         seconds=round(seconds, 2)))
        print(f"[{'pass' if ok else 'FAIL'}] {pid}: {kind}: {text[:150]}", flush=True)
    return rows


def sample_summary(idata, support=None):
    x = idata.posterior["x"].values
    flat = x.reshape(-1, x.shape[-1])
    bad = "" if np.all(np.isfinite(x)) else "BAD non-finite draws; "
    if support is not None and np.isfinite(x).all() and not support(flat):
        bad += "BAD draws outside the support; "
    return (f"{bad}shape {x.shape}, mean[:2] {np.round(flat.mean(0)[:2], 2).tolist()}, "
            f"sd[:2] {np.round(flat.std(0)[:2], 2).tolist()}, evals {idata.attrs['n_logp'] + idata.attrs['n_grad']}")


def small_run(target, sampler, **kw):
    kw = {**SMALL, **kw}
    cls = _REGISTRY.get(sampler) if isinstance(sampler, str) else None
    if cls is not None and cls.kind != "markov":
        kw.setdefault("max_evals", PARTICLE_BUDGET)
    return mc.sample(target, sampler, **kw)


# -- sections -----------------------------------------------------------------------------------

def section_target():
    c = np.zeros(2)
    T = mc.Target
    gt = gaussian_target()
    P = []
    for dim in ["2", 2.0, None, [2], True, 0, -1]:
        P.append((f"dim={dim!r}", lambda dim=dim: T(gauss, dim, args=(c,)), "error:dim must be"))
    P.append(("dim=np.int64(2)", lambda: T(gauss, np.int64(2), args=(c,)).dim, "ok"))
    P += [
        ("logp returns int", lambda: T(returns_int, 2, args=(c,)).logp(np.zeros(2)), "ok"),
        ("logp returns float32 (gpss run)",
         lambda: sample_summary(small_run(T(returns_float32, 2, args=(c,)), "gpss")), "ok"),
        ("logp returns an array", lambda: T(returns_array, 2, args=(c,)), "error:logp must return a float"),
        ("logp NaN everywhere", lambda: T(returns_nan, 2, args=(c,)), "error:not finite"),
        ("logp_grad gradient too short", lambda: T(gauss, 2, logp_grad=grad_short, args=(c,)),
         "error:gradient of shape \\(2,\\)"),
        ("logp_grad gradient (d, 1)", lambda: T(gauss, 2, logp_grad=grad_2d, args=(c,)),
         "error:gradient of shape \\(2,\\)"),
        ("logp_grad gradient a list", lambda: T(gauss, 2, logp_grad=grad_list, args=(c,)),
         "error:logp_grad could not be compiled"),
        ("logp_grad float32 gradient (nuts run)",
         lambda: sample_summary(small_run(T(gauss, 2, logp_grad=grad_float32, args=(c,)), "nuts")), "ok"),
        ("logp_grad strided gradient (nuts run)",
         lambda: sample_summary(small_run(T(gauss, 2, logp_grad=grad_strided, args=(c,)), "nuts")), "ok"),
        ("args float32 array (nuts run)",
         lambda: sample_summary(small_run(T(gauss, 2, logp_grad=gauss_grad, args=(np.zeros(2, np.float32),)), "nuts")),
         "ok"),
        ("args int64 array", lambda: T(gauss, 2, args=(np.zeros(2, np.int64),)).logp(np.ones(2)), "ok"),
        ("args given as a list", lambda: T(gauss, 2, args=[c]).logp(np.ones(2)), "ok"),
        ("args not a tuple (an array)", lambda: T(gauss, 2, args=c), "error:args must be a tuple"),
        ("args Fortran-ordered 2-D (nuts run)",
         lambda: sample_summary(small_run(T(column_mean, 2, logp_grad=column_mean_grad,
                                            args=(np.asfortranarray(np.arange(6.0).reshape(2, 3)),)), "nuts")), "ok"),
        ("args strided 2-D view (nuts run)",
         lambda: sample_summary(small_run(T(column_mean, 2, logp_grad=column_mean_grad,
                                            args=(np.arange(12.0).reshape(2, 6)[:, ::2],)), "nuts")), "ok"),
        ("args Python float scalar", lambda: T(scaled, 2, args=(2.0,)).logp(np.ones(2)), "ok"),
        ("args Python int scalar", lambda: T(scaled, 2, args=(2,)).logp(np.ones(2)), "ok"),
        ("args 0-d array", lambda: f"logp(1, 1) = {T(scaled, 2, args=(np.array(2.0),)).logp(np.ones(2))}", "ok"),
        ("args None (gpss run)", lambda: sample_summary(small_run(T(lambda_free_gauss, 2, args=(None,)), "gpss")), "ok"),
        ("args big-endian float64 array", lambda: T(gauss, 2, args=(np.zeros(2, ">f8"),)).logp(np.ones(2)), "ok"),
        ("args float128 array", lambda: T(gauss, 2, args=(np.zeros(2, np.longdouble),)),
         "error:args\\[0\\].*cannot be passed to numba"),
        ("args dict", lambda: T(gauss, 2, args=({"a": 1},)), "error:args\\[0\\].*cannot be passed to numba"),
        ("names as one string 'ab'", lambda: T(gauss, 2, args=(c,), names="ab").names, "error:names must be a list"),
        ("names as one string, dim 1", lambda: T(gauss, 1, args=(np.zeros(1),), names="mu").names, "ok"),
        ("names of the wrong length", lambda: T(gauss, 2, args=(c,), names=["a"]), "error:names has 1"),
        ("names duplicated", lambda: T(gauss, 2, args=(c,), names=["a", "a"]), "error:names must be unique"),
        ("test_point of the wrong shape", lambda: T(gauss, 2, args=(c,), test_point=np.zeros(3)),
         "error:x must have shape"),
        ("test_point outside the support", lambda: T(half_space, 2, args=(c,), test_point=-np.ones(2)),
         "error:test_point"),
        ("logp not callable", lambda: T(3.0, 2), "error:logp must be callable"),
        ("repr", lambda: repr(gt), "ok"),
    ]
    return run_probes(P)


@numba.njit(cache=True)
def lambda_free_gauss(x, unused):
    return -0.5 * np.sum(x * x)


def section_sample():
    t = gaussian_target()
    base = small_run(t, "gpss").posterior["x"].values

    def same_as_seed_1(seed):
        r = small_run(t, "gpss", seed=seed)
        r.to_netcdf(str(RESULTS / ".api_fuzz_tmp.nc"))
        return f"seed attr {r.attrs['seed']!r}; same draws as seed=1: {np.array_equal(r.posterior['x'].values, base)}"

    def netcdf(seed):
        r = small_run(t, "nuts", seed=seed)
        r.to_netcdf(str(RESULTS / ".api_fuzz_tmp.nc"))
        return f"written; attrs seed {r.attrs['seed']!r}, interrupted {r.attrs['interrupted']!r}"

    P = [
        ("result.to_netcdf, seed=1", lambda: netcdf(1), "ok"),
        ("result.to_netcdf, seed=None", lambda: netcdf(None), "ok"),
        ("result.to_netcdf, seed=2**70", lambda: netcdf(2**70), "ok"),
        ("seed=np.int64(1)", lambda: same_as_seed_1(np.int64(1)), "ok"),
        ("seed=SeedSequence(1)", lambda: same_as_seed_1(np.random.SeedSequence(1)), "ok"),
        ("seed=np.random.default_rng(1)", lambda: same_as_seed_1(np.random.default_rng(1)), "ok"),
        ("seed=-1", lambda: small_run(t, "gpss", seed=-1), "error:seed must be"),
        ("seed=1.5", lambda: small_run(t, "gpss", seed=1.5), "error:seed must be"),
        ("seed='1'", lambda: small_run(t, "gpss", seed="1"), "error:seed must be"),
        ("seed=[1, 2]", lambda: small_run(t, "gpss", seed=[1, 2]), "error:seed must be"),
        ("draws=0", lambda: small_run(t, "gpss", draws=0), "error:draws must be"),
        ("draws=1.5", lambda: small_run(t, "gpss", draws=1.5), "error:draws must be"),
        ("draws=True", lambda: small_run(t, "gpss", draws=True), "error:draws must be"),
        ("chains=0", lambda: small_run(t, "gpss", chains=0), "error:chains must be"),
        ("tune=-1", lambda: small_run(t, "gpss", tune=-1), "error:tune must be"),
        ("tune=0", lambda: sample_summary(small_run(t, "gpss", tune=0)), "ok"),
        ("init of shape (3, 2) for 2 chains", lambda: small_run(t, "gpss", init=np.zeros((3, 2))),
         "error:init must have shape"),
        ("init a scalar", lambda: small_run(t, "gpss", init=0.5), "error:init must have shape"),
        ("init a string", lambda: small_run(t, "gpss", init="ab"), "error:init must be"),
        ("init complex", lambda: small_run(t, "gpss", init=np.array([1 + 1j, 0])), "error:init must be"),
        ("init non-finite", lambda: small_run(t, "gpss", init=[np.inf, 0.0]), "error:init contains non-finite"),
        ("init outside the support",
         lambda: small_run(mc.Target(half_space, 2, args=(0,)), "gpss", init=-np.ones(2)), "error:not finite at the given init"),
        ("max_evals=0", lambda: small_run(t, "gpss", max_evals=0), "error:max_evals must be"),
        ("max_evals=nan", lambda: small_run(t, "gpss", max_evals=np.nan), "error:max_evals must be"),
        ("max_evals=inf", lambda: small_run(t, "gpss", max_evals=np.inf), "error:max_evals must be"),
        ("max_evals='100'", lambda: small_run(t, "gpss", max_evals="100"), "error:max_evals must be"),
        ("max_evals=True", lambda: small_run(t, "gpss", max_evals=True), "error:max_evals must be"),
        ("max_evals=10 (spent in warmup)", lambda: sample_summary(small_run(t, "gpss", max_evals=10)), "ok"),
        ("executor='threads'", lambda: small_run(t, "gpss", executor="threads"), "error:executor must be"),
        ("target a numba function", lambda: mc.sample(gauss, "gpss"), "error:target must be an mcsample.Target"),
        ("target None", lambda: mc.sample(None, "gpss"), "error:target must be an mcsample.Target"),
        ("gradient sampler, no gradient", lambda: small_run(mc.Target(gauss, 2, args=(np.zeros(2),)), "nuts"),
         "error:needs a gradient.*gradient-free samplers"),
    ]
    for name, hint in [("NUTS", "nuts"), ("hit_and_run", "hit_and_run_slice"), ("elliptical", "elliptical_slice"),
                       ("walkjump", "walk_jump"), ("rdMC", "rdmc"), ("hmc", None)]:
        want = f"did you mean '{hint}'" if hint else "unknown sampler 'hmc'; available"
        P.append((f"sampler={name!r}", lambda name=name: small_run(t, name), f"error:{want}"))
    P += [
        ("sampler=None", lambda: small_run(t, None), "error:sampler must be a name"),
        ("sampler a settings class, not an instance", lambda: small_run(t, mc.samplers.NUTS), "error:sampler must be"),
        ("setting misspelled max_treedepth", lambda: small_run(t, "nuts", max_treedepth=5),
         "error:did you mean 'max_depth'"),
        ("setting misspelled width (gpss)", lambda: small_run(t, "gpss", width=2.0), "error:valid settings: .*\\bw\\b"),
    ]

    def ctrl_c_gpss():
        with ctrl_c_at_wait(2):
            r = mc.sample(t, "gpss", draws=200_000, tune=10, chains=2, seed=1, progressbar=False)
        return f"interrupted={r.attrs['interrupted']!r}, draws {r.posterior['x'].shape[1]}"

    P.append(("Ctrl-C mid-run (gpss)", ctrl_c_gpss, "ok"))
    rows = run_probes(P)
    (RESULTS / ".api_fuzz_tmp.nc").unlink(missing_ok=True)
    return rows


@contextlib.contextmanager
def ctrl_c_at_wait(nth):
    """Ctrl-C as the user presses it: the ``nth`` time ``sample`` waits for its chains, the wait
    raises KeyboardInterrupt (earlier waits time out after 0.05 s so the run goes on meanwhile)."""
    sample_module = importlib.import_module("mcsample.sample")
    real_wait, calls = sample_module.cf.wait, {"n": 0}

    def wait(fs, timeout=None):
        calls["n"] += 1
        if calls["n"] == nth:
            raise KeyboardInterrupt
        return real_wait(fs, timeout=0.05)

    sample_module.cf.wait = wait
    try:
        yield
    finally:
        sample_module.cf.wait = real_wait


def bad_values(annotation):
    kind = annotation.split(" |")[0]
    return {"int": [-1, 0, 2.5, "3", True], "float": [-1.0, 0.0, float("nan"), float("inf"), "0.1"],
            "bool": ["yes", 2], "str": ["nonsense", 3], "tuple": [(1.0,), "ab"],
            "np.ndarray": [np.zeros(3), np.full(2, np.nan)]}.get(kind, [])


def section_settings():
    """Every field of every family with bad values: a ValueError, or a run that stays sane."""
    t = gaussian_target()
    rows = []
    for name in sorted(_REGISTRY):
        for f in dataclasses.fields(_REGISTRY[name]):
            for value in bad_values(str(f.type)):
                def fn(name=name, f=f, value=value):
                    kw = dict(draws=10, tune=10, chains=1, seed=1, progressbar=False)
                    return sample_summary(small_run(t, name, **{f.name: value}, **kw))
                kind, text, warned, seconds = outcome(fn)
                ok = judge(kind, text, f"either:{f.name}")
                rows.append(dict(id=f"{name}.{f.name}={value!r}", kind=kind, text=text, warnings=warned,
                                 expect="ValueError naming the setting, or a sane run", passed=ok,
                                 seconds=round(seconds, 2)))
                if not ok or kind == "ok":
                    print(f"[{'pass' if ok else 'FAIL'}] {name}.{f.name}={value!r}: {kind}: {text[:120]}", flush=True)
    return rows


def section_odd():
    c2 = np.zeros(2)
    targets = {
        "dim 1": (lambda: gaussian_target(1), None),
        "half-space support (x0 > 0)": (lambda: mc.Target(half_space, 2, logp_grad=half_space_grad, args=(0,)),
                                        lambda x: np.all(x[:, 0] > 0)),
        "flat box (zero gradient)": (lambda: mc.Target(flat_box, 2, logp_grad=flat_box_grad, args=(0,)), None),
        "raises for x0 < -1 (numba)": (lambda: mc.Target(raises_below, 2, logp_grad=raises_below_grad, args=(0,)),
                                       lambda x: np.all(x[:, 0] >= -1)),
        "plain Python callables": (lambda: mc.Target(py_logp, 2, logp_grad=py_logp_grad, args=(c2,)), None),
        "plain Python, raises for x0 < -1": (lambda: mc.Target(py_raises, 2, logp_grad=py_raises_grad, args=(0,)),
                                             lambda x: np.all(x[:, 0] >= -1)),
        "data of four dtypes": (lambda: mc.Target(mixed, 2, logp_grad=mixed_grad,
                                                  args=(np.zeros(3, np.float32), np.ones(3, np.int32), 5,
                                                        np.float64(1.0))), None),
    }
    rows = []
    for tname, (make, support) in targets.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target = make()
        python = tname.startswith("plain")
        for sampler in sorted(_REGISTRY):
            kw = {"max_evals": PARTICLE_BUDGET / 10} if python and _REGISTRY[sampler].kind != "markov" else {}
            fn = (lambda target=target, sampler=sampler, kw=kw: sample_summary(small_run(target, sampler, **kw), support))
            kind, text, warned, seconds = outcome(fn)
            # a clear refusal is fine; so are draws outside a bounded support when the run warned
            # about them (the diffusion families' known limit, README)
            warned_support = any("outside the target's supp" in w for w in warned)  # messages cut at 90 characters
            ok = judge(kind, text, "either:.") or (text.startswith("BAD draws outside") and warned_support)
            rows.append(dict(id=f"{tname} / {sampler}", kind=kind, text=text, warnings=warned, expect="either",
                             passed=ok, seconds=round(seconds, 2)))
            print(f"[{'pass' if ok else 'FAIL'}] {tname} / {sampler}: {kind}: {text[:130]} {warned[:1]}", flush=True)
    return rows


def section_dim200():
    """Every sampler at its defaults on a standard Gaussian in d = 200 (one chain or run of 20, seed 1):
    whether it works, and its wall time with compilation (a shared, loaded machine: the time is a
    warning sign, not a benchmark)."""
    t = gaussian_target(200)
    rows = []

    def cma_search():  # what each slice chain (find_bulk=True, the default) does before its warmup
        from mcsample._core.bulk import find_bulk
        t0 = time.perf_counter()
        bulk = find_bulk(t.logp_fn, t.kernel_args, np.random.default_rng(1).uniform(-2, 2, 200), np.random.default_rng(1))
        fields = {k: getattr(bulk, k) for k in getattr(bulk, "_fields", ()) if np.ndim(getattr(bulk, k)) == 0}
        return f"one chain's bulk search: {time.perf_counter() - t0:.0f} s, {fields}"

    kind, text, warned, seconds = outcome(cma_search)
    rows.append(dict(id="d = 200 / slice samplers' CMA-ES bulk search", kind=kind, text=text, warnings=warned,
                     expect="timing", passed=kind == "ok", seconds=round(seconds, 2)))
    print(f"[time] d = 200 CMA-ES search: {kind}: {text[:200]}", flush=True)
    for sampler in sorted(_REGISTRY):
        if getattr(_REGISTRY[sampler](), "find_bulk", False) is True:
            continue  # minutes per chain in the search above (eigendecompositions of 200 x 200 each generation)
        kw = dict(chains=1)
        if _REGISTRY[sampler].kind != "markov":
            kw["max_evals"] = 2e6  # 1e5 evaluations a particle
        fn = (lambda sampler=sampler, kw=kw: sample_summary(small_run(t, sampler, **kw)))
        kind, text, warned, seconds = outcome(fn)
        ok = judge(kind, text, "either:.")
        rows.append(dict(id=f"d = 200 / {sampler}", kind=kind, text=f"{text} ({seconds:.0f} s)", warnings=warned,
                         expect="either", passed=ok, seconds=round(seconds, 2)))
        print(f"[{'pass' if ok else 'FAIL'}] d = 200 / {sampler}: {kind}: {text[:130]} ({seconds:.0f} s)", flush=True)
    return rows


def draws_digest(threads_env=None):
    """sha256 of every sampler's draws (seed 1), here or in a subprocess with NUMBA_NUM_THREADS."""
    if threads_env is not None:
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads_env)}
        out = subprocess.run([sys.executable, __file__, "--digests"], env=env, capture_output=True, text=True,
                             timeout=1800)
        return json.loads(out.stdout.strip().splitlines()[-1])
    t = gaussian_target(3)
    digests = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(_REGISTRY):
            x = small_run(t, name).posterior["x"].values
            digests[name] = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
    return digests


def section_contract():
    t = gaussian_target(3)
    rows = []
    with_threads_env = {n: draws_digest(n) for n in (1, 2)}
    for name in sorted(_REGISTRY):
        particles = _REGISTRY[name].kind != "markov"

        def identity(name=name):
            a = small_run(t, name).posterior["x"].values
            with cf.ThreadPoolExecutor(max_workers=1) as ex:
                b = small_run(t, name, executor=ex).posterior["x"].values
            d = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
            same_env = with_threads_env[1][name] == with_threads_env[2][name] == d
            if not (np.array_equal(a, b) and same_env):
                return (f"BAD threads vs serial equal {np.array_equal(a, b)}; NUMBA_NUM_THREADS 1/2/here "
                        f"{with_threads_env[1][name]}/{with_threads_env[2][name]}/{d}")
            return f"bit-identical: default threads, one-thread executor, NUMBA_NUM_THREADS=1 and 2 ({d})"

        def layout(name=name):
            from mcsample import _arviz
            r = small_run(t, name)
            groups = set(_arviz.group_names(r))
            x = r.posterior["x"]
            problems = []
            if x.dims != ("chain", "draw", "param") or list(x["param"].values) != t.names:
                problems.append(f"posterior x dims {x.dims}")
            need = {"posterior", "sample_stats"} | ({"step_stats"} if particles else set())
            if not need <= groups:
                problems.append(f"groups {sorted(groups)}")
            for k in ("n_logp", "n_grad", "lp"):
                if k not in r.sample_stats or r.sample_stats[k].dims != ("chain", "draw"):
                    problems.append(f"sample_stats {k}")
            for k in ("sampler", "settings", "seed", "n_logp", "n_grad", "wall_time", "compile_time",
                      "mcsample_version", "interrupted"):
                if k not in r.attrs:
                    problems.append(f"attrs lacks {k}")
            if r.attrs.get("n_logp", 0) + r.attrs.get("n_grad", 0) < int(r.sample_stats["n_logp"].sum()
                                                                          + r.sample_stats["n_grad"].sum()):
                problems.append("attrs totals below the per-draw counts")
            path = RESULTS / f".api_fuzz_{name}.nc"
            try:
                r.to_netcdf(str(path))
                path.unlink()
                written = "netCDF written"
            except ValueError as err:
                if "backend libraries" not in str(err):
                    raise
                written = "netCDF not tried: no netCDF backend in this environment (pyproject requires h5netcdf)"
            return ("BAD " + "; ".join(problems)) if problems else f"groups {sorted(groups)}, dims and attrs ok; {written}"

        def ctrl_c(name=name):
            kw = dict(draws=400, max_evals=None) if particles else dict(draws=500_000, tune=10)
            try:
                with ctrl_c_at_wait(3):
                    r = mc.sample(t, name, chains=2, seed=1, progressbar=False, **kw)
                return f"returned: interrupted={r.attrs['interrupted']!r}, draws {r.posterior['x'].shape[1]}"
            except KeyboardInterrupt as err:
                if particles and "nothing is returned" in str(err):
                    return "KeyboardInterrupt before any run ended (documented: a partial population is no sample)"
                raise

        for pid, fn in (("same seed, bit-identical", identity), ("result layout + netCDF", layout),
                        ("Ctrl-C", ctrl_c)):
            kind, text, warned, seconds = outcome(fn)
            ok = judge(kind, text, "ok")
            rows.append(dict(id=f"{name}: {pid}", kind=kind, text=text, warnings=warned, expect="ok", passed=ok,
                             seconds=round(seconds, 2)))
            print(f"[{'pass' if ok else 'FAIL'}] {name}: {pid}: {kind}: {text[:140]}", flush=True)
    return rows


def section_cli():
    t = gaussian_target()
    P = [
        ("compare budget=-5", lambda: mc.compare(t, ["nuts", "gpss"], budget=-5, progressbar=False),
         "error:budget must be"),
        ("compare chains=0", lambda: mc.compare(t, ["nuts"], budget=1e4, chains=0, progressbar=False),
         "error:chains must be"),
        ("compare unknown sampler", lambda: mc.compare(t, "nuts,foo", budget=1e4, progressbar=False),
         "error:unknown sampler 'foo'"),
        ("compare no samplers", lambda: mc.compare(t, "", budget=1e4, progressbar=False), "error:no samplers given"),
        ("compare budget too small for warmup",
         lambda: str(mc.compare(t, ["nuts"], budget=100, progressbar=False)["status"].values[0]), "ok"),
    ]
    rows = run_probes(P)

    def cli(*argv):
        out = subprocess.run([sys.executable, "-m", "mcsample", *argv], capture_output=True, text=True, timeout=900,
                             cwd=str(HERE.parent))
        return out.returncode, (out.stdout + out.stderr).strip()

    for argv, want_rc, want in [
        (["--help"], 0, "usage: mcsample"), ([], 2, "required: command"), (["frobnicate"], 2, "invalid choice"),
        (["sample", "nosuch", "--no-progress"], 2, "unknown target 'nosuch'"),
        (["sample", "std_normal", "--sampler", "NUTS", "--no-progress"], 2, "did you mean 'nuts'"),
        (["sample", "std_normal", "--draws", "0", "--no-progress"], 2, "draws must be"),
        (["sample", "std_normal", "--seed", "-3", "--no-progress"], 2, "seed must be"),
        (["sample", "std_normal", "--draws", "x"], 2, "invalid int value"),
        (["compare", "--budget", "0", "--target", "std_normal", "--samplers", "nuts", "--no-progress"], 2,
         "budget must be"),
        (["compare", "--chains", "0", "--target", "std_normal", "--samplers", "nuts", "--no-progress"], 2,
         "chains must be"),
        (["compare", "--samplers", "foo", "--target", "std_normal", "--no-progress"], 2, "unknown sampler 'foo'"),
    ]:
        t0 = time.perf_counter()
        rc, text = cli(*argv)
        last = " ".join(text.splitlines()[-1:])[:200] if rc else " ".join(text.splitlines()[:1])[:200]
        ok = rc == want_rc and want in text and "Traceback" not in text
        rows.append(dict(id="mcsample " + " ".join(argv), kind=f"exit {rc}", text=last, warnings=[],
                         expect=f"exit {want_rc}, '{want}'", passed=ok, seconds=round(time.perf_counter() - t0, 2)))
        print(f"[{'pass' if ok else 'FAIL'}] mcsample {' '.join(argv)}: exit {rc}: {last[:120]}", flush=True)
    return rows


SECTIONS = {"target": section_target, "sample": section_sample, "settings": section_settings, "odd": section_odd,
            "contract": section_contract, "cli": section_cli, "dim200": section_dim200}

# What the probes did at 79ab502, before this session's fixes (the same probes, run by hand).
BEFORE = {
    "args 0-d array": "_ReturnTypeError: logp must return a float, got ndarray (the 0-d array arrived 1-d)",
    "args big-endian float64 array": "NumbaValueError: Unsupported array dtype: >f8 (no argument named)",
    "args float128 array": "NumbaValueError: Unsupported array dtype: float128 (no argument named)",
    "names as one string 'ab'": "ok: ['a', 'b'] (split into characters)",
    "names as one string, dim 1": "ValueError: names has 2 entries but dim is 1",
    "logp_grad gradient a list": "ValueError with numba's terminal colour codes in the message",
    "result.to_netcdf, seed=1": "CompatibilityError: boolean dtypes are not a supported NetCDF feature (attrs interrupted)",
    "result.to_netcdf, seed=None": "TypeError: Object dtype has no native HDF5 equivalent (128-bit seed), then the bool",
    "result.to_netcdf, seed=2**70": "TypeError: Object dtype has no native HDF5 equivalent",
    "seed=SeedSequence(1)": "TypeError: SeedSequence expects int or sequence of ints",
    "seed=np.random.default_rng(1)": "TypeError: SeedSequence expects int or sequence of ints",
    "seed=-1": "ValueError: expected non-negative integer (no argument named)",
    "seed=1.5": "TypeError: SeedSequence expects int or sequence of ints for entropy not 1.5",
    "seed='1'": "TypeError: SeedSequence expects int or sequence of ints",
    "seed=[1, 2]": "TypeError: int() argument must be ... not 'list'",
    "init a string": "ValueError: could not convert string to float: 'ab' (no argument named)",
    "init complex": "ok: imaginary part dropped silently",
    "max_evals=inf": "OverflowError: cannot convert float infinity to integer",
    "max_evals='100'": "TypeError: '>' not supported between instances of 'str' and 'int'",
    "max_evals=True": "ok: ran with a budget of 1 evaluation",
    "max_evals=10 (spent in warmup)": "ok: (2, 0, 2) draws, no warning",
    "executor='threads'": "AttributeError: 'str' object has no attribute 'submit'",
    "target a numba function": "AttributeError: 'CPUDispatcher' object has no attribute 'dim'",
    "target None": "AttributeError: 'NoneType' object has no attribute 'dim'",
    "sampler='NUTS'": "ValueError: unknown sampler 'NUTS'; available: ... (no suggestion)",
    "sampler='hit_and_run'": "ValueError without a suggestion",
    "sampler='elliptical'": "ValueError without a suggestion",
    "sampler='walkjump'": "ValueError without a suggestion",
    "sampler='rdMC'": "ValueError without a suggestion",
    "setting misspelled max_treedepth": "ValueError listing the 19 valid settings, no suggestion",
    "compare budget=-5": "ok: a table whose every row is 'error: ValueError: max_evals must be positive'",
    "compare chains=0": "ZeroDivisionError: float division by zero",
    "mcsample compare --budget 0 --target std_normal --samplers nuts --no-progress":
        "exit 0: --budget 0 silently meant the default 2e5",
    "mcsample compare --chains 0 --target std_normal --samplers nuts --no-progress":
        "exit 1: ZeroDivisionError traceback",
    "plain Python, raises for x0 < -1 / gpss": "'Exception ignored' printed per call; read as 0.0: chains at |x| ~ 1e6",
    "plain Python, raises for x0 < -1 / hit_and_run_slice": "as gpss: runaway chains",
    "plain Python, raises for x0 < -1 / elliptical_slice": "as gpss: runaway chains",
    "plain Python, raises for x0 < -1 / nuts": "as gpss (gradient 0.0 / garbage)",
}


FINDINGS = """## Defects found, and what was done

Each fixed defect has a regression test in `tests/test_api_inputs.py`; at 79ab502 (before the fixes) 39
of its 42 other tests failed, and the plain-Python test crashed the process (segfault), the 3 that
passed being in-range controls of parametrised tests.

| # | defect (at 79ab502) | fix | where |
|---|---|---|---|
| 1 | a plain Python target that raises, or returns a gradient of the wrong length, at some x inside a run: numba printed \"Exception ignored\" and read 0.0 (chains ran to \\|x\\| ~ 1e6), or the process segfaulted | the object-mode wrapper turns both into NaN (a rejected proposal), as the compiled guard does | `target.py` `_python_logp(_grad)` |
| 2 | `result.to_netcdf()` failed for every result: `attrs[\"interrupted\"]` was a bool, and `seed=None` recorded a 128-bit seed | `interrupted` stored as 0/1; seed=None draws a 63-bit seed; seeds past int64 recorded as strings | `sample.py` |
| 3 | `seed` a SeedSequence or Generator: TypeError; -1, 1.5, '1', [1, 2]: numpy's TypeError/ValueError naming no argument | both accepted (reproducible from `attrs[\"seed\"]`); others `ValueError: seed must be ...` | `sample.py` `_seed_sequence` |
| 4 | `max_evals=inf` OverflowError, `'100'` TypeError, `True` a budget of 1 | `ValueError: max_evals must be a positive, finite number` | `sample.py` |
| 5 | a budget spent in warmup returned 0 draws without a word | `RuntimeWarning: ... no draws kept` | `sample.py` `_assemble` |
| 6 | target not a Target, executor without `submit`: AttributeError | `ValueError` naming the argument | `sample.py` |
| 7 | `init` a string: numpy's message; complex: imaginary part dropped silently | `ValueError: init must be an array of real numbers` | `sample.py` |
| 8 | a particle budget too small to plan: the error quoted the 2-particle compile run's share (5e3 per particle for a real 500) | the run's own start reports it | `sample.py` `_compile` |
| 9 | near-miss sampler names and settings listed the valid ones without a suggestion | `(did you mean 'nuts'?)` | `samplers/__init__.py` |
| 10 | settings of the wrong type (2.5 for an int, a string, NaN, a bool for an int): TypeError from the families' comparisons, or ran (NaN step sizes) | every field checked against its annotation: `ValueError: nuts: setting max_depth must be an integer` | `samplers/__init__.py` |
| 11 | NUTS gamma = 0 / t0 = -1: ZeroDivisionError in warmup; kappa = 0, max_energy_error <= 0 ran | validated | `samplers/nuts.py` |
| 12 | walk_jump tau = -1 ran silently | validated | `samplers/walkjump.py` |
| 13 | a 0-d array in `args` reached the user's function 1-d | kept 0-d | `target.py` `_as_kernel_data` |
| 14 | big-endian arrays (netCDF/FITS data): NumbaValueError naming no argument; float128: the same | converted to native order; unsupported dtypes `ValueError: args[0] ... cannot be passed to numba` | `target.py` |
| 15 | `names=\"ab\"` split into two names silently | `ValueError` (a string is one name when dim = 1) | `target.py` |
| 16 | numba's terminal colour codes in ValueError messages | stripped | `target.py` |
| 17 | `compare(budget=-5)`: a table of per-sampler errors; `chains=0`: ZeroDivisionError; CLI `--budget 0` meant the default | checked before anything runs; CLI exit 2 | `compare.py`, `cli.py` |
| 18 | `mcsample targets \\| head`: BrokenPipeError traceback | exits quietly | `cli.py` |
| 19 | walk_jump `mixture` not a triple: \"not enough values to unpack\" | `ValueError: mixture must be a triple` | `samplers/walkjump.py` |

The `target.py` fixes (1, 13-16) landed in fe3b426 together with the time-to-first-draw helper's shared guard
(both edited the file in the shared tree; that commit took the whole file).

Open, for the families' owners (not fixed here; see the settings and odd sections below): the
range checks of settings whose bad values still run or fail late (rdmc `importance_boost=inf`
OverflowError, rdmc `horizon=inf` reported as \"max_step must be positive, got nan\", multalmc
`noise_scale=inf` NaN draws without an error, multcdiff `cld_friction=inf` ZeroDivisionError, NUTS
`inv_metric` with NaN: a clear message that does not name the setting; the rows marked \"ok\" in the
settings section ran with a value that is probably meaningless, e.g. rdmc `inner_step=-1`, which the
default estimator does not use, and NUTS's Stan-window sizes, which its default nutpie warmup does not use); multalmc returns NaN draws on a target whose log
density raises (is NaN) in a region (2 failing rows of the odd section: warned, but as particles \"outside
the support\"; the Langevin steps carry a NaN gradient on); multalmc/multcdiff leave particles outside a
bounded support (known, warned; README); the slice samplers' default CMA-ES bulk search takes minutes
per chain at d = 200 (the dim200 section: an eigendecomposition of the 200 x 200 covariance each
generation; CMA-ES's usual lazy update would cut it, in `_core/bulk.py`, and would change the slice
samplers' draws, so not done here).
"""


def markdown(results):
    lines = [
        "# API fuzz: the public API on inputs and targets nobody tuned for",
        "",
        "Generated by `python benchmarks/api_fuzz.py` (all sections; `contract` also on ArviZ 1.x with",
        "`/tmp/venv312/bin/python benchmarks/api_fuzz.py contract`, Python 3.12, ArviZ 1.3). A probe passes when",
        "the API works and its result is sane (finite draws, the support kept, DESIGN.md's layout), or raises a",
        "`ValueError` naming the argument. \"Before\" is what the probe did at 79ab502, the session's start.",
        "Particle samplers run 2 runs x 20 particles with max_evals 4e5 (4e4 for plain Python targets; at d = 200",
        "one run, 2e6); Markov samplers 2 chains x 20 draws after 20 warmup; seed 1. Small on purpose: these probe the",
        "API, not accuracy (`benchmarks/robustness_sweep.py` does that).",
        "",
        FINDINGS,
    ]
    for py, res in results.items():
        meta = res.get("meta", {})
        lines.append(f"## {py}: Python {meta.get('python')}, ArviZ {meta.get('arviz')}, numba {meta.get('numba')}, "
                     f"commit {meta.get('commit')}, {meta.get('date')}")
        lines.append("")
        for section, rows in res.items():
            if section == "meta":
                continue
            n_pass = sum(r["passed"] for r in rows)
            lines += [f"### {section}: {n_pass} of {len(rows)} pass", ""]
            show = rows if section != "settings" else [r for r in rows if not r["passed"] or r["kind"] == "ok"]
            if section == "settings":
                lines += ["Every field of every family with a wrong type, NaN, +-inf, 0 or -1: rows that raised a "
                          "ValueError naming the setting are not listed; listed: those that ran (a sane run passes) "
                          "or failed otherwise.", ""]
            lines += ["| probe | before (79ab502) | now | pass |", "|---|---|---|---|"]
            for r in show:
                now = f"{r['kind']}: {r['text']}".replace("|", "\\|")
                if r["warnings"]:
                    now += " — warned: " + "; ".join(r["warnings"][:2]).replace("|", "\\|")
                before = BEFORE.get(r["id"], "same").replace("|", "\\|")
                lines.append(f"| {r['id']} | {before} | {now} | {'yes' if r['passed'] else '**no**'} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def meta():
    import arviz
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=str(HERE.parent)).stdout.strip()
    return dict(python=sys.version.split()[0], arviz=arviz.__version__, numba=numba.__version__, commit=commit,
                date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def main(argv):
    if argv == ["--digests"]:
        print(json.dumps(draws_digest()))
        return
    chosen = argv or list(SECTIONS)
    key = "py312" if sys.version_info[:2] >= (3, 12) else "py311"
    path = RESULTS / ("api_fuzz.json" if key == "py311" else "api_fuzz_py312.json")
    res = json.loads(path.read_text()) if path.exists() else {}
    for name in chosen:
        print(f"== {name}", flush=True)
        res[name] = SECTIONS[name]()
        res["meta"] = meta()
        path.write_text(json.dumps(res, indent=1, default=str))  # after each section: a long one may be stopped
    both = {}
    for k, p in (("py311", RESULTS / "api_fuzz.json"), ("py312", RESULTS / "api_fuzz_py312.json")):
        if p.exists():
            both[k] = json.loads(p.read_text())
    (RESULTS / "api_fuzz.md").write_text(markdown(both))
    failed = [r["id"] for s, rows in res.items() if s != "meta" for r in rows if not r["passed"]]
    print(f"{len(failed)} failing probes" + (": " + "; ".join(failed) if failed else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
