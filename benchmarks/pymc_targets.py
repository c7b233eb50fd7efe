"""PyMC models as targets (issue #17): time to the first draw, and NUTS's ESS per second and per
gradient against nutpie on the same PyMC model.

Run from the repository root (about 5 minutes on 2 cores)::

    python benchmarks/pymc_targets.py
    python benchmarks/pymc_targets.py --models eight_schools --seeds 1

Models (``benchmarks/pymc_targets.py::MODELS``): posteriordb's eight schools, non-centred
(d = 10), and a hierarchical logistic regression on simulated data (8 groups, 400 rows,
3 covariates, varying intercepts, non-centred; d = 13), its data in ``pm.Data``.

Time to the first draw: each of ``mcsample`` and ``nutpie`` in two fresh Python processes, one
after the other (the second shows what on-disk caches save), each measuring

* import: ``import pymc`` (and mcsample / nutpie);
* compile: ``mc.Target.from_pymc(model)`` / ``nutpie.compile_pymc_model(model, backend="numba")``;
* first draw: ``mc.sample(target, "nuts", draws=1, tune=1, chains=1)`` /
  ``nutpie.sample(compiled, draws=1, tune=1, chains=1)``, kernel compilation included.

ESS: 4 chains x (1000 warmup + 1000 draws), default NUTS settings of each, seeds 1-3, in this
process after an untimed warm-up run of each; bulk ESS is ArviZ's, the minimum over the model's
free variables on their constrained scale; seconds are warmup + sampling without compilation
(mcsample ``attrs["wall_time"]``; nutpie from ``nutpie.sample`` until its Rust sampler finishes,
before the conversion to InferenceData); gradients include warmup (mcsample ``attrs["n_grad"]``,
nutpie the sum of ``n_steps``). The table shows medians over the seeds. Each timed run waits for a
quiet machine first and records the cores other processes kept busy (``others``).

Results: ``benchmarks/results/pymc_targets.json`` and ``pymc_targets.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _report  # noqa: E402

DRAWS, TUNE, CHAINS = 1000, 1000, 4


# -- models ------------------------------------------------------------------------------------


def eight_schools():
    import pymc as pm
    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    with pm.Model(coords={"school": list("ABCDEFGH")}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_trans = pm.Normal("theta_trans", 0.0, 1.0, dims="school")
        pm.Normal("y", mu + tau * theta_trans, sigma=sigma, observed=y, dims="school")
    return model


def logistic_data(seed=0, groups=8, n=400, k=3):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    X = rng.normal(size=(n, k))
    alpha = 0.5 + 0.8 * rng.normal(size=groups)
    beta = np.array([1.0, -0.5, 0.25])[:k]
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(alpha[group] + X @ beta)))
    return X, group, y.astype(np.int64)


def hierarchical_logistic():
    import pymc as pm
    X, group, y = logistic_data()
    coords = {"group": [f"g{j}" for j in range(group.max() + 1)], "covariate": ["x1", "x2", "x3"],
              "obs": np.arange(len(y))}
    with pm.Model(coords=coords) as model:
        X_data = pm.Data("X", X, dims=("obs", "covariate"))
        g_data = pm.Data("group_idx", group, dims="obs")
        mu_a = pm.Normal("mu_a", 0.0, 1.5)
        sigma_a = pm.HalfNormal("sigma_a", 1.0)
        z_a = pm.Normal("z_a", 0.0, 1.0, dims="group")
        alpha = pm.Deterministic("alpha", mu_a + sigma_a * z_a, dims="group")
        beta = pm.Normal("beta", 0.0, 1.0, dims="covariate")
        pm.Bernoulli("y", logit_p=alpha[g_data] + X_data @ beta, observed=y, dims="obs")
    return model


MODELS = {"eight_schools": eight_schools, "hierarchical_logistic": hierarchical_logistic}


# -- time to the first draw (run in a fresh process) -------------------------------------------


def first_draw(model_name, sampler):
    t0 = time.perf_counter()
    import pymc  # noqa: F401
    if sampler == "mcsample":
        import mcsample as mc
    else:
        import nutpie
    t_import = time.perf_counter() - t0
    model = MODELS[model_name]()
    t0 = time.perf_counter()
    if sampler == "mcsample":
        target = mc.Target.from_pymc(model)
    else:
        compiled = nutpie.compile_pymc_model(model, backend="numba")
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    if sampler == "mcsample":
        mc.sample(target, "nuts", draws=1, tune=1, chains=1, seed=0, progressbar=False)
    else:
        nutpie.sample(compiled, draws=1, tune=1, chains=1, seed=0, progress_bar=False)
    t_first = time.perf_counter() - t0
    return dict(model=model_name, sampler=sampler, import_s=t_import, compile_s=t_compile, first_draw_s=t_first,
                total_s=t_import + t_compile + t_first)


def first_draw_in_subprocess(model_name, sampler):
    snap = _report.cpu_snapshot()
    out = subprocess.run([sys.executable, __file__, "--first-draw", model_name, sampler],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["others"] = _report.others_load(snap, _report.cpu_snapshot())
    return row


# -- ESS -----------------------------------------------------------------------------------------


def free_variable_draws(idata, model):
    """(chain, draw, k) of the model's free variables, constrained, flattened."""
    post = idata.posterior
    return np.concatenate([post[rv.name].values.reshape(post[rv.name].shape[:2] + (-1,)) for rv in model.free_RVs],
                          axis=-1)


def ess_run(sampler, model, handle, seed):
    from mcsample import _arviz
    _report.wait_for_quiet(max_wait=30.0)
    snap = _report.cpu_snapshot()
    if sampler == "mcsample":
        import mcsample as mc
        idata = mc.sample(handle, "nuts", draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progressbar=False)
        wall, n_grad = idata.attrs["wall_time"], int(idata.attrs["n_grad"])
        divergences = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else None
    else:
        import nutpie
        t0 = time.perf_counter()
        s = nutpie.sample(handle, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=seed, progress_bar=False,
                          save_warmup=True, blocking=False)
        s._sampler.wait(None)  # the Rust sampler is done; the conversion to InferenceData follows
        wall = time.perf_counter() - t0
        idata = s.wait()
        n_grad = int(idata.sample_stats["n_steps"].sum() + idata.warmup_sample_stats["n_steps"].sum())
        divergences = int(idata.sample_stats["diverging"].sum())
    others = _report.others_load(snap, _report.cpu_snapshot())
    x = free_variable_draws(idata, model)
    ess = float(_arviz.ess_of(x).min())
    return dict(sampler=sampler, seed=seed, ess=ess, seconds=wall, n_grad=n_grad, ess_per_s=ess / wall,
                ess_per_kgrad=1000 * ess / n_grad, divergences=divergences, others=others,
                means=x.reshape(-1, x.shape[-1]).mean(0).tolist())


def ess_table(model_name, seeds):
    import mcsample as mc
    import nutpie
    rows = []
    model = MODELS[model_name]()
    target = mc.Target.from_pymc(model)
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    mc.sample(target, "nuts", draws=20, tune=20, chains=1, seed=0, progressbar=False)  # untimed warm-up
    nutpie.sample(compiled, draws=20, tune=20, chains=1, seed=0, progress_bar=False)
    for seed in seeds:
        for sampler, handle in (("mcsample", target), ("nutpie", compiled)):
            row = ess_run(sampler, model, handle, seed)
            row["model"] = model_name
            rows.append(row)
            print(f"{model_name:>22} {sampler:>8} seed {seed}: ESS {row['ess']:.0f}, {row['seconds']:.2f} s, "
                  f"{row['n_grad']} gradients, others {row['others']}", flush=True)
    return rows


def _median(rows, key):
    return float(np.median([r[key] for r in rows]))


def markdown(first, ess, machine, versions, argv):
    text = ["# PyMC models as targets: time to the first draw, ESS against nutpie\n",
            f"Command: `python benchmarks/pymc_targets.py {' '.join(argv)}`\n",
            _report.environment_markdown(machine, versions),
            "## Time to the first draw (seconds, fresh processes; run 2 right after run 1)\n"]
    rows = [[r["model"], r["sampler"], r["run"], f"{r['import_s']:.1f}", f"{r['compile_s']:.1f}",
             f"{r['first_draw_s']:.1f}", f"{r['total_s']:.1f}",
             "" if r["others"] is None else f"{r['others']:.2f}"] for r in first]
    text.append(_report.markdown_table(["model", "sampler", "run", "import", "compile", "first draw", "total",
                                        "others (cores)"], rows))
    text.append("\n\n## NUTS: ESS per second and per 1000 gradients (medians over seeds)\n")
    rows = []
    for model_name in dict.fromkeys(r["model"] for r in ess):
        by = {s: [r for r in ess if r["model"] == model_name and r["sampler"] == s] for s in ("mcsample", "nutpie")}
        for s, rs in by.items():
            rows.append([model_name, s, f"{_median(rs, 'ess'):.0f}", f"{_median(rs, 'seconds'):.2f}",
                         f"{_median(rs, 'n_grad'):.0f}", f"{_median(rs, 'ess_per_s'):.0f}",
                         f"{_median(rs, 'ess_per_kgrad'):.1f}", sum(r["divergences"] or 0 for r in rs),
                         f"{max(r['others'] or 0 for r in rs):.2f}"])
        ratio = _median(by["mcsample"], "ess_per_s") / _median(by["nutpie"], "ess_per_s")
        ratio_g = _median(by["mcsample"], "ess_per_kgrad") / _median(by["nutpie"], "ess_per_kgrad")
        rows.append([model_name, "**ratio mcsample / nutpie**", "", "", "", f"{ratio:.2f}", f"{ratio_g:.2f}", "", ""])
    text.append(_report.markdown_table(["model", "sampler", "min bulk ESS", "seconds", "gradients", "ESS/s",
                                        "ESS/1000 grad", "divergences", "others (max)"], rows))
    return "\n".join(text) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--first-draw", nargs=2, metavar=("MODEL", "SAMPLER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_draw:
        print(json.dumps(first_draw(*args.first_draw)))
        return
    argv = sys.argv[1:] if argv is None else argv
    first = []
    for model_name in args.models:
        for sampler in ("mcsample", "nutpie"):
            for run in (1, 2):
                row = first_draw_in_subprocess(model_name, sampler)
                row["run"] = run
                first.append(row)
                print(f"{model_name:>22} {sampler:>8} run {run}: compile {row['compile_s']:.1f} s, "
                      f"first draw {row['first_draw_s']:.1f} s, total {row['total_s']:.1f} s", flush=True)
    ess = [row for model_name in args.models for row in ess_table(model_name, args.seeds)]
    machine = _report.machine_info()
    versions = _report.package_versions(["mcsample", "numba", "pymc", "pytensor", "nutpie", "arviz"])
    _report.write_results("pymc_targets", dict(machine=machine, versions=versions, first_draw=first, ess=ess,
                                               argv=argv), markdown(first, ess, machine, versions, argv))
    print(markdown(first, ess, machine, versions, argv))


if __name__ == "__main__":
    main()
