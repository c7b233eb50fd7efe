"""Slice-sampling primitives shared by GPSS, elliptical and hit-and-run slice sampling.

- Stepping-out and interval shrinkage on a line, Neal (2003), "Slice sampling", Ann. Statist.
  31(3):705-767, sections 4.1-4.2 (no cap on the number of step-outs: Neal's m = infinity).
- Shrinkage on a whole great circle or ellipse: Murray, Adams & MacKay (2010), "Elliptical slice
  sampling", AISTATS; Habeck et al. (2023), "Geodesic slice sampling on the sphere",
  arXiv:2301.08056, as used by Gibbsian polar slice sampling.

All three samplers work in a *frame*: sampling coordinates z with x = c + L z, where L is the
identity, a diagonal scale, or a lower-triangular Cholesky factor fixed before the kept draws.
The density of z is p(c + L z) up to the constant |det L|. A frame is the tuple
``(kind, centre, scale, chol)`` with kind ``FRAME_IDENTITY``, ``FRAME_DIAG`` or ``FRAME_DENSE``.

"Inside the slice" is always the strict test ``log f > log_t``, so a NaN log density is outside.
Each primitive counts its log-density evaluations and reports ``ok = False`` instead of looping
forever once it has spent ``max_evals`` (a point that floating point cannot resolve, an improper
density).
"""

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)
# Inlined into the kernels at numba-IR level: a call of a compiled function with array arguments
# costs numba's atomic reference counting on each of them, which was ~40% of a GPSS iteration on
# the d = 100 Cauchy. Inlining keeps one implementation and removes most of that cost (GPSS
# ~190k -> ~215k it/s, hit-and-run ~170k -> ~230k, elliptical ~250k -> ~290k; noisy 2-core VM).
# Note: numba's cache checks only the caller's file, so after editing this module delete the
# kernels' caches (mcsample/**/__pycache__/*.nbi, *.nbc) or touch their files.
_inline = numba.njit(cache=True, nogil=True, inline="always")

FRAME_IDENTITY, FRAME_DIAG, FRAME_DENSE = 0, 1, 2


def identity_frame(dim: int):
    return (FRAME_IDENTITY, np.zeros(dim), np.ones(dim), np.zeros((1, 1)))


def diagonal_frame(centre, scale):
    return (FRAME_DIAG, np.ascontiguousarray(centre, dtype=np.float64),
            np.ascontiguousarray(scale, dtype=np.float64), np.zeros((1, 1)))


def dense_frame(centre, chol):
    chol = np.ascontiguousarray(chol, dtype=np.float64)
    return (FRAME_DENSE, np.ascontiguousarray(centre, dtype=np.float64),
            np.ascontiguousarray(np.diag(chol).copy()), chol)


def covariance_frame(centre, cov):
    """The dense frame x = centre + L u with L L^T = cov; eigenvalues are floored at 1e-12 of the
    largest so that an estimated (possibly rank-deficient) covariance still has a Cholesky factor."""
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    cov = (vecs * np.maximum(vals, 1e-12 * max(vals.max(), 1e-300))) @ vecs.T
    return dense_frame(centre, np.linalg.cholesky(cov))


def frame_to_x(frame, z):
    """x = c + L z for a batch (n, d) or a single point (d,), in numpy."""
    kind, centre, scale, chol = frame
    if kind == FRAME_IDENTITY:
        return np.array(z, dtype=np.float64)
    if kind == FRAME_DIAG:
        return centre + z * scale
    return centre + z @ chol.T


def x_to_frame(frame, x):
    """z = L^-1 (x - c), in numpy."""
    kind, centre, scale, chol = frame
    if kind == FRAME_IDENTITY:
        return np.array(x, dtype=np.float64)
    if kind == FRAME_DIAG:
        return (x - centre) / scale
    from scipy.linalg import solve_triangular
    return solve_triangular(chol, np.asarray(x - centre).T, lower=True).T


@_inline
def to_x(frame, z, x):
    kind, centre, scale, chol = frame
    d = z.size
    if kind == FRAME_IDENTITY:
        for i in range(d):
            x[i] = z[i]
    elif kind == FRAME_DIAG:
        for i in range(d):
            x[i] = centre[i] + scale[i] * z[i]
    else:
        for i in range(d):
            s = centre[i]
            for j in range(i + 1):
                s += chol[i, j] * z[j]
            x[i] = s


@_inline
def logp_in_frame(logp, args, frame, z, x):
    """log p(c + L z), with NaN mapped to -inf (outside every slice)."""
    if frame[0] == FRAME_IDENTITY:
        lp = logp(z, *args)  # no copy: a d-vector copy costs as much as a cheap log density
    else:
        to_x(frame, z, x)
        lp = logp(x, *args)
    if np.isnan(lp):
        return -np.inf
    return lp


@_inline
def norm(v):
    s = 0.0
    for i in range(v.size):
        s += v[i] * v[i]
    return np.sqrt(s)


@_inline
def uniform_direction(rng, v):
    """v uniform on the unit sphere (a normalised standard normal)."""
    for i in range(v.size):
        v[i] = rng.standard_normal()
    n = norm(v)
    for i in range(v.size):
        v[i] /= n


@_inline
def line_logp(logp, args, frame, origin, direction, power, s, z, x):
    """power * log|s| + log p at z = origin + s * direction.

    With origin 0 and power d - 1 this is GPSS's polar density along a ray; with power 0 it is
    the log density along a hit-and-run line."""
    for i in range(z.size):
        z[i] = origin[i] + s * direction[i]
    lp = logp_in_frame(logp, args, frame, z, x)
    if power != 0.0:
        lp += power * np.log(abs(s))
    return lp


@_inline
def step_out(logp, args, frame, origin, direction, power, anchor, w, lower, log_t, rng, z, x, max_evals):
    """Neal's stepping-out: a width-w window placed uniformly around ``anchor``, widened by w at
    each end until that end is outside the slice. The left end is clamped at ``lower`` (0 for a
    radius; -inf on a line) and is not evaluated there.

    Returns (lo, hi, n_evals, n_expansions, ok)."""
    u = rng.random()
    lo = max(anchor - u * w, lower)
    hi = anchor + (1.0 - u) * w
    n_evals = 0
    n_expansions = 0
    while lo > lower:
        n_evals += 1
        if not line_logp(logp, args, frame, origin, direction, power, lo, z, x) > log_t:
            break
        if n_evals >= max_evals:
            return lo, hi, n_evals, n_expansions, False
        lo = max(lo - w, lower)
        n_expansions += 1
    while True:
        n_evals += 1
        if not line_logp(logp, args, frame, origin, direction, power, hi, z, x) > log_t:
            break
        if n_evals >= max_evals:
            return lo, hi, n_evals, n_expansions, False
        hi += w
        n_expansions += 1
    return lo, hi, n_evals, n_expansions, True


@_inline
def shrink_interval(logp, args, frame, origin, direction, power, anchor, lo, hi, log_t, rng, z, x,
                    max_evals):
    """Neal's shrinkage on [lo, hi] towards ``anchor`` (the current point, inside the slice).

    Returns (s, log f(s), n_evals, ok); on success ``z`` holds origin + s * direction."""
    n_evals = 0
    while n_evals < max_evals:
        s = lo + rng.random() * (hi - lo)
        f = line_logp(logp, args, frame, origin, direction, power, s, z, x)
        n_evals += 1
        if f > log_t:
            return s, f, n_evals, True
        if s < anchor:
            lo = s
        else:
            hi = s
    return anchor, -np.inf, n_evals, False


@_inline
def shrink_angle(logp, args, frame, a, b, normalize, radius, quad, log_t, rng, point, z, x, max_evals):
    """Shrinkage on the closed curve point(w) = cos(w) a + sin(w) b, w in (-2 pi, 2 pi), towards
    w = 0, which is ``a`` (the current point).

    ``normalize`` projects each proposal back onto the unit sphere (GPSS: rounding would
    otherwise let |theta| drift from 1). The log density tested against ``log_t`` is
    log p(frame(radius * point)) + quad * |radius * point|^2 (quad = 1/2 turns the target into
    elliptical slice sampling's likelihood against a N(0, I) prior in the frame).

    The first angle is drawn uniformly on (0, 2 pi) with the bracket (w - 2 pi, w) around it.
    Returns (log f, n_evals, ok); on success ``point`` holds the accepted point."""
    w = rng.random() * 2.0 * np.pi
    w_lo = w - 2.0 * np.pi
    w_hi = w
    n_evals = 0
    d = a.size
    while n_evals < max_evals:
        c = np.cos(w)
        s = np.sin(w)
        # Two passes over d where there were four, each sum in the same order as before (draws
        # are unchanged): a sum is a serial chain of additions, which hides behind the other work
        # of its pass but costs its full latency in a pass of its own.
        if normalize:
            ss = 0.0
            for i in range(d):
                p = c * a[i] + s * b[i]
                point[i] = p
                ss += p * p
            n = np.sqrt(ss)
            for i in range(d):
                p = point[i] / n
                point[i] = p
                z[i] = radius * p
        else:
            for i in range(d):
                p = c * a[i] + s * b[i]
                point[i] = p
                z[i] = radius * p
        f = logp_in_frame(logp, args, frame, z, x)
        if quad != 0.0:  # GPSS passes 0: no |z|^2 to sum
            sq = 0.0
            for i in range(d):
                sq += z[i] * z[i]
            f += quad * sq
        n_evals += 1
        if f > log_t:
            return f, n_evals, True
        if w < 0.0:
            w_lo = w
        else:
            w_hi = w
        w = w_lo + rng.random() * (w_hi - w_lo)
    for i in range(d):
        point[i] = a[i]
    return -np.inf, n_evals, False


@_inline
def adapt_width(width, n_expansions):
    """Robbins-Monro on log w towards one step-out per update:
    log w += (k + 10)^-0.6 * log((1 + n) / 2), each change clamped to a factor of 2, so that one
    update with many step-outs (a start far in the tails) cannot throw w far off.
    ``width`` is [log w, number of updates so far]."""
    width[1] += 1.0
    change = (width[1] + 10.0) ** -0.6 * np.log((1.0 + n_expansions) / 2.0)
    width[0] += min(max(change, -_LOG2), _LOG2)


_LOG2 = np.log(2.0)
