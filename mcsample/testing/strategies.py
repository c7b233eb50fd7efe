"""Hypothesis strategies for targets with exact samplers, ready for ``@given``.

    from hypothesis import given, settings
    from mcsample.testing import strategies

    @settings(derandomize=True, max_examples=5, deadline=None)
    @given(strategies.models(max_dim=5))
    def test_my_kernel(model):
        mcsample.testing.assert_invariant(model.target, my_step, model.exact, centre=model.centre)

Scales stay in [0.1, 10] and dimensions in [2, 20] by default, so generated targets are
well-conditioned enough for statistical checks (notes, section 4.1). Random structure (rotations,
means) comes from a numpy generator seeded by the example, so examples shrink sensibly.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from . import models as _models

__all__ = ["gaussians", "mixtures", "student_ts", "models"]


def _dims(min_dim, max_dim):
    return st.integers(min_value=min_dim, max_value=max_dim)


def _scales(d, min_scale, max_scale):
    return st.lists(st.floats(min_scale, max_scale, allow_nan=False), min_size=d, max_size=d).map(np.array)


@st.composite
def gaussians(draw, min_dim=2, max_dim=20, min_scale=0.1, max_scale=10.0, correlated=None):
    """N(mean, Sigma): random mean in [-5, 5]^d, scales in [min_scale, max_scale], and (when
    ``correlated`` is True, or by a coin flip when None) a random rotation."""
    d = draw(_dims(min_dim, max_dim))
    scales = draw(_scales(d, min_scale, max_scale))
    seed = draw(st.integers(0, 2**32 - 1))
    rotate = draw(st.booleans()) if correlated is None else correlated
    rng = np.random.default_rng(seed)
    mean = rng.uniform(-5.0, 5.0, d)
    if not rotate:
        return _models.gaussian(mean, scales**2)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return _models.gaussian(mean, (q * scales**2) @ q.T)


@st.composite
def mixtures(draw, min_dim=2, max_dim=10, max_components=4, separation=(1.0, 4.0)):
    """Mixtures symmetric about the origin: components at +-m_j with equal weights within each
    pair and a shared isotropic scale, so the mixture mean is 0 and its modes are known."""
    d = draw(_dims(min_dim, max_dim))
    pairs = draw(st.integers(1, max(1, max_components // 2)))
    scale = draw(st.floats(0.3, 1.5))
    dist = draw(st.floats(*separation))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((pairs, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    half = dist * scale * directions
    pair_weights = rng.dirichlet(np.ones(pairs))
    means = np.concatenate([half, -half])
    weights = np.concatenate([pair_weights, pair_weights]) / 2
    return _models.mixture(weights, means, np.full_like(means, scale))


@st.composite
def student_ts(draw, min_dim=2, max_dim=20, min_nu=3.0, max_nu=30.0):
    """Multivariate Student-t with nu in [min_nu, max_nu] (finite variance at the default) and
    diagonal scales in [0.3, 3]."""
    d = draw(_dims(min_dim, max_dim))
    nu = draw(st.floats(min_nu, max_nu))
    scales = draw(_scales(d, 0.3, 3.0))
    seed = draw(st.integers(0, 2**32 - 1))
    loc = np.random.default_rng(seed).uniform(-3.0, 3.0, d)
    return _models.student_t(loc, scales, nu)


def models(min_dim=2, max_dim=20):
    """Any of the above."""
    return st.one_of(gaussians(min_dim, max_dim), mixtures(min_dim, min(max_dim, 10)),
                     student_ts(min_dim, max_dim))
