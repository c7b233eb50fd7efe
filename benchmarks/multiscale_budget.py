"""MultALMC / MultCDiff: evaluations spent against ``max_evals`` (issue 13: budgets are a contract).

    python benchmarks/multiscale_budget.py > benchmarks/results/multiscale_budget.jsonl

The fast-step guard redoes a step that left SK-ROCK's stability region. Those redone steps were
counted but not planned: runs went 0.1-0.5% over ``max_evals`` at the defaults and 2.4x over on
the funnel preset (``multiscale_tables.md``, before this change). Now a share of each particle's
budget is kept back for them and a step beyond it is not redone. Per row: ``spent / max_evals``
(must be <= 1), the gradients redone steps spent (``redone``, share of the spent), the unstable
steps left undone for lack of allowance (``not_redone``), the pilot's evaluations and L.

Two protocols: ``compare`` (``mc.compare``'s: 4 runs, the particles ``draws_for_budget`` picks, the
defaults, budgets 2e5 and 1e6 for the 4 runs together) on the targets of ``multiscale_defaults.py``
and the funnels; ``preset`` (the paper's Table 8 row in raw units at its Table 3 budget per
particle, ``--draws`` particles in one run) on the paper's targets.
"""

import argparse
import json
import time
import warnings

import mcsample as mc
from mcsample.samplers.multiscale import TABLE3_BUDGET, MultALMC, MultCDiff

from multiscale_defaults import TARGETS, build

SAMPLERS = {"multalmc": MultALMC, "multcdiff": MultCDiff}


def one(target, name, sampler, cfg, draws, chains, max_evals, protocol, seed):
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idata = mc.sample(target, cfg, draws=draws, chains=chains, seed=seed, progressbar=False, max_evals=max_evals)
    tuned = idata.attrs["tuned"]
    tuned = json.loads(tuned) if isinstance(tuned, str) else tuned
    spent = int(idata.attrs["n_grad"] + idata.attrs["n_logp"])
    redone = sum(r["redone_evals"] for r in tuned)
    return dict(protocol=protocol, target=name, sampler=sampler, seed=seed, max_evals=max_evals, chains=chains,
                draws=draws, spent=spent, spent_share=round(spent / max_evals, 5), redone=redone,
                redone_share=round(redone / spent, 5), not_redone=sum(r["steps_not_redone"] for r in tuned),
                pilot_evals=sum(r["pilot_evals"] for r in tuned), n_steps=tuned[0]["n_steps"],
                warnings=sorted({str(w.message)[:80] for w in caught if issubclass(w.category, RuntimeWarning)}),
                seconds=round(time.time() - t0, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocols", nargs="+", default=["preset", "compare"])
    p.add_argument("--budgets", nargs="+", type=float, default=[2e5, 1e6])
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if "preset" in a.protocols:
        for name in ["mog8", "gmm40_d2", "dw5", "funnel10"]:
            target, _, _, _ = build(name)
            for sampler, cls in SAMPLERS.items():
                budget = TABLE3_BUDGET[name] * a.draws
                print(json.dumps(one(target, name, sampler, cls.preset(name), a.draws, 1, budget, "preset", a.seed)),
                      flush=True)
    if "compare" in a.protocols:
        for budget in a.budgets:
            for name in TARGETS + ["funnel10", "funnel10_slips"]:
                target, _, _, _ = build(name)
                for sampler, cls in SAMPLERS.items():
                    cfg = cls()
                    draws = cfg.draws_for_budget(budget / 4, target.dim)
                    print(json.dumps(one(target, name, sampler, cfg, draws, 4, budget, "compare", a.seed)), flush=True)


if __name__ == "__main__":
    main()
