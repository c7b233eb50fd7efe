"""Where MultCDiff's excess W2 on 40-MoG d = 2 comes from (issue 13), beside MultALMC at the same budget.

    python benchmarks/multiscale_gmm40.py --draws 200 --seed 1 > benchmarks/results/multiscale_gmm40.jsonl

One run per (sampler, config) at the paper's Table 3 budget per particle (3e5 gradients), driven
step by step (``start_run`` / ``advance``, the generator ``default_rng(seed)``, so the draws differ
from ``mc.sample``'s for the same seed). Against ``--draws`` exact draws, the same metrics as
``multiscale_tables.py`` (exact W2, its floor, mode TV, modes found), and the split of the excess:

- ``w2_weights_only``: the run's mode labels (nearest centre) with exact within-mode draws
  (centre + N(0, I)): what the mode weights alone cost;
- ``w2_widths_only``: exact mode labels (the second set of exact draws') with the run's own
  residuals x - centre (shuffled): what the within-mode shape alone costs;
- ``resid_m2``: mean |x - centre|^2 (2 for exact draws, d = 2), ``far``: the share of particles
  beyond 3.5 from every centre (0.2% for exact draws): particles between modes;
- ``kept_start``: the share of particles whose final mode is the mode of their fast chain's
  clean-space position at the start (the basin the chain started in), and ``start_tv``: the mode
  TV of those starting basins; ``switches``: per tenth of the run, the share of fast chains whose
  nearest mode changed since the last tenth, and ``fast_chain_tv`` the mode TV of the fast chains'
  positions at the end of each tenth.

``--set name=value`` overrides settings (e.g. ``--set eps=None``); ``--save DIR`` keeps the particles.
"""

import argparse
import ast
import json
import time
import warnings

import numpy as np

import targets
from mcsample import metrics
from mcsample._core.slice import frame_to_x
from mcsample.samplers.multiscale import TABLE3_BUDGET, MultALMC, MultCDiff, MultCDiffRun

SAMPLERS = {"multalmc": MultALMC, "multcdiff": MultCDiff}


def clean_positions(run, stop):
    """The fast chains' positions in the target's coordinates (Y unscaled), after ``stop`` iterations."""
    r = min(stop, run.total) - 1
    if r < 0:  # both start Y at sqrt(lambda_delta) times a clean-space point
        factor = 1.0 / np.sqrt(run.settings.lambda_delta)
    elif isinstance(run, MultCDiffRun):
        n_rev = run.plan["n_rev"]
        factor = run.scale[min(r, n_rev - 1)] if run.settings.underdamped else 1.0 / run.ou["a_next"][min(r, n_rev - 1)]
    else:
        factor = 1.0 / np.sqrt(run.plan["lam_n"][r])
    return frame_to_x(run.frame, run.ys * factor)


def labels(x, centres):
    return ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)


def one(sampler, config, draws, seed, name="gmm40_d2", save=None, **overrides):
    target, ref = targets.get(name)
    centres, truth = ref.extra["mode_centres"], ref.extra["mode_weights"]
    cfg = SAMPLERS[sampler].preset(name, **overrides) if config == "preset" else SAMPLERS[sampler](**overrides)
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = cfg.start_run(target, np.random.default_rng(seed), None, 0, draws, TABLE3_BUDGET[name])
        start = labels(clean_positions(run, 0), centres)
        prev, switches, path_tv, path = start, [], [], [start]
        tenth = max(1, run.total // 10)
        for lo in range(0, run.total, tenth):
            hi = min(lo + tenth, run.total)
            run.advance(lo, hi)
            now = labels(clean_positions(run, hi), centres)
            switches.append(round(float(np.mean(now != prev)), 3))
            path_tv.append(round(metrics.total_variation(np.bincount(now, minlength=len(centres)) / draws, truth), 3))
            prev = now
            path.append(now)
    x = run.particles
    rng = np.random.default_rng(1000 + seed)
    idx = rng.permutation(len(ref.draws))
    exact_a, exact_b = ref.draws[idx[:draws]], ref.draws[idx[draws:2 * draws]]
    lab = labels(x, centres)
    resid = x - centres[lab]
    weights_only = centres[lab] + rng.standard_normal(x.shape)
    widths_only = centres[labels(exact_b, centres)] + resid[rng.permutation(draws)]
    w2 = lambda y: round(metrics.wasserstein2(y, exact_a, max_points=draws, seed=seed), 3)  # noqa: E731
    got = np.bincount(lab, minlength=len(centres)) / draws
    if save:
        np.savez(save, x=x, start=start, path=np.array(path), centres=centres, truth=truth, exact_a=exact_a)
    return dict(target=name, sampler=sampler, config=config, seed=seed, particles=draws, n_steps=run.total,
                evals_per_particle=round(run.spent(run.total) / draws),
                w2=w2(x), w2_floor=w2(exact_b), w2_weights_only=w2(weights_only), w2_widths_only=w2(widths_only),
                mode_tv=round(metrics.total_variation(got, truth), 3),
                mode_tv_floor=round(metrics.total_variation(np.bincount(labels(exact_b, centres), minlength=len(centres))
                                                            / draws, truth), 3),
                modes_found=int(np.sum(got > 0)),
                resid_m2=round(float(np.mean(np.sum(resid**2, 1))), 3),
                far=round(float(np.mean(np.sqrt(np.sum(resid**2, 1)) > 3.5)), 3),
                kept_start=round(float(np.mean(lab == start)), 3),
                start_tv=round(metrics.total_variation(np.bincount(start, minlength=len(centres)) / draws, truth), 3),
                switches=switches, fast_chain_tv=path_tv, tuned={k: v for k, v in run.tuned().items() if not isinstance(v, list)},
                warnings=sorted({str(w.message)[:80] for w in caught if issubclass(w.category, RuntimeWarning)}),
                seconds=round(time.time() - t0, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samplers", nargs="+", default=["multcdiff", "multalmc"])
    p.add_argument("--configs", nargs="+", default=["preset", "default"])
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", help="directory for the particles and label paths (npz per run)")
    p.add_argument("--set", nargs="*", default=[], help="settings overrides name=value (Python literals)")
    a = p.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    for config in a.configs:
        for sampler in a.samplers:
            save = f"{a.save}/{sampler}_{config}_{a.seed}.npz" if a.save else None
            row = one(sampler, config, a.draws, a.seed, save=save, **overrides)
            print(json.dumps(dict(row, overrides=a.set), default=float), flush=True)


if __name__ == "__main__":
    main()
