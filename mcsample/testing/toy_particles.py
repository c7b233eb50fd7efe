"""A particle family for tests and for the driver's documentation: exact Gaussian draws pushed
through a trivial time grid.

It exercises everything the driver does for particle samplers (budgets per particle, counting,
chunks of time steps, progress, interruption, per-step diagnostics, reproducibility) with a
known answer: at the end of the grid the population is an exact sample from N(mean, cov), so
``assert_accurate`` and ``mc.compare`` must find it accurate. It is also the smallest complete
example of a particle family (``docs/driver.md``).

The run draws X ~ N(mean, cov) once; at step k of K every particle sits at
Y_k = mean + t_k (X - mean), t_k = (k + 1) / K, and evaluates log p there ``evals_per_step``
times. Per step it reports the mean log density and the importance-sampling effective sample
size of the weights p(Y_k) / p(X) (1 at the last step, where Y = X).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from ..samplers._base import ParticleRun, ParticleSettings

__all__ = ["ToyParticles"]

_jit = numba.njit(cache=True, nogil=True)


@dataclass(frozen=True)
class ToyParticles(ParticleSettings):
    """Exact draws from N(mean, cov) through ``n_steps`` trivial time steps (tests only).

    mean, cov : the Gaussian the target is (``cov``: (d,) variances or (d, d)).
    n_steps : time steps when no budget is given; with a budget, as many as it pays for (at
        most ``n_steps``, at least one).
    evals_per_step : log-density evaluations per particle and step.
    seconds_per_step : wall time spent per step (to test progress and Ctrl-C on slow runs).
    ``tune`` and ``init`` are ignored: the family has no pilot and starts from exact draws.
    """

    name: ClassVar[str] = "toy_particles"
    citation: ClassVar[str] = "none: a test fixture for the particle driver"
    default_draws: ClassVar[int] = 500

    mean: tuple = (0.0,)
    cov: tuple = (1.0,)
    n_steps: int = 20
    evals_per_step: int = 1
    seconds_per_step: float = 0.0

    def validate(self, dim: int) -> None:
        if np.shape(self.mean) != (dim,):
            raise ValueError(f"mean must have shape ({dim},), got {np.shape(self.mean)}")
        if np.shape(self.cov) not in ((dim,), (dim, dim)):
            raise ValueError(f"cov must have shape ({dim},) or ({dim}, {dim}), got {np.shape(self.cov)}")
        if self.n_steps < 1 or self.evals_per_step < 1:
            raise ValueError("n_steps and evals_per_step must be at least 1")

    def steps_for_budget(self, budget_per_particle):
        """The plan: how many steps a budget per particle pays for, after the one evaluation
        at each particle's exact draw."""
        if budget_per_particle is None:
            return self.n_steps
        steps = (budget_per_particle - 1) // self.evals_per_step
        if steps < 1:
            raise ValueError(f"{self.name}: a budget of {budget_per_particle:.3g} evaluations per particle "
                             f"does not pay for one step ({1 + self.evals_per_step} evaluations)")
        return int(min(self.n_steps, steps))

    def start_run(self, target, rng, init, tune, draws, budget_per_particle):
        return ToyRun(self, target, rng, tune, draws, self.steps_for_budget(budget_per_particle))


@_jit
def toy_step(logp, args, x, centre, t, evals, y, out_lp, n_logp):
    """Move every particle to centre + t (x - centre), evaluating log p there ``evals`` times;
    returns the log densities in ``out_lp`` and counts them in ``n_logp``."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[j] = centre[j] + t * (x[i, j] - centre[j])
        for _ in range(evals):
            out_lp[i] = logp(y, *args)
            n_logp[i] += 1


def _ess_of_log_weights(log_w):
    """Kish's effective sample size of self-normalised weights, as a fraction of their number."""
    w = np.exp(log_w - np.max(log_w))
    return float(w.sum() ** 2 / (w @ w) / w.size)


class ToyRun(ParticleRun):
    particle_stat_dtypes: ClassVar[dict] = {"lp": np.float64}
    step_stat_dtypes: ClassVar[dict] = {"mean_lp": np.float64, "ess": np.float64}

    def __init__(self, settings, target, rng, tune, draws, n_steps):
        super().__init__(settings, target, rng, tune, draws, n_steps)
        d = target.dim
        self.centre = np.asarray(settings.mean, dtype=float)
        cov = np.asarray(settings.cov, dtype=float)
        chol = np.diag(np.sqrt(cov)) if cov.ndim == 1 else np.linalg.cholesky(cov)
        self.x = self.centre + rng.standard_normal((draws, d)) @ chol.T
        self.lp_x = np.array([target.logp(xi) for xi in self.x])
        self.extra_logp += draws
        self.time = np.arange(1, n_steps + 1) / n_steps

    def advance(self, start, stop):
        y = np.empty(self.target.dim)
        for k in range(start, stop):
            t = self.time[k]
            toy_step(self.target.logp_fn, self.target.kernel_args, self.x, self.centre, t,
                     self.settings.evals_per_step, y, self.stats["lp"], self.n_logp)
            self.step_stats["mean_lp"][k] = self.stats["lp"].mean()
            self.step_stats["ess"][k] = _ess_of_log_weights(self.stats["lp"] - self.lp_x)
            if self.settings.seconds_per_step:
                time.sleep(self.settings.seconds_per_step)
        if stop == self.total:
            self.particles[:] = self.x  # the end of the grid (t = 1): the exact draws
