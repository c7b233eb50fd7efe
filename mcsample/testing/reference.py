"""Gibbsian polar slice sampling in plain numpy: a readable reference for the compiled kernel.

Schär, Habeck & Rudolf (2023), "Gibbsian Polar Slice Sampling", ICML, arXiv:2302.03945. This is
the algorithm of ``mcsample.samplers.gpss`` with the identity frame (``centring="none"``), written
the way the authors' own numpy code is, and with the *same sequence of random-number calls* as the
numba kernel, so that one ``numpy.random.Generator`` state gives the same draws (to rounding in
sums: numpy's ``norm``/``@`` add in another order than the kernel's loops). Per iteration, from the
state (r, theta) with the cached lp1 = (d - 1) log r + log p(r theta):

1. threshold: ``log_t = lp1 + log(rng.random())``;
2. great circle: ``y = rng.standard_normal(d)``, made orthogonal to theta and normalised;
3. direction: ``omega = rng.random() * 2 pi``, bracket (omega - 2 pi, omega); proposal
   theta' = normalise(cos(omega) theta + sin(omega) y) at the OLD radius, accepted when
   log p(r theta') > log_t - (d - 1) log r; else the bracket shrinks to omega (towards 0, the
   current point) and ``omega = lo + rng.random() * (hi - lo)``;
4. radius stepping-out: ``u = rng.random()``, window (max(r - u w, 0), r + (1 - u) w); the left
   end moves by w (clamped at 0, never evaluated there) while inside, then the right end;
5. radius shrinkage: ``s = lo + rng.random() * (hi - lo)`` until inside, shrinking towards r.

"Inside" is the strict test ``>`` against log_t, so a NaN log density is outside. The number of
evaluations per iteration is the number of real calls of ``logp`` (the authors' counting charges
the clamped left end too).

Deliberately broken variants ("mutants") for testing the tests, through keywords of
:func:`gpss_numpy` and :func:`gpss_step`:

- ``radial_power=0``: GPSS without the (d - 1) log r term (thresholds p instead of |x|^(d-1) p);
- ``radial_power=-(d - 1)``: thresholds |x|^(1-d) p, the base measure mistaken for the density;
- ``shrink="away"``: both shrinkages keep the part of the bracket *away* from the current point.
  It need not terminate; like every loop here it stops after ``max_proposals`` evaluations, and
  the iteration then keeps what it had accepted so far (the kernel's ``exhausted`` draws).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gpss_numpy", "gpss_iteration", "gpss_step"]

TWO_PI = 2.0 * math.pi


def gpss_iteration(logp, r, theta, lp1, w, rng, power, toward=True, max_proposals=100_000):
    """One GPSS iteration from (r, theta) with lp1 = power * log r + log p(r theta).

    Returns (r, theta, lp1, n_evals); ``theta`` is a new array."""
    log_t = lp1 + math.log(rng.random())

    # direction: geodesic shrinkage on a random great circle through theta, at the old radius
    y = rng.standard_normal(theta.size)
    y -= (y @ theta) * theta
    y /= np.linalg.norm(y)
    log_r_term = power * math.log(r)
    threshold = log_t - log_r_term
    omega = rng.random() * 2.0 * math.pi
    lo, hi = omega - TWO_PI, omega
    for n_dir in range(1, max_proposals + 1):
        prop = math.cos(omega) * theta + math.sin(omega) * y
        prop /= np.linalg.norm(prop)
        f = logp(r * prop)
        if f > threshold:
            break
        if (omega < 0.0) == toward:
            lo = omega
        else:
            hi = omega
        omega = lo + rng.random() * (hi - lo)
    else:
        return r, theta, lp1, max_proposals
    theta, lp1 = prop, f + log_r_term

    # radius: stepping-out and shrinkage on (0, inf) along the new direction, same threshold
    def log_p1(s):
        return logp(s * theta) + power * math.log(s) if power != 0.0 else logp(s * theta)

    u = rng.random()
    lo, hi = max(r - u * w, 0.0), r + (1.0 - u) * w
    n_out = 0
    while lo > 0.0:
        n_out += 1
        if not log_p1(lo) > log_t:
            break
        if n_out >= max_proposals:
            return r, theta, lp1, n_dir + n_out
        lo = max(lo - w, 0.0)
    while True:
        n_out += 1
        if not log_p1(hi) > log_t:
            break
        if n_out >= max_proposals:
            return r, theta, lp1, n_dir + n_out
        hi += w
    for n_shrink in range(1, max_proposals + 1):
        s = lo + rng.random() * (hi - lo)
        f = log_p1(s)
        if f > log_t:
            return s, theta, f, n_dir + n_out + n_shrink
        if (s < r) == toward:
            lo = s
        else:
            hi = s
    return r, theta, lp1, n_dir + n_out + max_proposals


def _start(logp, x, power):
    x = np.asarray(x, dtype=float)
    r = float(np.linalg.norm(x))
    if r == 0.0:
        raise ValueError("GPSS cannot start at the origin: the direction is undefined there")
    return r, x / r, power * math.log(r) + logp(x)


def _options(d, radial_power, shrink):
    if shrink not in ("toward", "away"):
        raise ValueError(f"shrink must be 'toward' or 'away', got {shrink!r}")
    return float(d - 1 if radial_power is None else radial_power), shrink == "toward"


def gpss_numpy(logp, x0, n_iter, w, rng, *, radial_power=None, shrink="toward", max_proposals=100_000):
    """``n_iter`` GPSS iterations from ``x0`` with radius window ``w``; ``logp(x)`` is any Python
    callable and ``rng`` a ``numpy.random.Generator``.

    ``radial_power`` (default d - 1) and ``shrink`` ("toward", or "away") select the mutants of
    the module docstring; ``max_proposals`` bounds each update's evaluations.
    Returns (draws (n_iter, d), n_evals (n_iter,)): each draw x = r theta after the iteration and
    that iteration's number of ``logp`` calls."""
    x0 = np.asarray(x0, dtype=float)
    power, toward = _options(x0.size, radial_power, shrink)
    r, theta, lp1 = _start(logp, x0, power)
    draws = np.empty((n_iter, x0.size))
    n_evals = np.empty(n_iter, dtype=np.int64)
    for i in range(n_iter):
        r, theta, lp1, n_evals[i] = gpss_iteration(logp, r, theta, lp1, w, rng, power, toward,
                                                   max_proposals)
        draws[i] = r * theta
    return draws, n_evals


def gpss_step(logp, w, *, radial_power=None, shrink="toward", max_proposals=100_000):
    """A kernel ``step(x, rng) -> x_new`` of one GPSS iteration (the state is rebuilt from x:
    r = |x|, theta = x / r and lp1 recomputed, one extra ``logp`` call), for
    ``mcsample.testing.assert_invariant`` / ``apply_kernel``. Keywords as in :func:`gpss_numpy`."""
    def step(x, rng):
        x = np.asarray(x, dtype=float)
        power, toward = _options(x.size, radial_power, shrink)
        r, theta, lp1 = _start(logp, x, power)
        r, theta, _, _ = gpss_iteration(logp, r, theta, lp1, w, rng, power, toward, max_proposals)
        return r * theta
    mutant = ([] if radial_power is None else [f"radial_power={radial_power:g}"]) + \
        ([] if shrink == "toward" else [f"shrink={shrink}"])
    step.__name__ = "gpss (numpy reference" + "".join(", " + m for m in mutant) + ")"
    return step
