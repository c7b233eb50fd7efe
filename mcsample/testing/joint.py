"""Joint-distribution, rank and reversibility checks of MCMC kernels.

Four checks that complement the k-step invariance test of :mod:`.invariance`:

- :func:`check_exchangeability`: a reversible kernel started at the target makes exchangeable
  pairs (X0, X1); z-tests of E[f(X0) g(X1) - f(X1) g(X0)] = 0 on iid pairs.
- :func:`geweke_test`: Geweke (2004), "Getting it right": the marginal-conditional and the
  successive-conditional simulators of p(theta, y) must agree in the means of test functions.
- :func:`rank_test`: Gandy & Scott (2020), the exact rank test: a chain of L states through a
  draw from the joint, the draw's rank among them is uniform on 1..L.
- :func:`sbc`: simulation-based calibration (Talts et al. 2018) of a whole ``mcsample.sample``
  run, warmup and adaptation included.

Every check splits its false-alarm budget ``alpha`` over its tests (Bonferroni), so it fails a
correct kernel with probability below ``alpha`` whatever the seed; it returns a
:class:`JointTestReport` and raises AssertionError carrying that report when a test fails.

**Models with data** (the last three checks). The model is given by ``prior_draw(rng) -> theta``
(shape ``(dim,)``), ``simulate(theta, rng) -> y`` (a numeric array of one fixed shape) and
``make_target(y) -> Target``, the posterior p(theta | y). The posterior changes with every
simulated data set, but compiling a Target per data set would dominate the run time, so
``make_target`` is called **once**, with an array that the check then overwrites **in place**
for every new data set. ``make_target(y)`` must therefore put that very array in the Target's
``args`` (``Target(logp, dim, logp_grad=..., args=(y, ...))``, not a copy such as
``y.astype(...)`` or ``y - y.mean()``), and logp must read the data from it at every call
(precompute nothing from ``y``). Both requirements are checked: the check raises ValueError when
the array is not among the args, or when the Target, after its data were overwritten, disagrees
with a Target built afresh from the new data. ``simulate`` should return the dtype logp expects.

**Kernels.** ``sampler`` is a name from ``mcsample.samplers.available()`` (settings as keyword
arguments), a settings object, or your own kernel ``step(x, rng) -> x_new``. Adaptation must be
frozen (for NUTS ``step_size=..., adapt_step_size=False``); only :func:`sbc` runs warmup. A user
kernel whose density depends on the data is given as ``KernelFactory(make_step)``, where
``make_step(target)`` is called once with the Target and returns the step; the step must read
the data through the target at every call (``target.logp(x)``, or your compiled function applied
to ``target.args``), since the data change in place between calls.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np
from scipy import stats as _stats

from .. import samplers as _samplers
from ..convergence import ConvergenceWarning
from ..target import Target
from .invariance import _chain_stepper, kernel_name

__all__ = ["check_exchangeability", "geweke_test", "rank_test", "sbc", "KernelFactory",
           "JointTestReport", "SBCReport"]


# -- reports ------------------------------------------------------------------------------------


@dataclass
class JointTestReport:
    """One row per test: (name, statistic, p-value). ``threshold`` is the Bonferroni share of
    ``alpha`` each p-value is held to; ``statistic`` names the statistic column ("z", "chi2");
    ``notes`` are extra lines (e.g. rank counts) printed under the table."""

    rows: list
    threshold: float
    title: str = ""
    statistic: str = "statistic"
    notes: list = field(default_factory=list)

    @property
    def failures(self) -> list:
        return [r for r in self.rows if not r[2] >= self.threshold]  # NaN p-values fail

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def p_values(self) -> dict:
        return {name: p for name, _, p in self.rows}

    def __str__(self):
        width = max([22] + [len(r[0]) for r in self.rows])
        lines = [self.title] if self.title else []
        lines.append(f"{'test':<{width}} {self.statistic:>10} {'p-value':>10}   "
                     f"(fail below {self.threshold:.2e})")
        for name, value, p in self.rows:
            flag = "  <-- FAIL" if not p >= self.threshold else ""
            lines.append(f"{name:<{width}} {value:10.4f} {p:10.3e}{flag}")
        lines.extend(self.notes)
        return "\n".join(lines)


@dataclass
class SBCReport(JointTestReport):
    """A :class:`JointTestReport` of chi-square uniformity tests, plus the SBC ranks: ``ranks``
    maps each statistic to its (n_sims,) ranks in 0..n_draws."""

    ranks: dict = field(default_factory=dict)
    n_draws: int = 0
    bins: int = 0


def _raise_if_failed(report, what):
    if report.failures:
        raise AssertionError(f"{what}:\n{report}")
    return report


def _counts_note(name, counts):
    return f"  counts {name}: {' '.join(str(int(c)) for c in counts)}"


# -- kernels and data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelFactory:
    """A user kernel that needs the Target, for checks whose target data change in place.

    ``make_step(target) -> step(x, rng) -> x_new`` is called once with the Target; the step
    must evaluate the density through that target at every call (see the module docstring)."""

    make_step: Callable
    name: str | None = None


def _stepper(target, sampler, settings):
    """(x0, rng, k) -> (k, dim): k transitions of ``sampler`` on ``target`` (see
    :func:`mcsample.testing.invariance._chain_stepper`), also for a :class:`KernelFactory`."""
    if isinstance(sampler, KernelFactory):
        if settings:
            raise ValueError("settings are only accepted with a sampler name or settings object")
        step = sampler.make_step(target)
        if not callable(step):
            raise ValueError("KernelFactory.make_step(target) must return a step(x, rng) function")
        return _chain_stepper(target, step, {})
    if isinstance(sampler, (str, _samplers.SamplerSettings)):
        cfg = _samplers.resolve(sampler, settings)
        if cfg.needs_grad and not target.has_grad:
            raise ValueError(f"sampler {cfg.name!r} needs a gradient but target {target.name!r} "
                             "has no logp_grad")
    return _chain_stepper(target, sampler, settings)


def _name(sampler):
    if isinstance(sampler, KernelFactory):
        return sampler.name or getattr(sampler.make_step, "__name__", "user kernel")
    return kernel_name(sampler)


class _DataSlot:
    """The single Target of a check with data, and the array holding its data (overwritten in
    place for each simulated data set; see the module docstring)."""

    def __init__(self, make_target, y0):
        y0 = np.atleast_1d(np.asarray(y0))
        if y0.dtype == object or not np.issubdtype(y0.dtype, np.number) and y0.dtype != bool:
            raise ValueError(f"simulate must return a numeric array, got dtype {y0.dtype}")
        self.make_target = make_target
        self.y = np.array(y0, order="C", copy=True)
        target = make_target(self.y)
        if not isinstance(target, Target):
            raise TypeError(f"make_target must return an mcsample.Target, got {type(target).__name__}")
        if not any(a is self.y for a in target.args):
            raise ValueError(
                "make_target(y) must pass the array y itself (not a copy or a transform of it) "
                "in the Target's args: the check overwrites that array in place for every "
                "simulated data set instead of building a new Target each time. Convert dtypes "
                "in simulate, and compute summaries of y inside logp.")
        self.target = target

    def set(self, y):
        y = np.atleast_1d(np.asarray(y))
        if y.shape != self.y.shape:
            raise ValueError(f"simulate returned data of shape {y.shape}, but the first data set "
                             f"had shape {self.y.shape}; the data must keep one shape")
        np.copyto(self.y, y, casting="same_kind")

    def verify(self, y, points):
        """Set the data to ``y`` and check that the Target agrees with one built afresh from a
        copy of ``y`` at ``points``: a Target that kept summaries of its first data set fails."""
        self.set(y)
        fresh = self.make_target(np.array(self.y, copy=True))
        for x in points:
            got, want = self.target.logp(x), fresh.logp(x)
            if not (got == want or np.isclose(got, want, rtol=1e-9, atol=1e-9)):
                raise ValueError(
                    "the Target from make_target does not follow its data: after its data "
                    f"array was overwritten, logp at {np.asarray(x)} is {got!r}, but a Target "
                    f"built from the same data gives {want!r}. logp must read y from the array "
                    "in args at every call (compute nothing from y inside make_target).")


def _draw_theta(prior_draw, rng, dim=None):
    theta = np.asarray(prior_draw(rng), dtype=float)
    if theta.ndim != 1 or (dim is not None and theta.shape != (dim,)):
        want = f"({dim},)" if dim is not None else "(dim,)"
        raise ValueError(f"prior_draw must return a parameter vector of shape {want}, got {theta.shape}")
    return theta


def _setup_model(prior_draw, simulate, make_target, rng, n_check=2):
    """Draw (theta, y) from the joint, build the Target on a data slot and verify it follows
    its data on a second simulated data set."""
    theta = _draw_theta(prior_draw, rng)
    slot = _DataSlot(make_target, simulate(theta, rng))
    dim = slot.target.dim
    if theta.shape != (dim,):
        raise ValueError(f"prior_draw returned shape {theta.shape} but the Target has dim {dim}")
    theta2 = _draw_theta(prior_draw, rng, dim)
    points = [slot.target.test_point, theta, theta2][:1 + n_check]
    slot.verify(simulate(theta2, rng), points)
    return slot


@numba.njit(cache=True)
def _logp_rows(fn, x, y_rows, y_flat, args):
    """log p(x[i] | y_rows[i]) for every row, writing each data set into ``y_flat`` (a flat view
    of the data array inside ``args``) before evaluating."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        for j in range(y_flat.size):
            y_flat[j] = y_rows[i, j]
        out[i] = fn(x[i], *args)
    return out


def _logp_of_pairs(slot, theta, y):
    n = theta.shape[0]
    rows = np.ascontiguousarray(y.reshape(n, -1), dtype=slot.y.dtype)
    return _logp_rows(slot.target.logp_fn, np.ascontiguousarray(theta), rows,
                      slot.y.reshape(-1), slot.target.kernel_args)


def _default_functions(dim, slot=None):
    """theta_i and theta_i^2 for every coordinate (and log p(theta | y) when a slot is given)."""
    out = {}
    for i in range(dim):
        out[f"theta[{i}]"] = lambda th, y, i=i: th[:, i]
        out[f"theta[{i}]^2"] = lambda th, y, i=i: th[:, i] ** 2
    if slot is not None:
        out["log p(theta | y)"] = lambda th, y: _logp_of_pairs(slot, th, y)
    return out


def _evaluate(functions, theta, y):
    values = {}
    for name, fn in functions.items():
        v = np.asarray(fn(theta, y), dtype=float)
        if v.shape != (theta.shape[0],):
            raise ValueError(f"test function {name!r} must return shape ({theta.shape[0]},), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"test function {name!r} returned non-finite values")
        values[name] = v
    return values


# -- 1. exchangeability (reversibility) --------------------------------------------------------


def _few_coordinates(dim, k=3):
    return sorted({int(round(j)) for j in np.linspace(0, dim - 1, min(k, dim))})


def _z_p(values):
    n = values.size
    mean = values.mean()
    sd = values.std(ddof=1)
    if sd == 0.0:
        return (0.0, 1.0) if mean == 0.0 else (float(np.copysign(np.inf, mean)), 0.0)
    z = mean / (sd / np.sqrt(n))
    return float(z), float(2.0 * _stats.norm.sf(abs(z)))


def check_exchangeability(target, sampler, exact, *, n=20000, alpha=1e-4, seed=0, functions=None,
                          **settings) -> JointTestReport:
    """Raise AssertionError unless one kernel step from exact draws makes exchangeable pairs.

    A kernel K that is reversible with respect to pi (detailed balance) makes (X0, X1), with
    X0 ~ pi exactly and X1 ~ K(X0, .), exchangeable: (X0, X1) and (X1, X0) have the same law.
    So for any f, g, D = f(X0) g(X1) - f(X1) g(X0) has mean 0, and n iid pairs give a z-test.
    Exchangeability of (X0, X1) is detailed balance, pi(dx) K(x, dy) = pi(dy) K(y, dx) (see
    e.g. Geyer (1992), "Practical Markov chain Monte Carlo", Statistical Science 7:473-483, on
    reversible chains); this check tests it through the mean of D. A kernel that leaves pi
    invariant without being reversible (e.g. a deterministic-scan Gibbs sweep) can fail; so
    does a biased kernel.

    ``exact(rng, n) -> (n, dim)`` draws from the target. ``functions``: a list of
    ``(name, f, g)`` with f, g mapping an (n, dim) array to (n,); by default, for a few
    coordinates u = x_j and one random projection u = x . v: (u, u^2) and (u, 1{u > median}),
    the median taken from separate exact draws. u^2 needs finite fourth moments; for heavy-tailed
    targets pass bounded functions. Each z-test is held to alpha / (number of tests).
    """
    rng = np.random.default_rng(seed)
    krng = np.random.default_rng([seed, 1])
    x0 = np.asarray(exact(rng, n), dtype=float)
    if x0.shape != (n, target.dim):
        raise ValueError(f"exact(rng, n) must return shape ({n}, {target.dim}), got {x0.shape}")
    reference = np.asarray(exact(rng, n), dtype=float)
    direction = rng.standard_normal(target.dim)
    direction /= np.linalg.norm(direction)
    run = _stepper(target, sampler, settings)
    x1 = np.empty_like(x0)
    for i in range(n):
        x1[i] = run(x0[i], krng, 1)[0]
    if functions is None:
        functions = []
        projections = [(f"x[{j}]", lambda x, j=j: x[:, j]) for j in _few_coordinates(target.dim)]
        projections.append(("random projection", lambda x: x @ direction))
        for label, u in projections:
            median = float(np.median(u(reference)))
            functions.append((f"{label} vs {label}^2", u, lambda x, u=u: u(x) ** 2))
            functions.append((f"{label} vs 1{{{label} > {median:.3g}}}", u,
                              lambda x, u=u, m=median: (u(x) > m).astype(float)))
    rows = []
    for name, f, g in functions:
        d = (np.asarray(f(x0), dtype=float) * np.asarray(g(x1), dtype=float)
             - np.asarray(f(x1), dtype=float) * np.asarray(g(x0), dtype=float))
        if d.shape != (n,):
            raise ValueError(f"functions {name!r} must map (n, dim) to (n,), got {d.shape}")
        if not np.all(np.isfinite(d)):
            raise ValueError(f"functions {name!r} gave non-finite values")
        z, p = _z_p(d)
        rows.append((name, z, p))
    report = JointTestReport(rows, alpha / len(rows),
                             title=f"exchangeability of (X0, X1), n = {n} pairs: E[f(X0)g(X1) - f(X1)g(X0)] = 0",
                             statistic="z")
    return _raise_if_failed(report, f"{target.name}: one step of {_name(sampler)} from exact draws "
                                    "does not give exchangeable pairs (not reversible, or biased)")


# -- 2. Geweke's joint distribution test -------------------------------------------------------


def _batch_means_variance(values, n_batches):
    """Long-run variance tau^2 (so Var(mean) ~ tau^2 / n) from ``n_batches`` contiguous batches,
    and the number of values used."""
    b = values.size // n_batches
    used = values[values.size - b * n_batches:]
    means = used.reshape(n_batches, b).mean(axis=1)
    return b * means.var(ddof=1), used.size


def geweke_test(prior_draw, simulate, make_target, sampler, *, n_iter=20000, n_marginal=None,
                thin=1, n_batches=50, alpha=1e-4, seed=0, test_functions=None,
                **settings) -> JointTestReport:
    """Geweke's "Getting it right" test of a posterior kernel: raise AssertionError unless the
    marginal-conditional and successive-conditional simulators agree.

    Geweke (2004), "Getting it right: joint distribution tests of posterior simulators", JASA
    99:799-804. The marginal-conditional simulator draws M1 = ``n_marginal`` iid pairs
    theta ~ p(theta), y ~ p(y | theta). The successive-conditional simulator starts at
    theta ~ p(theta) and repeats y ~ p(y | theta), then theta <- one transition of the kernel
    targeting p(theta | y); each pair (theta, y) is then a draw from the joint if the kernel
    leaves every posterior invariant, so both simulators have the same means. ``n_iter`` pairs
    are recorded, one every ``thin`` iterations (thinning only shortens the stored output).
    For each test function g(theta, y), z = (g1 - g2) / sqrt(s1^2 / M1 + tau2^2 / M2), with
    tau2^2 the long-run variance of the chain's g by batch means over ``n_batches`` batches;
    p-values come from Student's t with Welch-Satterthwaite degrees of freedom (the batch-means
    variance has n_batches - 1), held to alpha / (number of functions).

    ``test_functions``: a dict name -> g(theta, y) with theta of shape (n, dim) and y of shape
    (n, *y.shape), returning (n,). The default is theta_i and theta_i^2 for every coordinate and
    log p(theta | y) (the Target's logp with the data y), which couples theta and y: a kernel
    that ignores the data (e.g. targets the prior) leaves the theta-marginal right and is only
    caught through functions of both. See the module docstring for the model arguments.
    """
    sim_seed, kernel_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.Generator(np.random.PCG64(sim_seed))
    krng = np.random.Generator(np.random.PCG64(kernel_seed))
    m1 = n_iter if n_marginal is None else int(n_marginal)
    if n_iter < 2 * n_batches or m1 < 2:
        raise ValueError(f"n_iter must be at least 2 * n_batches = {2 * n_batches}, n_marginal at least 2")
    slot = _setup_model(prior_draw, simulate, make_target, rng)
    target, dim = slot.target, slot.target.dim
    step = _stepper(target, sampler, settings)

    theta1 = np.empty((m1, dim))
    y1 = np.empty((m1,) + slot.y.shape, dtype=slot.y.dtype)
    for i in range(m1):
        theta1[i] = _draw_theta(prior_draw, rng, dim)
        y1[i] = simulate(theta1[i], rng)

    theta2 = np.empty((n_iter, dim))
    y2 = np.empty((n_iter,) + slot.y.shape, dtype=slot.y.dtype)
    theta = _draw_theta(prior_draw, rng, dim)
    for m in range(n_iter * thin):
        slot.set(simulate(theta, rng))
        theta = step(theta, krng, 1)[0]
        if (m + 1) % thin == 0:
            theta2[m // thin] = theta
            y2[m // thin] = slot.y

    functions = _default_functions(dim, slot) if test_functions is None else dict(test_functions)
    g1 = _evaluate(functions, theta1, y1)
    g2 = _evaluate(functions, theta2, y2)
    rows = []
    for name in functions:
        a = g1[name].var(ddof=1) / m1
        tau2, used = _batch_means_variance(g2[name], n_batches)
        c = tau2 / used
        diff = g1[name].mean() - g2[name][g2[name].size - used:].mean()
        if a + c == 0.0:
            z, p = (0.0, 1.0) if diff == 0.0 else (np.inf, 0.0)
        else:
            z = diff / np.sqrt(a + c)
            df = (a + c) ** 2 / (a * a / (m1 - 1) + c * c / (n_batches - 1))
            p = 2.0 * _stats.t.sf(abs(z), df)
        rows.append((name, float(z), float(p)))
    report = JointTestReport(rows, alpha / len(rows), statistic="z",
                             title=f"Geweke joint distribution test: {m1} marginal-conditional vs "
                                   f"{n_iter} successive-conditional draws (thin {thin})")
    return _raise_if_failed(report, f"{target.name}: the successive-conditional simulator with "
                                    f"{_name(sampler)} disagrees with the marginal-conditional one")


# -- 3. Gandy & Scott exact rank test -----------------------------------------------------------


def _random_ranks(values, position, rng):
    """Rank (1-based) of values[r, position[r]] in its row, ties broken uniformly at random."""
    mine = values[np.arange(values.shape[0]), position][:, None]
    below = (values < mine).sum(axis=1)
    ties = (values == mine).sum(axis=1) - 1
    return below + rng.integers(0, ties + 1) + 1


def rank_test(prior_draw, simulate, make_target, sampler, *, n_reps=1000, chain_length=10, thin=1,
              alpha=1e-4, seed=0, statistics=None, adjoint=None, **settings) -> JointTestReport:
    """The exact rank test of Gandy & Scott: raise AssertionError unless the rank of a joint draw
    among the states of a chain through it is uniform.

    Gandy & Scott (2020), "Unit testing for MCMC and other Monte Carlo methods", arXiv
    2001.06465 (the exact rank test). Each of ``n_reps`` replicates draws (theta, y) from the
    joint (so theta ~ p(theta | y)), picks m uniformly in 1..L (L = ``chain_length``), runs
    m - 1 steps backward and L - m forward from theta (a step is ``thin`` transitions) and puts
    the states in time order, theta at position m. If the kernel is reversible with respect to
    every posterior, the L states are a stationary chain whose law is the same in both time
    directions, so the position of theta, and hence the rank of a statistic of theta among the
    L states, is uniform on 1..L (ties broken at random). The counts of each rank are compared
    with n_reps / L by a chi-square test with L - 1 degrees of freedom, one per statistic, each
    held to alpha / (number of statistics).

    The backward steps use the kernel itself, which assumes reversibility; for a non-reversible
    kernel pass its time reversal (adjoint) as ``adjoint`` (same forms as ``sampler``; a name
    takes the same settings). ``statistics``: a dict name -> s(theta, y) like
    :func:`geweke_test`'s test functions; by default theta_i and theta_i^2 for every coordinate
    (Gandy & Scott's choice) and log p(theta | y). Functions of theta alone cannot catch a
    kernel that ignores the data: theta is marginally a prior draw, and a kernel reversible for
    the prior makes uniform ranks of them; log p(theta | y) catches it. See the module docstring
    for the model arguments.
    """
    L = int(chain_length)
    if L < 2:
        raise ValueError(f"chain_length must be at least 2, got {chain_length}")
    if n_reps < 5 * L:
        raise ValueError(f"n_reps must be at least 5 * chain_length = {5 * L} for the chi-square test")
    sim_seed, kernel_seed, tie_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.Generator(np.random.PCG64(sim_seed))
    krng = np.random.Generator(np.random.PCG64(kernel_seed))
    slot = _setup_model(prior_draw, simulate, make_target, rng)
    target, dim = slot.target, slot.target.dim
    forward = _stepper(target, sampler, settings)
    if adjoint is None:
        backward = forward
    else:
        backward = _stepper(target, adjoint, settings if isinstance(adjoint, str) else {})

    chains = np.empty((n_reps, L, dim))
    ys = np.empty((n_reps,) + slot.y.shape, dtype=slot.y.dtype)
    position = rng.integers(0, L, size=n_reps)  # m - 1
    for r in range(n_reps):
        theta = _draw_theta(prior_draw, rng, dim)
        slot.set(simulate(theta, rng))
        ys[r] = slot.y
        m = position[r]
        chains[r, m] = theta
        if m > 0:
            chains[r, m - 1::-1] = backward(theta, krng, m * thin)[thin - 1::thin]
        if m < L - 1:
            chains[r, m + 1:] = forward(theta, krng, (L - 1 - m) * thin)[thin - 1::thin]

    functions = _default_functions(dim, slot) if statistics is None else dict(statistics)
    values = _evaluate(functions, chains.reshape(n_reps * L, dim), np.repeat(ys, L, axis=0))
    tie_rng = np.random.Generator(np.random.PCG64(tie_seed))
    rows, notes = [], []
    for name, v in values.items():
        ranks = _random_ranks(v.reshape(n_reps, L), position, tie_rng)
        counts = np.bincount(ranks - 1, minlength=L)
        result = _stats.chisquare(counts)
        rows.append((name, float(result.statistic), float(result.pvalue)))
        notes.append(_counts_note(name, counts))
    report = JointTestReport(rows, alpha / len(rows), statistic="chi2", notes=notes,
                             title=f"Gandy-Scott exact rank test: {n_reps} replicates, L = {L}, "
                                   f"thin {thin} (counts of ranks 1..{L} below)")
    return _raise_if_failed(report, f"{target.name}: the ranks of joint draws among chains of "
                                    f"{_name(sampler)} are not uniform")


# -- 4. simulation-based calibration ------------------------------------------------------------


def sbc(prior_draw, simulate, make_target, sampler="nuts", *, n_sims=200, n_draws=99, thin=1,
        bins=20, alpha=1e-4, seed=0, test_functions=None, assert_uniform=False,
        **sample_kwargs) -> SBCReport:
    """Simulation-based calibration of full ``mcsample.sample`` runs (warmup included).

    Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
    algorithms with simulation-based calibration", arXiv 1804.06788 (and the Stan User's Guide
    chapter on SBC). Each of ``n_sims`` simulations draws theta* ~ p(theta), y ~ p(y | theta*),
    runs ``mcsample.sample`` on p(theta | y) and keeps L = ``n_draws`` posterior draws, every
    ``thin``-th of each chain. If the draws are exact and independent, the rank
    #{l : f(theta_l) < f(theta*)} (ties broken at random) is uniform on 0..L. The ranks are
    binned into ``bins`` equal bins ((L + 1) must be divisible by ``bins``) and tested for
    uniformity by chi-square, one test per statistic, each held to alpha / (number of
    statistics). Correlated draws also distort the ranks: thin enough that the L draws are
    nearly independent (ESS close to L).

    ``sampler``: a name or settings object, as for ``mcsample.sample``; ``sample_kwargs`` go to
    ``mcsample.sample`` (``tune``, ``chains`` (default 1), sampler settings); each simulation
    runs with its own seed derived from ``seed``. ``test_functions``: a dict name -> f(theta, y) as in
    :func:`geweke_test`; by default theta_i for every parameter. Returns an :class:`SBCReport`
    with the ranks and p-values; raises AssertionError on non-uniform ranks only if
    ``assert_uniform``. See the module docstring for the model arguments.
    """
    from ..sample import sample as _sample

    if isinstance(sampler, KernelFactory) or not isinstance(sampler, (str, _samplers.SamplerSettings)):
        raise ValueError("sbc runs mcsample.sample: sampler must be a name or a settings object")
    L, bins = int(n_draws), int(bins)
    if (L + 1) % bins != 0:
        raise ValueError(f"n_draws + 1 = {L + 1} must be divisible by bins = {bins}")
    if n_sims < 5 * bins:
        raise ValueError(f"n_sims must be at least 5 * bins = {5 * bins} for the chi-square test")
    chains = int(sample_kwargs.pop("chains", 1))
    sample_kwargs.setdefault("progressbar", False)
    per_chain = -(-L // chains)
    rng = np.random.default_rng(seed)
    tie_rng = np.random.default_rng([seed, 1])
    run_seeds = [int(s) for s in np.random.SeedSequence([seed, 2]).generate_state(n_sims)]
    slot = _setup_model(prior_draw, simulate, make_target, rng)
    target, dim = slot.target, slot.target.dim
    functions = ({f"theta[{i}]": (lambda th, y, i=i: th[:, i]) for i in range(dim)}
                 if test_functions is None else dict(test_functions))
    ranks = {name: np.empty(n_sims, dtype=np.int64) for name in functions}
    for s in range(n_sims):
        theta_star = _draw_theta(prior_draw, rng, dim)
        slot.set(simulate(theta_star, rng))
        with warnings.catch_warnings():  # the rank statistics are the test, not each run's R-hat
            warnings.simplefilter("ignore", ConvergenceWarning)
            idata = _sample(target, sampler, draws=per_chain * thin, chains=chains, seed=run_seeds[s],
                            **sample_kwargs)
        draws = np.asarray(idata.posterior["x"].values)[:, thin - 1::thin].reshape(-1, dim)[:L]
        points = np.vstack([theta_star[None, :], draws])
        values = _evaluate(functions, points, np.repeat(slot.y[None], L + 1, axis=0))
        for name, v in values.items():
            ranks[name][s] = _random_ranks(v[None, :], np.zeros(1, dtype=np.int64), tie_rng)[0] - 1
    rows, notes = [], []
    for name, r in ranks.items():
        counts = np.bincount(r * bins // (L + 1), minlength=bins)
        result = _stats.chisquare(counts)
        rows.append((name, float(result.statistic), float(result.pvalue)))
        notes.append(_counts_note(name, counts))
    report = SBCReport(rows, alpha / len(rows), statistic="chi2", notes=notes, ranks=ranks,
                       n_draws=L, bins=bins,
                       title=f"simulation-based calibration: {n_sims} simulations, L = {L} draws "
                             f"(thin {thin}), {bins} bins (counts below)")
    if assert_uniform:
        _raise_if_failed(report, f"{target.name}: the SBC ranks of {_name(sampler)} are not uniform")
    return report
