"""What a sampler family provides to ``sample()``: a settings class that declares its kind, and a
*run* that the driver advances in chunks.

Two kinds (see ``docs/driver.md`` for how a new family plugs in):

- ``"markov"``: a chain, one draw per iteration; ``tune`` iterations of warmup, then ``draws``.
  ``start_chain`` returns a :class:`ChainRunner` whose units are iterations.
- ``"particles"``: one independent run of a population of ``draws`` particles through a time grid
  (diffusion steps, annealing levels, measurements); a draw exists only at the end of the grid.
  ``start_run`` returns a :class:`ParticleRun` whose units are time steps.

The driver (``mcsample.sample``) owns buffers, chunking, progress, the evaluation budget and
interruption for both; a run only advances units ``[start, stop)`` and counts what it spends.

Checkpoints (``mcsample.checkpoint``) store a run between two ``advance`` calls by walking its
attributes, and Dask ships it the same way: keep a run's state in numpy arrays, Python or numpy
scalars, strings, (named) tuples, lists, dicts with string keys, the ``numpy.random.Generator``,
and instances of mcsample classes built of the same (the settings and the target are stored by
reference). No compiled functions or closures as attributes: take them from ``self.target`` or
``self.settings`` when advancing. Whatever ``advance`` needs next must be in the attributes, not
in locals of a generator or a thread. ``tests/test_checkpoint.py`` checks every registered family.
"""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import numpy as np

MARKOV, PARTICLES = "markov", "particles"


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """Base of every family's settings. Subclasses are frozen dataclasses with the paper's
    defaults, a ``name`` (as in ``mc.samplers.available()``), a ``citation`` and their ``kind``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = MARKOV
    needs_grad: ClassVar[bool] = False
    citation: ClassVar[str] = ""

    def validate(self, dim: int) -> None:
        """Raise ValueError for settings that cannot work on a target of this dimension."""

    def start_chain(self, target, rng, q0, tune, draws) -> "ChainRunner":
        raise NotImplementedError

    def to_json(self) -> str:
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v
        return json.dumps({f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)},
                          default=repr)


@dataclasses.dataclass(frozen=True)
class ParticleSettings(SamplerSettings):
    """Base of the particle families' settings.

    ``start_run`` receives the run's share of an evaluation budget per particle (None: no
    budget) and picks its own knobs from it (inner sample sizes, numbers of steps); the run then
    reports what it really spent. ``tune`` means what the family documents (a pilot, or nothing).
    """

    kind: ClassVar[str] = PARTICLES
    default_draws: ClassVar[int] = 1000  # population size when the caller gives a budget only

    def start_run(self, target, rng, init, tune, draws, budget_per_particle) -> "ParticleRun":
        raise NotImplementedError

    def draws_for_budget(self, budget_per_run: float, dim: int) -> int:
        """Population size for a run given this many evaluations (``mc.compare``)."""
        return self.default_draws

    def for_compile_run(self) -> "ParticleSettings":
        """The settings of ``sample()``'s throwaway run of two particles that compiles the kernels:
        these, or the same without work whose result is thrown away (a search that compiles no
        kernel of its own, say) and which would cost as much as the run's own."""
        return self


class Run:
    """What the driver advances: ``total`` units in chunks ``advance(start, stop)``.

    Every log-density and gradient evaluation is counted: per unit or per particle in
    ``n_logp``/``n_grad``, and outside them (initial point, step-size searches, pilots) in
    ``extra_logp``/``extra_grad``."""

    unit: ClassVar[str] = "it"
    total: int

    def advance(self, start: int, stop: int) -> None:
        raise NotImplementedError

    def spent(self, done: int) -> int:
        """Evaluations spent by the first ``done`` units and outside them."""
        raise NotImplementedError

    def compile_kernels(self) -> None:
        """Compile kernels that a short run does not reach (e.g. a warmup-only kernel), so that
        ``sample()`` can keep compilation out of ``wall_time``. Only called on throwaway runs."""

    def tuned(self) -> dict:
        """Adapted tunables (step size, metric, width ...) to record with the run."""
        return {}


class ChainRunner(Run):
    """One Markov chain's state and its outputs for ``tune + draws`` iterations.

    ``run(start, stop)`` advances iterations [start, stop) (warmup first), writing
    ``draws[start:stop]``, ``stats[name][start:stop]``, ``n_logp`` and ``n_grad``. Evaluations
    outside the iterations (initial point, step-size searches) go to ``extra_logp``/``extra_grad``.
    """

    stat_dtypes: ClassVar[dict] = {}

    def __init__(self, settings, target, rng, q0, tune, draws):
        self.settings = settings
        self.target = target
        self.rng = rng
        self.tune = tune
        self.total = n = tune + draws
        self.q = np.array(q0, dtype=np.float64)
        self.draws = np.zeros((n, target.dim))
        self.stats = {k: np.zeros(n, dtype=t) for k, t in self.stat_dtypes.items()}
        self.n_logp = np.zeros(n, dtype=np.int64)
        self.n_grad = np.zeros(n, dtype=np.int64)
        self.extra_logp = 0
        self.extra_grad = 0

    def eval_logp_grad(self, x):
        from ..target import _call_logp_grad
        self.extra_grad += 1
        lp, g = _call_logp_grad(self.target.logp_grad_fn, x, self.target.kernel_args)
        return lp, g

    def run(self, start: int, stop: int) -> None:
        raise NotImplementedError

    def advance(self, start, stop):
        self.run(start, stop)

    def spent(self, done):
        return int(self.n_logp[:done].sum() + self.n_grad[:done].sum() + self.extra_logp + self.extra_grad)


class WindowedChain(ChainRunner):
    """A chain whose warmup follows a :class:`~mcsample._core.adaptation.WarmupSchedule`.

    ``run`` cuts [start, stop) where the schedule's regime changes and calls, in order,
    ``_advance(lo, hi)`` for each piece, ``_end_window(begin, end)`` when a slow window closes at
    ``hi`` and ``_end_warmup()`` when ``hi`` is the end of warmup. Subclasses set ``schedule``."""

    schedule = None

    def run(self, start, stop):
        for lo, hi in self.schedule.segments(start, stop):
            self._advance(lo, hi)
            window = self.schedule.window_closing_at(hi)
            if window is not None:
                self._end_window(*window)
            if hi == self.tune:
                self._end_warmup()

    def _advance(self, lo: int, hi: int) -> None:
        raise NotImplementedError

    def _end_window(self, begin: int, end: int) -> None:
        """Refit what the window's draws ``draws[begin:end]`` estimate."""

    def _end_warmup(self) -> None:
        """Freeze what warmup adapted."""


class ParticleRun(Run):
    """One run of a population of ``draws`` particles through ``n_steps`` time steps.

    ``advance(start, stop)`` moves every particle through steps [start, stop). After the last
    step ``particles`` (draws, dim) holds the run's draws. Per particle: ``n_logp``, ``n_grad``
    and ``stats[name]`` (``particle_stat_dtypes``); per time step: ``step_stats[name]``
    (``step_stat_dtypes``, e.g. importance-sampling ESS, inner acceptance, score norm) and
    ``time`` (the grid)."""

    unit: ClassVar[str] = "step"
    particle_stat_dtypes: ClassVar[dict] = {}
    step_stat_dtypes: ClassVar[dict] = {}

    def __init__(self, settings, target, rng, tune, draws, n_steps):
        if n_steps < 1:
            raise ValueError(f"{settings.name}: a run needs at least one time step, got {n_steps}")
        self.settings = settings
        self.target = target
        self.rng = rng
        self.tune = tune
        self.total = int(n_steps)
        self.particles = np.zeros((draws, target.dim))
        self.stats = {k: np.zeros(draws, dtype=t) for k, t in self.particle_stat_dtypes.items()}
        self.n_logp = np.zeros(draws, dtype=np.int64)
        self.n_grad = np.zeros(draws, dtype=np.int64)
        self.step_stats = {k: np.zeros(self.total, dtype=t) for k, t in self.step_stat_dtypes.items()}
        self.time = np.zeros(self.total)
        self.extra_logp = 0
        self.extra_grad = 0

    def spent(self, done):
        return int(self.n_logp.sum() + self.n_grad.sum() + self.extra_logp + self.extra_grad)
