"""Run several samplers on one target at an equal budget of target evaluations and measure each
against the target's reference answer.

A log-density evaluation and a gradient evaluation (which includes the log density) each count
as one evaluation. Every sampler gets the same budget, warmup included, through
``sample(max_evals=...)``; the evaluations actually spent are reported next to the accuracy.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from . import _arviz, metrics
from . import samplers as _samplers
from .convergence import ConvergenceWarning
from .sample import sample

__all__ = ["compare", "format_table", "save"]

_MAX_DRAW_BYTES = 200e6  # per chain: caps the draws preallocated for a budgeted run
_METRIC_POINTS = 4000  # draws (thinned evenly) used by the O(n^2) distances


def compare(target, samplers, *, budget, chains=4, seed=0, executor=None, reference=None, tune=1000,
            progressbar=True, out=None, sinkhorn=False):
    """Compare ``samplers`` on ``target`` at ``budget`` evaluations each.

    Parameters
    ----------
    target : mcsample.Target or str
        A Target, or a catalogue name (then its Reference comes with it).
    samplers : list of names or settings objects (or a comma-separated string)
    budget : float
        Target evaluations per sampler, summed over chains, warmup included.
    reference : targets.Reference, optional
        Needed for distances when ``target`` is a Target.
    executor : concurrent.futures.Executor, optional
        Runs each sampler's cell (its ``sample()`` and metrics) as one task, e.g. on a Dask
        cluster: ``dask.distributed.Client(...).get_executor()``; a cell's chains run in its
        worker's threads. Every cell is seeded, so the table is the same as without (but for
        ``wall_time``). Default: the cells one after the other here.
    out : path, optional
        Also write ``comparison.nc``, ``table.md`` and PNG plots there (see :func:`save`).
    sinkhorn : bool
        Also report the entropy-regularised W2 (reg 0.05) of the multiscale paper. Off by default:
        on the CPU it takes tens of seconds per sampler, where the exact W2 on 1000-point
        subsamples (always reported) takes under a second.

    Returns
    -------
    xarray.Dataset with dimension ``sampler``: evaluations spent, wall time, draws kept, ESS
    bulk/tail (min over parameters) and R-hat (max), the distances to the reference, and
    ``status`` ("ok" or why the sampler failed). A failing sampler gets its row; the others run.
    The same on ArviZ 0.x and 1.x (Python 3.11 and >= 3.12): the per-sampler runs are
    ``sample()`` results of either type, and ESS and R-hat are computed the same way on both
    (tail ESS from the 5% and 95% quantiles, as in ArviZ 0.x).
    """
    import xarray as xr

    _check_cell_arguments(budget, chains, tune)
    target, reference = _resolve_target(target, reference)
    names = _sampler_list(samplers)
    rows, draws = [], {}
    cell = dict(budget=budget, chains=chains, seed=seed, tune=tune, sinkhorn=sinkhorn)
    if executor is None:
        cells = (_run_one(target, reference, name, executor=None, progressbar=progressbar, **cell) for name in names)
    else:  # one task per cell (sampler), each seeded: the table does not depend on where cells run
        from ._dask import pack, run_packed  # the target as bytes: Dask's scheduler leaves them alone
        packed = pack(target)
        futures = [executor.submit(run_packed, _run_one, packed, reference, name, executor=None, progressbar=False,
                                   **cell) for name in names]
        cells = (f.result() for f in futures)
    for row, x in cells:
        rows.append(row)
        if x is not None:
            draws[row["sampler"]] = x
    _add_floors(rows, draws, reference, seed, sinkhorn)
    columns = list(_COLUMNS) + [f"{k}_floor" for k in _FLOORED if any(f"{k}_floor" in r for r in rows)]
    ds = xr.Dataset({k: ("sampler", [r.get(k, np.nan) for r in rows]) for k in columns},
                    coords={"sampler": [r["sampler"] for r in rows]})
    ds.attrs.update(target=target.name, dim=target.dim, budget=float(budget), chains=chains, seed=seed,
                    reference=reference.source if reference is not None else "none",
                    cost_unit="one log density or one gradient (with its log density) = 1 evaluation")
    if out is not None:
        save(ds, draws, out, target, reference)
    return ds


def _check_cell_arguments(budget, chains, tune):
    """Arguments every cell shares, checked once before anything runs: a bad one would otherwise
    fail every cell alike (a row of errors) or divide by zero."""
    if (isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, float, np.integer, np.floating))
            or not (np.isfinite(budget) and budget > 0)):
        raise ValueError(f"budget must be a positive, finite number of evaluations, got {budget!r}")
    for name, value, low in (("chains", chains, 1), ("tune", tune, 0)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _resolve_target(target, reference):
    if isinstance(target, str):
        import targets
        return targets.get(target)
    return target, reference


def _sampler_list(samplers):
    if isinstance(samplers, str):
        samplers = [s.strip() for s in samplers.split(",") if s.strip()]
    if not samplers:
        raise ValueError(f"no samplers given; available: {', '.join(_samplers.available())}")
    for s in samplers:
        _samplers.resolve(s, {})  # unknown names fail before anything runs
    return list(samplers)


def _run_one(target, reference, sampler, *, budget, chains, seed, executor, tune, progressbar, sinkhorn):
    cfg = _samplers.resolve(sampler, {})
    row = {"sampler": cfg.name, "status": "ok"}
    per_chain = budget / chains
    particles = cfg.kind == _samplers.PARTICLES
    if particles:  # a run's population; the family plans its steps from the budget per particle
        draws = cfg.draws_for_budget(per_chain, target.dim)
    else:  # as many as the budget could pay for; the chains stop when it is spent
        draws = int(max(1, min(per_chain, _MAX_DRAW_BYTES / (8 * target.dim))))
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # the table reports R-hat for every Markov sampler
            warnings.simplefilter("ignore", ConvergenceWarning)
            idata = sample(target, cfg, draws=draws, tune=tune, chains=chains, seed=seed,
                           executor=executor, progressbar=progressbar, max_evals=budget)
    except Exception as err:  # a failing sampler gets a row saying so; the others still run
        row.update(status=f"error: {type(err).__name__}: {err}", wall_time=time.perf_counter() - t0)
        return _complete(row), None
    x = _arviz.draws_array(idata)
    a = idata.attrs
    row.update(evals=a["n_logp"] + a["n_grad"], n_grad=a["n_grad"], n_logp=a["n_logp"],
               wall_time=a["wall_time"], draws=x.shape[1])
    if x.shape[1] < 4:
        row["status"] = "budget spent before enough draws (warmup too long for this budget)"
        return _complete(row), None
    if not np.all(np.isfinite(x)):
        row["status"] = "non-finite draws"
        return _complete(row), None
    if not particles:  # ESS and R-hat describe Markov chains, not populations
        row.update(_mcmc_diagnostics(idata))
    flat = x.reshape(-1, target.dim)
    if reference is not None:
        row.update(_distances(reference, flat, seed, sinkhorn))
    return _complete(row), flat


def _mcmc_diagnostics(idata):
    if "unconstrained_posterior" in _arviz.group_names(idata):  # a model's target: the sampler's own draws
        x = _arviz.draws_array(idata)
        return {"ess_bulk": float(np.min(_arviz.ess_of(x, "bulk"))),
                "ess_tail": float(np.min(_arviz.ess_of(x, "tail"))),
                "rhat": float(np.max(_arviz.rhat_of(x)))}
    return {"ess_bulk": float(np.min(_arviz.ess(idata, "bulk")["x"].values)),
            "ess_tail": float(np.min(_arviz.ess(idata, "tail")["x"].values)),
            "rhat": float(np.max(_arviz.rhat(idata)["x"].values))}


def _thin(x, n):
    return x if len(x) <= n else x[np.linspace(0, len(x) - 1, n).astype(int)]


def _distances(reference, flat, seed, sinkhorn=False):
    return _reference_scale_distances(reference, reference.to_reference_scale(flat), seed, sinkhorn)


def _reference_scale_distances(reference, x, seed, sinkhorn=False):
    ref = reference.draws
    out = {"mean_error": float(metrics.standardized_mean_error(x, reference.mean, reference.sd).max()),
           "log_sd_ratio": float(np.abs(metrics.log_sd_ratio(x, reference.sd)).max())}
    if ref is None:
        return out
    xs, rs = _thin(x, _METRIC_POINTS), _thin(ref, _METRIC_POINTS)
    out.update(sliced_w2=metrics.sliced_wasserstein2(x, ref, seed=seed),
               w2=metrics.wasserstein2(xs, rs, seed=seed),
               mmd=metrics.mmd_rbf(xs, rs, seed=seed),
               sliced_ks=metrics.sliced_ks(x, ref, seed=seed))
    if sinkhorn:
        out["sinkhorn_w2"] = metrics.sinkhorn_w2(xs, rs, seed=seed)
    centres = reference.extra.get("mode_centres")
    if centres is not None:
        weights = reference.extra.get("mode_weights")
        truth = weights if weights is not None else metrics.mode_weights(ref, centres)
        out.update(mode_tv=metrics.total_variation(metrics.mode_weights(x, centres), truth),
                   mode_coverage=metrics.entropic_mode_coverage(x, centres))
    return out


_FLOOR_RESAMPLES = 3  # the median of 3: a floor to read a row against, not a precise figure; each costs a row's distances
_FLOORED = ("mean_error", "log_sd_ratio", "sliced_w2", "w2", "mmd", "sinkhorn_w2", "sliced_ks", "mode_tv",
            "mode_coverage")


def monte_carlo_floor(reference, n, seed=0, *, resamples=_FLOOR_RESAMPLES, sinkhorn=False) -> dict:
    """Each distance's Monte Carlo floor for ``n`` draws: its median over ``resamples`` sets of
    ``n`` exact draws (the reference's own, without replacement) measured against the reference
    exactly as a sampler's draws are. A sampler's value near its floor is what ``n`` exact draws
    would give; only the excess is the method's error. With ``n`` at or above the reference's
    draws the set is the whole reference: the floor is then what the reference can resolve
    (0 for the sliced distances; the subsampled W2 and MMD keep their own noise). Draws of a
    Markov chain are correlated, so its floor at its ESS would be higher than at ``n``.
    Empty when the reference has no draws."""
    ref = reference.draws
    if ref is None:
        return {}
    n = int(min(n, len(ref)))
    rng = np.random.default_rng([seed, n, 0xF1])  # the floor of a row depends on (reference, n, seed) only
    sets = [ref] if n == len(ref) else [ref[rng.choice(len(ref), n, replace=False)] for _ in range(resamples)]
    values = [_reference_scale_distances(reference, x, seed, sinkhorn) for x in sets]
    return {k: float(np.median([v[k] for v in values])) for k in values[0]}


def _add_floors(rows, draws, reference, seed, sinkhorn):
    """``*_floor`` columns: one floor per distinct draw count (several samplers share one)."""
    if reference is None or reference.draws is None:
        return
    floors = {}
    for row in rows:
        x = draws.get(row["sampler"])
        if x is None:
            continue
        if len(x) not in floors:
            floors[len(x)] = monte_carlo_floor(reference, len(x), seed, sinkhorn=sinkhorn)
        row.update({f"{k}_floor": v for k, v in floors[len(x)].items()})


_COLUMNS = ["status", "evals", "n_grad", "n_logp", "wall_time", "draws", "ess_bulk", "ess_tail", "rhat",
            "mean_error", "log_sd_ratio", "sliced_w2", "w2", "mmd", "sinkhorn_w2", "sliced_ks", "mode_tv",
            "mode_coverage"]


def _complete(row):
    for k in _COLUMNS:
        row.setdefault(k, "" if k == "status" else np.nan)
    return {"sampler": row["sampler"], **{k: row[k] for k in _COLUMNS},
            **{k: v for k, v in row.items() if k.endswith("_floor")}}


def format_table(ds) -> str:
    """The comparison as a fixed-width table, one row per sampler."""
    import pandas as pd
    floors = [k for k in ds.data_vars if k.endswith("_floor")]
    df = ds.drop_vars(["status"] + floors).to_dataframe().dropna(axis=1, how="all")
    counts = {"evals", "n_grad", "n_logp", "draws"}
    df = pd.DataFrame({c: ["" if not np.isfinite(v) else (f"{v:.0f}" if c in counts else f"{v:.4g}") for v in df[c]]
                       for c in df}, index=df.index)
    for k in floors:  # "value (floor)": the floor is what as many exact draws would score
        metric = k[:-len("_floor")]
        if metric in df:
            df[metric] = [f"{v} ({f:.2g})" if v and np.isfinite(f) else v
                          for v, f in zip(df[metric], ds[k].values)]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        text = df.to_string()
    notes = [f"{s}: {st}" for s, st in zip(ds["sampler"].values, ds["status"].values) if st != "ok"]
    header = (f"{ds.attrs['target']} (d={ds.attrs['dim']}), budget {ds.attrs['budget']:.3g} evaluations "
              f"per sampler ({ds.attrs['cost_unit']}), {ds.attrs['chains']} chains, seed {ds.attrs['seed']}; "
              f"reference: {ds.attrs['reference']}")
    if floors:
        header += ("\ndraws: per chain (a particle sampler's chain is one run of that many particles); "
                   "value (floor): the floor is the median of the same metric for as many exact draws "
                   "from the reference, what Monte Carlo error alone gives")
    return "\n".join([header, text] + notes)


def save(ds, draws, out, target, reference):
    """Write comparison.nc, table.md and the plots (marginals, pairs, mode weights, accuracy
    against evaluations) into ``out``; ``draws`` maps sampler name to its (n, dim) draws."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out / "comparison.nc")
    (out / "table.md").write_text("```\n" + format_table(ds) + "\n```\n")
    from . import plots
    plots.marginals(draws, target, reference, out / "marginals.png")
    plots.pairs(draws, target, reference, out / "pairs.png")
    if reference is not None and reference.extra.get("mode_centres") is not None:
        plots.mode_weights(draws, reference, out / "mode_weights.png")
    plots.accuracy_vs_cost(ds, out / "accuracy_vs_evals.png")
    (out / "settings.json").write_text(json.dumps(ds.attrs, indent=2, default=str))
