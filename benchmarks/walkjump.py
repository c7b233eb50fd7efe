"""Walk-jump chains at their defaults (issue #15): mode weights at the comparison budget, the
correlated Gaussian, and where the importance-sampling denoiser breaks with the dimension.

    python benchmarks/walkjump.py modes          # mog8, two_modes d = 8 at 3e5 evaluations per sample
    python benchmarks/walkjump.py correlated     # correlated d = 10 at the defaults (M = 32)
    python benchmarks/walkjump.py dimension      # two_modes and a Gaussian, d = 2..32, 1e5 per sample
    python benchmarks/walkjump.py --report       # results/walkjump.md and walkjump_dimension.png from the jsonl

Every run appends a line to results/walkjump.jsonl. "evals/particle" is every log density spent,
the pilot included, over the particles. Mode weights are nearest-centre; the within-mode sd is
the mean over modes and coordinates of the sd of the draws assigned to the mode, over the
mode's own sd (walk-jump's output shrinks it to sqrt(tau^2 / (tau^2 + sigma^2 / M)) in the
coordinates where sigma is isotropic).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import mcsample as mc
import targets
from mcsample import _arviz, metrics
from mcsample.testing import models
from targets import synthetic

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "walkjump.jsonl"


def within_mode_sd_ratio(x, centres, sd):
    nearest = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    ratios = [x[nearest == k].std(0).mean() / sd for k in range(len(centres)) if np.sum(nearest == k) > 5]
    return float(np.mean(ratios))


def run(name, target, ref, *, draws, seed, per_sample=None, section, **settings):
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = mc.sample(target, "walk_jump", draws=draws, chains=1, seed=seed, progressbar=False,
                          max_evals=None if per_sample is None else per_sample * draws, **settings)
    x = _arviz.group(idata, "posterior")["x"].values.reshape(-1, target.dim)
    steps = _arviz.group(idata, "step_stats")
    ess = steps["importance_ess"].values[0]
    tuned = json.loads(idata.attrs["tuned"])[0] if isinstance(idata.attrs["tuned"], str) else idata.attrs["tuned"][0]
    row = dict(section=section, target=name, dim=target.dim, draws=draws, seed=seed, per_sample=per_sample,
               settings=settings, evals_per_particle=idata.attrs["n_logp"] / draws, sigma=tuned["sigma"],
               n_measurements=tuned["n_measurements"], n_importance=tuned["n_importance"],
               frame=tuned["frame"], ess_first=float(ess[0]), ess_median=float(np.median(ess)),
               ess_last=float(ess[-1]), wall=round(time.time() - t0, 1),
               warned=any("collapsed" in str(w.message) for w in caught))
    if ref.extra.get("mode_centres") is not None and "mode_weights" in ref.extra:
        centres = ref.extra["mode_centres"]
        w = metrics.mode_weights(x, centres)
        row.update(weights=np.round(w, 4).tolist(), tv=float(metrics.total_variation(w, ref.extra["mode_weights"])),
                   within_sd_ratio=within_mode_sd_ratio(x, centres, ref.extra.get("component_sd", 1.0)))
    row.update(max_mean_err=float(np.max(np.abs(x.mean(0) - ref.mean) / ref.sd)),
               sd_ratio_min=float(np.min(x.std(0) / ref.sd)), sd_ratio_max=float(np.max(x.std(0) / ref.sd)))
    print(json.dumps(row), flush=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def with_component_sd(target_ref, sd):
    target, ref = target_ref
    ref.extra["component_sd"] = sd
    return target, ref


def modes(draws=1000, seeds=(1,)):
    for seed in seeds:
        run("mog8", *with_component_sd(targets.get("mog8"), np.sqrt(0.7)), draws=draws, seed=seed,
            per_sample=3e5, section="modes")
        run("two_modes8", *with_component_sd(synthetic.two_modes(8), np.sqrt(0.05)), draws=draws, seed=seed,
            per_sample=3e5, section="modes")


def correlated(draws=1000, seeds=(1, 2)):
    for seed in seeds:
        run("correlated", *targets.get("correlated"), draws=draws, seed=seed, section="correlated")


def dimension(draws=200, dims=(2, 4, 8, 16, 32)):
    for d in dims:
        run(f"two_modes{d}", *with_component_sd(synthetic.two_modes(d), np.sqrt(0.05)), draws=draws, seed=1,
            per_sample=1e5, section="dimension")
        run(f"gauss{d}", *gaussian_target(d), draws=draws, seed=1, per_sample=1e5, section="dimension")


def gaussian_target(d):
    """N(1, diag(0.5..2)^2) with its exact moments as the reference."""
    from types import SimpleNamespace
    sd = np.linspace(0.5, 2.0, d)
    m = models.gaussian(np.ones(d), sd ** 2, name=f"gauss{d}")
    return m.target, SimpleNamespace(mean=np.ones(d), sd=sd, extra={})


def report():
    rows = [json.loads(line) for line in OUT.read_text().splitlines() if line.strip()]
    lines = ["# Walk-jump chains at their defaults (benchmarks/walkjump.py)", "",
             "Generated by `python benchmarks/walkjump.py --report` from results/walkjump.jsonl; commands in the "
             "script's docstring. One chain per row; evals/particle include the pilot.", ""]
    for section in ("modes", "correlated", "dimension"):
        sub = [r for r in rows if r["section"] == section]
        if not sub:
            continue
        lines += [f"## {section}", "",
                  "| target | d | draws | seed | evals/particle | sigma (frame) | M | n_is | ESS m=1 / median / last "
                  "| TV | within-mode sd ratio | max mean err/sd | sd ratio min-max | weights collapsed | wall s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sub:
            lines.append(f"| {r['target']} | {r['dim']} | {r['draws']} | {r['seed']} | {r['evals_per_particle']:.3g} | "
                         f"{r['sigma']:.2f} | {r['n_measurements']} | {r['n_importance']} | "
                         f"{r['ess_first']:.1f} / {r['ess_median']:.1f} / {r['ess_last']:.1f} | "
                         f"{r.get('tv', float('nan')):.3f} | {r.get('within_sd_ratio', float('nan')):.2f} | "
                         f"{r['max_mean_err']:.3f} | {r['sd_ratio_min']:.2f}-{r['sd_ratio_max']:.2f} | "
                         f"{'yes' if r['warned'] else 'no'} | {r['wall']} |")
        lines.append("")
    (RESULTS / "walkjump.md").write_text("\n".join(lines))
    dim = [r for r in rows if r["section"] == "dimension"]
    if dim:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        for prefix, label in (("two_modes", "two_modes (2:1)"), ("gauss", "Gaussian")):
            sub = sorted((r for r in dim if r["target"].startswith(prefix)), key=lambda r: r["dim"])
            ds = [r["dim"] for r in sub]
            ax[0].plot(ds, [r["ess_first"] for r in sub], "o-", label=f"{label}, m = 1")
            ax[0].plot(ds, [r["ess_median"] for r in sub], "s--", label=f"{label}, median m")
            err = [r["tv"] if "tv" in r else r["max_mean_err"] for r in sub]
            ax[1].plot(ds, err, "o-", label=f"{label}: {'mode-weight TV' if prefix == 'two_modes' else 'max mean err / sd'}")
        for a in ax:
            a.set_xscale("log", base=2)
            a.set_xlabel("dimension d")
            a.legend(fontsize=8)
        ax[0].set_yscale("log")
        ax[0].set_ylabel("denoiser importance ESS (of n_importance)")
        ax[1].set_ylabel("error")
        fig.suptitle("walk-jump at 1e5 evaluations per sample, defaults, 200 particles")
        fig.tight_layout()
        fig.savefig(RESULTS / "walkjump_dimension.png", dpi=110)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--report" in args:
        report()
    else:
        for a in args:
            {"modes": modes, "correlated": correlated, "dimension": dimension}[a]()
