"""Regenerate the breast-cancer data files and the NUTS reference draws of targets.logistic.

    python targets/data/breast_cancer/make_reference.py            # both steps
    python targets/data/breast_cancer/make_reference.py --data     # CSV + standardisation only
    python targets/data/breast_cancer/make_reference.py --reference

``--data`` needs scikit-learn (only here; targets.logistic reads the CSV without it). It writes

- ``breast_cancer.csv``: ``sklearn.datasets.load_breast_cancer()``, one row per tumour, the 30
  features under scikit-learn's names and a final ``target`` column (0 malignant, 1 benign);
  values are written with ``repr``, so they read back as the identical float64 numbers;
- ``standardisation.json``: the column means and population sds (``ddof=0``) of the CSV's
  features, which targets.logistic uses for the z-scores.

``--reference`` runs ``mcsample.sample(target, "nuts", draws=25000, tune=2000, chains=4,
seed=20261126)``, requires R-hat < 1.01 and bulk and tail ESS > 10,000 for every parameter, keeps
every 10th draw (4 x 2,500 = 10,000 draws) and writes ``reference_draws.npz`` (``draws``:
(chain, draw, 31) float64, ``names``) and ``reference_draws.info.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CSV_PATH = HERE / "breast_cancer.csv"
STANDARDISATION_PATH = HERE / "standardisation.json"
REFERENCE_PATH = HERE / "reference_draws.npz"
INFO_PATH = HERE / "reference_draws.info.json"

SETTINGS = dict(draws=25000, tune=2000, chains=4, seed=20261126)
THIN = 10
MAX_RHAT = 1.01
MIN_ESS = 10000


def make_data():
    from sklearn import __version__ as sklearn_version
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    features = np.asarray(bunch.data, dtype=np.float64)
    target = np.asarray(bunch.target)
    names = [str(n) for n in bunch.feature_names]
    assert features.shape == (569, 30) and set(np.unique(target)) == {0, 1}
    assert list(bunch.target_names) == ["malignant", "benign"]
    with open(CSV_PATH, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names + ["target"])
        for row, label in zip(features, target):
            writer.writerow([repr(float(v)) for v in row] + [str(int(label))])

    from targets import logistic

    read_names, read_features, read_target = logistic.read_csv(CSV_PATH)
    assert read_names == names
    assert np.array_equal(read_features, features) and np.array_equal(read_target, target)
    mean, sd = logistic.standardisation(read_features)
    STANDARDISATION_PATH.write_text(json.dumps({
        "description": "z = (feature - mean) / sd, sd with ddof=0, computed from breast_cancer.csv",
        "features": names,
        "mean": mean.tolist(),
        "sd": sd.tolist(),
        "ddof": 0,
        "scikit_learn_version": sklearn_version,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {CSV_PATH.name} ({len(target)} rows) and {STANDARDISATION_PATH.name} "
          f"with scikit-learn {sklearn_version}")


def make_reference():
    import mcsample as mc
    from mcsample import _arviz
    from targets import logistic

    logistic._read_data.cache_clear()
    target = logistic.target()
    start = datetime.datetime.now(datetime.timezone.utc)
    idata = mc.sample(target, "nuts", progressbar=False, **SETTINGS)
    draws = _arviz.draws_array(idata)
    names = list(target.names)
    ess_bulk = _arviz.ess(idata, method="bulk")["x"].values
    ess_tail = _arviz.ess(idata, method="tail")["x"].values
    rhat = _arviz.rhat(idata)["x"].values
    stats = idata.sample_stats
    n_divergent = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else None
    print(f"min bulk ESS {ess_bulk.min():.0f}, min tail ESS {ess_tail.min():.0f}, "
          f"max R-hat {rhat.max():.5f}, divergences {n_divergent}")
    if not (rhat.max() < MAX_RHAT and ess_bulk.min() > MIN_ESS and ess_tail.min() > MIN_ESS):
        sys.exit("diagnostics fail the thresholds; reference not written")

    thinned = np.ascontiguousarray(draws[:, ::THIN, :])
    np.savez_compressed(REFERENCE_PATH, draws=thinned, names=np.array(names))
    thinned_idata = _arviz.to_inference_data(thinned, {}, names, {})
    info = {
        "name": logistic.NAME,
        "command": "python targets/data/breast_cancer/make_reference.py --reference",
        "call": "mcsample.sample(targets.logistic.target(), 'nuts', draws=25000, tune=2000, "
                "chains=4, seed=20261126, progressbar=False)",
        "sampler": "nuts",
        "settings": SETTINGS,
        "sampler_settings": json.loads(idata.attrs["settings"]) if "settings" in idata.attrs
        else None,
        "thin": THIN,
        "stored_shape": list(thinned.shape),
        "names": names,
        "date": start.isoformat(timespec="seconds"),
        "mcsample_version": mc.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "wall_time_s": float(idata.attrs.get("wall_time", float("nan"))),
        "n_grad": int(idata.attrs.get("n_grad", -1)),
        "divergences": n_divergent,
        "checks": {"max_rhat_below": MAX_RHAT, "min_ess_above": MIN_ESS},
        "diagnostics_full_run": {
            "ess_bulk": dict(zip(names, np.round(ess_bulk, 1).tolist())),
            "ess_tail": dict(zip(names, np.round(ess_tail, 1).tolist())),
            "rhat": dict(zip(names, np.round(rhat, 5).tolist())),
            "min_ess_bulk": float(ess_bulk.min()),
            "min_ess_tail": float(ess_tail.min()),
            "max_rhat": float(rhat.max()),
        },
        "diagnostics_stored_draws": {
            "min_ess_bulk": float(_arviz.ess(thinned_idata, method="bulk")["x"].values.min()),
            "min_ess_tail": float(_arviz.ess(thinned_idata, method="tail")["x"].values.min()),
            "max_rhat": float(_arviz.rhat(thinned_idata)["x"].values.max()),
        },
        "posterior_mean": dict(zip(names, thinned.reshape(-1, len(names)).mean(0).tolist())),
        "posterior_sd": dict(zip(names, thinned.reshape(-1, len(names)).std(0, ddof=1).tolist())),
    }
    INFO_PATH.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE_PATH.name} {thinned.shape} and {INFO_PATH.name}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="store_true", help="write the CSV and standardisation")
    parser.add_argument("--reference", action="store_true", help="run NUTS, write the draws")
    args = parser.parse_args(argv)
    both = not (args.data or args.reference)
    if args.data or both:
        make_data()
    if args.reference or both:
        make_reference()


if __name__ == "__main__":
    main()
