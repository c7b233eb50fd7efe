"""Do the chains agree? The check ``sample()`` runs on Markov chains before it returns, warning
(``ConvergenceWarning``) and naming the chain that disagrees, as PyMC and nutpie do.

R-hat here is the rank-normalised split R-hat of Vehtari, Gelman, Simpson, Carpenter & Bürkner
(2021), "Rank-normalization, folding, and localization: an improved R-hat", Bayesian Analysis
16(2): the larger of the bulk R-hat (of the rank-normalised draws) and the tail R-hat (of the
rank-normalised distances from the median), each computed on chains split in halves. It is the
quantity ArviZ's ``rhat`` reports (tests/test_convergence.py checks that they agree); computed
here in numpy so that ``sample()`` does not import ArviZ (2.7-3.4 s on ArviZ 1.x) to check it.

The same check warns when a run's bulk effective sample size (the same paper's rank-normalised
split ESS, with Geyer's initial monotone sequence, as ArviZ's ``ess(method="bulk")``) is too small
for its means and sds to be trusted, one chain or many: a slice sampler at d = 200 returned means
1.3-1.9 sd off with a bulk ESS of 1-6 in 1000 draws, and one chain has no R-hat to show it.
"""

from __future__ import annotations

import warnings

import numpy as np

RHAT_WARN = 1.05  # Vehtari et al. (2021) recommend using a sample only when R-hat < 1.01; 1.05 flags failure
# A bulk ESS below 100 (ArviZ's rule of thumb for trusting a mean and its MCSE) or below a tenth of
# the draws (short runs: 100 cannot be asked of 50 draws, but an autocorrelation time above 10 can be named).
ESS_WARN = 100
ESS_WARN_FRACTION = 0.1


class ConvergenceWarning(UserWarning):
    """The chains of a run disagree (R-hat above 1.05, or a chain's log density far from the others')."""


def _split(x):
    """(chain, draw) -> (2 chain, draw // 2): the first and second half of each chain."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]])


def _rank_normal(x):
    """Normal scores of the ranks of x (chain, draw), or of each parameter of x (chain, draw, dim)."""
    from scipy.special import ndtri  # scipy.stats is slow to import: only when a run is checked
    from scipy.stats import rankdata
    ranks = rankdata(x.reshape(-1, *x.shape[2:]), method="average", axis=0).reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.shape[0] * x.shape[1] + 0.25))


def _classic_rhat(x):
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean()
    between_over_n = x.mean(axis=1).var(ddof=1)
    if within == 0:
        return np.nan
    return float(np.sqrt(((n - 1) / n * within + between_over_n) / within))


def split_rhat(x) -> float:
    """Rank-normalised split R-hat of one quantity's draws (chain, draw): max of bulk and tail."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4 or not np.all(np.isfinite(x)):
        return np.nan
    split = _split(x)
    bulk = _classic_rhat(_rank_normal(split))
    tail = _classic_rhat(_rank_normal(np.abs(split - np.median(split))))
    return max(bulk, tail)


def _autocovariance(x):
    """Biased autocovariance of each row of x (chain, draw) at lags 0..draw-1, by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << int(2 * n - 1).bit_length()
    f = np.fft.rfft(centred, size, axis=1)
    return np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n] / n


def _ess(x, acov=None) -> float:
    """ESS of draws x (chain, draw): Geyer's initial monotone sequence on the chains' pooled
    autocorrelations (Vehtari et al. 2021, eqs. 10-11), as ArviZ's ``_ess``. ``acov``: x's
    autocovariances when already computed."""
    chains, n = x.shape
    acov = _autocovariance(x) if acov is None else acov
    mean_var = acov[:, 0].mean() * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n + (x.mean(axis=1).var(ddof=1) if chains > 1 else 0.0)
    if not var_plus > 0:
        return np.nan
    rho = np.zeros(n)
    rho[0] = 1.0
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[1] = rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0:
        rho_even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        rho_odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    total = chains * n
    tau = -1.0 + 2.0 * rho[: max_t + 1].sum() + rho[max_t + 1: max_t + 2].sum()
    return float(total / max(tau, 1.0 / np.log10(total)))


def bulk_ess(x) -> float:
    """Bulk ESS of one quantity's draws (chain, draw): the ESS of the rank-normalised split chains,
    ArviZ's ``ess(method="bulk")``."""
    x = np.asarray(x, dtype=float)
    if x.shape[1] < 4 or not np.all(np.isfinite(x)):
        return np.nan
    return _ess(_rank_normal(_split(x)))


def bulk_ess_all(draws) -> np.ndarray:
    """``bulk_ess`` of every parameter of draws (chain, draw, dim), the ranks and autocovariances
    computed for all parameters at once (a d = 1000 run's check took 4 s one by one)."""
    draws = np.asarray(draws, dtype=float)
    chains, n, dim = draws.shape
    out = np.full(dim, np.nan)
    if n < 4:
        return out
    split = _split(draws)
    ok = np.all(np.isfinite(split), axis=(0, 1))
    z = _rank_normal(split)
    acov = _autocovariance(np.moveaxis(z, 2, 0).reshape(-1, split.shape[1])).reshape(dim, *split.shape[:2])
    for j in np.flatnonzero(ok):
        out[j] = _ess(z[..., j], acov[j])
    return out


def ess_shortfall(draws, names) -> list[str]:
    """The parameters whose bulk ESS is below ``ESS_WARN`` and below ``ESS_WARN_FRACTION`` of the
    draws, in words (empty when there are none). draws : (chain, draw, dim)."""
    chains, n, dim = draws.shape
    if n < 4:
        return []
    ess = bulk_ess_all(draws)
    limit = min(ESS_WARN, ESS_WARN_FRACTION * chains * n)
    low = np.flatnonzero(ess < limit)
    if not low.size:
        return []
    listed = ", ".join(f"{names[j]} {ess[j]:.0f}" for j in low[np.argsort(ess[low])][:5])
    return [f"bulk ESS < {limit:.0f} for {low.size} of {dim} parameters ({listed}{', ...' if low.size > 5 else ''}) "
            f"in {chains * n} draws: the sample's means and sds can be off by more than their MCSE says"]


def chain_disagreements(draws, lp, names) -> list[str]:
    """What is wrong with a run's chains, in words (empty when they agree): parameters with R-hat
    above ``RHAT_WARN``, naming the chain whose mean is furthest from the others', and chains whose
    mean log density is further from the median chain's than the chains' own spread of log
    density (a stuck chain differs by hundreds of sds; a mixing one by about sd / sqrt(ESS)).

    draws : (chain, draw, dim); lp : (chain, draw), the log density of each draw."""
    chains = draws.shape[0]
    if chains < 2 or draws.shape[1] < 4:
        return []
    problems = []
    lp_means = lp.mean(axis=1)
    lp_sd = float(np.sqrt(lp.var(axis=1, ddof=1).mean()))
    centre = np.median(lp_means)
    for c in range(chains):
        if abs(lp_means[c] - centre) > max(lp_sd, 1e-12):
            others = ", ".join(f"{v:.4g}" for v in np.delete(lp_means, c))
            side = "below" if lp_means[c] < centre else "above"
            problems.append(f"chain {c}'s mean log density {lp_means[c]:.4g} is {side} the others' ({others}; "
                            f"within-chain sd {lp_sd:.2g})")
    rhat = np.array([split_rhat(draws[..., j]) for j in range(draws.shape[2])])
    bad = np.flatnonzero(rhat > RHAT_WARN)
    if bad.size:
        worst = bad[np.argmax(rhat[bad])]
        column = draws[..., worst]
        means = column.mean(axis=1)
        spread = np.sqrt(column.var(axis=1, ddof=1).mean()) or 1.0
        off = int(np.argmax(np.abs(means - np.median(means)) / spread))
        listed = ", ".join(f"{names[j]} {rhat[j]:.3f}" for j in bad[np.argsort(-rhat[bad])][:5])
        problems.append(f"R-hat > {RHAT_WARN} for {bad.size} of {draws.shape[2]} parameters ({listed}"
                        f"{', ...' if bad.size > 5 else ''}); in {names[worst]}, chain {off}'s mean "
                        f"{means[off]:.4g} is furthest from the others' median {np.median(np.delete(means, off)):.4g}")
    return problems


def warn_if_chains_disagree(draws, lp, names, sampler: str) -> None:
    """One ``ConvergenceWarning`` naming every problem found: chains that disagree
    (``chain_disagreements``) and a bulk ESS too small to trust (``ess_shortfall``)."""
    problems = chain_disagreements(draws, lp, names)
    short = ess_shortfall(draws, names)
    if not (problems or short):
        return
    said = ([f"the chains disagree: {'; '.join(problems)}"] if problems else []) + short
    elsewhere = "start the chains elsewhere (init), or look at the warmup (save_warmup=True)"
    advice = f"run longer (draws, tune), {elsewhere}"
    if short:
        advice = ("run longer (more tune and draws)" + ("" if sampler == "nuts" else
                  ", or use 'nuts' if the target has a gradient (gradient-free samplers slow down "
                  "with the dimension: see docs/samplers.md)") + f"; {elsewhere}")
    warnings.warn(f"{sampler}: " + "; ".join(said) + f". Do not trust this sample yet: {advice}.",
                  ConvergenceWarning, stacklevel=3)


def particle_log_densities(target, draws) -> np.ndarray:
    """log p at each final particle, (chain, draw): the ``lp`` statistic of a particle sampler,
    evaluated once after the run (not counted in ``n_logp`` or a budget, as the user evaluating
    the draws would not be). An exception counts as NaN."""
    out = np.empty(draws.shape[:2])
    for c, d in np.ndindex(*out.shape):
        try:
            out[c, d] = target.logp(draws[c, d])
        except Exception:  # the user's function off its support, as inside the samplers
            out[c, d] = np.nan
    return out


def user_error(target, points, tries=3):
    """The exception the user's function raises at one of the first ``tries`` finite ``points``
    (rows), evaluated from Python so that it carries the user's traceback, or None. Inside the
    kernels an exception is only a NaN (the guard in ``mcsample.target``): this is how a run tells
    "the function raised" from "it returned NaN" and hands the user the error."""
    points = np.asarray(points, dtype=float).reshape(-1, target.dim)
    points = points[np.all(np.isfinite(points), axis=1)][:tries]
    for x in points:
        try:
            target.logp(x)
            if target.has_grad:
                target.logp_grad(x)
        except Exception as err:  # noqa: BLE001 - the user's, handed on
            return err
    return None


def _raised(err) -> str:
    return f"{type(err).__name__}: {err}"


def warn_if_particles_outside_support(lp, sampler: str, target=None, draws=None) -> None:
    """The diffusion families move particles by unadjusted (or partly adjusted) dynamics, so on
    a target with a constrained support some can end where log p is -inf or NaN: such a sample
    is wrong, and saying so is all the driver can do. Given the ``target`` and the ``draws``
    (chain, draw, dim), it says which particles are themselves not finite (the run diverged) and
    whether the user's function raised there; when it raised at every particle (a function that
    fails everywhere: a lost connection, a bug) it raises a RuntimeError from the user's error."""
    bad = ~np.isfinite(lp)
    if not bad.any():
        return
    n_bad, n = int(bad.sum()), bad.size
    diverged = 0 if draws is None else int(np.sum(~np.all(np.isfinite(draws), axis=-1)))
    err = None if target is None else user_error(target, np.asarray(draws)[bad])
    if err is not None and n_bad == n:
        raise RuntimeError(f"{sampler}: the target's function raised {_raised(err)} at every particle the run "
                           "ended with (see the traceback above this one); nothing of the run is a sample") from err
    what = "" if not diverged else f" ({diverged} of them are themselves NaN or infinite: the run diverged)"
    why = ("(outside the target's support)" if err is None else
           f"(the target's function raised there, e.g. {_raised(err)}; call target.logp(x) at such a draw "
           "for the traceback)")
    warnings.warn(
        f"{sampler}: {n_bad} of {n} particles ended where log p is not finite{what} {why}: the draws are not a "
        "sample from the target. Sample an unconstrained version (e.g. log-transform positive parameters, with "
        "the Jacobian).", ConvergenceWarning, stacklevel=3)


FRAME_SPREAD_WARN = 3.0  # largest / smallest sd of the draws along a pilot frame's axes


def warn_if_frame_did_not_standardise(u, sampler: str) -> None:
    """The particle families that standardise the target on a pilot's bulk searches (rdMC, the
    multiscale samplers) run in that frame: their reference law, step sizes and time grid assume
    the target has about unit scale along each of its axes. The searches' scales are rough (CMA-ES
    learns a covariance in O(d^2) generations; they get 2,000 + 500 d evaluations): on a Gaussian
    with sds log-spaced 0.1-10 in d = 50 they came out 0.08-2.7x the truth, and the draws 0.17-0.3x
    too narrow along the widest axes (MultCDiff even at its default 20,000 iterations), silently
    (``benchmarks/results/particle_dimension.md``). The draws' own sds along the frame's axes
    show it: 0.53-2.59 there (ratio 4.9) against 0.89-1.44 (1.6) on N(0, I) at the same d and
    budget (200 particles). ``u``: the final particles in the frame's coordinates, (n, d)."""
    u = np.asarray(u, dtype=float)
    if u.shape[0] < 10 or not np.all(np.isfinite(u)):
        return
    sd = u.std(axis=0, ddof=1)
    if sd.min() <= 0 or sd.max() / sd.min() <= FRAME_SPREAD_WARN:
        return
    warnings.warn(
        f"{sampler}: the draws' sds along the pilot's frame axes range {sd.min():.2g}-{sd.max():.2g} (about 1 on "
        "every axis when the pilot's bulk searches fitted the target's scales): the searches did not standardise "
        "this target, and on such targets the draws came out too narrow along its widest directions (a Gaussian "
        "with sds 0.1-10 in d = 50: 0.17-0.3x). No setting was measured to fix it; rescale the target so that its "
        "parameters have similar scales (e.g. divide each by a rough posterior sd), or check against NUTS.",
        ConvergenceWarning, stacklevel=3)


def warn_if_diverging(diverging, draws, sampler: str, target) -> None:
    """Divergent transitions after warmup (Markov chains that record them: NUTS), as Stan and PyMC
    warn. A divergence is where the trajectory's energy blew up, or where the log density or its
    gradient was not finite (NaN, -inf, or the user's function raised: the guard turns an
    exception into NaN); a chain whose function began raising everywhere diverged at every
    iteration from then on and stood still, silently (its last draw repeated). So the warning also
    names the exception when the function raises at a chain's last draw.

    diverging : (chain, draw) booleans after warmup; draws : (chain, draw, dim), possibly with no
    draw (a budget spent in warmup)."""
    diverging = np.asarray(diverging, dtype=bool)
    if diverging.size == 0 or not diverging.any():
        return
    per_chain = ", ".join(str(int(v)) for v in diverging.sum(axis=1))
    err = user_error(target, np.asarray(draws)[:, -1])
    cause = ("" if err is None else
             f" The target's function raises at a chain's last draw: {_raised(err)} (call target.logp_grad(x) "
             "there for the traceback); the chains stood still from where it began to fail.")
    warnings.warn(
        f"{sampler}: {int(diverging.sum())} of {diverging.size} transitions after warmup diverged (per chain: "
        f"{per_chain}): the log density or its gradient was not finite along them (NaN or -inf, or the function "
        f"raised), or the step size is too large for the target's curvature there.{cause} Draws near those "
        "places are not to be trusted: reparametrise, or raise target_accept.", ConvergenceWarning, stacklevel=3)

