"""What every sampler family provides to ``sample()``: a settings dataclass and a chain runner."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import numpy as np


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """Base of every family's settings. Subclasses are frozen dataclasses with the paper's
    defaults, a ``name`` (as in ``mc.samplers.available()``) and a ``citation``."""

    name: ClassVar[str] = ""
    needs_grad: ClassVar[bool] = False
    citation: ClassVar[str] = ""

    def validate(self, dim: int) -> None:
        """Raise ValueError for settings that cannot work on a target of this dimension."""

    def start_chain(self, target, rng, q0, tune, draws) -> "ChainRunner":
        raise NotImplementedError

    def to_json(self) -> str:
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v
        return json.dumps({f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)})


class ChainRunner:
    """One chain's state and its outputs for ``tune + draws`` iterations.

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
        n = tune + draws
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

    def compile_kernels(self) -> None:
        """Compile kernels that a short run does not reach (e.g. a warmup-only kernel), so that
        ``sample()`` can keep compilation out of ``wall_time``. Only called on throwaway runners."""

    def tuned(self) -> dict:
        """Adapted tunables (step size, metric, width ...) to record with the run."""
        return {}
