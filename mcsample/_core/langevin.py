"""Langevin splittings: the overdamped (ULA) step and the underdamped OBABO step, and their pieces.

Overdamped Langevin, dX = grad log pi(X) dt + sqrt(2) dB, discretised by Euler-Maruyama (the
unadjusted Langevin algorithm, ULA): x <- x + h g(x) + sqrt(2 h) xi.

Underdamped (kinetic) Langevin with a diagonal mass M = diag(1 / inv_mass) and scalar friction
gamma,

    dX = M^{-1} V dt,    dV = g(X) dt - gamma M^{-1} V dt + sqrt(2 gamma) dB,

whose invariant law is pi(x) N(v; 0, M). The OBABO splitting (Bussi & Parrinello 2007; Leimkuhler &
Matthews 2013, "Rational construction of stochastic numerical methods for molecular sampling")
composes, over a step h,

    O(h/2)  v <- c v + sqrt((1 - c^2) / inv_mass) xi,   c = exp(-gamma inv_mass h / 2)   (exact OU)
    B(h/2)  v <- v + (h/2) g(x)
    A(h)    x <- x + h inv_mass v
    B(h/2)  v <- v + (h/2) g(x)
    O(h/2)  as above.

The O part is solved exactly, so any friction (including 0: Hamiltonian, and large: nearly
overdamped) is stable; only the BAB (velocity Verlet) part limits h. ``g`` is any force: the
target's gradient for plain ULMC, or the averaged score of the multiscale samplers, which call the
pieces ``o_step``, ``b_step`` and ``a_step`` directly with their own forces. Friction and inverse
mass are call-time arguments, so a time-dependent friction schedule needs no recompilation.

``inv_mass`` is always a float64 array of length d (diagonal M^{-1}); pass ``np.ones(d)`` for M = I.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)


@_jit
def ula_step(rng, x, grad, h):
    """One Euler-Maruyama step of overdamped Langevin with force ``grad`` (evaluated at x), in
    place: x <- x + h grad + sqrt(2 h) xi."""
    noise = np.sqrt(2.0 * h)
    for i in range(x.size):
        x[i] += h * grad[i] + noise * rng.standard_normal()


@_jit
def o_step(rng, v, friction, inv_mass, t):
    """Exact Ornstein-Uhlenbeck flow of dV = -friction M^{-1} V dt + sqrt(2 friction) dB over
    time ``t``, in place; it leaves N(0, M) invariant."""
    for i in range(v.size):
        c = np.exp(-friction * inv_mass[i] * t)
        v[i] = c * v[i] + np.sqrt(-np.expm1(-2.0 * friction * inv_mass[i] * t) / inv_mass[i]) * rng.standard_normal()


@_jit
def b_step(v, force, t):
    """Kick: v <- v + t force, in place."""
    for i in range(v.size):
        v[i] += t * force[i]


@_jit
def a_step(x, v, inv_mass, t):
    """Drift: x <- x + t M^{-1} v, in place."""
    for i in range(x.size):
        x[i] += t * inv_mass[i] * v[i]


@_jit
def obabo_step(logp_grad, args, rng, x, v, grad, h, friction, inv_mass):
    """One OBABO step of underdamped Langevin on the target of ``logp_grad(x, *args) -> (logp,
    gradient)``, in place on x, v and ``grad`` (the gradient at x on entry and at the new x on
    exit, so a chain of steps costs one gradient per step). Returns log pi at the new x."""
    o_step(rng, v, friction, inv_mass, 0.5 * h)
    b_step(v, grad, 0.5 * h)
    a_step(x, v, inv_mass, h)
    lp, g = logp_grad(x, *args)
    grad[:] = g
    b_step(v, grad, 0.5 * h)
    o_step(rng, v, friction, inv_mass, 0.5 * h)
    return lp


@_jit
def ula_chain_step(logp_grad, args, rng, x, grad, h):
    """One ULA step on the target of ``logp_grad``, in place on x and ``grad`` (the gradient at x
    on entry and at the new x on exit: one gradient per step). Returns log pi at the new x."""
    ula_step(rng, x, grad, h)
    lp, g = logp_grad(x, *args)
    grad[:] = g
    return lp
