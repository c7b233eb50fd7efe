"""NUTS in mcsample against nutpie and BlackJAX on the same targets.

Run from the repository root (about 5 minutes on 2 cores)::

    python benchmarks/nuts_vs_peers.py
    python benchmarks/nuts_vs_peers.py --targets arK --samplers mcsample nutpie --seeds 1

Method
------
Targets: ``gauss100`` (diagonal Gaussian, d = 100, scales 0.1 .. 10) and ``arK`` (posteriordb
AR(5), d = 7, unconstrained scale), both from the ``targets`` package.

Every sampler runs 4 chains x (1000 warmup + 1000 draws), starts each chain at a uniform(-2, 2)
point and uses its default NUTS settings (target acceptance 0.8, maximum tree depth 10, diagonal
metric). Each (sampler, target) pair runs once per seed (1, 2, 3), the samplers taking turns seed by
seed (seed 1 of every sampler, then seed 2, ...); the table shows the median over
the seeds of each quantity separately (ESS, seconds, ESS/s, ...); the ratios are of those medians.

* ESS: ArviZ bulk ESS of the posterior draws (4 x 1000), the minimum over parameters.
* seconds: wall time of warmup + sampling, compilation excluded:
  - mcsample: ``idata.attrs["wall_time"]`` (``sample()`` compiles on a throwaway run first);
  - nutpie: from the call of ``nutpie.sample(..., blocking=False)`` until the Rust sampler's
    ``wait()`` returns (the first step of ``_BackgroundSampler.wait()``), so the conversion of
    nutpie's trace to InferenceData is excluded as mcsample's assembly is; the time including the
    conversion is kept in the JSON. An untimed short run first loads the numba kernel and
    nutpie's machinery;
  - BlackJAX: a ``jax.jit``-compiled warmup + sampling function, compiled on an untimed run with
    another key, then timed to ``block_until_ready``.
* gradients: total gradient evaluations including warmup: mcsample ``attrs["n_grad"]`` (also
  counts the start-point search and the step-size heuristic); nutpie the sum of ``n_steps`` over
  warmup and draws (``save_warmup=True``); BlackJAX the sum of ``num_integration_steps`` over
  warmup and draws. These are the gradients the algorithm asks for; under ``vmap`` BlackJAX's
  chains advance in lockstep and the CPU actually evaluates more (idle lanes run along).
* mean error: max over parameters of |posterior mean - reference mean| / reference sd, on the
  reference scale: a check that every sampler samples the same distribution.
* others' load: the machine may be shared, so each timed run first waits (up to ``--max-wait``
  seconds) until other processes use less than 0.2 cores, and records how many cores they kept
  busy on average during the run (from /proc/stat); the table shows the largest over a row's runs.

Samplers
--------
* ``mcsample``: ``mc.sample(target, "nuts")``, chains on threads (``min(chains, nproc)``).
* ``mcsample-stan`` (extra): the same with Stan's windowed warmup (``adaptation="stan", metric="diag"``),
  the default before issue #16 (``mcsample`` now runs nutpie's warmup, see ``nuts_adaptation.py``).
* ``nutpie``: ``nutpie.compiled_pyfunc.from_pyfunc`` around the same numba ``logp_grad``; nutpie
  calls this Python function (under the GIL) once per gradient.
* ``nutpie-cfunc`` (extra): nutpie driving a ``numba.cfunc`` that calls the same numba
  ``logp_grad`` with no Python in between -- how nutpie runs PyMC models compiled with numba. It is
  built with ``nutpie.compile_pymc.CompiledPyMCModel``, which is nutpie's internal class, not a
  public API for hand-written functions; data reach the cfunc through nutpie's user-data pointer.
* ``blackjax-vmap``: ``blackjax.window_adaptation`` (1000 steps) then 1000 NUTS steps per chain,
  the 4 chains under ``jax.vmap`` in one compiled call; the models are written in ``jax.numpy``
  with float64 enabled and gradients by ``jax.grad``.
* ``blackjax-seq``: the same single-chain function called for the chains one after the other.

Peers that are not installed are skipped with a note. Results go to
``benchmarks/results/nuts_vs_peers.json`` (every run) and ``nuts_vs_peers.md`` (the table).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz
from targets.gaussians import diag_gauss_logp_grad
from targets.posteriordb import arK_logp_grad

import _report

CHAINS, TUNE, DRAWS = 4, 1000, 1000
SEEDS = (1, 2, 3)
TARGETS = ("gauss100", "arK")
SAMPLERS = ("mcsample", "mcsample-stan", "nutpie", "nutpie-cfunc", "blackjax-vmap", "blackjax-seq")
BASELINE = "mcsample"
PACKAGES = ("mcsample", "numba", "numpy", "arviz", "nutpie", "blackjax", "jax", "jaxlib")


# -- targets -----------------------------------------------------------------------------------


@dataclass
class Problem:
    """One target as every sampler sees it: the mcsample Target, the raw numba kernel with its
    data, and a jax.numpy version of the same log density."""
    name: str
    target: object            # mcsample.Target
    ref: object               # targets.Reference
    logp_grad: Callable       # numba: logp_grad(x, *args) -> (float, grad)
    args: tuple
    jax_logdensity: Callable  # () -> jax function x -> logp; built on demand, jax is optional

    @property
    def dim(self) -> int:
        return self.target.dim


def load_problem(name: str) -> Problem:
    target, ref = targets.get(name)
    if name == "gauss100":
        return Problem(name, target, ref, diag_gauss_logp_grad, target.args,
                       lambda: jax_diag_gauss(*target.args))
    if name == "arK":
        return Problem(name, target, ref, arK_logp_grad, target.args,
                       lambda: jax_arK(target.args[0], target.dim))
    raise ValueError(f"no benchmark set-up for target {name!r}")


def jax_diag_gauss(mean, scale):
    """``targets.gaussians.diag_gauss_logp`` in jax.numpy."""
    import jax.numpy as jnp
    mean, scale = jnp.asarray(mean), jnp.asarray(scale)

    def logdensity(x):
        z = (x - mean) / scale
        return -0.5 * jnp.sum(z * z)
    return logdensity


def jax_arK(y, dim):
    """``targets.posteriordb.arK_logp`` in jax.numpy: x = [alpha, beta[1..K], log sigma]."""
    import jax
    import jax.numpy as jnp
    K, T = dim - 2, y.shape[0]
    lags = jnp.asarray(np.stack([y[K - k:T - k] for k in range(1, K + 1)], axis=1))  # [t-K, k-1] = y[t-k]
    obs = jnp.asarray(y[K:])

    def logdensity(x):
        alpha, beta, log_sigma = x[0], x[1:K + 1], x[K + 1]
        resid = obs - alpha - lags @ beta
        lp = (-0.5 * (alpha / 10.0) ** 2 - 0.5 * jnp.sum((beta / 10.0) ** 2)
              - 0.5 * jnp.sum(resid * resid) * jnp.exp(-2.0 * log_sigma) - (T - K) * log_sigma)
        # half-Cauchy(0, 2.5) on sigma plus the log-Jacobian log sigma, constants dropped
        return lp + log_sigma - jax.nn.softplus(2.0 * (log_sigma - jnp.log(2.5)))
    return logdensity


def check_jax_model(problem: Problem, logdensity, n_points: int = 5) -> float:
    """Largest difference between the jax and numba (value, gradient) at uniform(-2, 2) points."""
    import jax
    value_and_grad = jax.jit(jax.value_and_grad(logdensity))
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(n_points):
        x = rng.uniform(-2.0, 2.0, problem.dim)
        lp, g = problem.logp_grad(x, *problem.args)
        lp_j, g_j = value_and_grad(x)
        scale = 1.0 + abs(lp) + np.max(np.abs(g))
        worst = max(worst, abs(lp - float(lp_j)) / scale, float(np.max(np.abs(g - np.asarray(g_j)))) / scale)
    return worst


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    sampler: str
    target: str
    seed: int
    wall: float
    n_grad: int
    n_grad_draws: int  # the part of n_grad spent after warmup
    ess_bulk_min: float
    mean_err: float
    extra: dict = field(default_factory=dict)

    @property
    def ess_per_s(self) -> float:
        return self.ess_bulk_min / self.wall

    @property
    def ess_per_kgrad(self) -> float:
        return 1000.0 * self.ess_bulk_min / self.n_grad


def ess_bulk_min(idata) -> float:
    ess = _arviz.ess(idata, method="bulk")
    return float(min(np.min(v.values) for v in ess.data_vars.values()))


def mean_error(problem: Problem, draws: np.ndarray) -> float:
    """max |mean - reference mean| / reference sd on the reference scale; draws (chain, draw, dim)."""
    flat = problem.ref.to_reference_scale(np.asarray(draws).reshape(-1, problem.dim))
    return float(np.max(np.abs(flat.mean(axis=0) - problem.ref.mean) / problem.ref.sd))


def idata_from_draws(draws: np.ndarray):
    draws = np.asarray(draws)
    return _arviz.to_inference_data(draws, {}, range(draws.shape[-1]), {})


def make_run(sampler, problem, seed, idata, wall, n_grad, n_grad_draws, **extra) -> Run:
    draws = np.asarray(idata.posterior["x"].values)
    assert draws.shape == (CHAINS, DRAWS, problem.dim), draws.shape
    return Run(sampler, problem.name, seed, float(wall), int(n_grad), int(n_grad_draws),
               ess_bulk_min(idata), mean_error(problem, draws), extra)


# -- samplers ----------------------------------------------------------------------------------
# Each setup_<sampler>(problem) does the untimed preparation (building, compiling, warming up)
# and returns run(seed) -> Run, or raises SkipSampler.


class SkipSampler(Exception):
    pass


def require(module: str):
    if importlib.util.find_spec(module) is None:
        raise SkipSampler(f"{module} is not installed (pip install {module})")


def setup_mcsample(problem: Problem, name="mcsample", **settings):
    # sample() compiles on a throwaway run and excludes that from attrs["wall_time"].
    def run(seed):
        idata = mc.sample(problem.target, "nuts", draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed,
                          progressbar=False, **settings)
        return make_run(name, problem, seed, idata, idata.attrs["wall_time"], idata.attrs["n_grad"],
                        int(idata.sample_stats["n_grad"].sum()), compile_time=idata.attrs["compile_time"],
                        divergences=int(idata.sample_stats["diverging"].sum()))
    return run


def setup_mcsample_stan(problem: Problem):
    return setup_mcsample(problem, "mcsample-stan", adaptation="stan", metric="diag")


def _uniform_init(dim):
    return lambda seed: np.random.default_rng(seed).uniform(-2.0, 2.0, dim)


def nutpie_pyfunc_model(problem: Problem):
    """nutpie model from a Python function (logp, grad) that calls the numba kernel."""
    from nutpie.compiled_pyfunc import from_pyfunc
    logp_grad, args, dim = problem.logp_grad, problem.args, problem.dim

    def make_logp_fn():
        def logp(x, **_shared):
            return logp_grad(x, *args)
        return logp

    def make_expand_fn(seed1, seed2, chain):
        def expand(x, **_shared):
            return {"x": np.array(x, dtype=np.float64)}
        return expand

    return from_pyfunc(dim, make_logp_fn, make_expand_fn, [np.dtype("float64")], [(dim,)], ["x"],
                       coords={"param": problem.target.names}, dims={"x": ("param",)},
                       make_initial_point_fn=_uniform_init(dim))


def nutpie_cfunc_model(problem: Problem):
    """nutpie model from numba cfuncs with nutpie's C signatures (as for PyMC's numba backend).

    The data arrays (float64 vectors) are concatenated into one buffer whose address nutpie hands
    to the cfunc as its user-data pointer, so the data are read at run time, not frozen in."""
    import numba
    from numba import types
    from nutpie.compile_pymc import CompiledPyMCModel

    if not all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1 for a in problem.args):
        raise SkipSampler("nutpie-cfunc set-up handles float64 vector data only")
    if len(problem.args) not in (1, 2):
        raise SkipSampler("nutpie-cfunc set-up handles 1 or 2 data arguments")
    logp_grad, dim = problem.logp_grad, problem.dim
    buffer = np.ascontiguousarray(np.concatenate(problem.args))
    n_buf = buffer.size
    b0, b1, b2 = 0, problem.args[0].size, buffer.size  # args[0] = buffer[b0:b1], args[1] = buffer[b1:b2]

    @numba.njit
    def call1(x, buf):
        return logp_grad(x, buf[b0:b1])

    @numba.njit
    def call2(x, buf):
        return logp_grad(x, buf[b0:b1], buf[b1:b2])

    call = call1 if len(problem.args) == 1 else call2

    logp_sig = types.int64(types.uint64, types.CPointer(types.double), types.CPointer(types.double),
                           types.CPointer(types.double), types.voidptr)
    expand_sig = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                             types.CPointer(types.double), types.voidptr)

    @numba.cfunc(logp_sig)
    def logp_c(n, x_ptr, grad_ptr, logp_ptr, user_data):
        if n != dim:
            return -1
        x = numba.carray(x_ptr, (dim,))
        out = numba.carray(grad_ptr, (dim,))
        buf = numba.carray(user_data, (n_buf,), dtype=np.float64)
        lp, g = call(x, buf)
        logp_ptr[0] = lp
        grad_finite = True
        for i in range(dim):
            out[i] = g[i]
            grad_finite = grad_finite and np.isfinite(g[i])
        if not grad_finite:
            return 3  # nutpie's codes (compile_pymc): 3 non-finite gradient, 4 non-finite logp
        return 0 if np.isfinite(lp) else 4

    @numba.cfunc(expand_sig)
    def expand_c(n, n_expanded, x_ptr, out_ptr, user_data):
        x = numba.carray(x_ptr, (dim,))
        out = numba.carray(out_ptr, (dim,))
        for i in range(dim):
            out[i] = x[i]
        return 0

    return CompiledPyMCModel(
        dims={"x": ("param",)}, _n_dim=dim, _coords={"param": problem.target.names},
        _shapes={"x": (dim,)}, compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=_uniform_init(dim), shared_data={}, user_data=buffer, n_expanded=dim,
        shape_info=(["x"], [slice(0, dim)], [(dim,)]), logp_func=None, expand_func=None)


def _nutpie_setup(problem: Problem, name: str, build):
    require("nutpie")
    import nutpie
    model = build(problem)
    # Untimed short run: loads the numba kernel and nutpie's machinery.
    nutpie.sample(model, draws=20, tune=20, chains=1, seed=0, progress_bar=False)

    def run(seed):
        t0 = time.perf_counter()
        sampler = nutpie.sample(model, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed,
                                progress_bar=False, save_warmup=True, blocking=False)
        sampler._sampler.wait(None)  # what sampler.wait() does before converting the trace
        wall = time.perf_counter() - t0
        idata = sampler.wait()
        total = time.perf_counter() - t0
        n_grad_draws = int(idata.sample_stats["n_steps"].sum())
        n_grad = n_grad_draws + int(idata.warmup_sample_stats["n_steps"].sum())
        return make_run(name, problem, seed, idata, wall, n_grad, n_grad_draws, wall_incl_conversion=total,
                        divergences=int(idata.sample_stats["diverging"].sum()))
    return run


def setup_nutpie(problem: Problem):
    return _nutpie_setup(problem, "nutpie", nutpie_pyfunc_model)


def setup_nutpie_cfunc(problem: Problem):
    return _nutpie_setup(problem, "nutpie-cfunc", nutpie_cfunc_model)


def _blackjax_chain(logdensity, dim):
    """One chain: uniform(-2, 2) start, window adaptation, draws.

    Returns (draws, warmup gradients, sampling gradients, divergences)."""
    import blackjax
    import jax
    import jax.numpy as jnp

    def one_chain(key):
        k_init, k_warmup, k_draws = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_init, (dim,), minval=-2.0, maxval=2.0, dtype=jnp.float64)
        warmup = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, params), warmup_info = warmup.run(k_warmup, x0, num_steps=TUNE)
        step = blackjax.nuts(logdensity, **params).step

        def one_step(state, key):
            state, info = step(key, state)
            return state, (state.position, info.num_integration_steps, info.is_divergent)

        _, (draws, n_steps, divergent) = jax.lax.scan(one_step, state, jax.random.split(k_draws, DRAWS))
        return draws, warmup_info.info.num_integration_steps.sum(), n_steps.sum(), divergent.sum()
    return one_chain


def _blackjax_setup(problem: Problem, name: str, vectorised: bool):
    require("blackjax")
    import jax
    jax.config.update("jax_enable_x64", True)
    logdensity = problem.jax_logdensity()
    err = check_jax_model(problem, logdensity)
    if err > 1e-8:
        raise SkipSampler(f"jax model of {problem.name} disagrees with the numba kernel (rel. err {err:.1e})")
    one_chain = _blackjax_chain(logdensity, problem.dim)
    if vectorised:
        all_chains = jax.jit(jax.vmap(one_chain))
        sample = lambda keys: all_chains(keys)
    else:
        chain = jax.jit(one_chain)
        sample = lambda keys: [chain(k) for k in keys]

    def keys_for(seed):
        return jax.random.split(jax.random.key(seed), CHAINS)

    jax.block_until_ready(sample(keys_for(10_000)))  # compile (untimed) with a key not used below

    def run(seed):
        keys = keys_for(seed)
        t0 = time.perf_counter()
        out = jax.block_until_ready(sample(keys))
        wall = time.perf_counter() - t0
        if not vectorised:  # a list of per-chain tuples -> a tuple of stacked arrays
            out = tuple(np.stack([np.asarray(o[i]) for o in out]) for i in range(4))
        draws, n_grad_warmup, n_grad_draws, divergent = out
        idata = idata_from_draws(np.asarray(draws))
        n_grad_draws = int(np.sum(n_grad_draws))
        return make_run(name, problem, seed, idata, wall, int(np.sum(n_grad_warmup)) + n_grad_draws, n_grad_draws,
                        divergences=int(np.sum(divergent)), jax_model_rel_err=err)
    return run


def setup_blackjax_vmap(problem: Problem):
    return _blackjax_setup(problem, "blackjax-vmap", vectorised=True)


def setup_blackjax_seq(problem: Problem):
    return _blackjax_setup(problem, "blackjax-seq", vectorised=False)


SETUPS = {
    "mcsample": setup_mcsample,
    "mcsample-stan": setup_mcsample_stan,
    "nutpie": setup_nutpie,
    "nutpie-cfunc": setup_nutpie_cfunc,
    "blackjax-vmap": setup_blackjax_vmap,
    "blackjax-seq": setup_blackjax_seq,
}


# -- summary -----------------------------------------------------------------------------------


def summarise(runs: list[Run]) -> dict:
    """Medians over seeds of each quantity."""
    med = lambda f: float(statistics.median(f(r) for r in runs))
    return {
        "sampler": runs[0].sampler, "target": runs[0].target, "n_runs": len(runs),
        "seeds": [r.seed for r in runs],
        "ess_bulk_min": med(lambda r: r.ess_bulk_min),
        "wall_s": med(lambda r: r.wall),
        "ess_per_s": med(lambda r: r.ess_per_s),
        "n_grad": med(lambda r: r.n_grad),
        "n_grad_draws": med(lambda r: r.n_grad_draws),
        "ess_per_1000_grad": med(lambda r: r.ess_per_kgrad),
        "mean_err_max_sd": med(lambda r: r.mean_err),
        "divergences": med(lambda r: r.extra.get("divergences", 0)),
        "others_load_max": max((r.extra.get("others_load") or 0.0) for r in runs),
    }


def add_ratios(summaries: list[dict]) -> None:
    """mcsample / peer for ESS/s and ESS per 1000 gradients, per target (> 1: mcsample better)."""
    base = {s["target"]: s for s in summaries if s["sampler"] == BASELINE}
    for s in summaries:
        b = base.get(s["target"])
        s["mcsample_over_peer_ess_per_s"] = None if b is None else b["ess_per_s"] / s["ess_per_s"]
        s["mcsample_over_peer_ess_per_1000_grad"] = (None if b is None else
                                                     b["ess_per_1000_grad"] / s["ess_per_1000_grad"])


HEADERS = ["target", "sampler", "ESS_bulk min", "wall s", "ESS/s", "grads", "of which sampling", "ESS/1k grad",
           "mcsample÷peer ESS/s", "mcsample÷peer ESS/1k grad", "mean err/sd", "div", "others' load"]


def table_rows(summaries: list[dict]) -> list[list[str]]:
    ratio = lambda v: "—" if v is None else f"{v:.2f}"
    return [[s["target"], s["sampler"], f"{s['ess_bulk_min']:.0f}", f"{s['wall_s']:.3f}",
             f"{s['ess_per_s']:.0f}", f"{s['n_grad']:.0f}", f"{s['n_grad_draws']:.0f}", f"{s['ess_per_1000_grad']:.2f}",
             ratio(s["mcsample_over_peer_ess_per_s"]), ratio(s["mcsample_over_peer_ess_per_1000_grad"]),
             f"{s['mean_err_max_sd']:.3f}", f"{s['divergences']:.0f}", f"{s['others_load_max']:.2f}"]
            for s in summaries]


def markdown_report(summaries, skipped, machine, versions, seeds) -> str:
    notes = "".join(f"- skipped {k}: {v}\n" for k, v in skipped.items())
    return (
        "# NUTS: mcsample vs peers\n\n"
        f"Generated by `python benchmarks/nuts_vs_peers.py`.\n\n{_report.environment_markdown(machine, versions)}\n"
        f"{CHAINS} chains x ({TUNE} warmup + {DRAWS} draws) for every sampler; each row is the **median "
        f"over {len(seeds)} runs** (seeds {', '.join(map(str, seeds))}) of each column separately; the "
        "ratios are mcsample's median over the peer's median (> 1: mcsample better). ESS is ArviZ bulk "
        "ESS, minimum over parameters. Seconds are warmup + sampling, compilation excluded. 'grads' "
        "counts gradient evaluations including warmup, 'of which sampling' those after warmup. 'mean err/sd' is max |posterior mean - reference| / reference sd. The method "
        "of each sampler is in the docstring of `benchmarks/nuts_vs_peers.py`. 'others' load' is the "
        "largest, over the runs of a row, average number of cores other processes kept busy during a run "
        "(each run first waits up to --max-wait s for a quiet machine); above ~0.2 the seconds of that "
        "row are inflated by contention.\n\n"
        + _report.markdown_table(HEADERS, table_rows(summaries)) + "\n\n" + notes)


# -- main --------------------------------------------------------------------------------------


def benchmark_once(problem: Problem, sampler: str, run, seed, max_wait: float) -> Run:
    _report.wait_for_quiet(max_wait=max_wait)
    start = _report.cpu_snapshot()
    r = run(seed)
    r.extra["others_load"] = _report.others_load(start, _report.cpu_snapshot())
    print(f"  {problem.name:9s} {sampler:19s} seed {seed}: ESS {r.ess_bulk_min:7.0f}  "
          f"{r.wall:7.3f} s  {r.n_grad:8d} grads ({r.n_grad_draws:7d} sampling)  mean err {r.mean_err:.3f}  "
          f"others' load {_fmt_load(r.extra['others_load'])}", flush=True)
    return r


def _fmt_load(load) -> str:
    return "n/a" if load is None else f"{load:.2f}"


def parse_args(argv=None):
    global CHAINS, TUNE, DRAWS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--chains", type=int, default=CHAINS)
    p.add_argument("--tune", type=int, default=TUNE)
    p.add_argument("--draws", type=int, default=DRAWS)
    p.add_argument("--out", default=str(_report.RESULTS_DIR), help="directory for the result files")
    p.add_argument("--max-wait", type=float, default=60.0,
                   help="seconds to wait before each run for other processes to fall below 0.2 cores")
    args = p.parse_args(argv)
    CHAINS, TUNE, DRAWS = args.chains, args.tune, args.draws
    return args


def main(argv=None):
    args = parse_args(argv)
    machine = _report.machine_info()
    versions = _report.package_versions(PACKAGES)
    print(f"nproc={machine['nproc']}  " + "  ".join(f"{k} {v}" for k, v in versions.items() if v), flush=True)
    runs, skipped = [], {}
    for name in args.targets:
        problem = load_problem(name)
        setups = {}
        for sampler in args.samplers:
            try:
                setups[sampler] = SETUPS[sampler](problem)
            except (SkipSampler, ImportError) as why:
                skipped[f"{sampler} on {name}"] = str(why)
                print(f"  NOTE: skipping {sampler} on {name}: {why}", flush=True)
        # seeds outermost: a change in the machine's load hits every sampler alike
        for seed in args.seeds:
            for sampler, run in list(setups.items()):
                try:
                    runs.append(benchmark_once(problem, sampler, run, seed, args.max_wait))
                except (SkipSampler, ImportError) as why:
                    skipped[f"{sampler} on {name}"] = str(why)
                    print(f"  NOTE: skipping {sampler} on {name}: {why}", flush=True)
                    del setups[sampler]

    groups = {}
    for r in runs:
        groups.setdefault((r.target, r.sampler), []).append(r)
    summaries = [summarise(g) for g in groups.values()]
    add_ratios(summaries)

    print(f"\nMedian over seeds {args.seeds}; {CHAINS} chains x ({TUNE} + {DRAWS}):\n")
    print(_report.text_table(HEADERS, table_rows(summaries)))
    data = {
        "description": "NUTS, mcsample vs peers; medians over seeds; see benchmarks/nuts_vs_peers.py",
        "machine": machine, "versions": versions,
        "config": {"chains": CHAINS, "tune": TUNE, "draws": DRAWS, "seeds": args.seeds},
        "summary": summaries, "skipped": skipped,
        "runs": [dict(asdict(r), ess_per_s=r.ess_per_s, ess_per_1000_grad=r.ess_per_kgrad) for r in runs],
    }
    paths = _report.write_results("nuts_vs_peers", data,
                                  markdown_report(summaries, skipped, machine, versions, args.seeds), args.out)
    print("\nwrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    sys.exit(main())
