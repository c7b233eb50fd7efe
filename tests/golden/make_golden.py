"""Regenerate the golden files that pin short seeded runs of every family, draw for draw.

Run only when a change is *meant* to alter the draws (and say so in the commit):
    python tests/golden/make_golden.py
The test (tests/test_golden.py) compares a fresh run with these files bit for bit, so a
refactoring of a kernel or of the driver that changes a single draw, statistic or count fails.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent

# (file stem, sampler, settings): every family, and each NUTS metric.
RUNS = [
    ("nuts_nutpie", "nuts", {}),  # the default: nutpie's warmup with grad_diag (issue #16)
    ("nuts_diag", "nuts", {"adaptation": "stan", "metric": "diag"}),
    ("nuts_dense", "nuts", {"metric": "dense"}),
    ("nuts_grad_diag", "nuts", {"adaptation": "stan", "metric": "grad_diag"}),
    ("gpss", "gpss", {}),
    ("elliptical_slice", "elliptical_slice", {}),
    ("hit_and_run_slice", "hit_and_run_slice", {}),
]
DRAWS, TUNE, CHAINS, SEED = 40, 300, 2, 11


def golden_model():
    """An off-centre correlated Gaussian in d = 4: every warmup window (metric, frame) acts."""
    from mcsample.testing import models
    a = np.array([[1.0, 0.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0], [0.0, -0.5, 1.5, 0.0], [0.2, 0.0, 0.3, 0.4]])
    return models.gaussian(mean=np.array([3.0, -1.0, 0.5, 2.0]), cov=a @ a.T, name="golden")


def run(sampler, settings):
    import mcsample as mc
    return mc.sample(golden_model().target, sampler, draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED,
                     progressbar=False, save_warmup=True, **settings)


def arrays(idata) -> dict:
    """Everything a run returns that must not move: draws (warmup too), every statistic, totals."""
    out = {"x": np.asarray(idata["posterior"]["x"].values),
           "warmup_x": np.asarray(idata["warmup_posterior"]["x"].values)}
    for name in idata["sample_stats"].data_vars:
        out[f"stat_{name}"] = np.asarray(idata["sample_stats"][name].values)
    out["n_logp"] = np.array(idata.attrs["n_logp"])
    out["n_grad"] = np.array(idata.attrs["n_grad"])
    return out


if __name__ == "__main__":
    for stem, sampler, settings in RUNS:
        np.savez_compressed(HERE / f"{stem}.npz", numpy_version=np.array(np.__version__),
                            **arrays(run(sampler, settings)))
        print("wrote", stem)
