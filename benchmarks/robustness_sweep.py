"""Every sampler at its defaults on targets outside the catalogue (nothing here was tuned on them):
a badly located and scaled Gaussian, a heavy-tailed Student-t, a logistic regression posterior
with data, a positive-support Gamma product, and a Gaussian without a gradient.

    python benchmarks/robustness_sweep.py [sampler ...]     # results/robustness_sweep.{md,json}

Named samplers' rows are rerun and the others kept from the last results (each row records its commit).

Markov samplers: 4 chains x 1000 draws after 1000 warmup. Particle samplers: 4 runs of 250
particles with ``max_evals`` = 8e5 (800 evaluations per particle, the pilot included), then 2 runs
of 100 at their defaults without a budget (2,000-100,000 evaluations per particle). Reference moments are exact, except the logistic
regression's, which come from a long NUTS run (4 x 4000, seed 99). The table gives the largest
|mean error| / sd, the range of sd ratios, whether every draw has a finite log density, and the
warnings the run raised. One seed (3): a row is a check that the defaults hold up, not a precise
accuracy figure (Student-t sds are noisy: its fourth moment is barely finite).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import mcsample as mc
from _report import machine_info, markdown_table, package_versions, environment_markdown, write_results


@numba.njit(cache=True)
def shifted(x, mu, s):
    z = (x - mu) / s
    return -0.5 * np.sum(z * z)


@numba.njit(cache=True)
def shifted_grad(x, mu, s):
    z = (x - mu) / s
    return -0.5 * np.sum(z * z), -z / s


@numba.njit(cache=True)
def student(x, nu):
    return -0.5 * (nu + x.size) * np.log1p(np.sum(x * x) / nu)


@numba.njit(cache=True)
def student_grad(x, nu):
    r = np.sum(x * x)
    return -0.5 * (nu + x.size) * np.log1p(r / nu), -(nu + x.size) * x / (nu + r)


@numba.njit(cache=True)
def logistic(b, X, y):
    eta = X @ b
    return np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(b * b) / 4.0


@numba.njit(cache=True)
def logistic_grad(b, X, y):
    eta = X @ b
    p = 1.0 / (1.0 + np.exp(-eta))
    return np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(b * b) / 4.0, X.T @ (y - p) - b / 4.0


@numba.njit(cache=True)
def gamma_product(x, a):
    if np.any(x <= 0):
        return -np.inf
    return np.sum((a - 1) * np.log(x) - x)


@numba.njit(cache=True)
def gamma_product_grad(x, a):
    if np.any(x <= 0):
        return -np.inf, np.zeros(x.size)
    return np.sum((a - 1) * np.log(x) - x), (a - 1) / x - 1.0


NAMES = ["Gaussian at 1e3, sds 1e-2..1e2 (d 3)", "Student-t nu 5 (d 4)", "logistic regression, n 200 (d 12)",
         "Gamma(3) product on x > 0 (d 2)", "Gaussian, no gradient (d 5)"]


def cases():
    """(name, target, mean, sd), in the order of NAMES."""
    mu, s = np.array([1000.0, -3.0, 0.5]), np.array([0.01, 1.0, 100.0])
    yield "Gaussian at 1e3, sds 1e-2..1e2 (d 3)", mc.Target(shifted, 3, logp_grad=shifted_grad, args=(mu, s)), mu, s
    yield "Student-t nu 5 (d 4)", mc.Target(student, 4, logp_grad=student_grad, args=(5.0,)), np.zeros(4), np.full(4, np.sqrt(5 / 3))
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 12))
    y = (rng.random(200) < 1 / (1 + np.exp(-X @ (0.5 * rng.normal(size=12))))).astype(float)
    t = mc.Target(logistic, 12, logp_grad=logistic_grad, args=(X, y))
    ref = mc.sample(t, "nuts", draws=4000, tune=1000, chains=4, seed=99, progressbar=False).posterior["x"].values.reshape(-1, 12)
    yield "logistic regression, n 200 (d 12)", t, ref.mean(0), ref.std(0)
    yield "Gamma(3) product on x > 0 (d 2)", mc.Target(gamma_product, 2, logp_grad=gamma_product_grad, args=(3.0,)), np.full(2, 3.0), np.full(2, np.sqrt(3.0))
    yield "Gaussian, no gradient (d 5)", mc.Target(shifted, 5, args=(np.full(5, 2.0), np.full(5, 0.5))), np.full(5, 2.0), np.full(5, 0.5)


def runs(cfg):
    if cfg.kind == mc.samplers.PARTICLES:
        return [("8e5 in all", dict(max_evals=8e5, draws=250, chains=4)), ("defaults", dict(draws=100, chains=2))]
    return [("defaults", dict(draws=1000, tune=1000, chains=4))]


def cells(row):
    """A json row as the markdown table's cells."""
    if "error" in row:
        return [row["target"], row["sampler"], row["budget"], row["error"], "", "", "", ""]
    return [row["target"], row["sampler"], row["budget"], f"{row['mean_error_sd']:.3f}",
            f"{row['sd_ratio_min']:.2f}-{row['sd_ratio_max']:.2f}", "yes" if row["finite_lp"] else "**no**",
            f"{row['evals_per_draw']:,.0f}", "; ".join(row["warnings"])[:150]]


def sweep(samplers):
    data = []
    for name, target, mean, sd in cases():
        for sampler in samplers:
            cfg = mc.samplers.resolve(sampler, {})
            if cfg.needs_grad and not target.has_grad:
                continue
            for budget, kw in runs(cfg):
                t0 = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        idata = mc.sample(target, sampler, seed=3, progressbar=False, **kw)
                    except Exception as err:  # a row, not a crash: the sweep's point is to find these
                        data.append(dict(target=name, sampler=sampler, budget=budget,
                                         error=f"error: {type(err).__name__}: {err}"[:120]))
                        print(" | ".join(cells(data[-1])), flush=True)
                        continue
                x = idata.posterior["x"].values.reshape(-1, target.dim)
                stats = idata.sample_stats
                lp = stats["lp"].values if "lp" in stats else np.array([target.logp(p) for p in x])
                err = float(np.max(np.abs(x.mean(0) - mean) / sd))
                ratio = x.std(0) / sd
                evals = (idata.attrs["n_logp"] + idata.attrs["n_grad"]) / x.shape[0]
                said = sorted({f"{type(w.message).__name__}: {str(w.message)[:70]}" for w in caught})
                data.append(dict(target=name, sampler=sampler, budget=budget, mean_error_sd=err,
                                 sd_ratio_min=float(ratio.min()), sd_ratio_max=float(ratio.max()),
                                 finite_lp=bool(np.isfinite(lp).all()), evals_per_draw=evals,
                                 seconds=time.perf_counter() - t0, warnings=said, commit=_commit()))
                print(" | ".join(cells(data[-1])), flush=True)
    return data


def _commit():
    import subprocess
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()


def main(samplers):
    """Rerun the given samplers' rows; the other samplers' rows are kept from the last results
    (each row records the commit it ran at)."""
    path = Path(__file__).parent / "results" / "robustness_sweep.json"
    kept = [r for r in json.loads(path.read_text())["rows"] if r["sampler"] not in samplers] if path.exists() else []
    data = kept + sweep(samplers)
    data.sort(key=lambda r: (NAMES.index(r["target"]), r["sampler"], r["budget"] != "8e5 in all"))
    table = markdown_table(["target", "sampler", "budget", "max mean err / sd", "sd ratio", "all lp finite",
                            "evaluations per draw", "warnings"], [cells(r) for r in data])
    commits = sorted({r.get("commit", "before 8b98495") for r in data})
    machine, versions = machine_info(), package_versions(["mcsample", "numba", "numpy", "arviz"])
    md = f"# Robustness sweep: every sampler's defaults on targets outside the catalogue\n\n" \
         f"Generated by `python benchmarks/robustness_sweep.py` (rows from commits {', '.join(commits)}).\n\n" \
         f"{environment_markdown(machine, versions)}\n\n" \
         f"{__doc__.split(chr(10) + chr(10), 1)[1]}\n{table}\n"
    write_results("robustness_sweep", {"machine": machine, "versions": versions, "rows": data}, md)


if __name__ == "__main__":
    main(sys.argv[1:] or mc.samplers.available())
