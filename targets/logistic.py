"""Bayesian logistic regression on the breast-cancer data shipped in scikit-learn.

The data are the UCI Breast Cancer Wisconsin (Diagnostic) set (Wolberg, Street, Mangasarian;
CC BY 4.0), 569 tumours with 30 features each, copied from scikit-learn into
``data/breast_cancer/breast_cancer.csv`` (see the README there). scikit-learn is not needed at
run time.

Model, with ``z_ij`` the features standardised by the stored column means and standard deviations
(``data/breast_cancer/standardisation.json``)::

    y_i ~ Bernoulli(sigmoid(intercept + sum_j beta_j z_ij)),   i = 1..569
    intercept ~ N(0, 2.5^2),   beta_j ~ N(0, 1),   j = 1..30

``y = 1`` is a benign tumour and ``y = 0`` a malignant one (scikit-learn's coding). The prior is the
convention of the Bayesian logistic regression benchmarks (ionosphere, sonar) of the
multiscale-diffusion sampler paper: unit normal on the weights of standardised features,
N(0, 2.5^2) on the bias. The prior sds are a data argument of the kernels, so other choices need
no new code. The data are not linearly
separable, but nearly so (an unpenalised fit classifies 99% correctly with coefficients above
100), so a flat or very wide prior would give a far wider, heavier-tailed posterior.

The kernels ``logistic_logp(x, Z, y, prior_sd)`` and ``logistic_logp_grad`` take
``x = [intercept, beta_1..beta_30]`` (all unconstrained, d = 31) and drop additive constants.
``load()`` returns the same dict as ``targets.posteriordb.load``, with reference draws from a long
NUTS run made by ``data/breast_cancer/make_reference.py``.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numba
import numpy as np

DATA_DIR = Path(__file__).parent / "data" / "breast_cancer"
CSV_PATH = DATA_DIR / "breast_cancer.csv"
STANDARDISATION_PATH = DATA_DIR / "standardisation.json"
REFERENCE_PATH = DATA_DIR / "reference_draws.npz"
REFERENCE_INFO_PATH = DATA_DIR / "reference_draws.info.json"

NAME = "logistic_breast_cancer"
INTERCEPT_PRIOR_SD = 2.5
COEFFICIENT_PRIOR_SD = 1.0


@numba.njit(cache=True)
def _log1p_exp(t):
    """``log(1 + e^t)`` without overflow."""
    if t > 0.0:
        return t + np.log1p(np.exp(-t))
    return np.log1p(np.exp(t))


@numba.njit(cache=True)
def logistic_logp(x, Z, y, prior_sd):
    """Log posterior density (up to a constant) of the logistic regression.

    ``x = [intercept, beta_1..beta_K]``; ``Z`` is the ``N x K`` standardised feature matrix, ``y``
    the 0/1 outcomes (float64), ``prior_sd`` the ``K + 1`` prior standard deviations in the order
    of ``x``. Each observation contributes ``y eta - log(1 + e^eta)``, which is
    ``log sigmoid(eta)`` for ``y = 1`` and ``log sigmoid(-eta)`` for ``y = 0``.
    """
    N, K = Z.shape
    lp = 0.0
    for k in range(K + 1):
        u = x[k] / prior_sd[k]
        lp -= 0.5 * u * u
    for i in range(N):
        eta = x[0]
        for k in range(K):
            eta += Z[i, k] * x[k + 1]
        lp += y[i] * eta - _log1p_exp(eta)
    return lp


@numba.njit(cache=True)
def logistic_logp_grad(x, Z, y, prior_sd):
    """``logistic_logp`` and its gradient with respect to ``x``.

    ``d/d eta [y eta - log(1 + e^eta)] = y - sigmoid(eta)``, with ``sigmoid`` evaluated from
    ``e^-|eta|`` so that it never overflows.
    """
    N, K = Z.shape
    grad = np.empty(K + 1)
    lp = 0.0
    for k in range(K + 1):
        inv_var = 1.0 / (prior_sd[k] * prior_sd[k])
        lp -= 0.5 * x[k] * x[k] * inv_var
        grad[k] = -x[k] * inv_var
    for i in range(N):
        eta = x[0]
        for k in range(K):
            eta += Z[i, k] * x[k + 1]
        if eta > 0.0:
            e = np.exp(-eta)
            softplus = eta + np.log1p(e)
            sigmoid = 1.0 / (1.0 + e)
        else:
            e = np.exp(eta)
            softplus = np.log1p(e)
            sigmoid = e / (1.0 + e)
        lp += y[i] * eta - softplus
        r = y[i] - sigmoid
        grad[0] += r
        for k in range(K):
            grad[k + 1] += r * Z[i, k]
    return lp, grad


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def read_csv(path=CSV_PATH):
    """``(feature_names, features (569, 30), target (569,))`` from the shipped CSV."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    if header[-1] != "target":
        raise ValueError(f"{path}: last column is {header[-1]!r}, expected 'target'")
    values = np.array(body, dtype=np.float64)
    return header[:-1], np.ascontiguousarray(values[:, :-1]), np.ascontiguousarray(values[:, -1])


def standardisation(features):
    """Column means and population standard deviations (``ddof=0``) used for the z-scores."""
    return features.mean(axis=0), features.std(axis=0)


def _identifier(feature_name):
    """``'mean radius'`` -> ``'mean_radius'``."""
    return feature_name.replace(" ", "_")


@functools.lru_cache(maxsize=None)
def _read_data():
    """``(names, Z, y, prior_sd)``; the arrays are read-only because they are shared."""
    feature_names, features, target = read_csv()
    info = json.loads(STANDARDISATION_PATH.read_text(encoding="utf-8"))
    if info["features"] != feature_names:
        raise ValueError(f"{STANDARDISATION_PATH} does not match the columns of {CSV_PATH}")
    mean = np.array(info["mean"], dtype=np.float64)
    sd = np.array(info["sd"], dtype=np.float64)
    Z = np.ascontiguousarray((features - mean) / sd)
    prior_sd = np.full(len(feature_names) + 1, COEFFICIENT_PRIOR_SD)
    prior_sd[0] = INTERCEPT_PRIOR_SD
    names = ["intercept"] + [_identifier(n) for n in feature_names]
    for a in (Z, target, prior_sd):
        a.setflags(write=False)
    return names, Z, target, prior_sd


@functools.lru_cache(maxsize=None)
def _read_reference():
    """Reference draws ``(chains, draws, 31)`` and their column names, read-only."""
    with np.load(REFERENCE_PATH) as archive:
        draws = np.ascontiguousarray(archive["draws"], dtype=np.float64)
        names = [str(n) for n in archive["names"]]
    draws.setflags(write=False)
    return tuple(names), draws


def _identity(x):
    return np.array(x, dtype=np.float64)


DOC = (
    "Bayesian logistic regression on the UCI Breast Cancer Wisconsin (Diagnostic) data as "
    "shipped in scikit-learn (Wolberg, Street, Mangasarian; CC BY 4.0): 569 tumours, 30 "
    "z-scored features, y = 1 benign. logit P(y = 1) = intercept + z . beta, intercept ~ "
    "N(0, 2.5^2), beta ~ N(0, 1) (the multiscale-diffusion paper's BLR convention), d = 31, "
    "all parameters unconstrained. Strongly correlated features (radius, perimeter, area) "
    "make the posterior correlated. Reference: 4 x 25,000 NUTS draws thinned to 10,000 "
    "(targets/data/breast_cancer/reference_draws.info.json)."
)


def load() -> dict:
    """Kernels, data and reference draws, as a dict with the keys of ``targets.posteriordb.load``.

    ``args = (Z, y, prior_sd)``; ``constrain`` and ``unconstrain`` are the identity (every
    parameter is unconstrained) and ``ref_names == names``.
    """
    names, Z, y, prior_sd = _read_data()
    ref_names, draws = _read_reference()
    if list(ref_names) != names:
        raise ValueError(f"{REFERENCE_PATH}: columns {ref_names} differ from {names}")
    return {
        "logp": logistic_logp,
        "logp_grad": logistic_logp_grad,
        "args": (Z.copy(), y.copy(), prior_sd.copy()),
        "dim": len(names),
        "names": list(names),
        "ref_names": list(ref_names),
        "constrain": _identity,
        "unconstrain": _identity,
        "reference_draws": draws.copy(),
        "doc": DOC,
        "posterior": NAME,
    }


def target():
    """The posterior as an ``mcsample.Target`` (no reference draws needed)."""
    from mcsample import Target

    names, Z, y, prior_sd = _read_data()
    return Target(logistic_logp, len(names), logp_grad=logistic_logp_grad,
                  args=(Z.copy(), y.copy(), prior_sd.copy()), names=list(names), name=NAME)
