"""Synthetic benchmark targets with exact samplers: heavy tails, funnels, curved and multimodal shapes.

Every builder returns ``(mcsample.Target, targets.Reference)``. The reference carries ``n_exact``
independent exact draws (fixed seed), the mean and sd in closed form or by 1-D quadrature (``nan``
where the moment does not exist), and in ``extra``:

- ``log_Z``: log of the integral of ``exp(logp)`` *as implemented* (for log-normalizer metrics);
- for mixtures and multi-well targets ``mode_centres`` (K, d) and ``mode_weights`` (K,). The mode
  weights are the probabilities of the *nearest-centre cells* (what ``mcsample.metrics.mode_weights``
  measures), not the component weights: the two agree only for well-separated components.
  ``component_weights`` holds the latter.

Log densities are numba functions ``logp(x, *args)`` / ``logp_grad(x, *args)`` with the parameters in
``args``. Few argument signatures are used, so that sampler kernels (compiled once per signature)
are shared: ``(params,)`` with a float64 vector for the funnel, banana, rings, axial modes, hyperplane
disk and the separable quartic wells; ``(log_weights, means, scales)`` for Gaussian mixtures and
``(loc, scale, nu)`` for the Student-t, both from :mod:`mcsample.testing.models`; and
``(log_weights, locs, scales, nu)`` for the mixture of Student-t.

Stored constants (``targets/data/synthetic/constants.json``, written by ``python -m targets.synthetic``,
see :func:`_make_constants`): the GMM-40 means and 10-MoS locations are drawn *once* on the unit box,
``np.random.default_rng([CONSTANTS_SEED, K, d]).uniform(-1, 1, size=(K, d))`` with
``CONSTANTS_SEED = 2024``, and scaled by the builder's ``half_width``; the published targets drew
theirs with JAX's PRNG, which numpy cannot reproduce. The file also holds the nearest-centre
probabilities of the overlapping mixtures at the default ``half_width`` (by quadrature in d = 2, by
Monte Carlo from the exact sampler with a stated standard error otherwise).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numba
import numpy as np
from scipy import integrate, special, stats

from mcsample.testing.models import (mixture_logp, mixture_logp_grad, student_t_logp,
                                    student_t_logp_grad)

from ._reference import Reference

__all__ = ["CATALOGUE", "student_t", "cauchy", "student_t_mixture", "funnel", "banana", "rings",
           "axial_modes", "hyperplane_disk", "mog8", "gmm40", "two_modes", "double_well", "many_well"]

DATA_DIR = Path(__file__).parent / "data" / "synthetic"
CONSTANTS_PATH = DATA_DIR / "constants.json"
CONSTANTS_SEED = 2024

_jit = numba.njit(cache=True)


# ---------------------------------------------------------------------------------------------
# Log densities (numba). Signature (x, params) unless stated.
# ---------------------------------------------------------------------------------------------

@_jit
def funnel_logp(x, params):
    """Neal's funnel: x[0] ~ N(0, params[0]^2), x[i] | x[0] ~ N(0, exp(x[0]))."""
    sd, v = params[0], x[0]
    s = 0.0
    for i in range(1, x.size):
        s += x[i] * x[i]
    quad = 0.5 * s * np.exp(-v) if s > 0.0 else 0.0
    return -0.5 * (v / sd) ** 2 - 0.5 * (x.size - 1) * v - quad


@_jit
def funnel_logp_grad(x, params):
    sd, v = params[0], x[0]
    e = np.exp(-v)
    g = np.empty(x.size)
    s = 0.0
    for i in range(1, x.size):
        s += x[i] * x[i]
        g[i] = -x[i] * e if x[i] != 0.0 else 0.0
    quad = 0.5 * s * e if s > 0.0 else 0.0
    g[0] = -v / (sd * sd) - 0.5 * (x.size - 1) + quad
    return -0.5 * (v / sd) ** 2 - 0.5 * (x.size - 1) * v - quad, g


@_jit
def banana_logp(x, params):
    """inference-gym Banana: x[0] ~ N(0, s^2), x[1] ~ N(c (x[0]^2 - s^2), 1), x[2:] ~ N(0, 1);
    params = (c, s)."""
    c, s = params[0], params[1]
    r = x[1] - c * (x[0] * x[0] - s * s)
    q = (x[0] / s) ** 2 + r * r
    for i in range(2, x.size):
        q += x[i] * x[i]
    return -0.5 * q


@_jit
def banana_logp_grad(x, params):
    c, s = params[0], params[1]
    r = x[1] - c * (x[0] * x[0] - s * s)
    q = (x[0] / s) ** 2 + r * r
    g = np.empty(x.size)
    g[0] = -x[0] / (s * s) + 2.0 * c * x[0] * r
    g[1] = -r
    for i in range(2, x.size):
        q += x[i] * x[i]
        g[i] = -x[i]
    return -0.5 * q, g


@_jit
def _rings_radial(s, params):
    """log sum_k exp(-(s - r_k)^2 / (2 sigma^2)) and its derivative in s; params = (sigma, r_1..r_K)."""
    sigma = params[0]
    k = params.size - 1
    m = -np.inf
    for j in range(k):
        a = -0.5 * ((s - params[1 + j]) / sigma) ** 2
        if a > m:
            m = a
    tot = 0.0
    dtot = 0.0
    for j in range(k):
        w = np.exp(-0.5 * ((s - params[1 + j]) / sigma) ** 2 - m)
        tot += w
        dtot -= w * (s - params[1 + j]) / (sigma * sigma)
    return m + np.log(tot), dtot / tot


@_jit
def rings_logp(x, params):
    """Rings (SLIPS): radius from the mixture of N(r_k, sigma^2) restricted to r > 0, uniform angle;
    Cartesian density prop. to sum_k exp(-(|x| - r_k)^2 / (2 sigma^2)) / |x|."""
    s = np.sqrt(x[0] * x[0] + x[1] * x[1])
    lr, _ = _rings_radial(s, params)
    return lr - np.log(s)


@_jit
def rings_logp_grad(x, params):
    s = np.sqrt(x[0] * x[0] + x[1] * x[1])
    lr, dlr = _rings_radial(s, params)
    ds = dlr - 1.0 / s
    g = np.empty(2)
    g[0] = ds * x[0] / s
    g[1] = ds * x[1] / s
    return lr - np.log(s), g


@_jit
def axial_modes_logp(x, params):
    """Axial modes (GPSS paper): log(||x||_inf^p exp(-||x||_1)), params = (p,)."""
    mx = 0.0
    l1 = 0.0
    for i in range(x.size):
        a = abs(x[i])
        l1 += a
        if a > mx:
            mx = a
    return params[0] * np.log(mx) - l1


@_jit
def axial_modes_logp_grad(x, params):
    mx = 0.0
    l1 = 0.0
    j = 0
    g = np.empty(x.size)
    for i in range(x.size):
        a = abs(x[i])
        l1 += a
        if a > mx:
            mx = a
            j = i
        g[i] = -np.sign(x[i])
    g[j] += params[0] / x[j]
    return params[0] * np.log(mx) - l1, g


@_jit
def hyperplane_logp(x, params):
    """Hyperplane disk (GPSS paper): -a (sum x)^2 - b ||x||^2, params = (a, b)."""
    s = 0.0
    q = 0.0
    for i in range(x.size):
        s += x[i]
        q += x[i] * x[i]
    return -params[0] * s * s - params[1] * q


@_jit
def hyperplane_logp_grad(x, params):
    s = 0.0
    q = 0.0
    for i in range(x.size):
        s += x[i]
        q += x[i] * x[i]
    g = np.empty(x.size)
    for i in range(x.size):
        g[i] = -2.0 * params[0] * s - 2.0 * params[1] * x[i]
    return -params[0] * s * s - params[1] * q, g


@_jit
def quartic_logp(x, params):
    """Separable quartic wells: -sum_i (c4_i x_i^4 + c2_i x_i^2 + c1_i x_i), params = (c4, c2, c1)
    concatenated (length 3 d)."""
    d = x.size
    s = 0.0
    for i in range(d):
        xi = x[i]
        x2 = xi * xi
        s += (params[i] * x2 + params[d + i]) * x2 + params[2 * d + i] * xi
    return -s


@_jit
def quartic_logp_grad(x, params):
    d = x.size
    s = 0.0
    g = np.empty(d)
    for i in range(d):
        xi = x[i]
        x2 = xi * xi
        s += (params[i] * x2 + params[d + i]) * x2 + params[2 * d + i] * xi
        g[i] = -(4.0 * params[i] * x2 * xi + 2.0 * params[d + i] * xi + params[2 * d + i])
    return -s, g


@_jit
def _t_components(x, log_weights, locs, scales, nu, out):
    """Log of w_k prod_i t_nu((x_i - locs[k, i]) / scales[k, i]) / scales[k, i], without the t
    normalizing constant; returns the maximum."""
    half = 0.5 * (nu + 1.0)
    for k in range(locs.shape[0]):
        s = log_weights[k]
        for i in range(x.size):
            z = (x[i] - locs[k, i]) / scales[k, i]
            s -= half * np.log1p(z * z / nu) + np.log(scales[k, i])
        out[k] = s
    return out.max()


@_jit
def student_t_mixture_logp(x, log_weights, locs, scales, nu):
    """Mixture of products of univariate Student-t_nu densities (10-MoS)."""
    comp = np.empty(locs.shape[0])
    m = _t_components(x, log_weights, locs, scales, nu, comp)
    return m + np.log(np.sum(np.exp(comp - m)))


@_jit
def student_t_mixture_logp_grad(x, log_weights, locs, scales, nu):
    comp = np.empty(locs.shape[0])
    m = _t_components(x, log_weights, locs, scales, nu, comp)
    resp = np.exp(comp - m)
    total = resp.sum()
    resp /= total
    g = np.zeros(x.size)
    for k in range(locs.shape[0]):
        for i in range(x.size):
            z = (x[i] - locs[k, i]) / scales[k, i]
            g[i] -= resp[k] * (nu + 1.0) * z / (scales[k, i] * (nu + z * z))
    return m + np.log(total), g


@_jit
def _batch_logp_grad(fn, xs, args):
    lp = np.empty(xs.shape[0])
    g = np.empty_like(xs)
    for n in range(xs.shape[0]):
        a, b = fn(np.ascontiguousarray(xs[n]), *args)
        lp[n] = a
        g[n] = b
    return lp, g


def logp_grad_batch(target, xs):
    """(log p, grad log p) of a compiled ``Target`` at every row of ``xs`` (n, dim), in one compiled
    loop (calls from Python cost tens of microseconds each)."""
    if target.logp_grad_fn is None:
        raise ValueError(f"Target {target.name!r} has no logp_grad")
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    if xs.ndim != 2 or xs.shape[1] != target.dim:
        raise ValueError(f"xs must have shape (n, {target.dim}), got {xs.shape}")
    return _batch_logp_grad(target.logp_grad_fn, xs, target.kernel_args)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _rng(seed):
    return np.random.default_rng(seed)


def _vec(*values):
    return np.ascontiguousarray(np.concatenate([np.atleast_1d(np.asarray(v, dtype=float)) for v in values]))


def _make(logp, logp_grad, dim, args, name, draws, mean, sd, source, extra, test_point=None):
    from mcsample import Target
    target = Target(logp, dim, logp_grad=logp_grad, args=args, name=name, test_point=test_point)
    ref = Reference(names=target.names, mean=np.asarray(mean, dtype=float).copy(),
                    sd=np.asarray(sd, dtype=float).copy(), draws=np.ascontiguousarray(draws),
                    source=source, extra=extra)
    return target, ref


def _student_t_log_norm(nu, d):
    """log of the integral of (1 + |z|^2 / nu)^(-(nu + d) / 2) over R^d."""
    return special.gammaln(nu / 2) + 0.5 * d * math.log(nu * math.pi) - special.gammaln((nu + d) / 2)


def _load_constants() -> dict:
    if not CONSTANTS_PATH.exists():
        return {}
    with open(CONSTANTS_PATH) as fh:
        return json.load(fh)


def _mixture_moments(weights, means, variances):
    mean = weights @ means
    second = weights @ (variances + means ** 2)
    return mean, np.sqrt(second - mean ** 2)


def _separation_bound(means, scales):
    """Upper bound on the probability that a draw from an isotropic-Gaussian mixture is nearer to
    another component's mean than to its own: max_k sum_{j != k} Phi(-|m_j - m_k| / (2 s_k))."""
    diff = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)
    np.fill_diagonal(diff, np.inf)
    return float(np.max(stats.norm.sf(diff / (2.0 * scales[:, None])).sum(axis=1)))


def _variant(key, builder, doc, **fixed):
    """A catalogue entry: ``builder`` with ``fixed`` keyword arguments; the target is named ``key``
    unless other keyword arguments change its definition."""
    def build(**kwargs):
        changes = {k for k in kwargs if k not in ("n_exact", "seed", "name")}
        name = kwargs.pop("name", None) or (None if changes else key)
        return builder(**{**fixed, **kwargs, "name": name})
    build.__doc__ = doc
    build.__name__ = key
    return build


# ---------------------------------------------------------------------------------------------
# Heavy tails
# ---------------------------------------------------------------------------------------------

def student_t(dim: int = 10, nu: float = 3.0, name=None, n_exact=20000, seed=0):
    """Standard multivariate Student-t, log p = -(nu + d)/2 log(1 + ||x||^2 / nu).

    Exact draws z / sqrt(chi2_nu / nu), z ~ N(0, I). Defaults d = 10, nu = 3: finite variance
    (sd sqrt(nu / (nu - 2))) but infinite kurtosis. ||x||^2 / d ~ F(d, nu)."""
    loc, scale = np.zeros(dim), np.ones(dim)
    nu = float(nu)
    rng = _rng(seed)
    z = rng.standard_normal((n_exact, dim))
    draws = z / np.sqrt(rng.chisquare(nu, size=(n_exact, 1)) / nu)
    mean = np.zeros(dim) if nu > 1 else np.full(dim, np.nan)
    sd = np.full(dim, math.sqrt(nu / (nu - 2)) if nu > 2 else np.nan)
    extra = {"log_Z": float(_student_t_log_norm(nu, dim)), "nu": nu,
             "note": "||x||^2 / d ~ F(d, nu); mean/sd are nan where they do not exist"}
    return _make(student_t_logp, student_t_logp_grad, dim, (loc, scale, nu),
                 name or f"student_t{dim}_nu{nu:g}", draws, mean, sd,
                 "exact: z / sqrt(chi2_nu / nu)", extra)


def cauchy(dim: int = 100, name=None, n_exact=20000, seed=0):
    """Standard multivariate Cauchy, p(x) prop. to (1 + ||x||^2)^(-(d+1)/2): the heavy-tailed example
    of the GPSS paper (Schär, Habeck & Rudolf, ICML 2023), d = 100.

    The Student-t with nu = 1; no moments (mean and sd are nan). Oracles: x_1 is standard Cauchy;
    the median of ||x|| is 14.7721 for d = 100 (||x||^2 / d ~ F(d, 1))."""
    target, ref = student_t(dim=dim, nu=1.0, name=name or f"cauchy{dim}", n_exact=n_exact, seed=seed)
    median_norm = math.sqrt(dim * stats.f.ppf(0.5, dim, 1))
    ref.extra.update(median_norm=median_norm)
    return target, ref


def student_t_mixture(dim: int = 2, n_components: int = 10, nu: float = 2.0, half_width: float = 5.0,
                      name=None, n_exact=20000, seed=0):
    """Mixture of Student-t "10-MoS" (multiscale paper, taken from Blessing et al. 2024, "Beyond
    ELBOs"): 10 equal-weight components, each a product of univariate t_2 densities with unit scale,
    locations uniform in the hypercube [-half_width, half_width]^d (side 10 by default). The t_2
    tails make the components overlap: the nearest-centre probabilities (``mode_weights``) differ
    from 1/10 (stored for the default parameters).

    Locations: ``half_width * U`` with U stored in constants.json (numpy seed [2024, K, d]); the
    Blessing code draws them in [-10, 10]^d with JAX. Variances are infinite (sd is nan)."""
    nu = float(nu)
    unit = _unit_box(n_components, dim, "mos")
    locs = np.ascontiguousarray(half_width * unit)
    scales = np.ones_like(locs)
    weights = np.full(n_components, 1.0 / n_components)
    rng = _rng(seed)
    which = rng.choice(n_components, size=n_exact, p=weights)
    draws = locs[which] + scales[which] * rng.standard_t(nu, size=(n_exact, dim))
    log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
    extra = {"log_Z": float(-dim * log_c), "nu": nu, "mode_centres": locs.copy(),
             "component_weights": weights.copy(), "half_width": half_width}
    if nu == 2.0:  # the stored nearest-centre probabilities are for t_2 components
        extra.update(_stored_mode_weights(f"mos{n_components}_d{dim}", half_width))
    mean, sd = _mixture_moments(weights, locs, scales ** 2 * (nu / (nu - 2) if nu > 2 else np.inf))
    if nu <= 1:
        mean = np.full(dim, np.nan)
    if nu <= 2:
        sd = np.full(dim, np.nan)
    return _make(student_t_mixture_logp, student_t_mixture_logp_grad, dim,
                 (np.log(weights), locs, scales, nu), name or f"mos{n_components}_d{dim}", draws,
                 mean, sd, "exact: component, then locs + t_nu draws per coordinate", extra)


# ---------------------------------------------------------------------------------------------
# Funnel, banana, rings, axial modes, hyperplane disk
# ---------------------------------------------------------------------------------------------

def funnel(dim: int = 10, sd: float = 3.0, name=None, n_exact=20000, seed=0):
    """Neal's funnel (Neal 2003; inference-gym NealsFunnel; GPSS paper; multiscale paper):
    x_1 ~ N(0, sd^2), x_i | x_1 ~ N(0, exp(x_1)) for i = 2..d, d = 10.

    sd = 3 is the usual definition (x_1 quantiles -+9.2707 at 0.1% / 99.9%). The SLIPS code, which
    the multiscale paper's benchmark follows, uses *variance* 3 (sd sqrt(3)): ``funnel10_slips``."""
    rng = _rng(seed)
    v = sd * rng.standard_normal(n_exact)
    draws = np.empty((n_exact, dim))
    draws[:, 0] = v
    draws[:, 1:] = np.exp(0.5 * v)[:, None] * rng.standard_normal((n_exact, dim - 1))
    mean = np.zeros(dim)
    sdv = np.full(dim, math.exp(sd * sd / 4))  # Var x_i = E exp(x_1) = exp(sd^2 / 2)
    sdv[0] = sd
    log_z = math.log(math.sqrt(2 * math.pi) * sd) + 0.5 * (dim - 1) * math.log(2 * math.pi)
    extra = {"log_Z": log_z, "x0_sd": sd}
    return _make(funnel_logp, funnel_logp_grad, dim, (_vec(sd),), name or f"funnel{dim}", draws,
                 mean, sdv, "exact: x_1 ~ N(0, sd^2), then x_i ~ N(0, exp(x_1))", extra)


def banana(dim: int = 2, curvature: float = 0.03, scale: float = 10.0, name=None, n_exact=20000,
           seed=0):
    """inference-gym Banana (Haario et al. 1999): x_1 ~ N(0, 10^2), x_2 ~ N(0.03 (x_1^2 - 100), 1);
    coordinates beyond 2 are standard normal. Mean 0, sd (10, sqrt(1 + 2 c^2 s^4)) = (10, sqrt(19))."""
    rng = _rng(seed)
    z = rng.standard_normal((n_exact, dim))
    draws = z.copy()
    draws[:, 0] = scale * z[:, 0]
    draws[:, 1] = z[:, 1] + curvature * (draws[:, 0] ** 2 - scale ** 2)
    sd = np.ones(dim)
    sd[0] = scale
    sd[1] = math.sqrt(1 + 2 * curvature ** 2 * scale ** 4)
    extra = {"log_Z": math.log(2 * math.pi * scale) + 0.5 * (dim - 2) * math.log(2 * math.pi),
             "curvature": curvature}
    return _make(banana_logp, banana_logp_grad, dim, (_vec(curvature, scale),), name or "banana",
                 draws, np.zeros(dim), sd, "exact: transformed normal draws", extra)


def rings(radii=(1.0, 2.0, 3.0, 4.0), sigma: float = 0.15, name=None, n_exact=20000, seed=0):
    """Rings (SLIPS, Grenioux et al. 2024; multiscale paper), d = 2: the radius is drawn from the
    equal-weight mixture of N(i + 1, 0.15^2), i = 0..3, and the angle uniformly.

    Definition used here: the radius density is that mixture restricted to r > 0, i.e. the Cartesian
    density is prop. to sum_k exp(-(|x| - r_k)^2 / (2 sigma^2)) / |x|, so that the exact sampler
    (component k with probability prop. to Phi(r_k / sigma), then a truncated normal radius) and the
    density agree exactly. The SLIPS code lets r < 0 (a reflection); the two differ by < 1e-11 in
    probability. The density has an integrable 1/|x| spike at 0 of height ~exp(-22)."""
    radii = np.asarray(radii, dtype=float)
    k = radii.size
    comp_w = stats.norm.cdf(radii / sigma)
    comp_w /= comp_w.sum()
    rng = _rng(seed)
    which = rng.choice(k, size=n_exact, p=comp_w)
    r = radii[which] + sigma * rng.standard_normal(n_exact)
    while np.any(r <= 0):
        bad = r <= 0
        r[bad] = radii[which[bad]] + sigma * rng.standard_normal(bad.sum())
    theta = rng.uniform(0, 2 * np.pi, n_exact)
    draws = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    # E r^2 for N(m, s^2) truncated to r > 0: m^2 + s^2 + m s phi(m/s) / Phi(m/s)
    a = radii / sigma
    er2 = radii ** 2 + sigma ** 2 + radii * sigma * stats.norm.pdf(a) / stats.norm.cdf(a)
    sd = np.full(2, math.sqrt(0.5 * comp_w @ er2))
    log_z = math.log(2 * math.pi * math.sqrt(2 * math.pi) * sigma * stats.norm.cdf(a).sum())
    extra = {"log_Z": log_z, "radii": radii.copy(), "sigma": sigma, "radius_weights": comp_w}
    return _make(rings_logp, rings_logp_grad, 2, (_vec(sigma, radii),), name or "rings", draws,
                 np.zeros(2), sd, "exact: truncated-normal-mixture radius, uniform angle", extra,
                 test_point=np.array([radii[0], 0.3]))


def axial_modes(dim: int = 10, power: float = 4.0, name=None, n_exact=20000, seed=0):
    """Axial modes (GPSS paper): p(x) prop. to ||x||_inf^4 exp(-||x||_1), d = 10 (the paper ran
    d = 10..100). 2 d modes at +-e_j * power.

    Exact sampler. With a_j = |x_j| and independent uniform signs, the density of a on R_+^d is
    prop. to max_j(a_j)^p exp(-sum_j a_j). By symmetry the arg-max J is uniform on {1..d}. Given
    J = 1 the density is a_1^p e^{-a_1} prod_{j>1} e^{-a_j} 1{a_j < a_1}: the proposal
    Gamma(p + 1, 1) x Exp(1)^(d - 1) times an indicator. Rejection sampling with this proposal
    accepts with probability equal to the indicator (the density ratio, bounded by 1): draw
    T ~ Gamma(p + 1), E_2..E_d ~ Exp(1), keep if max E < T. Then put T at a uniform position,
    the E's elsewhere, and attach random signs. Acceptance E(1 - e^{-T})^{d-1} (0.94 for d = 10,
    0.55 for d = 100).

    Moments: mean 0; E x_j^2 = E||x||^2 / d with E||x||^2 = E[T^2 + (d - 1) h(T)] under the density
    prop. to t^p e^{-t} (1 - e^{-t})^(d-1) of T, h(t) = E[E^2 | E < t] (1-D quadrature)."""
    p = float(power)
    rng = _rng(seed)
    draws = np.empty((0, dim))
    while draws.shape[0] < n_exact:
        m = int(1.2 * (n_exact - draws.shape[0])) + 100
        t = rng.gamma(p + 1.0, size=m)
        e = rng.exponential(size=(m, dim - 1))
        ok = e.max(axis=1) < t if dim > 1 else np.ones(m, bool)
        t, e = t[ok], e[ok]
        a = np.concatenate([t[:, None], e], axis=1)
        rows, j = np.arange(t.size), rng.integers(dim, size=t.size)
        a[rows, 0], a[rows, j] = a[rows, j], t  # T to a uniform position (the E's are iid)
        a *= rng.choice([-1.0, 1.0], size=a.shape)
        draws = np.concatenate([draws, a])
    draws = draws[:n_exact]

    def g(t):
        return math.exp(p * math.log(t) - t + (dim - 1) * math.log(-math.expm1(-t))) if t > 0 else 0.0

    def h(t):  # E[E^2 | E < t], E ~ Exp(1)
        return (2.0 - math.exp(-t) * (t * t + 2 * t + 2)) / -math.expm1(-t) if t > 1e-3 else t * t / 3

    z0 = integrate.quad(g, 0, np.inf, limit=200)[0]
    en2 = integrate.quad(lambda t: g(t) * (t * t + (dim - 1) * h(t)), 0, np.inf, limit=200)[0] / z0
    log_z = dim * math.log(2) + math.log(dim) + math.log(z0)
    extra = {"log_Z": log_z, "power": p,
             "mode_centres": np.concatenate([np.eye(dim), -np.eye(dim)]) * p,
             # the nearest centre is +-p e_J for the largest |x_J| and its sign: 1/(2d) each by symmetry
             "mode_weights": np.full(2 * dim, 1.0 / (2 * dim)), "mode_weights_error": 0.0,
             "note": "argmax_j |x_j| uniform on {1..d}, its sign +-1 with probability 1/2"}
    return _make(axial_modes_logp, axial_modes_logp_grad, dim, (_vec(p),), name or f"axial_modes{dim}",
                 draws, np.zeros(dim), np.full(dim, math.sqrt(en2 / dim)),
                 "exact: rejection from Gamma(p+1) x Exp(1)^(d-1), random axis and signs", extra,
                 test_point=np.r_[5.0, np.ones(dim - 1)])


def hyperplane_disk(dim: int = 200, name=None, n_exact=20000, seed=0):
    """Hyperplane disk (GPSS paper): p(x) prop. to exp(-(sum_i x_i)^2 - ||x||^2), d = 200, the
    Gaussian N(0, 1/2 (I - 1 1^T / (d + 1))): most mass near the hyperplane sum x = 0.
    E||x||^2 = d^2 / (2 (d + 1)) = 99.5025 for d = 200.

    Exact draws x = (I - g 1 1^T / d) z / sqrt(2), z ~ N(0, I), g = 1 - 1 / sqrt(d + 1)."""
    a, b = 1.0, 1.0
    rng = _rng(seed)
    z = rng.standard_normal((n_exact, dim)) / math.sqrt(2 * b)
    gam = 1.0 - math.sqrt(b / (b + a * dim))
    draws = z - gam * z.mean(axis=1, keepdims=True)
    var = (1.0 - a / (b + a * dim)) / (2 * b)
    log_z = 0.5 * dim * math.log(2 * math.pi) + 0.5 * (-dim * math.log(2 * b) + math.log(b / (b + a * dim)))
    extra = {"log_Z": log_z, "cov": 0.5 * (np.eye(dim) - np.ones((dim, dim)) / (dim + 1)),
             "mean_sq_norm": dim * dim / (2.0 * (dim + 1))}
    return _make(hyperplane_logp, hyperplane_logp_grad, dim, (_vec(a, b),), name or f"hyperplane_disk{dim}",
                 draws, np.zeros(dim), np.full(dim, math.sqrt(var)), "exact: projected normal draws",
                 extra)


# ---------------------------------------------------------------------------------------------
# Gaussian mixtures
# ---------------------------------------------------------------------------------------------

def _gaussian_mixture(weights, means, scales, name, source, n_exact, seed, mode_weights, extra=()):
    weights = np.asarray(weights, dtype=float) / np.sum(weights)
    means = np.ascontiguousarray(means, dtype=float)
    scales = np.ascontiguousarray(np.broadcast_to(scales, means.shape), dtype=float)
    k, d = means.shape
    rng = _rng(seed)
    which = rng.choice(k, size=n_exact, p=weights)
    draws = means[which] + scales[which] * rng.standard_normal((n_exact, d))
    mean, sd = _mixture_moments(weights, means, scales ** 2)
    ext = {"log_Z": 0.5 * d * math.log(2 * math.pi), "mode_centres": means.copy(),
           "component_weights": weights.copy(), **dict(extra)}
    ext.update(mode_weights)
    return _make(mixture_logp, mixture_logp_grad, d, (np.ascontiguousarray(np.log(weights)), means, scales),
                 name, draws, mean, sd, source, ext)


def _separated_mode_weights(weights, means, scales, tol=1e-9):
    """Nearest-centre probabilities of an isotropic mixture whose components are well separated."""
    bound = _separation_bound(means, np.max(np.broadcast_to(scales, means.shape), axis=1))
    if bound > tol:
        raise ValueError(f"components overlap (misassignment bound {bound:.2e}); mode weights unknown")
    return {"mode_weights": np.asarray(weights, float) / np.sum(weights), "mode_weights_error": bound}


def mog8(radius: float = 10.0, variance: float = 0.7, name=None, n_exact=20000, seed=0):
    """8-MoG (multiscale paper): 8 equal-weight N(m_i, 0.7 I) in d = 2, with
    m_i = 10 (1 + cos(2 pi i / 8), 1 + sin(2 pi i / 8)): the SLIPS circle of radius 10, shifted
    off the origin to (10, 10). The nearest-centre probabilities are 1/8 exactly, by symmetry."""
    ang = 2 * np.pi * np.arange(8) / 8
    means = radius * np.column_stack([1 + np.cos(ang), 1 + np.sin(ang)])
    weights = np.full(8, 1 / 8)
    return _gaussian_mixture(weights, means, math.sqrt(variance), name or "mog8",
                             "exact: Gaussian mixture draws", n_exact, seed,
                             {"mode_weights": weights.copy(), "mode_weights_error": 0.0})


def gmm40(dim: int = 2, half_width: float = 20.0, name=None, n_exact=20000, seed=0):
    """GMM-40 (FAB, Midgley et al. 2023; multiscale paper's 40-MoG, d = 2 and 50): 40 equal-weight
    N(m_k, I) with means uniform in [-20, 20]^d (a hypercube of side 40, as in the multiscale paper;
    the FAB/Beyond-ELBOs code uses [-40, 40]^d: pass half_width=40).

    Means: ``half_width * U`` with U stored in constants.json (numpy seed [2024, 40, d])."""
    means = half_width * _unit_box(40, dim, "gmm40")
    weights = np.full(40, 1 / 40)
    key = f"gmm40_d{dim}"
    try:
        mw = _separated_mode_weights(weights, means, 1.0)
    except ValueError:
        mw = _stored_mode_weights(key, half_width)
    return _gaussian_mixture(weights, means, 1.0, name or key, "exact: Gaussian mixture draws", n_exact,
                             seed, mw, extra={"half_width": half_width})


def two_modes(dim: int = 32, variance: float = 0.05, name=None, n_exact=20000, seed=0):
    """"Two modes" (SLIPS experiments; multiscale notes): 2/3 N(-(2/3) 1, 0.05 I) + 1/3 N((4/3) 1, 0.05 I),
    i.e. means -+1 shifted by +1/3 in every coordinate, weights 2:1, d in {8, 16, 32, 64, 128}.
    The first mode's weight, 2/3, is the quantity to recover."""
    means = np.stack([-np.ones(dim), np.ones(dim)]) + 1.0 / 3.0
    weights = np.array([2.0, 1.0]) / 3.0
    return _gaussian_mixture(weights, means, math.sqrt(variance), name or f"two_modes{dim}",
                             "exact: Gaussian mixture draws", n_exact, seed,
                             _separated_mode_weights(weights, means, math.sqrt(variance)))


# ---------------------------------------------------------------------------------------------
# Separable quartic wells: double well (DW) and many-well
# ---------------------------------------------------------------------------------------------

def _quartic_potential(c4, c2, c1):
    return lambda x: ((c4 * x * x + c2) * x + c1) * x


def _quartic_1d_draws(c4, c2, c1, n, rng, n_bins=4000):
    """Exact draws from p(x) prop. to exp(-V(x)), V = c4 x^4 + c2 x^2 + c1 x, c4 > 0.

    Rejection from a piecewise envelope: on [lo, hi], split into bins, the envelope is the exact
    bin maximum of exp(-V), attained at a bin end or at a stationary point of V inside the bin
    (V's only interior extrema). Outside [lo, hi], chosen beyond every stationary and inflection
    point so that V is convex and monotone there, V lies above its tangent at the end point, so
    exp(-V) is bounded by an exponential tail. Acceptance is close to 1."""
    V = _quartic_potential(c4, c2, c1)
    dV = lambda x: (4 * c4 * x * x + 2 * c2) * x + c1  # noqa: E731
    stat = np.roots([4 * c4, 0.0, 2 * c2, c1])
    stat = np.sort(stat[np.abs(stat.imag) < 1e-9].real)
    infl = math.sqrt(-c2 / (6 * c4)) if c2 < 0 else 0.0
    vmin = min(V(s) for s in stat)
    lo = min(stat.min(), -infl) - 1.0
    hi = max(stat.max(), infl) + 1.0
    while V(lo) - vmin < 40 or dV(lo) >= 0:
        lo -= 0.5
    while V(hi) - vmin < 40 or dV(hi) <= 0:
        hi += 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    vb = np.minimum(V(edges[:-1]), V(edges[1:]))
    for s in stat:
        i = np.searchsorted(edges, s) - 1
        if 0 <= i < n_bins:
            vb[i] = min(vb[i], V(s))
    vb -= vmin
    width = edges[1] - edges[0]
    # masses: bins, left tail exp(-(V(lo) - vmin)) / -V'(lo), right tail analogous
    sl, sr = -dV(lo), dV(hi)
    mass = np.concatenate([width * np.exp(-vb), [math.exp(-(V(lo) - vmin)) / sl,
                                                 math.exp(-(V(hi) - vmin)) / sr]])
    prob = mass / mass.sum()
    out = np.empty(0)
    while out.size < n:
        m = int(1.1 * (n - out.size)) + 50
        idx = rng.choice(n_bins + 2, size=m, p=prob)
        x = np.empty(m)
        bound = np.empty(m)
        inb = idx < n_bins
        x[inb] = edges[idx[inb]] + width * rng.random(inb.sum())
        bound[inb] = vb[idx[inb]]
        left, right = idx == n_bins, idx == n_bins + 1
        x[left] = lo - rng.exponential(size=left.sum()) / sl
        bound[left] = V(lo) - vmin + sl * (lo - x[left])
        x[right] = hi + rng.exponential(size=right.sum()) / sr
        bound[right] = V(hi) - vmin + sr * (x[right] - hi)
        # accept with exp(-(V(x) - vmin)) / exp(-bound) <= 1
        keep = np.log(rng.random(m)) < -(V(x) - vmin - bound)
        out = np.concatenate([out, x[keep]])
    return out[:n]


def _quartic_1d_summary(c4, c2, c1):
    """(log Z, mean, sd, split) of exp(-V) by quadrature; split is the barrier (local maximum) or nan."""
    if c4 == 0:
        var = 1 / (2 * c2)
        mu = -c1 / (2 * c2)
        return 0.5 * math.log(math.pi / c2) + c1 * c1 / (4 * c2), mu, math.sqrt(var), np.nan
    V = _quartic_potential(c4, c2, c1)
    stat = np.roots([4 * c4, 0.0, 2 * c2, c1])
    stat = np.sort(stat[np.abs(stat.imag) < 1e-9].real)
    vmin = min(V(s) for s in stat)
    pts = list(stat)
    kw = dict(limit=400, points=pts) if len(pts) else dict(limit=400)
    span = (stat.min() - 20, stat.max() + 20)  # exp(-V) < exp(-10^4) beyond
    z = integrate.quad(lambda x: math.exp(-(V(x) - vmin)), *span, **kw)[0]
    m1 = integrate.quad(lambda x: x * math.exp(-(V(x) - vmin)), *span, **kw)[0] / z
    m2 = integrate.quad(lambda x: x * x * math.exp(-(V(x) - vmin)), *span, **kw)[0] / z
    split = stat[1] if stat.size == 3 else np.nan
    return math.log(z) - vmin, m1, math.sqrt(m2 - m1 * m1), split


def _quartic_target(c4, c2, c1, name, source, n_exact, seed, extra):
    c4, c2, c1 = (np.asarray(c, dtype=float) for c in (c4, c2, c1))
    d = c4.size
    rng = _rng(seed)
    draws = np.empty((n_exact, d))
    summary = {}
    mean, sd = np.empty(d), np.empty(d)
    log_z = 0.0
    for i in range(d):
        key = (c4[i], c2[i], c1[i])
        if key not in summary:
            summary[key] = _quartic_1d_summary(*key)
        lz, mean[i], sd[i], _ = summary[key]
        log_z += lz
        if c4[i] == 0:
            draws[:, i] = mean[i] + sd[i] * rng.standard_normal(n_exact)
        else:
            draws[:, i] = _quartic_1d_draws(*key, n_exact, rng)
    extra = {"log_Z": log_z, "coefficients": np.stack([c4, c2, c1]), **extra}
    return _make(quartic_logp, quartic_logp_grad, d, (_vec(c4, c2, c1),), name, draws, mean, sd, source,
                 extra)


def double_well(dim: int = 5, m: int = 5, delta: float = 4.0, name=None, n_exact=20000, seed=0):
    """Double well DW (multiscale paper): p(x) prop. to exp(-sum_{i<=m} (x_i^2 - delta)^2 - sum_{i>m} x_i^2),
    (d, m, delta) = (5, 5, 4), (10, 5, 3), (50, 5, 2) for DW-5/10/50. 2^m modes at
    (+-sqrt(delta), ..., 0, ...), each of probability 2^-m by symmetry (barrier height delta^2).

    Exact draws coordinate by coordinate (the density factorises): the wells by rejection from an
    exact piecewise envelope (:func:`_quartic_1d_draws`), the rest N(0, 1/2)."""
    c4 = np.r_[np.ones(m), np.zeros(dim - m)]
    c2 = np.r_[np.full(m, -2.0 * delta), np.ones(dim - m)]
    c1 = np.zeros(dim)
    signs = ((np.arange(2 ** m)[:, None] >> np.arange(m)[None, :]) & 1) * 2.0 - 1.0
    centres = np.zeros((2 ** m, dim))
    centres[:, :m] = signs * math.sqrt(delta)
    extra = {"mode_centres": centres, "mode_weights": np.full(2 ** m, 2.0 ** -m), "mode_weights_error": 0.0,
             "well_coords": np.arange(m), "m": m, "delta": delta}
    return _quartic_target(c4, c2, c1, name or f"dw{dim}", "exact: per-coordinate rejection sampling",
                           n_exact, seed, extra)


def many_well(dim: int = 32, name=None, n_exact=20000, seed=0):
    """Many-well (Noé et al. 2019 Boltzmann generators; FAB; PIS; Beyond ELBOs), d = 32: d/2 independent
    2-D double wells E(a, b) = a^4 - 6 a^2 - 0.5 a + b^2 / 2 on the pairs (x_0, x_1), (x_2, x_3), ...;
    2^16 modes. log Z = 16 (log 11784.50927 + log(2 pi) / 2) (FAB).

    Exact draws per coordinate (rejection for the wells, N(0, 1) for the rest). The modes are too many
    for ``mode_centres``: ``extra`` gives ``well_coords`` (the even coordinates), ``well_split`` (the
    barrier top, x = -0.0417) and ``well_weights`` (P(x < split), P(x > split)) instead."""
    if dim % 2:
        raise ValueError("many_well needs an even dim")
    even = np.arange(dim) % 2 == 0
    c4 = np.where(even, 1.0, 0.0)
    c2 = np.where(even, -6.0, 0.5)
    c1 = np.where(even, -0.5, 0.0)
    _, _, _, split = _quartic_1d_summary(1.0, -6.0, -0.5)
    V = _quartic_potential(1.0, -6.0, -0.5)
    lo = integrate.quad(lambda x: math.exp(-V(x)), -20, split, limit=200)[0]
    hi = integrate.quad(lambda x: math.exp(-V(x)), split, 20, limit=200)[0]
    extra = {"well_coords": np.flatnonzero(even), "well_split": float(split),
             "well_weights": np.array([lo, hi]) / (lo + hi), "n_modes": 2 ** int(even.sum())}
    return _quartic_target(c4, c2, c1, name or f"manywell{dim}", "exact: per-coordinate rejection sampling",
                           n_exact, seed, extra)


# ---------------------------------------------------------------------------------------------
# Stored constants
# ---------------------------------------------------------------------------------------------

def _unit_box(k, d, kind):
    consts = _load_constants()
    key = f"{kind}_unit_K{k}_d{d}"
    if key in consts:
        return np.ascontiguousarray(consts[key], dtype=float)
    return _draw_unit_box(k, d)


def _draw_unit_box(k, d):
    return np.random.default_rng([CONSTANTS_SEED, k, d]).uniform(-1.0, 1.0, size=(k, d))


def _stored_mode_weights(key, half_width):
    """Stored nearest-centre probabilities of an overlapping mixture at its default half_width
    (none otherwise: ``mcsample.compare`` then falls back to the exact draws)."""
    entry = _load_constants().get("mode_weights", {}).get(key)
    if entry is None or entry["half_width"] != half_width:
        return {}
    return {"mode_weights": np.asarray(entry["values"]), "mode_weights_error": entry["error"],
            "mode_weights_method": entry["method"]}


def _nearest_fraction_quadrature_2d(weights, centres, component_ppf, n_grid=1500):
    """P(nearest centre = k) for a 2-D mixture with product components, by a product grid on each
    component's quantiles (stratified midpoints: each point carries mass 1 / n_grid^2)."""
    q = (np.arange(n_grid) + 0.5) / n_grid
    z = component_ppf(q)
    zz = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    out = np.zeros(len(centres))
    for j, w in enumerate(weights):
        x = centres[j] + zz
        near = np.empty(len(x), dtype=np.int64)
        for s in range(0, len(x), 200_000):
            chunk = x[s:s + 200_000]
            near[s:s + 200_000] = ((chunk[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        out += w * np.bincount(near, minlength=len(centres)) / len(x)
    return out


def _nearest_fraction_mc(builder, n, seed, **kwargs):
    target, ref = builder(n_exact=n, seed=seed, **kwargs)
    centres = ref.extra["mode_centres"]
    counts = np.zeros(len(centres))
    for s in range(0, n, 100_000):
        chunk = ref.draws[s:s + 100_000]
        d2 = (chunk ** 2).sum(1)[:, None] - 2 * chunk @ centres.T + (centres ** 2).sum(1)[None]
        counts += np.bincount(d2.argmin(1), minlength=len(centres))
    frac = counts / n
    return frac, float(np.sqrt(frac * (1 - frac) / n).max())


def _make_constants(path=CONSTANTS_PATH):
    """Write constants.json: unit-box draws for GMM-40 and 10-MoS, and the nearest-centre
    probabilities of the overlapping mixtures at the default half widths."""
    consts = {"seed": CONSTANTS_SEED,
              "recipe": "np.random.default_rng([seed, K, d]).uniform(-1, 1, size=(K, d))"}
    for d in (2, 50):
        consts[f"gmm40_unit_K40_d{d}"] = _draw_unit_box(40, d).tolist()
    for d in (2, 10, 50):
        consts[f"mos_unit_K10_d{d}"] = _draw_unit_box(10, d).tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:  # first the means, which the builders below read
        json.dump(consts, fh)
    n_grid = 1500
    mw = {}
    means = 20.0 * np.asarray(consts["gmm40_unit_K40_d2"])
    mw["gmm40_d2"] = {"half_width": 20.0, "values": _nearest_fraction_quadrature_2d(
        np.full(40, 1 / 40), means, stats.norm.ppf, n_grid).tolist(), "error": 5e-5,
        "method": f"quadrature: product grid of {n_grid}^2 component quantiles"}
    locs = 5.0 * np.asarray(consts["mos_unit_K10_d2"])
    mw["mos10_d2"] = {"half_width": 5.0, "values": _nearest_fraction_quadrature_2d(
        np.full(10, 1 / 10), locs, lambda q: stats.t.ppf(q, 2.0), n_grid).tolist(), "error": 5e-5,
        "method": f"quadrature: product grid of {n_grid}^2 component quantiles"}
    n_mc = 2_000_000
    for d in (10, 50):
        frac, se = _nearest_fraction_mc(student_t_mixture, n_mc, 12345 + d, dim=d)
        mw[f"mos10_d{d}"] = {"half_width": 5.0, "values": frac.tolist(), "error": se,
                             "method": f"Monte Carlo: {n_mc} exact draws, seed {12345 + d}"}
    consts["mode_weights"] = mw
    with open(path, "w") as fh:
        json.dump(consts, fh, indent=1)


# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------

_ENTRIES = [
    ("student_t", student_t, "Multivariate Student-t, d = 10, nu = 3.", {}),
    ("cauchy100", cauchy, "Standard multivariate Cauchy, d = 100 (GPSS paper).", dict(dim=100)),
    ("mos10_d2", student_t_mixture, "10-MoS (mixture of t_2), d = 2 (multiscale paper).", dict(dim=2)),
    ("mos10_d10", student_t_mixture, "10-MoS (mixture of t_2), d = 10 (multiscale paper).", dict(dim=10)),
    ("mos10_d50", student_t_mixture, "10-MoS (mixture of t_2), d = 50 (multiscale paper).", dict(dim=50)),
    ("funnel10", funnel, "Neal's funnel, d = 10, x_1 ~ N(0, 3^2).", dict(dim=10, sd=3.0)),
    ("funnel10_slips", funnel, "Neal's funnel, d = 10, x_1 ~ N(0, 3) (variance 3, as in the SLIPS code).",
     dict(dim=10, sd=math.sqrt(3.0))),
    ("banana", banana, "inference-gym Banana, d = 2, curvature 0.03.", {}),
    ("rings", rings, "Rings (SLIPS), d = 2, radii 1..4, width 0.15.", {}),
    ("axial_modes", axial_modes, "Axial modes ||x||_inf^4 exp(-||x||_1), d = 10 (GPSS paper).", dict(dim=10)),
    ("hyperplane_disk200", hyperplane_disk, "Hyperplane disk, d = 200 (GPSS paper).", dict(dim=200)),
    ("mog8", mog8, "8-MoG on a shifted circle of radius 10, cov 0.7 I, d = 2 (multiscale paper).", {}),
    ("gmm40_d2", gmm40, "GMM-40, unit variances, means in [-20, 20]^2.", dict(dim=2)),
    ("gmm40_d50", gmm40, "GMM-40, unit variances, means in [-20, 20]^50.", dict(dim=50)),
    ("two_modes", two_modes, "Two modes with weights 2:1, variance 0.05, d = 32 (SLIPS).", dict(dim=32)),
    ("dw5", double_well, "Double well DW-5, (d, m, delta) = (5, 5, 4) (multiscale paper).",
     dict(dim=5, m=5, delta=4.0)),
    ("dw10", double_well, "Double well DW-10, (d, m, delta) = (10, 5, 3) (multiscale paper).",
     dict(dim=10, m=5, delta=3.0)),
    ("dw50", double_well, "Double well DW-50, (d, m, delta) = (50, 5, 2) (multiscale paper).",
     dict(dim=50, m=5, delta=2.0)),
    ("manywell32", many_well, "Many-well, d = 32, 2^16 modes (FAB / Beyond ELBOs).", dict(dim=32)),
]

CATALOGUE = {key: _variant(key, builder, doc, **fixed) for key, builder, doc, fixed in _ENTRIES}

if __name__ == "__main__":
    _make_constants()
    print(f"wrote {CONSTANTS_PATH}")
