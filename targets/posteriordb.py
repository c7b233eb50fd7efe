"""Four posteriordb posteriors as numba log densities on the unconstrained scale.

The posteriors, their Stan models, data and reference draws come from posteriordb
(https://github.com/stan-dev/posteriordb, BSD-3; copies in ``data/posteriordb/``). Each model has
two ``numba.njit`` kernels, ``<model>_logp(x, *args)`` and ``<model>_logp_grad(x, *args)``, which
follow the Stan program exactly except for dropped additive constants:

* ``x`` is the unconstrained parameter vector (float64, C-contiguous). Parameters declared
  ``<lower=0>`` enter as ``log(param)``, and the log-Jacobian ``log(param)`` is added, as Stan does.
* A ``~`` statement on a ``<lower=0>`` parameter is the density truncated to ``(0, inf)``; with a
  scale that does not depend on parameters the truncation only changes the constant, so
  ``cauchy(0, s)`` is a half-Cauchy. Parameters without a prior statement get Stan's implicit
  flat prior.
* Data are positional arguments (float64 arrays), never globals, so one compiled kernel serves any
  data set of the same shape.

``load(name)`` returns the kernels together with their data, parameter names, the maps between the
unconstrained scale and the constrained scale of the reference draws, and the reference draws.
"""

from __future__ import annotations

import functools
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numba
import numpy as np

DATA_DIR = Path(__file__).parent / "data" / "posteriordb"
POSTERIORDB_URL = "https://github.com/stan-dev/posteriordb"


# --------------------------------------------------------------------------------------------
# Shared pieces of the kernels
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _half_cauchy_log_scale(log_s, scale):
    """Half-Cauchy(0, scale) log density of ``s = exp(log_s)`` plus the log-Jacobian ``log_s``.

    Returns ``(value, d value / d log_s)``, dropping constants. The density term is
    ``-log1p((s / scale)^2) = -softplus(z)`` with ``z = 2 (log_s - log scale)``; it is evaluated
    through ``z`` so that neither value nor gradient overflows when a sampler wanders far out.
    """
    z = 2.0 * (log_s - np.log(scale))
    if z > 0.0:
        e = np.exp(-z)
        softplus = z + np.log1p(e)
        sigmoid = 1.0 / (1.0 + e)
    else:
        e = np.exp(z)
        softplus = np.log1p(e)
        sigmoid = e / (1.0 + e)
    return log_s - softplus, 1.0 - 2.0 * sigmoid


# --------------------------------------------------------------------------------------------
# eight_schools-eight_schools_noncentered
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def eight_schools_noncentered_logp(x, y, sigma):
    """Log density of posteriordb ``eight_schools-eight_schools_noncentered``.

    Stan model ``eight_schools_noncentered``::

        theta = theta_trans * tau + mu;
        theta_trans ~ normal(0, 1);  y ~ normal(theta, sigma);
        mu ~ normal(0, 5);           tau ~ cauchy(0, 5);   // tau > 0

    ``x = [theta_trans[1..J], mu, log(tau)]``; data ``y``, ``sigma`` of length ``J``.
    """
    J = y.shape[0]
    mu = x[J]
    log_tau = x[J + 1]
    tau = np.exp(log_tau)
    lp = -0.5 * (mu / 5.0) ** 2
    for j in range(J):
        r = (y[j] - mu - tau * x[j]) / sigma[j]
        lp -= 0.5 * (x[j] * x[j] + r * r)
    prior_tau, _ = _half_cauchy_log_scale(log_tau, 5.0)
    return lp + prior_tau


@numba.njit(cache=True)
def eight_schools_noncentered_logp_grad(x, y, sigma):
    """``eight_schools_noncentered_logp`` and its gradient with respect to ``x``."""
    J = y.shape[0]
    mu = x[J]
    log_tau = x[J + 1]
    tau = np.exp(log_tau)
    grad = np.empty(J + 2)
    lp = -0.5 * (mu / 5.0) ** 2
    d_mu = -mu / 25.0
    d_tau = 0.0  # derivative with respect to tau itself; chain rule to log(tau) below
    for j in range(J):
        r = (y[j] - mu - tau * x[j]) / sigma[j]
        lp -= 0.5 * (x[j] * x[j] + r * r)
        r_over_sd = r / sigma[j]  # d(-r^2/2)/d theta_j
        grad[j] = tau * r_over_sd - x[j]
        d_mu += r_over_sd
        d_tau += r_over_sd * x[j]
    prior_tau, d_prior_tau = _half_cauchy_log_scale(log_tau, 5.0)
    grad[J] = d_mu
    grad[J + 1] = tau * d_tau + d_prior_tau
    return lp + prior_tau, grad


def _eight_schools_constrain(x):
    """``[theta_trans, mu, log_tau]`` -> ``[mu, tau, theta]``, the reference-draw column order."""
    x = np.asarray(x, dtype=np.float64)
    mu = x[..., -2:-1]
    tau = np.exp(x[..., -1:])
    return np.concatenate([mu, tau, mu + tau * x[..., :-2]], axis=-1)


def _eight_schools_unconstrain(p):
    """Inverse of ``_eight_schools_constrain``: ``theta_trans = (theta - mu) / tau``."""
    p = np.asarray(p, dtype=np.float64)
    mu = p[..., :1]
    tau = p[..., 1:2]
    return np.concatenate([(p[..., 2:] - mu) / tau, mu, np.log(tau)], axis=-1)


# --------------------------------------------------------------------------------------------
# arK-arK
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def arK_logp(x, y):
    """Log density of posteriordb ``arK-arK``, an AR(K) model.

    Stan model ``arK``::

        alpha ~ normal(0, 10);  beta ~ normal(0, 10);  sigma ~ cauchy(0, 2.5);  // sigma > 0
        for (t in (K + 1):T)
          y[t] ~ normal(alpha + sum_k beta[k] * y[t - k], sigma);

    ``x = [alpha, beta[1..K], log(sigma)]``, so ``K = len(x) - 2``; data ``y`` of length ``T``.
    """
    K = x.shape[0] - 2
    T = y.shape[0]
    alpha = x[0]
    log_sigma = x[K + 1]
    lp = -0.5 * (alpha / 10.0) ** 2
    for k in range(1, K + 1):
        lp -= 0.5 * (x[k] / 10.0) ** 2
    sum_sq = 0.0
    for t in range(K, T):
        mean = alpha
        for k in range(1, K + 1):
            mean += x[k] * y[t - k]
        e = y[t] - mean
        sum_sq += e * e
    # Multiply by exp(-2 log sigma) rather than divide by sigma^2: no ZeroDivisionError on underflow.
    lp += -0.5 * sum_sq * np.exp(-2.0 * log_sigma) - (T - K) * log_sigma
    prior_sigma, _ = _half_cauchy_log_scale(log_sigma, 2.5)
    return lp + prior_sigma


@numba.njit(cache=True)
def arK_logp_grad(x, y):
    """``arK_logp`` and its gradient with respect to ``x``."""
    K = x.shape[0] - 2
    T = y.shape[0]
    alpha = x[0]
    log_sigma = x[K + 1]
    inv_var = np.exp(-2.0 * log_sigma)
    # grad[:K+1] first accumulates the residual sums sum_t e_t * [1, y[t-1], ..., y[t-K]].
    grad = np.zeros(K + 2)
    sum_sq = 0.0
    for t in range(K, T):
        mean = alpha
        for k in range(1, K + 1):
            mean += x[k] * y[t - k]
        e = y[t] - mean
        sum_sq += e * e
        grad[0] += e
        for k in range(1, K + 1):
            grad[k] += e * y[t - k]
    lp = -0.5 * sum_sq * inv_var - (T - K) * log_sigma
    for k in range(K + 1):
        lp -= 0.5 * (x[k] / 10.0) ** 2
        grad[k] = grad[k] * inv_var - x[k] / 100.0
    prior_sigma, d_prior_sigma = _half_cauchy_log_scale(log_sigma, 2.5)
    grad[K + 1] = sum_sq * inv_var - (T - K) + d_prior_sigma
    return lp + prior_sigma, grad


# --------------------------------------------------------------------------------------------
# kidiq-kidscore_momiq
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def kidiq_momiq_logp(x, kid_score, mom_iq):
    """Log density of posteriordb ``kidiq-kidscore_momiq``, a linear regression.

    Stan model ``kidscore_momiq`` (flat prior on ``beta``)::

        sigma ~ cauchy(0, 2.5);  // sigma > 0
        kid_score ~ normal(beta[1] + beta[2] * mom_iq, sigma);

    ``x = [beta[1], beta[2], log(sigma)]``.
    """
    log_sigma = x[2]
    sum_sq = 0.0
    for i in range(kid_score.shape[0]):
        e = kid_score[i] - x[0] - x[1] * mom_iq[i]
        sum_sq += e * e
    lp = -0.5 * sum_sq * np.exp(-2.0 * log_sigma) - kid_score.shape[0] * log_sigma
    prior_sigma, _ = _half_cauchy_log_scale(log_sigma, 2.5)
    return lp + prior_sigma


@numba.njit(cache=True)
def kidiq_momiq_logp_grad(x, kid_score, mom_iq):
    """``kidiq_momiq_logp`` and its gradient with respect to ``x``."""
    log_sigma = x[2]
    inv_var = np.exp(-2.0 * log_sigma)
    N = kid_score.shape[0]
    sum_sq = 0.0
    sum_e = 0.0
    sum_e_iq = 0.0
    for i in range(N):
        e = kid_score[i] - x[0] - x[1] * mom_iq[i]
        sum_sq += e * e
        sum_e += e
        sum_e_iq += e * mom_iq[i]
    prior_sigma, d_prior_sigma = _half_cauchy_log_scale(log_sigma, 2.5)
    grad = np.empty(3)
    grad[0] = sum_e * inv_var
    grad[1] = sum_e_iq * inv_var
    grad[2] = sum_sq * inv_var - N + d_prior_sigma
    return -0.5 * sum_sq * inv_var - N * log_sigma + prior_sigma, grad


# --------------------------------------------------------------------------------------------
# earnings-logearn_interaction_z
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def earnings_logearn_interaction_z_logp(x, log_earn, z_height, male, inter):
    """Log density of posteriordb ``earnings-logearn_interaction_z``, a linear regression.

    Stan model ``logearn_interaction_z`` (flat priors on ``beta`` and on ``sigma > 0``)::

        log_earn ~ normal(beta[1] + beta[2] * z_height + beta[3] * male
                          + beta[4] * inter, sigma);

    with transformed data ``log_earn = log(earn)``, ``z_height`` the height standardised with
    the sample sd and ``inter = z_height .* male`` (see ``_earnings_args``).
    ``x = [beta[1..4], log(sigma)]``.
    """
    log_sigma = x[4]
    sum_sq = 0.0
    for i in range(log_earn.shape[0]):
        e = log_earn[i] - x[0] - x[1] * z_height[i] - x[2] * male[i] - x[3] * inter[i]
        sum_sq += e * e
    # The flat prior on sigma leaves only the log-Jacobian, + log_sigma.
    return -0.5 * sum_sq * np.exp(-2.0 * log_sigma) - (log_earn.shape[0] - 1) * log_sigma


@numba.njit(cache=True)
def earnings_logearn_interaction_z_logp_grad(x, log_earn, z_height, male, inter):
    """``earnings_logearn_interaction_z_logp`` and its gradient with respect to ``x``."""
    log_sigma = x[4]
    inv_var = np.exp(-2.0 * log_sigma)
    N = log_earn.shape[0]
    grad = np.zeros(5)
    sum_sq = 0.0
    for i in range(N):
        e = log_earn[i] - x[0] - x[1] * z_height[i] - x[2] * male[i] - x[3] * inter[i]
        sum_sq += e * e
        grad[0] += e
        grad[1] += e * z_height[i]
        grad[2] += e * male[i]
        grad[3] += e * inter[i]
    for k in range(4):
        grad[k] *= inv_var
    grad[4] = sum_sq * inv_var - (N - 1)
    return -0.5 * sum_sq * inv_var - (N - 1) * log_sigma, grad


def _earnings_args(data):
    """Stan's ``transformed data`` block; ``sd`` there is the sample sd (``ddof=1``)."""
    height = _vector(data["height"])
    male = _vector(data["male"])
    z_height = (height - height.mean()) / height.std(ddof=1)
    return (np.log(_vector(data["earn"])), z_height, male, z_height * male)


# --------------------------------------------------------------------------------------------
# Constraining maps shared by the models whose only constrained parameter is a final sigma > 0
# --------------------------------------------------------------------------------------------

def _exp_last(x):
    """``[..., log(sigma)]`` -> ``[..., sigma]``."""
    out = np.array(x, dtype=np.float64)
    out[..., -1] = np.exp(out[..., -1])
    return out


def _log_last(p):
    """``[..., sigma]`` -> ``[..., log(sigma)]``."""
    out = np.array(p, dtype=np.float64)
    out[..., -1] = np.log(out[..., -1])
    return out


# --------------------------------------------------------------------------------------------
# Registry and loading
# --------------------------------------------------------------------------------------------

def _vector(values):
    return np.ascontiguousarray(values, dtype=np.float64)


def _indexed(name, n):
    """Stan-style 1-based element names, ``name[1]`` ... ``name[n]``."""
    return [f"{name}[{i}]" for i in range(1, n + 1)]


@dataclass(frozen=True)
class _Model:
    posterior: str  # posteriordb posterior name, also the directory under DATA_DIR
    logp: Callable
    logp_grad: Callable
    make_args: Callable[[dict], tuple]  # posteriordb data dict -> kernel data arguments
    make_names: Callable[[dict], list]  # posteriordb data dict -> unconstrained parameter names
    constrain: Callable
    unconstrain: Callable
    doc: str


_MODELS = {
    "eight_schools_noncentered": _Model(
        posterior="eight_schools-eight_schools_noncentered",
        logp=eight_schools_noncentered_logp,
        logp_grad=eight_schools_noncentered_logp_grad,
        make_args=lambda d: (_vector(d["y"]), _vector(d["sigma"])),
        make_names=lambda d: _indexed("theta_trans", d["J"]) + ["mu", "log_tau"],
        constrain=_eight_schools_constrain,
        unconstrain=_eight_schools_unconstrain,
        doc="Eight schools, non-centred hierarchical model (posteriordb "
            "'eight_schools-eight_schools_noncentered', Stan model 'eight_schools_noncentered'): "
            "estimated coaching effects y_j with known standard errors sigma_j, "
            "theta_j = mu + tau * theta_trans_j, theta_trans_j ~ N(0, 1), mu ~ N(0, 5), "
            "tau ~ half-Cauchy(0, 5). Sampled on (theta_trans, mu, log tau); the reference draws "
            "are of (mu, tau, theta). The funnel between tau and theta_trans is mild in this "
            f"parameterisation. Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "arK": _Model(
        posterior="arK-arK",
        logp=arK_logp,
        logp_grad=arK_logp_grad,
        make_args=lambda d: (_vector(d["y"]),),
        make_names=lambda d: ["alpha"] + _indexed("beta", d["K"]) + ["log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Autoregressive model of order K = 5 on a series of T = 200 points (posteriordb "
            "'arK-arK', Stan model 'arK'): y_t ~ N(alpha + sum_k beta_k y_{t-k}, sigma) with "
            "alpha, beta_k ~ N(0, 10) and sigma ~ half-Cauchy(0, 2.5). Sampled on "
            f"(alpha, beta, log sigma). Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "kidiq_momiq": _Model(
        posterior="kidiq-kidscore_momiq",
        logp=kidiq_momiq_logp,
        logp_grad=kidiq_momiq_logp_grad,
        make_args=lambda d: (_vector(d["kid_score"]), _vector(d["mom_iq"])),
        make_names=lambda d: _indexed("beta", 2) + ["log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Linear regression of child test scores on mother's IQ, N = 434 (posteriordb "
            "'kidiq-kidscore_momiq', Stan model 'kidscore_momiq'): kid_score ~ N(beta_1 + "
            "beta_2 mom_iq, sigma), flat prior on beta, sigma ~ half-Cauchy(0, 2.5). The "
            "uncentred predictor makes beta_1 and beta_2 strongly correlated. Sampled on "
            f"(beta, log sigma). Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "earnings_logearn_interaction_z": _Model(
        posterior="earnings-logearn_interaction_z",
        logp=earnings_logearn_interaction_z_logp,
        logp_grad=earnings_logearn_interaction_z_logp_grad,
        make_args=_earnings_args,
        make_names=lambda d: _indexed("beta", 4) + ["log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Linear regression of log earnings on standardised height, sex and their "
            "interaction, N = 1192 (posteriordb 'earnings-logearn_interaction_z', Stan model "
            "'logearn_interaction_z', from Gelman & Hill ch. 4): log(earn) ~ N(beta_1 + "
            "beta_2 z_height + beta_3 male + beta_4 z_height * male, sigma), flat priors on "
            f"beta and sigma. Sampled on (beta, log sigma). Source: {POSTERIORDB_URL} (BSD-3).",
    ),
}

NAMES = tuple(_MODELS)


def _read_zipped_json(path):
    """posteriordb's ``*.json.zip`` files hold a single JSON document."""
    with zipfile.ZipFile(path) as archive:
        (member,) = archive.namelist()
        return json.loads(archive.read(member))


@functools.lru_cache(maxsize=None)
def _read_data(posterior):
    """The posteriordb data dict, as parsed from ``data.json.zip``. Do not mutate."""
    return _read_zipped_json(DATA_DIR / posterior / "data.json.zip")


@functools.lru_cache(maxsize=None)
def _read_reference(posterior):
    """Column names and draws ``(chains, draws, names)`` of the posteriordb reference posterior.

    The column order is that of ``reference_draws.info.json``. The returned array is made
    read-only because it is shared by every caller; ``load`` hands out copies.
    """
    directory = DATA_DIR / posterior
    info = json.loads((directory / "reference_draws.info.json").read_text(encoding="utf-8"))
    names = info["diagnostics"]["diagnostic_information"]["names"]
    chains = _read_zipped_json(directory / "reference_draws.json.zip")
    for chain in chains:
        if set(chain) != set(names):
            raise ValueError(f"{posterior}: reference draws hold {sorted(chain)}, not {names}")
    draws = np.array([[chain[n] for n in names] for chain in chains], dtype=np.float64)
    draws = np.ascontiguousarray(draws.transpose(0, 2, 1))
    draws.setflags(write=False)
    return tuple(names), draws


def load(name: str) -> dict:
    """Kernels, data and reference draws of one of the posteriors in ``NAMES``.

    Returns a dict with

    - ``logp``, ``logp_grad``: the njit kernels, called as ``logp(x, *args)``;
    - ``args``: tuple of the data arrays the kernels take after ``x``;
    - ``dim``, ``names``: length and element names of the unconstrained ``x``;
    - ``ref_names``: the reference-draw columns, as named by posteriordb (e.g. ``theta[1]``);
    - ``constrain``, ``unconstrain``: numpy maps ``(..., dim) <-> (..., len(ref_names))``;
    - ``reference_draws``: float array ``(chains, draws, len(ref_names))``, constrained scale;
    - ``doc``: a description with the source;
    - ``posterior``: the posteriordb posterior name.
    """
    try:
        model = _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown posteriordb target {name!r}; choose from {NAMES}") from None
    data = _read_data(model.posterior)
    names = model.make_names(data)
    ref_names, draws = _read_reference(model.posterior)
    return {
        "logp": model.logp,
        "logp_grad": model.logp_grad,
        "args": model.make_args(data),
        "dim": len(names),
        "names": names,
        "ref_names": list(ref_names),
        "constrain": model.constrain,
        "unconstrain": model.unconstrain,
        "reference_draws": draws.copy(),
        "doc": model.doc,
        "posterior": model.posterior,
    }
