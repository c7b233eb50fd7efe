"""Sampler families. ``available()`` lists the names ``sample()`` accepts."""

from __future__ import annotations

import dataclasses

from ._base import MARKOV, PARTICLES, ParticleSettings, SamplerSettings
from .ensemble import EnsembleScore
from .gpss import GPSS
from .multiscale import MultALMC, MultCDiff
from .nuts import NUTS
from .rdmc import RDMC
from .slice import EllipticalSlice, HitAndRunSlice
from .walkjump import WalkJump

__all__ = ["available", "resolve", "SamplerSettings", "ParticleSettings", "MARKOV", "PARTICLES", "NUTS", "GPSS", "EllipticalSlice", "HitAndRunSlice", "RDMC",
           "EnsembleScore", "WalkJump", "MultALMC", "MultCDiff"]

_REGISTRY = {cls.name: cls for cls in (NUTS, GPSS, EllipticalSlice, HitAndRunSlice, RDMC, EnsembleScore, WalkJump,
                                       MultALMC, MultCDiff)}


def available() -> list[str]:
    return sorted(_REGISTRY)


def resolve(sampler, overrides: dict) -> SamplerSettings:
    """Settings object from a name or a settings instance, with keyword overrides applied."""
    if isinstance(sampler, SamplerSettings):
        base = sampler
    elif isinstance(sampler, str):
        if sampler not in _REGISTRY:
            raise ValueError(f"unknown sampler {sampler!r}; available: {', '.join(available())}")
        base = _REGISTRY[sampler]()
    else:
        raise ValueError(f"sampler must be a name ({', '.join(available())}) or a settings object, "
                         f"got {type(sampler).__name__}")
    valid = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown settings for {base.name}: {', '.join(unknown)}; "
                         f"valid settings: {', '.join(sorted(valid))}")
    return dataclasses.replace(base, **overrides) if overrides else base
