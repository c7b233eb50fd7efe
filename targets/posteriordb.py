"""Nine posteriordb posteriors as numba log densities on the unconstrained scale.

The posteriors, their Stan models, data and reference draws come from posteriordb
(https://github.com/stan-dev/posteriordb, BSD-3; copies in ``data/posteriordb/``). Each model has
two ``numba.njit`` kernels, ``<model>_logp(x, *args)`` and ``<model>_logp_grad(x, *args)``, which
follow the Stan program exactly except for dropped additive constants:

* ``x`` is the unconstrained parameter vector (float64, C-contiguous). Parameters declared
  ``<lower=0>`` enter as ``log(param)``, and the log-Jacobian ``log(param)`` is added, as Stan does.
* Other constrained types use Stan's transforms and log-Jacobians too: ``ordered`` as the first
  element followed by logs of the successive gaps, ``<lower=0, upper=1>`` as a logit.
* A transformed parameter that posteriordb reports (``f`` of ``gp_pois_regr``) is recomputed by
  ``constrain``.
* A ``~`` statement on a ``<lower=0>`` parameter is the density truncated to ``(0, inf)``; with a
  scale that does not depend on parameters the truncation only changes the constant, so
  ``cauchy(0, s)`` is a half-Cauchy. Parameters without a prior statement get Stan's implicit
  flat prior.
* Data are positional arguments (float64 arrays), never globals, so one compiled kernel serves any
  data set of the same shape. ``diamonds`` (N = 5000) takes exact sufficient statistics of its
  data instead of the rows.

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
def _softplus_sigmoid(z):
    """``(log(1 + e^z), 1 / (1 + e^-z))``, the softplus and its derivative, without overflow."""
    if z > 0.0:
        e = np.exp(-z)
        return z + np.log1p(e), 1.0 / (1.0 + e)
    e = np.exp(z)
    return np.log1p(e), e / (1.0 + e)


@numba.njit(cache=True)
def _half_cauchy_log_scale(log_s, scale):
    """Half-Cauchy(0, scale) log density of ``s = exp(log_s)`` plus the log-Jacobian ``log_s``.

    Returns ``(value, d value / d log_s)``, dropping constants. The density term is
    ``-log1p((s / scale)^2) = -softplus(z)`` with ``z = 2 (log_s - log scale)``; it is evaluated
    through ``z`` so that neither value nor gradient overflows when a sampler wanders far out.
    """
    softplus, sigmoid = _softplus_sigmoid(2.0 * (log_s - np.log(scale)))
    return log_s - softplus, 1.0 - 2.0 * sigmoid


@numba.njit(cache=True)
def _half_student_t_log_scale(log_s, nu, scale):
    """Half-Student-t(nu, 0, scale) log density of ``s = exp(log_s)`` plus the log-Jacobian.

    As ``_half_cauchy_log_scale`` (which is the case ``nu = 1``): the density term
    ``-(nu + 1) / 2 * log1p((s / scale)^2 / nu)`` is ``-(nu + 1) / 2 * softplus(z)`` with
    ``z = 2 (log_s - log scale) - log nu``. Returns ``(value, d value / d log_s)``.
    """
    softplus, sigmoid = _softplus_sigmoid(2.0 * (log_s - np.log(scale)) - np.log(nu))
    return log_s - 0.5 * (nu + 1.0) * softplus, 1.0 - (nu + 1.0) * sigmoid


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
# Linear regressions with a normal likelihood: shared residual loops
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _regression_rss(x, y, X):
    """Residual sum of squares ``sum_i (y_i - X_i . x[:K])^2`` with ``K = X.shape[1]``."""
    N, K = X.shape
    rss = 0.0
    for i in range(N):
        e = y[i]
        for k in range(K):
            e -= X[i, k] * x[k]
        rss += e * e
    return rss


@numba.njit(cache=True)
def _regression_rss_grad(x, y, X, grad):
    """``_regression_rss``; also sets ``grad[:K] = X' (y - X x[:K])``, minus half its gradient."""
    N, K = X.shape
    for k in range(K):
        grad[k] = 0.0
    rss = 0.0
    for i in range(N):
        e = y[i]
        for k in range(K):
            e -= X[i, k] * x[k]
        rss += e * e
        for k in range(K):
            grad[k] += e * X[i, k]
    return rss


# --------------------------------------------------------------------------------------------
# mesquite-logmesquite
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def mesquite_logp(x, log_weight, X):
    """Log density of posteriordb ``mesquite-logmesquite``, a linear regression on log scales.

    Stan model ``logmesquite`` (flat priors on ``beta`` and on ``sigma > 0``)::

        log_weight ~ normal(beta[1] + beta[2] * log_diam1 + beta[3] * log_diam2
                            + beta[4] * log_canopy_height + beta[5] * log_total_height
                            + beta[6] * log_density + beta[7] * group, sigma);

    ``X`` is the ``N x 7`` design matrix with columns ``[1, log_diam1, ..., group]`` (see
    ``_mesquite_args``). ``x = [beta[1..7], log(sigma)]``.
    """
    K = X.shape[1]
    log_sigma = x[K]
    rss = _regression_rss(x, log_weight, X)
    # The flat prior on sigma leaves only the log-Jacobian, + log_sigma.
    return -0.5 * rss * np.exp(-2.0 * log_sigma) - (log_weight.shape[0] - 1) * log_sigma


@numba.njit(cache=True)
def mesquite_logp_grad(x, log_weight, X):
    """``mesquite_logp`` and its gradient with respect to ``x``."""
    K = X.shape[1]
    log_sigma = x[K]
    inv_var = np.exp(-2.0 * log_sigma)
    grad = np.empty(K + 1)
    rss = _regression_rss_grad(x, log_weight, X, grad)
    for k in range(K):
        grad[k] *= inv_var
    N = log_weight.shape[0]
    grad[K] = rss * inv_var - (N - 1)
    return -0.5 * rss * inv_var - (N - 1) * log_sigma, grad


def _mesquite_args(data):
    """Stan's ``transformed data`` (logs of the measurements) as a response and design matrix."""
    columns = [np.ones(len(data["weight"]))]
    columns += [np.log(_vector(data[k])) for k in
                ("diam1", "diam2", "canopy_height", "total_height", "density")]
    columns.append(_vector(data["group"]))
    return np.log(_vector(data["weight"])), np.ascontiguousarray(np.column_stack(columns))


# --------------------------------------------------------------------------------------------
# sblrc-blr
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def sblrc_blr_logp(x, y, X):
    """Log density of posteriordb ``sblrc-blr``, a Bayesian linear regression without intercept.

    Stan model ``blr``::

        target += normal_lpdf(beta | 0, 10);  target += normal_lpdf(sigma | 0, 10);  // sigma > 0
        target += normal_lpdf(y | X * beta, sigma);

    ``x = [beta[1..D], log(sigma)]``; data ``y`` (``N``) and ``X`` (``N x D``).
    """
    D = X.shape[1]
    log_sigma = x[D]
    sigma = np.exp(log_sigma)
    lp = -0.5 * (sigma / 10.0) ** 2
    for k in range(D):
        lp -= 0.5 * (x[k] / 10.0) ** 2
    rss = _regression_rss(x, y, X)
    return lp - 0.5 * rss * np.exp(-2.0 * log_sigma) - (y.shape[0] - 1) * log_sigma


@numba.njit(cache=True)
def sblrc_blr_logp_grad(x, y, X):
    """``sblrc_blr_logp`` and its gradient with respect to ``x``."""
    D = X.shape[1]
    log_sigma = x[D]
    sigma = np.exp(log_sigma)
    inv_var = np.exp(-2.0 * log_sigma)
    grad = np.empty(D + 1)
    rss = _regression_rss_grad(x, y, X, grad)
    lp = -0.5 * (sigma / 10.0) ** 2
    for k in range(D):
        lp -= 0.5 * (x[k] / 10.0) ** 2
        grad[k] = grad[k] * inv_var - x[k] / 100.0
    N = y.shape[0]
    grad[D] = rss * inv_var - (N - 1) - (sigma / 10.0) ** 2
    return lp - 0.5 * rss * inv_var - (N - 1) * log_sigma, grad


# --------------------------------------------------------------------------------------------
# diamonds-diamonds
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def diamonds_logp(x, R, z, stats):
    """Log density of posteriordb ``diamonds-diamonds``, a brms linear regression.

    Stan model ``diamonds`` (``Xc`` = the columns 2..K of ``X``, centred)::

        b ~ normal(0, 1);  Intercept ~ student_t(3, 8, 10);  sigma ~ student_t(3, 0, 10);  // > 0
        Y ~ normal(Intercept + Xc * b, sigma);

    ``x = [b[1..K-1], Intercept, log(sigma)]``. The likelihood is evaluated from sufficient
    statistics of the data (see ``_diamonds_args``) instead of the ``N = 5000`` rows, so one
    evaluation costs ``O(K^2)`` rather than ``O(N K)``: with ``Xc = Q R`` (thin QR), centred
    response ``Yc = Y - mean(Y)``, ``z = Q' Yc`` and ``stats = [N, mean(Y), |Yc - Q z|^2]``,

        sum_i (Y_i - Intercept - Xc_i b)^2 = |z - R b|^2 + |Yc - Q z|^2 + N (mean(Y) - Intercept)^2,

    exactly, because the columns of ``Xc`` are centred. No term is a difference of large numbers.
    """
    Kc = z.shape[0]
    n_obs = stats[0]
    intercept = x[Kc]
    log_sigma = x[Kc + 1]
    lp = 0.0
    rss = stats[2] + n_obs * (stats[1] - intercept) ** 2
    for i in range(Kc):
        lp -= 0.5 * x[i] * x[i]
        e = z[i]
        for j in range(i, Kc):  # R is upper triangular
            e -= R[i, j] * x[j]
        rss += e * e
    u = (intercept - 8.0) / 10.0
    lp -= 2.0 * np.log1p(u * u / 3.0)  # student_t(3, 8, 10)
    prior_sigma, _ = _half_student_t_log_scale(log_sigma, 3.0, 10.0)
    return lp - 0.5 * rss * np.exp(-2.0 * log_sigma) - n_obs * log_sigma + prior_sigma


@numba.njit(cache=True)
def diamonds_logp_grad(x, R, z, stats):
    """``diamonds_logp`` and its gradient with respect to ``x``."""
    Kc = z.shape[0]
    n_obs = stats[0]
    intercept = x[Kc]
    log_sigma = x[Kc + 1]
    inv_var = np.exp(-2.0 * log_sigma)
    grad = np.zeros(Kc + 2)
    lp = 0.0
    d_mean = stats[1] - intercept
    rss = stats[2] + n_obs * d_mean * d_mean
    for i in range(Kc):
        lp -= 0.5 * x[i] * x[i]
        e = z[i]
        for j in range(i, Kc):
            e -= R[i, j] * x[j]
        rss += e * e
        for j in range(i, Kc):  # grad[:Kc] accumulates R' e
            grad[j] += R[i, j] * e
    for i in range(Kc):
        grad[i] = grad[i] * inv_var - x[i]
    u = (intercept - 8.0) / 10.0
    lp -= 2.0 * np.log1p(u * u / 3.0)
    grad[Kc] = n_obs * d_mean * inv_var - 0.4 * u / (3.0 + u * u)
    prior_sigma, d_prior_sigma = _half_student_t_log_scale(log_sigma, 3.0, 10.0)
    grad[Kc + 1] = rss * inv_var - n_obs + d_prior_sigma
    return lp - 0.5 * rss * inv_var - n_obs * log_sigma + prior_sigma, grad


def _diamonds_args(data):
    """Sufficient statistics ``(R, z, [N, mean(Y), |Yc - Q z|^2])`` of the diamonds data.

    ``Xc`` is Stan's ``transformed data``: columns 2..K of ``X`` minus their means.
    """
    X = np.asarray(data["X"], dtype=np.float64)
    Y = _vector(data["Y"])
    Xc = X[:, 1:] - X[:, 1:].mean(axis=0)
    Yc = Y - Y.mean()
    Q, R = np.linalg.qr(Xc)
    z = Q.T @ Yc
    resid = Yc - Q @ z
    stats = np.array([len(Y), Y.mean(), resid @ resid])
    return np.ascontiguousarray(np.triu(R)), _vector(z), stats


# --------------------------------------------------------------------------------------------
# low_dim_gauss_mix-low_dim_gauss_mix
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def low_dim_gauss_mix_logp(x, y):
    """Log density of posteriordb ``low_dim_gauss_mix-low_dim_gauss_mix``.

    Stan model ``low_dim_gauss_mix``, a two-component normal mixture::

        ordered[2] mu;  array[2] real<lower=0> sigma;  real<lower=0, upper=1> theta;
        sigma ~ normal(0, 2);  mu ~ normal(0, 2);  theta ~ beta(5, 5);
        target += log_mix(theta, normal_lpdf(y[n] | mu[1], sigma[1]),
                                 normal_lpdf(y[n] | mu[2], sigma[2]));   // for each n

    ``x = [mu[1], log(mu[2] - mu[1]), log(sigma[1]), log(sigma[2]), logit(theta)]``: Stan's
    ordered transform (log-Jacobian ``x[1]``), log for ``sigma`` and logit for ``theta``
    (log-Jacobian ``log(theta) + log(1 - theta)``).
    """
    mu1 = x[0]
    mu2 = mu1 + np.exp(x[1])
    inv_s1 = np.exp(-x[2])
    inv_s2 = np.exp(-x[3])
    sp_neg, _ = _softplus_sigmoid(-x[4])
    sp_pos, _ = _softplus_sigmoid(x[4])
    log_theta = -sp_neg  # log(theta)
    log_1m_theta = -sp_pos  # log(1 - theta)
    # Priors and log-Jacobians; normal(0, 2) on sigma is a half-normal.
    lp = (-0.125 * (mu1 * mu1 + mu2 * mu2) + x[1]
          - 0.125 * (np.exp(2.0 * x[2]) + np.exp(2.0 * x[3])) + x[2] + x[3]
          + 5.0 * (log_theta + log_1m_theta))
    c1 = log_theta - x[2]
    c2 = log_1m_theta - x[3]
    for n in range(y.shape[0]):
        z1 = (y[n] - mu1) * inv_s1
        z2 = (y[n] - mu2) * inv_s2
        a1 = c1 - 0.5 * z1 * z1
        a2 = c2 - 0.5 * z2 * z2
        if a1 > a2:
            lp += a1 + np.log1p(np.exp(a2 - a1))
        else:
            lp += a2 + np.log1p(np.exp(a1 - a2))
    return lp


@numba.njit(cache=True)
def low_dim_gauss_mix_logp_grad(x, y):
    """``low_dim_gauss_mix_logp`` and its gradient with respect to ``x``."""
    mu1 = x[0]
    gap = np.exp(x[1])
    mu2 = mu1 + gap
    inv_s1 = np.exp(-x[2])
    inv_s2 = np.exp(-x[3])
    sp_neg, _ = _softplus_sigmoid(-x[4])
    sp_pos, theta = _softplus_sigmoid(x[4])  # theta = sigmoid(x[4]), the mixing weight
    log_theta = -sp_neg
    log_1m_theta = -sp_pos
    s1_sq = np.exp(2.0 * x[2])
    s2_sq = np.exp(2.0 * x[3])
    lp = (-0.125 * (mu1 * mu1 + mu2 * mu2) + x[1] - 0.125 * (s1_sq + s2_sq) + x[2] + x[3]
          + 5.0 * (log_theta + log_1m_theta))
    c1 = log_theta - x[2]
    c2 = log_1m_theta - x[3]
    # Sums over n of the responsibility w1 (w2 = 1 - w1) times d a_k / d (mu_k, log sigma_k).
    d_mu1 = 0.0
    d_mu2 = 0.0
    d_ls1 = 0.0
    d_ls2 = 0.0
    sum_w1 = 0.0
    for n in range(y.shape[0]):
        z1 = (y[n] - mu1) * inv_s1
        z2 = (y[n] - mu2) * inv_s2
        a1 = c1 - 0.5 * z1 * z1
        a2 = c2 - 0.5 * z2 * z2
        if a1 > a2:
            e = np.exp(a2 - a1)
            lp += a1 + np.log1p(e)
            w1 = 1.0 / (1.0 + e)
        else:
            e = np.exp(a1 - a2)
            lp += a2 + np.log1p(e)
            w1 = e / (1.0 + e)
        w2 = 1.0 - w1
        sum_w1 += w1
        d_mu1 += w1 * z1 * inv_s1
        d_mu2 += w2 * z2 * inv_s2
        d_ls1 += w1 * (z1 * z1 - 1.0)
        d_ls2 += w2 * (z2 * z2 - 1.0)
    d_mu1 -= 0.25 * mu1
    d_mu2 -= 0.25 * mu2
    grad = np.empty(5)
    grad[0] = d_mu1 + d_mu2
    grad[1] = d_mu2 * gap + 1.0
    grad[2] = d_ls1 - 0.25 * s1_sq + 1.0
    grad[3] = d_ls2 - 0.25 * s2_sq + 1.0
    # d log(theta) / d logit = 1 - theta and d log(1 - theta) / d logit = -theta, so the
    # likelihood contributes sum_n (w1 (1 - theta) - w2 theta) = sum_n w1 - N theta.
    grad[4] = sum_w1 - y.shape[0] * theta + 5.0 * (1.0 - 2.0 * theta)
    return lp, grad


def _gauss_mix_constrain(x):
    """``[mu1, log(mu2 - mu1), log sigma1, log sigma2, logit theta]`` -> ``[mu, sigma, theta]``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape)
    out[..., 0] = x[..., 0]
    out[..., 1] = x[..., 0] + np.exp(x[..., 1])
    out[..., 2:4] = np.exp(x[..., 2:4])
    out[..., 4] = 1.0 / (1.0 + np.exp(-x[..., 4]))
    return out


def _gauss_mix_unconstrain(p):
    """Inverse of ``_gauss_mix_constrain``."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty(p.shape)
    out[..., 0] = p[..., 0]
    out[..., 1] = np.log(p[..., 1] - p[..., 0])
    out[..., 2:4] = np.log(p[..., 2:4])
    out[..., 4] = np.log(p[..., 4]) - np.log1p(-p[..., 4])
    return out


# --------------------------------------------------------------------------------------------
# gp_pois_regr-gp_pois_regr
# --------------------------------------------------------------------------------------------

GP_JITTER = 1e-10  # the model's diag_matrix(rep_vector(1e-10, N))


@numba.njit(cache=True)
def _gp_cholesky(inputs, rho, alpha, K0, L):
    """Fill ``K0 = alpha^2 exp(-|x_i - x_j|^2 / (2 rho^2))`` and ``L = chol(K0 + jitter I)``.

    Returns False when the matrix is not numerically positive definite (Stan rejects the draw).
    """
    N = inputs.shape[0]
    alpha_sq = alpha * alpha
    scale = -0.5 / (rho * rho)
    for i in range(N):
        for j in range(i + 1):
            d = inputs[i] - inputs[j]
            K0[i, j] = alpha_sq * np.exp(scale * d * d)
            K0[j, i] = K0[i, j]
    for j in range(N):
        s = K0[j, j] + GP_JITTER
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, N):
            s = K0[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / L[j, j]
        for i in range(j):
            L[i, j] = 0.0
    return True


@numba.njit(cache=True)
def gp_pois_regr_logp(x, inputs, k):
    """Log density of posteriordb ``gp_pois_regr-gp_pois_regr``, a latent GP Poisson regression.

    Stan model ``gp_pois_regr`` (non-centred)::

        L_cov = cholesky_decompose(gp_exp_quad_cov(x, alpha, rho) + diag(1e-10));
        f = L_cov * f_tilde;
        rho ~ gamma(25, 4);  alpha ~ normal(0, 2);  f_tilde ~ normal(0, 1);  // rho, alpha > 0
        k ~ poisson_log(f);

    ``x = [log(rho), log(alpha), f_tilde[1..N]]``; data ``inputs`` (the GP's ``x``) and counts
    ``k``, both of length ``N``. Returns ``-inf`` where the Cholesky factorisation fails.
    """
    N = inputs.shape[0]
    rho = np.exp(x[0])
    alpha = np.exp(x[1])
    K0 = np.empty((N, N))
    L = np.empty((N, N))
    if not _gp_cholesky(inputs, rho, alpha, K0, L):
        return -np.inf
    # gamma(25, 4) on rho and half-normal(0, 2) on alpha, each with its log-Jacobian.
    lp = 25.0 * x[0] - 4.0 * rho - 0.125 * alpha * alpha + x[1]
    for i in range(N):
        ft = x[2 + i]
        f = 0.0
        for j in range(i + 1):
            f += L[i, j] * x[2 + j]
        lp += k[i] * f - np.exp(f) - 0.5 * ft * ft
    return lp


@numba.njit(cache=True)
def gp_pois_regr_logp_grad(x, inputs, k):
    """``gp_pois_regr_logp`` and its gradient with respect to ``x``.

    The hyperparameters act through the Cholesky factor. With ``g = d lp / d f`` and
    ``h = L' g``, a perturbation ``dK`` of the covariance changes ``L`` by
    ``L Phi(L^-1 dK L^-T)`` (``Phi``: lower triangle, halved diagonal), so
    ``d lp = h' Phi(L^-1 dK L^-T) f_tilde = <dK, S>`` with ``S = L^-T P L^-1`` and ``P`` the
    lower triangle of ``h f_tilde'`` with halved diagonal. ``S`` is computed once by two
    triangular solves; each hyperparameter then costs one ``O(N^2)`` sum.
    """
    N = inputs.shape[0]
    rho = np.exp(x[0])
    alpha = np.exp(x[1])
    K0 = np.empty((N, N))
    L = np.empty((N, N))
    grad = np.zeros(N + 2)
    if not _gp_cholesky(inputs, rho, alpha, K0, L):
        return -np.inf, grad
    lp = 25.0 * x[0] - 4.0 * rho - 0.125 * alpha * alpha + x[1]
    g = np.empty(N)
    for i in range(N):
        ft = x[2 + i]
        f = 0.0
        for j in range(i + 1):
            f += L[i, j] * x[2 + j]
        rate = np.exp(f)
        lp += k[i] * f - rate - 0.5 * ft * ft
        g[i] = k[i] - rate
    # d lp / d f_tilde = L' g - f_tilde; h = L' g.
    h = np.empty(N)
    for j in range(N):
        s = 0.0
        for i in range(j, N):
            s += L[i, j] * g[i]
        h[j] = s
        grad[2 + j] = s - x[2 + j]
    # W = L^-T P, column by column (back substitution with the upper-triangular L').
    W = np.empty((N, N))
    for c in range(N):
        for i in range(N - 1, -1, -1):
            if i > c:
                s = h[i] * x[2 + c]
            elif i == c:
                s = 0.5 * h[i] * x[2 + c]
            else:
                s = 0.0
            for m in range(i + 1, N):
                s -= L[m, i] * W[m, c]
            W[i, c] = s / L[i, i]
    # S = W L^-1, i.e. S' = L^-T W': row r of S solves L' s = W[r, :].
    S = np.empty((N, N))
    for r in range(N):
        for i in range(N - 1, -1, -1):
            s = W[r, i]
            for m in range(i + 1, N):
                s -= L[m, i] * S[r, m]
            S[r, i] = s / L[i, i]
    # dK / d log(rho) = K0 * d^2 / rho^2 and dK / d log(alpha) = 2 K0 (the jitter is constant).
    d_log_rho = 0.0
    d_log_alpha = 0.0
    inv_rho_sq = 1.0 / (rho * rho)
    for i in range(N):
        for j in range(N):
            d = inputs[i] - inputs[j]
            d_log_rho += S[i, j] * K0[i, j] * d * d * inv_rho_sq
            d_log_alpha += S[i, j] * K0[i, j]
    grad[0] = d_log_rho + 25.0 - 4.0 * rho
    grad[1] = 2.0 * d_log_alpha - 0.25 * alpha * alpha + 1.0
    return lp, grad


def _gp_cholesky_batch(inputs, rho, alpha):
    """Cholesky factors ``(..., N, N)`` of the model's covariance for arrays ``rho``, ``alpha``."""
    sq_dist = (inputs[:, None] - inputs[None, :]) ** 2
    rho = np.asarray(rho)[..., None, None]
    alpha = np.asarray(alpha)[..., None, None]
    cov = alpha ** 2 * np.exp(-0.5 * sq_dist / rho ** 2) + GP_JITTER * np.eye(len(inputs))
    return np.linalg.cholesky(cov)


def _gp_constrain(x, inputs):
    """``[log rho, log alpha, f_tilde]`` -> ``[rho, alpha, f]`` with ``f = L f_tilde``."""
    x = np.asarray(x, dtype=np.float64)
    rho, alpha = np.exp(x[..., 0]), np.exp(x[..., 1])
    L = _gp_cholesky_batch(inputs, rho, alpha)
    f = np.matmul(L, x[..., 2:, None])[..., 0]
    return np.concatenate([rho[..., None], alpha[..., None], f], axis=-1)


def _gp_unconstrain(p, inputs):
    """Inverse of ``_gp_constrain``: ``f_tilde = L^-1 f``."""
    p = np.asarray(p, dtype=np.float64)
    rho, alpha = p[..., 0], p[..., 1]
    L = _gp_cholesky_batch(inputs, rho, alpha)
    f_tilde = np.linalg.solve(L, p[..., 2:, None])[..., 0]
    return np.concatenate([np.log(rho)[..., None], np.log(alpha)[..., None], f_tilde], axis=-1)


def _gp_maps(data):
    inputs = _vector(data["x"])
    return (functools.partial(_gp_constrain, inputs=inputs),
            functools.partial(_gp_unconstrain, inputs=inputs))


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
    constrain: Callable | None  # (..., dim) -> (..., len(ref_names)); None if make_maps is set
    unconstrain: Callable | None
    doc: str
    # For maps that need the data: posteriordb data dict -> (constrain, unconstrain).
    make_maps: Callable[[dict], tuple] | None = None


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
    "diamonds": _Model(
        posterior="diamonds-diamonds",
        logp=diamonds_logp,
        logp_grad=diamonds_logp_grad,
        make_args=_diamonds_args,
        make_names=lambda d: _indexed("b", d["K"] - 1) + ["Intercept", "log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Linear regression of log price on 24 centred predictors built from ggplot2's "
            "diamonds data, N = 5000 (posteriordb "
            "'diamonds-diamonds', Stan model 'diamonds', generated by brms): Y ~ N(Intercept + "
            "Xc b, sigma), b ~ N(0, 1), Intercept ~ t_3(8, 10), sigma ~ half-t_3(0, 10). The "
            "nearly collinear predictors make the posterior of b badly conditioned (the "
            "reference run needed max_treedepth 20). Evaluated through QR sufficient statistics. "
            "Sampled on (b, Intercept, log sigma); the reference draws omit the generated "
            f"quantity b_Intercept. Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "gp_pois_regr": _Model(
        posterior="gp_pois_regr-gp_pois_regr",
        logp=gp_pois_regr_logp,
        logp_grad=gp_pois_regr_logp_grad,
        make_args=lambda d: (_vector(d["x"]), _vector(d["k"])),
        make_names=lambda d: ["log_rho", "log_alpha"] + _indexed("f_tilde", d["N"]),
        constrain=None,
        unconstrain=None,
        make_maps=_gp_maps,
        doc="Poisson regression with a latent Gaussian process, N = 11 counts on a grid "
            "(posteriordb 'gp_pois_regr-gp_pois_regr', Stan model 'gp_pois_regr'): "
            "f = chol(K_SE(alpha, rho) + 1e-10 I) f_tilde, f_tilde ~ N(0, I), "
            "k ~ Poisson(exp(f)), rho ~ Gamma(25, 4), alpha ~ half-N(0, 2). Sampled on "
            "(log rho, log alpha, f_tilde); the reference draws are of (rho, alpha, f), f being "
            f"a transformed parameter that constrain computes. Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "low_dim_gauss_mix": _Model(
        posterior="low_dim_gauss_mix-low_dim_gauss_mix",
        logp=low_dim_gauss_mix_logp,
        logp_grad=low_dim_gauss_mix_logp_grad,
        make_args=lambda d: (_vector(d["y"]),),
        make_names=lambda d: ["mu[1]", "log_mu_diff", "log_sigma[1]", "log_sigma[2]",
                              "logit_theta"],
        constrain=_gauss_mix_constrain,
        unconstrain=_gauss_mix_unconstrain,
        doc="Two-component normal mixture on N = 1000 points (posteriordb "
            "'low_dim_gauss_mix-low_dim_gauss_mix', Stan model 'low_dim_gauss_mix'): "
            "y_n ~ theta N(mu_1, sigma_1) + (1 - theta) N(mu_2, sigma_2), mu ordered, "
            "mu ~ N(0, 2), sigma ~ half-N(0, 2), theta ~ Beta(5, 5). The ordering removes the "
            "label switching; the components are well separated, so the posterior is unimodal. "
            "Sampled on (mu_1, log(mu_2 - mu_1), log sigma, logit theta) (Stan's transforms). "
            f"Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "mesquite": _Model(
        posterior="mesquite-logmesquite",
        logp=mesquite_logp,
        logp_grad=mesquite_logp_grad,
        make_args=_mesquite_args,
        make_names=lambda d: _indexed("beta", 7) + ["log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Linear regression of log mesquite-bush weight on log dimensions, log density "
            "and group, N = 46 (posteriordb 'mesquite-logmesquite', Stan model 'logmesquite', "
            "from Gelman & Hill ch. 4): flat priors on beta (7) and sigma. Few points for 8 "
            "parameters give wide, correlated posteriors. Sampled on (beta, log sigma). "
            f"Source: {POSTERIORDB_URL} (BSD-3).",
    ),
    "sblrc_blr": _Model(
        posterior="sblrc-blr",
        logp=sblrc_blr_logp,
        logp_grad=sblrc_blr_logp_grad,
        make_args=lambda d: (_vector(d["y"]), np.ascontiguousarray(d["X"], dtype=np.float64)),
        make_names=lambda d: _indexed("beta", d["D"]) + ["log_sigma"],
        constrain=_exp_last,
        unconstrain=_log_last,
        doc="Bayesian linear regression without intercept on simulated data, N = 100, D = 5 "
            "(posteriordb 'sblrc-blr', Stan model 'blr'): y ~ N(X beta, sigma), beta ~ N(0, 10), "
            "sigma ~ half-N(0, 10). The predictors have scale ~100, so the posterior of beta is "
            "very narrow (sd ~ 1e-3) next to that of log sigma (sd ~ 0.07): a scale test for "
            f"step-size and mass-matrix adaptation. Source: {POSTERIORDB_URL} (BSD-3).",
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


def reference_nuts_settings(name: str) -> dict:
    """mcsample NUTS settings matching the Stan run that made ``name``'s reference draws
    (its adapt_delta and max_treedepth): at Stan's defaults eight schools and gp_pois_regr have
    occasional divergences, in Stan as here."""
    info = json.loads((DATA_DIR / _MODELS[name].posterior / "reference_draws.info.json").read_text())
    control = info["inference"]["method_arguments"].get("control", {})
    out = {"target_accept": control.get("adapt_delta", 0.8)}
    if "max_treedepth" in control:
        out["max_depth"] = control["max_treedepth"]
    return out


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
    if model.make_maps is not None:
        constrain, unconstrain = model.make_maps(data)
    else:
        constrain, unconstrain = model.constrain, model.unconstrain
    return {
        "logp": model.logp,
        "logp_grad": model.logp_grad,
        "args": model.make_args(data),
        "dim": len(names),
        "names": names,
        "ref_names": list(ref_names),
        "constrain": constrain,
        "unconstrain": unconstrain,
        "reference_draws": draws.copy(),
        "doc": model.doc,
        "posterior": model.posterior,
    }
