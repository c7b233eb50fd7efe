"""The catalogue of benchmark targets, each with its reference answer.

    import targets
    targets.available()                      # names
    target, reference = targets.get("arK")   # mcsample.Target, targets.Reference
"""

from __future__ import annotations

from typing import Callable

from ._reference import Reference

__all__ = ["available", "get", "Reference"]


def _from_loaded(load: Callable, key: str, source: str) -> Callable:
    """Builder for a model module's ``load()`` dict (posteriordb, logistic regression)."""
    def build():
        from mcsample import Target
        m = load()
        target = Target(m["logp"], m["dim"], logp_grad=m["logp_grad"], args=m["args"],
                        names=m["names"], name=key)
        draws = m["reference_draws"].reshape(-1, len(m["ref_names"]))
        ref = Reference.from_draws(draws, m["ref_names"], constrain=m["constrain"],
                                   source=source.format(posterior=m["posterior"]),
                                   extra={"doc": m["doc"]})
        return target, ref
    return build


def _posteriordb(key: str) -> Callable:
    def load():
        from . import posteriordb
        return posteriordb.load(key)
    return _from_loaded(load, key, "posteriordb {posterior} reference draws (Stan, 10 x 1000)")


def _logistic() -> Callable:
    def load():
        from . import logistic
        return logistic.load()
    return _from_loaded(load, "logistic_breast_cancer",
                        "4 x 25000 mcsample NUTS draws thinned to 10000 (targets/data/breast_cancer)")


def _gaussians(name):
    def build(**kwargs):
        from . import gaussians
        return getattr(gaussians, name)(**kwargs)
    return build


_CATALOGUE = {
    "std_normal": _gaussians("standard_normal"),
    "gauss100": _gaussians("gauss100"),
    "correlated": _gaussians("correlated"),
    **{key: _posteriordb(key) for key in (
        "eight_schools_noncentered", "arK", "kidiq_momiq", "earnings_logearn_interaction_z",
        "diamonds", "gp_pois_regr", "low_dim_gauss_mix", "mesquite", "sblrc_blr")},
    "logistic_breast_cancer": _logistic(),
}


def _synthetic():
    from . import synthetic
    return synthetic.CATALOGUE


def available() -> list[str]:
    return list(_CATALOGUE) + [k for k in _synthetic() if k not in _CATALOGUE]


def get(name: str, **kwargs):
    """(Target, Reference) for a catalogue name; keyword arguments go to the builder (e.g. dim)."""
    if name in _CATALOGUE:
        return _CATALOGUE[name](**kwargs)
    synthetic = _synthetic()
    if name in synthetic:
        return synthetic[name](**kwargs)
    raise ValueError(f"unknown target {name!r}; available: {', '.join(available())}")
