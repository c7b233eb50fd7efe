"""Gaussian targets with exact samplers: the oracles every sampler is checked against first."""

from __future__ import annotations

import numpy as np

from mcsample.testing.models import (diag_gauss_logp, diag_gauss_logp_grad, mvn_logp,  # noqa: F401
                                    mvn_logp_grad)

from ._reference import Reference


def diagonal(mean, scale, name, n_exact=20000, seed=0):
    """N(mean, diag(scale^2)) and its exact draws."""
    from mcsample import Target
    mean = np.ascontiguousarray(mean, dtype=float)
    scale = np.ascontiguousarray(scale, dtype=float)
    target = Target(diag_gauss_logp, mean.size, logp_grad=diag_gauss_logp_grad, args=(mean, scale),
                    name=name)
    draws = mean + scale * np.random.default_rng(seed).standard_normal((n_exact, mean.size))
    ref = Reference(names=target.names, mean=mean.copy(), sd=scale.copy(), draws=draws,
                    source="exact: independent normal draws")
    return target, ref


def standard_normal(dim: int = 10):
    """N(0, I_dim)."""
    return diagonal(np.zeros(dim), np.ones(dim), f"std_normal{dim}")


def gauss100():
    """Ill-conditioned diagonal Gaussian in d=100, scales log-spaced from 0.1 to 10 (condition
    number 10^4 in the covariance): the classic test of metric adaptation."""
    return diagonal(np.zeros(100), np.geomspace(0.1, 10.0, 100), "gauss100")


def correlated(dim: int = 10, rho: float = 0.9):
    """N(0, Sigma) with unit variances and correlation rho between every pair (equicorrelated):
    a diagonal metric cannot remove its condition number (1 + (d-1) rho) / (1 - rho)."""
    from mcsample import Target
    cov = np.full((dim, dim), rho) + (1.0 - rho) * np.eye(dim)
    mean = np.zeros(dim)
    precision = np.ascontiguousarray(np.linalg.inv(cov))
    target = Target(mvn_logp, dim, logp_grad=mvn_logp_grad, args=(mean, precision),
                    name=f"correlated{dim}")
    draws = np.random.default_rng(0).multivariate_normal(mean, cov, size=20000)
    ref = Reference(names=target.names, mean=mean, sd=np.ones(dim), draws=draws,
                    source="exact: multivariate normal draws", extra={"cov": cov})
    return target, ref
