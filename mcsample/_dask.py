"""Chains on executors other than threads: Dask (``Client.get_executor()``), process pools.

Such an executor cannot call back into this process, so a chain runs as a sequence of
*segments*: each task restores the chain from its state (a checkpoint's JSON + arrays; none for
the first), advances it for about ``_SEGMENT_SECONDS`` (or to its next checkpoint), and returns
its new state. Between segments this process updates the chain's progress bar and checkpoint
file, and on Ctrl-C stops submitting and returns what the chains have drawn.

Draws do not depend on where or when a segment runs: a chain's generator comes from its own
``SeedSequence`` child and travels in its state, and chunk boundaries never change a chain's
draws. So a task that Dask re-runs after its worker died (the scheduler retries tasks of lost
workers) yields the same state, and the result is bit-identical to the thread executor's.

On a real cluster: ``client = dask.distributed.Client("tcp://scheduler:8786")`` then
``mc.sample(..., executor=client.get_executor())``. Targets travel by pickling (numba functions
by reference when importable on the workers, by value from ``__main__`` or a notebook, PyMC
targets as their model), their data with them; each worker compiles a target's guard (and a PyMC
model) once and loads the kernels from numba's cache, or compiles them once, on the first task
it runs.

A target travels *packed*: cloudpickled once per run into bytes that every task carries, and
unpacked on the worker through a small per-process cache keyed by the bytes' hash. Dask's
scheduler unpickles the arguments of every task it receives (it would build, and for a PyMC
target compile, each target in the scheduler process, which need not even have PyMC); bytes it
leaves alone. The cache also spares a worker from rebuilding the target for each segment.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import hashlib
import threading
import time

_SEGMENT_SECONDS = 5.0  # a remote task's length between returns to the driver
_CHECKPOINT_SECONDS = 60.0  # without checkpoint_every, how often the file is rewritten
_UNPACKED_KEEP = 8  # targets a process keeps unpacked (a compare grid's, a few runs')
_UNPACKED = collections.OrderedDict()  # SHA-256 of the packed bytes -> the target, least recent first
_UNPACKED_LOCK = threading.Lock()


def pack(target) -> bytes:
    """``target`` as bytes for tasks (see the module docstring). cloudpickle (which Dask brings)
    for functions defined in ``__main__`` or a notebook; plain pickle without it (a process pool
    and importable functions)."""
    try:
        from cloudpickle import dumps
    except ImportError:
        from pickle import dumps
    return dumps(target)


def unpack(blob):
    """The object ``pack`` made ``blob`` from, built once per process while it stays cached."""
    import pickle
    key = hashlib.sha256(blob).digest()
    with _UNPACKED_LOCK:
        if key in _UNPACKED:
            _UNPACKED.move_to_end(key)
            return _UNPACKED[key]
    obj = pickle.loads(blob)  # noqa: S301 - bytes packed by the driver of this run
    with _UNPACKED_LOCK:
        obj = _UNPACKED.setdefault(key, obj)  # another thread may have unpacked it meanwhile
        while len(_UNPACKED) > _UNPACKED_KEEP:
            _UNPACKED.popitem(last=False)
    return obj


def run_packed(fn, packed, *args, **kwargs):
    """A task: ``fn(unpack(packed), *args, **kwargs)`` (``compare``'s cells)."""
    return fn(unpack(packed), *args, **kwargs)


def run_segment(cfg, target, seed, init, tune, draws, chain, budget, state, seconds, every):
    """One task: the chain from ``state`` (or its start) for about ``seconds`` (or ``every``
    units); returns (state, arrays, finished)."""
    from . import checkpoint
    from .sample import _drive, _finished, _start_or_restore
    if isinstance(target, bytes):
        target = unpack(target)
    if state is not None:  # a task must not change its inputs: Dask may reuse them (a retry, threads)
        state = (state[0], {k: v.copy() for k, v in state[1].items()})
    run, done = _start_or_restore(cfg, target, seed, init, tune, draws, chain, budget, state)
    until = None if every is None else (done // every + 1) * every  # end on the checkpoint grid
    done = _drive(cfg, run, done, budget=budget, seconds=seconds, until=until)
    state, arrays = checkpoint.snapshot(run, done, chain)
    return state, arrays, _finished(cfg, run, done, budget)


def run_chains(cfg, target, seeds, inits, tune, draws, progressbar, executor, budget, states, ckpt, every):
    """Like ``sample._run_chains`` (same return: results per chain, interrupted) on ``executor``."""
    from . import checkpoint
    from .sample import _bar_progress, _chain_result, _progress_bars
    chains = len(seeds)
    bars = _progress_bars(chains, cfg, progressbar)
    latest = list(states)
    finished = [False] * chains
    packed = pack(target)

    def submit(c):
        return executor.submit(run_segment, cfg, packed, seeds[c], inits[c], tune, draws, c, budget, latest[c],
                               _SEGMENT_SECONDS, every)

    futures = {submit(c): c for c in range(chains)}
    last_write = time.monotonic()
    interrupted = False
    try:
        while futures:
            done_now, _ = cf.wait(list(futures), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for f in done_now:
                c = futures.pop(f)
                state, arrays, finished[c] = f.result()  # a failing chain surfaces at once
                before = 0 if latest[c] is None else latest[c][0]["done"]
                latest[c] = (state, arrays)
                if ckpt is not None:  # segments end on the checkpoint_every grid; without it, once a minute
                    ckpt.chains[c] = latest[c]
                    if every is not None or finished[c] or time.monotonic() - last_write > _CHECKPOINT_SECONDS:
                        ckpt.update(c, latest[c])
                        last_write = time.monotonic()
                if bars:
                    _bar_progress(bars[c])(state["done"] - before, state["total"])
                if not finished[c]:
                    futures[submit(c)] = c
    except KeyboardInterrupt:
        interrupted = True
        for f in futures:
            f.cancel()
    finally:
        for bar in bars:
            bar.close()
        if ckpt is not None and any(s is not None for s in latest):
            ckpt.flush()  # what every chain reached
    results = [None] * chains
    for c, snap in enumerate(latest):
        if snap is not None:
            run = checkpoint.restore(snap[0], snap[1], cfg, target)
            results[c] = _chain_result(cfg, run, snap[0]["done"])
    if all(r is None for r in results):
        raise KeyboardInterrupt
    return results, interrupted
