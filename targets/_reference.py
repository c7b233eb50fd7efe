"""The reference answer that ships with every catalogue target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Reference:
    """What a correct sampler should reproduce on one target.

    ``draws`` are on the *reference scale*: the scale the answer was published on. For
    synthetic targets that is the sampling scale itself; for posteriordb posteriors it is the
    constrained scale, and ``constrain`` maps draws of the sampler (``(..., dim)``, unconstrained)
    onto it (``(..., len(names))``).
    """

    names: list[str]
    mean: np.ndarray
    sd: np.ndarray
    draws: np.ndarray | None = None  # (n, len(names)), exact or long-run reference draws
    constrain: Callable[[np.ndarray], np.ndarray] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def to_reference_scale(self, x: np.ndarray) -> np.ndarray:
        """Map sampler draws ``(..., dim)`` onto the scale of ``mean``, ``sd`` and ``draws``."""
        x = np.asarray(x, dtype=float)
        return self.constrain(x) if self.constrain is not None else x

    @classmethod
    def from_draws(cls, draws, names, **kwargs) -> "Reference":
        draws = np.asarray(draws, dtype=float)
        return cls(names=list(names), mean=draws.mean(axis=0), sd=draws.std(axis=0, ddof=1),
                   draws=draws, **kwargs)
