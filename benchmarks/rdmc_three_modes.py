"""rdMC (issue 12): the notebook's three modes, 0.6 / 0.3 / 0.1 N(m_k, 0.5^2 I) at (-4, 0), (4, 0),
(0, 5), without a budget, 4 x 250 particles: does the default smc estimator carry the small mode?

    python benchmarks/rdmc_three_modes.py > benchmarks/results/rdmc_three_modes.jsonl

Rows: the modes' weights (nearest centre), their TV, evaluations per particle; for smc, is_mala and
smc with 64 members a particle (is the population's size the cause of a light small mode?).
"""

import argparse
import json

import numpy as np

import mcsample as mc
from mcsample import metrics
from mcsample.testing import models

SETTINGS = {"smc": {}, "is_mala": dict(estimator="is_mala"), "smc population 64": dict(population=64)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", nargs="+", type=int, default=[1])
    a = p.parse_args()
    weights = np.array([0.6, 0.3, 0.1])
    means = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    model = models.mixture(weights, means, 0.5, name="three modes")
    for seed in a.seeds:
        for label, kw in SETTINGS.items():
            rd = mc.sample(model.target, "rdmc", draws=250, chains=4, seed=seed, progressbar=False, **kw)
            x = rd.posterior["x"].values.reshape(-1, 2)
            w = metrics.mode_weights(x, means)
            print(json.dumps(dict(label=label, seed=seed, w=w.round(3).tolist(),
                                  tv=round(metrics.total_variation(w, weights), 3),
                                  evals=round((rd.attrs["n_logp"] + rd.attrs["n_grad"]) / len(x)))), flush=True)


if __name__ == "__main__":
    main()
