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
    """ArviZ's summary with rows named by parameter ("mu", "x[0]"), not "x[mu]", "x[x[0]]"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = _az().summary(idata, **kwargs)
    table.index = table.index.str.replace(r"^x\[(.*)\]$", r"\1", regex=True)
    return table


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


def ess_of(values, method="bulk") -> np.ndarray:
    """ESS of each column of a (chain, draw, k) array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([_az().ess(values[..., j], method=method) for j in range(values.shape[-1])])


def mcse_of(values, method="mean") -> np.ndarray:
    """MCSE of the mean ("mean") or of the standard deviation ("sd") of each column of a
    (chain, draw, k) array. The sd's MCSE is the delta method on the variance: the standard
    error of mean((x - m)^2) from that series' own ESS, divided by 2 sd. (ArviZ 0.23's
    mcse(method="sd") fails on numpy inputs under numpy 2.)"""
    if method == "mean":
        return np.array([values[..., j].std(ddof=1) / np.sqrt(e)
                         for j, e in enumerate(ess_of(values, "mean"))])
    if method != "sd":
        raise ValueError(f"method must be 'mean' or 'sd', got {method!r}")
    dev2 = (values - values.mean(axis=(0, 1))) ** 2
    sd = np.sqrt(dev2.mean(axis=(0, 1)))
    se_var = np.array([dev2[..., j].std(ddof=1) / np.sqrt(e) for j, e in enumerate(ess_of(dev2, "mean"))])
    return se_var / (2.0 * sd)


def draws_array(idata, group="posterior") -> np.ndarray:
    """The (chain, draw, dim) array of x."""
    return np.asarray(idata[group]["x"].values)
