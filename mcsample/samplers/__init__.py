"""Sampler families. ``available()`` lists the names ``sample()`` accepts."""

from __future__ import annotations

import dataclasses

import numpy as np

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
            raise ValueError(f"unknown sampler {sampler!r}{_did_you_mean(sampler, _REGISTRY)}; "
                             f"available: {', '.join(available())}")
        base = _REGISTRY[sampler]()
    else:
        raise ValueError(f"sampler must be a name ({', '.join(available())}) or a settings object, "
                         f"got {type(sampler).__name__}")
    valid = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        hints = "".join(_did_you_mean(u, valid) for u in unknown)
        raise ValueError(f"unknown settings for {base.name}: {', '.join(unknown)}{hints}; "
                         f"valid settings: {', '.join(sorted(valid))}")
    cfg = dataclasses.replace(base, **overrides) if overrides else base
    _check_setting_types(cfg)
    return cfg


def _did_you_mean(name, choices) -> str:
    """' (did you mean 'x'?)' for a near miss (case, a missing suffix, a typo), else ''."""
    import difflib
    by_lower = {c.lower().replace("-", "_"): c for c in choices}
    key = str(name).lower().replace("-", "_")
    close = ([by_lower[key]] if key in by_lower else
             [c for c in sorted(choices) if key and c.startswith(key)][:1]
             or difflib.get_close_matches(str(name), sorted(choices), n=1, cutoff=0.6))
    return f" (did you mean {close[0]!r}?)" if close else ""


_SETTING_TYPES = {  # a settings field's annotation -> the values it accepts (bool is no int here)
    "bool": (bool, np.bool_), "int": (int, np.integer), "float": (int, float, np.integer, np.floating),
    "str": (str,), "None": (type(None),), "tuple": (tuple, list),
}


_SETTING_WORDS = {"bool": "True or False", "int": "an integer", "float": "a number (not NaN)", "str": "a string",
                  "None": "None", "tuple": "a tuple"}


def _check_setting_types(cfg):
    """A setting of the wrong type (a string for a number, 2.5 for an integer, NaN) is a ValueError
    naming it, before a family's validate compares it or a kernel is compiled for it."""
    for f in dataclasses.fields(cfg):
        parts = [p.strip() for p in str(f.type).split("|")]
        if not all(p in _SETTING_TYPES for p in parts):
            continue  # arrays and the like: the family checks them
        value = getattr(cfg, f.name)
        allowed = tuple(t for p in parts for t in _SETTING_TYPES[p])
        is_bool = isinstance(value, (bool, np.bool_))
        ok = isinstance(value, allowed) and (not is_bool or "bool" in parts)
        if ok and "int" in parts and not is_bool and isinstance(value, (float, np.floating)):
            ok = False
        if ok and isinstance(value, (float, np.floating)) and np.isnan(value):
            ok = False
        if not ok:
            want = " or ".join(_SETTING_WORDS[p] for p in parts)
            raise ValueError(f"{cfg.name}: setting {f.name} must be {want}, got {value!r}")
