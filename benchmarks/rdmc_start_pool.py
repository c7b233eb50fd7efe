"""rdMC (issue 12): does the smc estimator's start pool set the modes' weights?

    python benchmarks/rdmc_start_pool.py --dims 16 20 --seeds 7 8 > benchmarks/results/rdmc_start_pool.jsonl

The sequential estimator (``estimator="smc"``) starts every particle's population from one pool
per run of draws of the searches' modes, importance-weighted by p (``RDMCRun._start_population``);
from then on the reweighting only passes the modes' masses along. Hypothesis (notebook, d = 16:
0.59 in both runs, truth 0.667): the pool's self-normalised estimate of the masses is off, and the
run's output follows it. Per run (chain) of ``mc.sample(two_modes(d), RDMC(estimator="smc",
search_rounds=4), draws, chains=2)``: ``pool_w1``, the fraction of all particles' start members
nearest the first mode (the pool's estimate of its mass, resampled), the pool's ESS and size, the
number of search modes near each centre, and ``w1``, the output's first-mode weight. If the
output tracks ``pool_w1`` run by run, the pool sets the weights.
"""

import argparse
import json
import time

import numpy as np

import mcsample as mc
import targets
from mcsample import metrics
from mcsample._core.slice import frame_to_x
from mcsample.samplers import rdmc
from mcsample.samplers.rdmc import RDMC

_pools = {}
_real_start = rdmc.RDMCRun._start_population


def _recording_start(self, s_top):
    _real_start(self, s_top)
    d = self.pop.shape[2]
    _pools[id(self)] = dict(x=frame_to_x(self.frame, self.pop.reshape(-1, d)), ess=self.start_ess,
                            n=self.start_draws, modes=[frame_to_x(self.frame, m) for m, _ in self.modes])


def one(d, seed, draws, **settings):
    target, ref = targets.get("two_modes", dim=d)
    centres = ref.extra["mode_centres"]
    _pools.clear()
    t0 = time.time()
    idata = mc.sample(target, RDMC(estimator="smc", search_rounds=4, **settings), draws=draws, chains=2, seed=seed,
                      progressbar=False)
    xs = idata["posterior"]["x"].values
    pools = list(_pools.values())
    w1 = [round(float(metrics.mode_weights(xc, centres)[0]), 3) for xc in xs]
    pool_w1 = [round(float(metrics.mode_weights(p["x"], centres)[0]), 3) for p in pools]
    # pair each run (chain) with its pool by the start ESS and size its tuned attributes report
    tuned = json.loads(idata.attrs["tuned"])
    order = [next(i for i, p in enumerate(pools) if p["n"] == t["n_start"] and abs(p["ess"] - t["start_ess"]) < 1e-9)
             for t in tuned]
    found = []  # the searches' modes nearest each centre
    for i in order:
        m = np.array(pools[i]["modes"])
        found.append(np.bincount(((m[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1), minlength=len(centres)).tolist())
    return dict(target="two_modes", d=d, seed=seed, particles_per_run=draws, settings=settings,
                w1_per_run=w1, pool_w1_per_run=[pool_w1[i] for i in order],
                pool_ess=[round(pools[i]["ess"], 1) for i in order], pool_draws=[pools[i]["n"] for i in order],
                search_modes_per_centre=found, w1_se_per_run=round(float(np.sqrt(2 / 9 / draws)), 3),
                seconds=round(time.time() - t0, 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dims", nargs="+", type=int, default=[16, 20])
    p.add_argument("--seeds", nargs="+", type=int, default=[7, 8])
    p.add_argument("--draws", type=int, default=200, help="particles per run (2 runs)")
    p.add_argument("--settings", default="{}", help="JSON of more RDMC settings")
    a = p.parse_args()
    rdmc.RDMCRun._start_population = _recording_start
    for d in a.dims:
        for seed in a.seeds:
            print(json.dumps(one(d, seed, a.draws, **json.loads(a.settings))), flush=True)


if __name__ == "__main__":
    main()
