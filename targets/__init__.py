"""The catalogue of benchmark targets, each with its reference answer.

    import targets
    targets.available()                      # names
    target, reference = targets.get("arK")   # mcsample.Target, targets.Reference
"""

from __future__ import annotations

from typing import Callable

from ._reference import Reference

__all__ = ["available", "get", "Reference"]


def _posteriordb(key: str) -> Callable:
    def build():
        from mcsample import Target
        from . import posteriordb
        m = posteriordb.load(key)
        target = Target(m["logp"], m["dim"], logp_grad=m["logp_grad"], args=m["args"],
                        names=m["names"], name=key)
        draws = m["reference_draws"].reshape(-1, len(m["ref_names"]))
        ref = Reference.from_draws(draws, m["ref_names"], constrain=m["constrain"],
                                   source=f"posteriordb {m['posterior']} reference draws (Stan, 10 x 1000)")
        return target, ref
    build.__doc__ = f"posteriordb posterior {key}, unconstrained scale."
    return build


def _gaussians(name):
    def build(**kwargs):
        from . import gaussians
        return getattr(gaussians, name)(**kwargs)
    return build


_CATALOGUE = {
    "std_normal": _gaussians("standard_normal"),
    "gauss100": _gaussians("gauss100"),
    "correlated": _gaussians("correlated"),
    "eight_schools_noncentered": _posteriordb("eight_schools_noncentered"),
    "arK": _posteriordb("arK"),
    "kidiq_momiq": _posteriordb("kidiq_momiq"),
    "earnings_logearn_interaction_z": _posteriordb("earnings_logearn_interaction_z"),
}


def available() -> list[str]:
    return list(_CATALOGUE)


def get(name: str, **kwargs):
    """(Target, Reference) for a catalogue name; keyword arguments go to the builder (e.g. dim)."""
    if name not in _CATALOGUE:
        raise ValueError(f"unknown target {name!r}; available: {', '.join(available())}")
    return _CATALOGUE[name](**kwargs)
