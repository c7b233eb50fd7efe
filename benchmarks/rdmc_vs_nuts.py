"""rdMC against NUTS at one budget in ``mc.compare`` (issue 12): NUTS's chains stay in the modes
they started in; rdMC's population carries the weights.

    python benchmarks/rdmc_vs_nuts.py > benchmarks/results/rdmc_vs_nuts.md

Per target (two_modes at d = 8, mog8): ``mc.compare(target, ["nuts", "rdmc"], budget=4e6,
chains=4, seed=1)`` -- 1e6 evaluations per chain, which pays rdMC's defaults (26,000 evaluations
per particle) for 28 particles a run, 112 in all -- and its table (``mode_tv`` is the mode-weight total
variation). Below it, each NUTS chain's mode weights: the same ``sample()`` call that compare
makes (same seed, draws, tune and budget), split by chain.
"""

import numpy as np

import mcsample as mc
import targets
from mcsample import metrics

BUDGET, CHAINS, SEED = 4e6, 4, 1
CASES = [("two_modes", {"dim": 8}), ("mog8", {})]


def main():
    print(f"# rdMC vs NUTS in mc.compare, budget {BUDGET:.0e} per sampler, {CHAINS} chains, seed {SEED}\n")
    for name, kw in CASES:
        target, ref = targets.get(name, **kw)
        table = mc.compare(target, ["nuts", "rdmc"], budget=BUDGET, chains=CHAINS, seed=SEED, reference=ref,
                           progressbar=False)
        print(f"## {name} (d = {target.dim})\n\n```\n{mc.compare_table(table)}\n```\n")
        centres = ref.extra["mode_centres"]
        truth = ref.extra.get("mode_weights")
        truth = truth if truth is not None else metrics.mode_weights(ref.draws, centres)
        per_chain = int(BUDGET / CHAINS)
        idata = mc.sample(target, "nuts", draws=per_chain, tune=1000, chains=CHAINS, seed=SEED, max_evals=BUDGET,
                          progressbar=False)
        x = idata["posterior"]["x"].values
        print("NUTS, mode weights per chain (truth " + ", ".join(f"{w:.3f}" for w in truth) + "):\n")
        for c in range(x.shape[0]):
            draws = x[c][np.all(np.isfinite(x[c]), axis=1)]
            w = metrics.mode_weights(draws, centres)
            print(f"- chain {c}: " + ", ".join(f"{v:.3f}" for v in w) + f" ({len(draws)} draws)")
        print()


if __name__ == "__main__":
    main()
