"""``sample()``: run a sampler's chains (Markov chains or particle runs) in parallel and return
ArviZ's result: ``arviz.InferenceData`` on ArviZ 0.x, ``xarray.DataTree`` on ArviZ 1.x."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import os
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _arviz
from . import samplers as _samplers
from .convergence import (particle_log_densities, user_error, warn_if_chains_disagree, warn_if_diverging,
                          warn_if_particles_outside_support)
from .samplers._base import PARTICLES
from ._version import __version__

__all__ = ["sample", "resume"]

MAX_INIT_TRIES = 100
_CHUNK_SECONDS = 0.25  # progress and Ctrl-C are handled between compiled chunks of this length
_CHECKPOINT_SECONDS = 60.0  # a chain's checkpoint interval when checkpoint_every is not given


def sample(target, sampler="nuts", *, draws=1000, tune=1000, chains=4, seed=None, init=None,
           progressbar=True, executor=None, save_warmup=False, max_evals=None, checkpoint=None,
           checkpoint_every=None, **settings):
    """Draw ``chains`` x ``draws`` samples from ``target``.

    For a Markov chain sampler (NUTS, the slice samplers) a chain runs ``tune`` warmup
    iterations, then keeps ``draws``. For a particle sampler (``mc.samplers.SamplerSettings.kind
    == "particles"``) a chain is one independent run of a population of ``draws`` particles
    through the family's time grid, a draw is one particle at the end of it, and ``tune`` means
    what the family documents (a pilot, or nothing).

    Parameters
    ----------
    target : mcsample.Target
    sampler : str or settings object
        A name from ``mcsample.samplers.available()`` or e.g. ``mcsample.samplers.NUTS(...)``.
    draws, tune, chains : int
        ``draws`` is the number of kept iterations per chain, or a particle run's population size.
    seed : int, optional
        Each chain gets its own generator from ``numpy.random.SeedSequence(seed).spawn(chains)``,
        so the same seed gives bit-identical draws whatever the executor or thread count. A
        ``numpy.random.SeedSequence`` or ``Generator`` is accepted too (a Generator gives up one
        draw for the seed); None picks one. The seed used is ``attrs["seed"]`` (a string when it
        does not fit in 63 bits, so that the result can be written to netCDF).
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
        equally by the chains. A Markov chain stops once it has spent its share, and all chains
        are cut to the shortest. A particle run gets its share per particle before it starts,
        picks its own knobs from it and reports what it spent. ``attrs["n_logp"]``/``["n_grad"]``
        count everything spent.
    checkpoint : path, optional
        Keep a checkpoint of the run in this netCDF file (``mcsample.checkpoint``): every chain's
        draws so far and its whole state (kernel, adaptation, generator), written atomically.
        ``mcsample.resume(path, target)`` continues or extends it bit-identically. If the file
        exists and is a checkpoint of this same run (target, sampler, settings, seed, chains,
        tune, init, budget), the run continues from it; any other existing file is an error and
        is left untouched.
    checkpoint_every : int, optional
        Iterations (Markov chains) or time steps (particle runs) between a chain's checkpoints;
        default: every 60 s. A chain also writes one when it stops (end, Ctrl-C, budget).
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
    read both. Ctrl-C returns the draws made so far with ``attrs["interrupted"] == True`` (stored
    as 1, and 0 otherwise: netCDF attributes have no boolean type, and ``to_netcdf`` must work).

    Markov chains are checked before the result is returned: a ``mcsample.ConvergenceWarning``
    names the parameters with R-hat > 1.05 and the chain that disagrees, or a chain whose mean log
    density is far from the others', and, one chain included, the parameters whose bulk ESS is
    below 100 and below a tenth of the draws (``mcsample.convergence``).
    """
    _check_target(target)
    draws, tune, chains = _check_counts(draws, tune, chains)
    seed_seq = _seed_sequence(seed)
    _check_executor(executor)
    cfg = _samplers.resolve(sampler, settings)
    cfg.validate(target.dim)
    if cfg.needs_grad and not target.has_grad:
        free = [n for n in _samplers.available() if not _samplers.resolve(n, {}).needs_grad]
        raise ValueError(
            f"sampler {cfg.name!r} needs a gradient but target {target.name!r} has no logp_grad; "
            f"gradient-free samplers: {', '.join(free) if free else 'none available yet'}")
    inits = _check_init(init, chains, target.dim)
    _check_max_evals(max_evals)
    chain_budget = None if max_evals is None else max_evals / chains
    states, ckpt = None, None
    if checkpoint is not None:
        states, ckpt = _open_checkpoint(checkpoint, checkpoint_every, cfg, target, seed, seed_seq, chains,
                                        tune, draws, inits, chain_budget)
    try:
        return _sample(cfg, target, seed_seq, inits, tune, draws, chains, progressbar, executor, save_warmup,
                       chain_budget, states, ckpt, checkpoint_every)
    except ValueError as exc:
        err = _raised_by_user(exc, cfg, target, inits)
        if err is None:
            raise
        raise ValueError(f"{exc} (the target's function raised {type(err).__name__}: {err})") from err


def _raised_by_user(exc, cfg, target, inits):
    """The user's exception behind a particle family's "no finite log density" (its pilot or start
    pool saw only NaN: inside the kernels an exception is a NaN), found by calling the function from
    Python at the inits or a few uniform(-2, 2) points; None when it does not raise there."""
    if cfg.kind != PARTICLES or "finite" not in str(exc) or exc.__cause__ is not None:
        return None
    points = inits if inits[0] is not None else np.random.default_rng(0).uniform(-2.0, 2.0, (3, target.dim))
    return user_error(target, np.asarray(points, dtype=float))


def _open_checkpoint(path, every, cfg, target, seed, seed_seq, chains, tune, draws, inits, chain_budget):
    """(states, Checkpointer): a new checkpoint, or the chains' states of an existing one of the
    same run (anything else at ``path`` raises, and the file stays as it was)."""
    from . import checkpoint as ckpt
    if every is not None and (isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {every!r}")
    header = ckpt.new_header(cfg, target, seed_seq.entropy, chains, tune, draws, inits, chain_budget, every)
    path = ckpt.check_path(path)
    if not path.exists():
        return None, ckpt.Checkpointer(path, header, [None] * chains)
    old, states = ckpt.read(path)
    ckpt.check_target(old, target, path)
    if seed is None:
        raise ckpt.CheckpointMismatch(f"{path}: a checkpoint exists there, and a run with seed=None cannot be "
                                      "the same run; continue it with mcsample.resume, or choose another path")
    ckpt.check_run(old, header, path)
    if cfg.kind == PARTICLES and draws != old["draws"]:
        raise ckpt.CheckpointMismatch(f"{path}: a particle run's draws (population size) cannot change: "
                                      f"{old['draws']} in the file, {draws} here")
    return states, ckpt.Checkpointer(path, header, states)


def resume(path, target, *, draws=None, progressbar=True, executor=None, checkpoint_every=None,
           save_warmup=False):
    """Continue the run checkpointed at ``path`` (``sample(..., checkpoint=path)``), optionally
    with more ``draws`` per chain (Markov chains), and return its result: bit-identical to the
    uninterrupted run of the same arguments. The file is kept up to date as the run goes on.

    ``target`` must be the run's target: functions cannot be stored without pickles, so the
    checkpoint holds a fingerprint of it (name, dimension, a hash of its data, log p at fixed
    points) and a different one is a ``mcsample.checkpoint.CheckpointMismatch``. A damaged file
    raises ``CheckpointCorrupt``, ``CheckpointTruncated`` or ``NotACheckpoint``.
    """
    from . import checkpoint as ckpt
    header, states = ckpt.read(path)
    ckpt.check_target(header, target, path)
    cfg = ckpt.settings_from_header(header)
    if draws is None:
        draws = header["draws"]
    draws, tune, chains = _check_counts(draws, header["tune"], header["chains"])
    if cfg.kind == PARTICLES and draws != header["draws"]:
        raise ValueError(f"a particle run's draws (its population size, {header['draws']}) cannot change on resume")
    if draws < header["draws"]:
        raise ValueError(f"draws={draws} is fewer than the checkpointed run's {header['draws']}")
    if checkpoint_every is None:
        checkpoint_every = header.get("checkpoint_every")
    inits = [None] * chains if header["init"] is None else [np.asarray(x, dtype=float) for x in header["init"]]
    header = {**header, "draws": draws, "checkpoint_every": checkpoint_every}
    return _sample(cfg, target, np.random.SeedSequence(header["seed"]), inits, tune, draws, chains, progressbar,
                   executor, save_warmup, header["budget"], states, ckpt.Checkpointer(path, header, states),
                   checkpoint_every)


def _sample(*args):
    _arviz.preload()  # imported while the chains run, not after them
    try:
        return _sample_and_build(*args)
    finally:  # no import left running in the caller's code: see _arviz.wait_for_preload
        _arviz.wait_for_preload()


def _sample_and_build(cfg, target, seed_seq, inits, tune, draws, chains, progressbar, executor, save_warmup,
                      chain_budget, states, ckpt, checkpoint_every):
    chain_seeds = seed_seq.spawn(chains)
    seed = _seed_attr(seed_seq.entropy)

    t0 = time.perf_counter()
    _compile(cfg, target, inits[0], chain_budget, draws)
    compile_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    results, interrupted = _run_chains(cfg, target, chain_seeds, inits, tune, draws, progressbar,
                                       executor, chain_budget, states, ckpt, checkpoint_every)
    wall_time = time.perf_counter() - t0
    attrs = {
        "sampler": cfg.name,
        "kind": cfg.kind,
        "settings": cfg.to_json(),
        "seed": seed,
        "wall_time": wall_time,
        "compile_time": compile_time,
        "mcsample_version": __version__,
        "target": target.name,
    }
    if cfg.kind == PARTICLES:
        return _on_model_scale(_assemble_particles(results, target, interrupted, attrs), target)
    idata = _assemble(results, target, tune, save_warmup, interrupted, attrs)
    posterior, stats = _arviz.group(idata, "posterior"), _arviz.group(idata, "sample_stats")
    if "lp" in stats:
        warn_if_chains_disagree(posterior["x"].values, stats["lp"].values, target.names, cfg.name)
    if "diverging" in stats:
        warn_if_diverging(stats["diverging"].values, posterior["x"].values, cfg.name, target)
    return _on_model_scale(idata, target)


def _on_model_scale(result, target):
    """A target built from a model (``Target.from_pymc``): its posterior holds the model's
    variables; the sampler's draws move to ``unconstrained_posterior``."""
    model = getattr(target, "model", None)
    return result if model is None else _arviz.with_model_posterior(result, model.posterior)


# -- arguments ---------------------------------------------------------------------------------


def _check_target(target):
    from .target import Target
    if not isinstance(target, Target):
        raise ValueError(f"target must be an mcsample.Target, got {type(target).__name__}; wrap the log density "
                         "first: mc.Target(logp, dim, logp_grad=..., args=(...))")


_SEED_BITS = 63  # attrs travel to netCDF, whose largest integer is int64


def _seed_sequence(seed):
    """The run's SeedSequence from ``seed``: an integer >= 0, None (a fresh one), a SeedSequence
    or a Generator. Always one built from a single integer, so that ``attrs["seed"]`` reproduces
    the run: None draws a 63-bit one; a SeedSequence of one integer (no spawn key) is used as
    it is, any other gives up 128 bits of its state; a Generator draws 63 bits."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    elif isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2 ** _SEED_BITS))
    elif isinstance(seed, np.random.SeedSequence):
        simple = not seed.spawn_key and isinstance(seed.entropy, (int, np.integer))
        seed = int(seed.entropy) if simple else int.from_bytes(seed.generate_state(4, np.uint32).tobytes(), "little")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, None, a numpy SeedSequence or a Generator, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def _seed_attr(entropy):
    """``attrs["seed"]``: the integer, or its decimal string when netCDF's int64 cannot hold it."""
    return int(entropy) if int(entropy) < 2 ** _SEED_BITS else str(int(entropy))


def _check_executor(executor):
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor must be a concurrent.futures.Executor (or have its submit method), got "
                         f"{type(executor).__name__}; None runs the chains in threads")


def _check_max_evals(max_evals):
    if max_evals is None:
        return
    if (isinstance(max_evals, (bool, np.bool_)) or not isinstance(max_evals, (int, float, np.integer, np.floating))
            or not (np.isfinite(max_evals) and max_evals > 0)):
        raise ValueError(f"max_evals must be a positive, finite number of evaluations or None, got {max_evals!r}")


def _check_counts(draws, tune, chains):
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(draws), int(tune), int(chains)


def _check_init(init, chains, dim):
    if init is None:
        return [None] * chains
    try:
        init = np.asarray(init)
        if np.iscomplexobj(init) or init.dtype.kind not in "biuf":
            raise TypeError(f"dtype {init.dtype}")
        init = init.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"init must be an array of real numbers, shape ({dim},) or ({chains}, {dim}); {err}") from None
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


def _compile(cfg, target, init, chain_budget, draws):
    """Compile (or load from cache) the family's kernels on a throwaway run (two iterations, or
    one time step of two particles), so that wall_time excludes compilation. A chain starts where
    chain 0 would (or a point chosen the same way), which also surfaces a bad init (GPSS at its
    origin, say) before any thread runs. A slice family's search for the bulk is not run (a full
    CMA-ES search, thrown away): its kernels are compiled on a two-generation search instead. A
    particle family may drop such work too (``ParticleSettings.for_compile_run``)."""
    search = getattr(cfg, "find_bulk", False) is True
    if search:
        cfg = dataclasses.replace(cfg, find_bulk=False)
    if cfg.kind == PARTICLES:
        cfg = cfg.for_compile_run()
    try:
        run = _start(cfg, target, np.random.default_rng(0), init, 1, 2, 0, chain_budget)
    except ValueError:
        if cfg.kind != PARTICLES or chain_budget is None or draws == 2:
            raise
        # a budget too small to plan with: the throwaway's 2 particles had the whole run's budget,
        # so its message would quote their share; the run's own start says it with the run's numbers
        _start(cfg, target, np.random.default_rng(0), init, 1, draws, 0, chain_budget)
        return  # (it planned after all: the chains compile the kernels)
    run.advance(0, min(2, run.total))
    run.compile_kernels()
    if search:
        from ._core.bulk import cma_constants, find_bulk
        find_bulk(target.logp_fn, target.kernel_args, run.q, np.random.default_rng(0),
                  max_evals=2 * cma_constants(target.dim).lam)


# -- running chains ----------------------------------------------------------------------------


def _start(cfg, target, rng, init, tune, draws, chain, budget):
    """The family's run: a Markov chain from a finite initial point (whose evaluations it
    counts), or a particle run given its budget per particle."""
    if cfg.kind == PARTICLES:
        per_particle = None if budget is None else budget / draws
        return cfg.start_run(target, rng, init, tune, draws, per_particle)
    q0, n_init = _initial_point(cfg, target, rng, init, chain)
    runner = cfg.start_chain(target, rng, q0, tune, draws)
    if cfg.needs_grad:
        runner.extra_grad += n_init
    else:
        runner.extra_logp += n_init
    return runner


@dataclass
class ChainResult:
    """What one chain (or particle run) returns to ``sample()``: its draws (the chain's
    iterations, or the particles), per-draw stats and counts, and how far it got."""

    draws: np.ndarray
    stats: dict
    n_logp: np.ndarray
    n_grad: np.ndarray
    done: int
    total: int
    extra_logp: int
    extra_grad: int
    tuned: dict = field(default_factory=dict)
    step_stats: dict | None = None  # particle runs: per time step, with "time"


def run_chain(cfg, target, seed, init, tune, draws, chain=0, progress=None, stop=None, budget=None,
              state=None, on_checkpoint=None, checkpoint_every=None):
    """One chain (or particle run) from its own SeedSequence, advanced in chunks of iterations
    (or time steps) of about ``_CHUNK_SECONDS``; stops early when ``stop`` is set, and a Markov
    chain also once it has spent ``budget`` evaluations (keeping its draws). ``state`` (a
    checkpoint's (state, arrays) of this chain) continues a run instead of starting it;
    ``on_checkpoint(run, done)`` is called every ``checkpoint_every`` units (every
    ``_CHECKPOINT_SECONDS`` when None) and when the chain stops. Module-level and picklable, so
    any executor can run it."""
    run, done = _start_or_restore(cfg, target, seed, init, tune, draws, chain, budget, state)
    if progress is not None and done:
        progress(done, run.total)
    done = _drive(cfg, run, done, budget=budget, progress=progress, stop=stop, on_checkpoint=on_checkpoint,
                  every=checkpoint_every)
    return _chain_result(cfg, run, done)


def _start_or_restore(cfg, target, seed, init, tune, draws, chain, budget, state):
    if state is None:
        rng = np.random.Generator(np.random.PCG64(seed))
        return _start(cfg, target, rng, init, tune, draws, chain, budget), 0
    from . import checkpoint
    run = checkpoint.restore(state[0], state[1], cfg, target)
    if cfg.kind != PARTICLES:
        checkpoint.extend(run, draws)
    return run, state[0]["done"]


def _drive(cfg, run, done, *, budget=None, progress=None, stop=None, on_checkpoint=None, every=None,
           seconds=None, until=None):
    """Advance ``run`` from ``done`` until it ends, ``stop`` is set, a Markov chain has spent
    ``budget``, or (remote segments) about ``seconds`` have passed or ``until`` units are done;
    returns the units done. Chunk boundaries never change the draws, so checkpoints may fall
    anywhere."""
    markov_budget = budget if cfg.kind != PARTICLES else None  # a particle run planned for it
    chunk = 10 if cfg.kind != PARTICLES else 1
    t_start = last_time = time.perf_counter()
    last_done = first = done
    end = run.total if until is None else min(run.total, until)
    while done < end and not (stop is not None and stop.is_set()):
        if seconds is not None and done > first and time.perf_counter() - t_start > seconds:
            break  # not before the first chunk: a segment always advances its chain
        if markov_budget is not None:
            spent = run.spent(done)
            if spent >= markov_budget:
                break
            if done:  # do not overshoot the budget by more than about one iteration
                chunk = min(chunk, max(1, int((markov_budget - spent) * done / spent)))
        stop_at = min(end, done + chunk)
        if every is not None and on_checkpoint is not None:
            stop_at = min(stop_at, last_done + every)
        t0 = time.perf_counter()
        run.advance(done, stop_at)
        elapsed = time.perf_counter() - t0
        if progress is not None:
            progress(stop_at - done, run.total)
        chunk = int(np.clip((stop_at - done) * _CHUNK_SECONDS / max(elapsed, 1e-6), 1, 1000))
        done = stop_at
        if on_checkpoint is not None and (done - last_done >= every if every is not None
                                          else time.perf_counter() - last_time > _CHECKPOINT_SECONDS):
            on_checkpoint(run, done)
            last_done, last_time = done, time.perf_counter()
    if on_checkpoint is not None and done != last_done:
        on_checkpoint(run, done)  # where it stopped: the end, Ctrl-C or the budget
    return done


def _finished(cfg, run, done, budget):
    """Whether a chain has nothing left to do: at its end, or (Markov) its budget spent."""
    return done >= run.total or (budget is not None and cfg.kind != PARTICLES and run.spent(done) >= budget)


def _chain_result(cfg, run, done):
    if cfg.kind == PARTICLES:
        return ChainResult(run.particles, run.stats, run.n_logp, run.n_grad, done, run.total,
                           run.extra_logp, run.extra_grad, run.tuned(),
                           step_stats={**run.step_stats, "time": run.time})
    return ChainResult(run.draws, run.stats, run.n_logp, run.n_grad, done, run.total,
                       run.extra_logp, run.extra_grad, run.tuned())


def _run_chains(cfg, target, seeds, inits, tune, draws, progressbar, executor, chain_budget=None,
                states=None, ckpt=None, checkpoint_every=None):
    chains = len(seeds)
    states = states if states is not None else [None] * chains
    own = executor is None
    local = own or isinstance(executor, cf.ThreadPoolExecutor)
    if not local:  # processes, Dask: chains run as segments that return their state (_dask.py)
        from . import _dask
        return _dask.run_chains(cfg, target, seeds, inits, tune, draws, progressbar, executor, chain_budget,
                                states, ckpt, checkpoint_every)
    bars = _progress_bars(chains, cfg, progressbar)
    stop = threading.Event()
    if own:
        executor = cf.ThreadPoolExecutor(max_workers=min(chains, os.cpu_count() or 1))
    futures = {}
    for c in range(chains):
        on_checkpoint = None if ckpt is None else functools.partial(ckpt.save_run, c)
        futures[executor.submit(run_chain, cfg, target, seeds[c], inits[c], tune, draws, chain=c,
                                budget=chain_budget, progress=_bar_progress(bars[c]) if bars else None,
                                stop=stop, state=states[c], on_checkpoint=on_checkpoint,
                                checkpoint_every=checkpoint_every)] = c
    interrupted = False
    try:
        pending = set(futures)
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2)
            for f in finished:
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


def _progress_bars(chains, cfg, enabled):
    """One bar per chain, in iterations or, for particle runs, in time steps (the run sets its
    bar's total: the family picks its number of steps)."""
    if not enabled:
        return []
    from tqdm.auto import tqdm
    unit = "step" if cfg.kind == PARTICLES else "it"
    return [tqdm(total=None, desc=f"chain {c}", position=c, leave=True, unit=unit) for c in range(chains)]


def _bar_progress(bar):
    """progress(n, total) for run_chain: n more units done out of ``total``."""
    def progress(n, total):
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(n)
    return progress


# -- output ------------------------------------------------------------------------------------


def _spent_attrs(kept, interrupted, returned):
    """Totals of everything spent (including draws of chains cut to the shortest, and runs that
    did not finish), and what came back."""
    return dict(n_logp=int(sum(r.n_logp.sum() + r.extra_logp for r in kept)),
                n_grad=int(sum(r.n_grad.sum() + r.extra_grad for r in kept)),
                interrupted=int(interrupted),  # 0/1: netCDF attributes have no boolean type
                chains_returned=len(returned),
                tuned=_json_list([r.tuned for r in returned]))


def _per_draw_stats(results, lo, hi):
    """{name: (chain, draw)} of the family's statistics and the evaluation counts."""
    out = {name: np.stack([r.stats[name][lo:hi] for r in results]) for name in results[0].stats}
    out["n_logp"] = np.stack([r.n_logp[lo:hi] for r in results])
    out["n_grad"] = np.stack([r.n_grad[lo:hi] for r in results])
    return out


def _assemble(results, target, tune, save_warmup, interrupted, attrs):
    kept = [r for r in results if r is not None]
    n_done = min(r.done for r in kept)  # chains stopped by Ctrl-C at different points: cut to the shortest
    n_warm = min(n_done, tune)
    n_post = max(0, n_done - tune)
    if n_post == 0 and not interrupted:
        warnings.warn(f"{attrs['sampler']}: max_evals was spent after {n_done} of {tune} warmup iterations: "
                      "no draws kept. Give a larger max_evals or a shorter tune.", RuntimeWarning, stacklevel=4)
    attrs = {**attrs, **_spent_attrs(kept, interrupted, kept)}
    warm = {}
    if save_warmup:
        warm = dict(warmup_posterior=np.stack([r.draws[:n_warm] for r in kept]),
                    warmup_stats=_per_draw_stats(kept, 0, n_warm))
    return _arviz.to_inference_data(np.stack([r.draws[tune:tune + n_post] for r in kept]),
                                    _per_draw_stats(kept, tune, tune + n_post), target.names, attrs,
                                    **warm)


def _assemble_particles(results, target, interrupted, attrs):
    """Finished runs only: a population stopped part-way through its time grid is not a sample
    from the target. Per-step diagnostics go to the ``step_stats`` group, dims (chain, step)."""
    import xarray as xr
    kept = [r for r in results if r is not None]
    finished = [r for r in kept if r.done == r.total]
    if not finished:
        steps = ", ".join(f"{r.done}/{r.total}" for r in kept)
        raise KeyboardInterrupt(f"interrupted before any particle run reached the end of its time grid "
                                f"(steps done: {steps}); a population part-way through is not a sample "
                                "from the target, so nothing is returned")
    attrs = {**attrs, **_spent_attrs(kept, interrupted, finished), "n_steps": finished[0].total}
    n = finished[0].draws.shape[0]
    draws = np.stack([r.draws for r in finished])
    stats = _per_draw_stats(finished, 0, n)
    stats["lp"] = particle_log_densities(target, draws)
    warn_if_particles_outside_support(stats["lp"], attrs["sampler"], target, draws)
    steps = xr.Dataset({name: (("chain", "step"), np.stack([r.step_stats[name] for r in finished]))
                        for name in finished[0].step_stats},
                       coords={"chain": np.arange(len(finished)), "step": np.arange(finished[0].total)})
    return _arviz.to_inference_data(draws, stats, target.names, attrs, extra_groups={"step_stats": steps})


def _json_list(items):
    import json
    return json.dumps(items)
