"""The one module that talks to ArviZ (0.2x InferenceData on Python 3.11; ArviZ 1.x's DataTree
needs Python >= 3.12 and would be adapted here only)."""

from __future__ import annotations

import warnings

import numpy as np



def _az():
    """ArviZ, imported on first use: it costs ~2 s, which `import mcsample` should not pay."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces its 1.0 refactor
        import arviz
    return arviz


def to_inference_data(posterior, stats, names, attrs, *, warmup_posterior=None, warmup_stats=None):
    """Build InferenceData from (chain, draw, dim) draws and {name: (chain, draw)} stats."""
    kwargs = {}
    if warmup_posterior is not None:
        kwargs.update(warmup_posterior={"x": warmup_posterior}, warmup_sample_stats=warmup_stats,
                      save_warmup=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. "More chains than draws" on tiny runs
        idata = _az().from_dict(posterior={"x": posterior}, sample_stats=stats,
                             coords={"param": list(names)}, dims={"x": ["param"]}, **kwargs)
    idata.attrs.update(attrs)
    return idata


def summary(idata, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().summary(idata, **kwargs)


def ess(idata, method="bulk"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().ess(idata, method=method)


def rhat(idata):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().rhat(idata)


def mcse(idata, method="mean"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _az().mcse(idata, method=method)


def draws_array(idata, group="posterior") -> np.ndarray:
    """The (chain, draw, dim) array of x."""
    return np.asarray(idata[group]["x"].values)
