"""``sample()``: run a sampler's chains in parallel and return ``arviz.InferenceData``."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import _arviz
from . import samplers as _samplers
from ._version import __version__

__all__ = ["sample"]

MAX_INIT_TRIES = 100
_CHUNK_SECONDS = 0.25  # progress and Ctrl-C are handled between compiled chunks of this length


def sample(target, sampler="nuts", *, draws=1000, tune=1000, chains=4, seed=None, init=None,
           progressbar=True, executor=None, save_warmup=False, max_evals=None, **settings):
    """Draw ``chains`` x ``draws`` samples from ``target`` after ``tune`` warmup iterations.

    Parameters
    ----------
    target : mcsample.Target
    sampler : str or settings object
        A name from ``mcsample.samplers.available()`` or e.g. ``mcsample.samplers.NUTS(...)``.
    draws, tune, chains : int
    seed : int, optional
        Each chain gets its own generator from ``numpy.random.SeedSequence(seed).spawn(chains)``,
        so the same seed gives bit-identical draws whatever the executor or thread count.
    init : array, optional
        Starting points, (dim,) for every chain or (chains, dim). By default each chain starts at
        a uniform(-2, 2) draw, re-drawn up to 100 times while log p or its gradient is not finite.
    progressbar : bool
        One tqdm bar per chain.
    executor : concurrent.futures.Executor, optional
        Runs the chains; default: threads (kernels release the GIL). A Dask cluster:
        ``dask.distributed.Client(...).get_executor()``.
    save_warmup : bool
        Also return the warmup draws as ``warmup_posterior`` / ``warmup_sample_stats``.
    max_evals : int, optional
        A budget of target evaluations (log densities plus gradients, warmup included) shared
        equally by the chains: a chain stops once it has spent its share, and all chains are cut
        to the shortest. ``attrs["n_logp"]``/``["n_grad"]`` count everything spent.
    **settings
        Overrides of the sampler's settings, e.g. ``max_depth=8``.

    Returns
    -------
    ArviZ's data structure for the installed ArviZ: ``arviz.InferenceData`` on ArviZ 0.x (what
    pip installs on Python 3.11), ``xarray.DataTree`` on ArviZ 1.x (Python >= 3.12), with the
    same content: ``posterior["x"]`` (chain, draw, param), per-draw ``sample_stats`` (``lp``,
    ``n_logp``, ``n_grad`` and the family's own), ``warmup_posterior`` and
    ``warmup_sample_stats`` if ``save_warmup``, and ``attrs``: sampler, settings (JSON), seed,
    n_logp and n_grad (totals including warmup), wall_time, compile_time, mcsample_version,
    interrupted. ``result.posterior["x"]``, ``result.sample_stats[...]`` and ``result.attrs``
    read both. Ctrl-C returns the draws made so far with ``attrs["interrupted"] = True``.
    """
    draws, tune, chains = _check_counts(draws, tune, chains)
    cfg = _samplers.resolve(sampler, settings)
    cfg.validate(target.dim)
    if cfg.needs_grad and not target.has_grad:
        free = [n for n in _samplers.available() if not _samplers.resolve(n, {}).needs_grad]
        raise ValueError(
            f"sampler {cfg.name!r} needs a gradient but target {target.name!r} has no logp_grad; "
            f"gradient-free samplers: {', '.join(free) if free else 'none available yet'}")
    inits = _check_init(init, chains, target.dim)
    if max_evals is not None and not max_evals > 0:
        raise ValueError(f"max_evals must be positive, got {max_evals!r}")
    chain_budget = None if max_evals is None else max_evals / chains
    seed_seq = np.random.SeedSequence(seed)
    chain_seeds = seed_seq.spawn(chains)

    t0 = time.perf_counter()
    _compile(cfg, target, inits[0])
    compile_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    results, interrupted = _run_chains(cfg, target, chain_seeds, inits, tune, draws, progressbar,
                                       executor, chain_budget)
    wall_time = time.perf_counter() - t0
    return _assemble(cfg, target, results, tune, draws, save_warmup, interrupted, {
        "sampler": cfg.name,
        "settings": cfg.to_json(),
        "seed": int(seed_seq.entropy) if seed is None else seed,
        "wall_time": wall_time,
        "compile_time": compile_time,
        "mcsample_version": __version__,
        "target": target.name,
    })


# -- arguments ---------------------------------------------------------------------------------


def _check_counts(draws, tune, chains):
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(draws), int(tune), int(chains)


def _check_init(init, chains, dim):
    if init is None:
        return [None] * chains
    init = np.asarray(init, dtype=float)
    if init.shape == (dim,):
        init = np.tile(init, (chains, 1))
    if init.shape != (chains, dim):
        raise ValueError(f"init must have shape ({dim},) or ({chains}, {dim}), got {init.shape}")
    if not np.all(np.isfinite(init)):
        raise ValueError("init contains non-finite values")
    return list(init)


def _initial_point(cfg, target, rng, init, chain):
    """A start with finite log density (and gradient, for gradient-based samplers), and the
    number of evaluations spent finding it."""
    evaluate = target.logp_grad if cfg.needs_grad else target.logp

    def finite(x):
        out = evaluate(x)
        lp, g = out if cfg.needs_grad else (out, 0.0)
        return np.isfinite(lp) and np.all(np.isfinite(g))

    if init is not None:
        if not finite(init):
            raise ValueError(f"chain {chain}: log density or gradient is not finite at the given init")
        return init, 1
    for attempt in range(1, MAX_INIT_TRIES + 1):
        x = rng.uniform(-2.0, 2.0, target.dim)
        if finite(x):
            return x, attempt
    raise ValueError(f"chain {chain}: no finite log density (and gradient) at {MAX_INIT_TRIES} "
                     "uniform(-2, 2) initial points; pass init= inside the support")


def _compile(cfg, target, init):
    """Compile (or load from cache) the family's kernels on a throwaway two-iteration run, so
    that wall_time excludes compilation. It starts where chain 0 would (or a point chosen the
    same way), which also surfaces a bad init (GPSS at its origin, say) before any thread runs."""
    q0, _ = _initial_point(cfg, target, np.random.default_rng(0), init, 0)
    runner = cfg.start_chain(target, np.random.default_rng(0), q0, 1, 1)
    runner.run(0, 2)
    runner.compile_kernels()


# -- running chains ----------------------------------------------------------------------------


@dataclass
class ChainResult:
    draws: np.ndarray
    stats: dict
    n_logp: np.ndarray
    n_grad: np.ndarray
    done: int
    extra_logp: int
    extra_grad: int
    tuned: dict = field(default_factory=dict)


def run_chain(cfg, target, seed, init, tune, draws, chain=0, progress=None, stop=None, budget=None):
    """One chain from its own SeedSequence; stops early (keeping its draws) when ``stop`` is set
    or once it has spent ``budget`` evaluations. Module-level and picklable, so any executor can
    run it."""
    rng = np.random.Generator(np.random.PCG64(seed))
    q0, n_init = _initial_point(cfg, target, rng, init, chain)
    init_logp, init_grad = (0, n_init) if cfg.needs_grad else (n_init, 0)
    runner = cfg.start_chain(target, rng, q0, tune, draws)
    total = tune + draws
    done = 0
    chunk = 10
    while done < total and not (stop is not None and stop.is_set()):
        if budget is not None:
            spent = _spent(runner, done) + init_logp + init_grad
            if spent >= budget:
                break
            if done:  # do not overshoot the budget by more than about one iteration
                chunk = min(chunk, max(1, int((budget - spent) * done / spent)))
        stop_at = min(total, done + chunk)
        t0 = time.perf_counter()
        runner.run(done, stop_at)
        elapsed = time.perf_counter() - t0
        if progress is not None:
            progress(stop_at - done)
        chunk = int(np.clip((stop_at - done) * _CHUNK_SECONDS / max(elapsed, 1e-6), 1, 1000))
        done = stop_at
    return ChainResult(runner.draws, runner.stats, runner.n_logp, runner.n_grad, done,
                       runner.extra_logp + init_logp, runner.extra_grad + init_grad, runner.tuned())


def _spent(runner, done):
    return int(runner.n_logp[:done].sum() + runner.n_grad[:done].sum() + runner.extra_logp + runner.extra_grad)


def _run_chains(cfg, target, seeds, inits, tune, draws, progressbar, executor, chain_budget=None):
    chains = len(seeds)
    bars = _progress_bars(chains, tune + draws, progressbar)
    stop = threading.Event()
    own = executor is None
    local = own or isinstance(executor, cf.ThreadPoolExecutor)
    if own:
        executor = cf.ThreadPoolExecutor(max_workers=min(chains, os.cpu_count() or 1))
    futures = {}
    for c in range(chains):
        extra = dict(progress=bars[c].update if bars else None, stop=stop) if local else {}
        futures[executor.submit(run_chain, cfg, target, seeds[c], inits[c], tune, draws, chain=c,
                                budget=chain_budget, **extra)] = c
    interrupted = False
    try:
        pending = set(futures)
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2)
            for f in finished:
                if bars and not local:
                    bars[futures[f]].update(tune + draws)
                f.result()  # surface errors at once
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for f in futures:
            f.cancel()
    finally:
        if own:
            executor.shutdown(wait=True)
        for bar in bars:
            bar.close()
    results = [None] * chains
    for f, c in futures.items():
        if f.done() and not f.cancelled() and f.exception() is None:
            results[c] = f.result()
        elif not interrupted:
            f.result()
    if all(r is None for r in results):
        raise KeyboardInterrupt
    return results, interrupted


def _progress_bars(chains, total, enabled):
    if not enabled:
        return []
    from tqdm.auto import tqdm
    return [tqdm(total=total, desc=f"chain {c}", position=c, leave=True, unit="it")
            for c in range(chains)]


# -- output ------------------------------------------------------------------------------------


def _assemble(cfg, target, results, tune, draws, save_warmup, interrupted, attrs):
    kept = [r for r in results if r is not None]
    n_done = min(r.done for r in kept)  # chains stopped by Ctrl-C at different points: cut to the shortest
    n_warm = min(n_done, tune)
    n_post = max(0, n_done - tune)

    def stack(get, lo, hi):
        return np.stack([get(r)[lo:hi] for r in kept])

    def stats(lo, hi):
        out = {name: stack(lambda r, k=name: r.stats[k], lo, hi) for name in kept[0].stats}
        out["n_logp"] = stack(lambda r: r.n_logp, lo, hi)
        out["n_grad"] = stack(lambda r: r.n_grad, lo, hi)
        return out

    attrs = dict(attrs)
    attrs.update(  # everything spent, including draws of longer chains cut to the shortest
        n_logp=int(sum(r.n_logp[:r.done].sum() + r.extra_logp for r in kept)),
        n_grad=int(sum(r.n_grad[:r.done].sum() + r.extra_grad for r in kept)),
        interrupted=bool(interrupted),
        chains_returned=len(kept),
        tuned=_json_list([r.tuned for r in kept]),
    )
    warm = {}
    if save_warmup:
        warm = dict(warmup_posterior=stack(lambda r: r.draws, 0, n_warm), warmup_stats=stats(0, n_warm))
    return _arviz.to_inference_data(stack(lambda r: r.draws, tune, tune + n_post),
                                    stats(tune, tune + n_post), target.names, attrs, **warm)


def _json_list(items):
    import json
    return json.dumps(items)
