"""Unequal mode weights with the multiscale samplers (issue 13; notes 3.10 item 5).

    python benchmarks/multiscale_weights.py > benchmarks/results/multiscale_weights.jsonl

Each slow particle carries a single fast chain, and a Langevin chain does not cross a high
barrier in the time it is given, so the weight a mode ends with follows how many fast chains
started in its basin, not the target's weight. Measured here on
- ``mix1d``: 0.3 N(-3, 0.5^2) + 0.7 N(3, 0.5^2) in 1-D (weight of the right mode, truth 0.7);
- ``two_modes`` (SLIPS): 2/3 N(-(2/3) 1, 0.05 I) + 1/3 N((4/3) 1, 0.05 I), d = 2 and 8
  (weight of the first mode, truth 2/3),
300 particles, seed 1, L = 4000 iterations, at the tuned defaults (pilot, tuned steps) with the
fast chains started from importance resampling (``resample_init=True``, the default when
standardised) and without it (``resample_init=False``: Y_0 ~ N(0, I) as in the paper). ``se`` is
the binomial standard error of the measured weight. (The first version of this file measured the
8-MoG preset in raw units; those rows are in ``results/multiscale_weights.md``.)
"""

import json
import time

import numpy as np

import mcsample as mc
import targets
from mcsample.testing import models

CASES = [("mix1d", None), ("two_modes", 2), ("two_modes", 8)]


def build(name, dim):
    if name == "mix1d":
        m = models.mixture([0.3, 0.7], [[-3.0], [3.0]], [[0.5], [0.5]], name="mix1d_0.3_0.7")
        return m.target, np.array([[-3.0], [3.0]]), 1, 0.7
    target, ref = targets.get(name, dim=dim)
    return target, ref.extra["mode_centres"], 0, 2.0 / 3.0


def _tuned(idata):
    t = idata.attrs["tuned"]
    return json.loads(t) if isinstance(t, str) else t


def main(draws=300, seed=1):
    for name, dim in CASES:
        target, centres, which, truth = build(name, dim)
        for sampler, kw in [(s, {"n_steps": 4000, "resample_init": r}) for r in (True, False)
                            for s in ("multalmc", "multcdiff")]:
            t0 = time.time()
            idata = mc.sample(target, sampler, draws=draws, chains=1, seed=seed, progressbar=False, **kw)
            x = idata["posterior"]["x"].values.reshape(-1, target.dim)
            d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
            w = float(np.mean(np.argmin(d2, 1) == which))
            print(json.dumps(dict(target=name, dim=target.dim, sampler=sampler, settings=kw, weight=round(w, 3),
                                  truth=round(truth, 3), se=round(np.sqrt(w * (1 - w) / len(x)), 3),
                                  grads_per_sample=round(idata.attrs["n_grad"] / len(x)),
                                  init_ess=[round(r.get("init_ess", float("nan")), 1) for r in _tuned(idata)],
                                  seconds=round(time.time() - t0, 1))), flush=True)


if __name__ == "__main__":
    main()
