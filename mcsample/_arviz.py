"""The one module that talks to ArviZ, for both of its generations.

- ArviZ 0.x (what pip installs on Python 3.11): a result is ``arviz.InferenceData``.
- ArviZ 1.x (what pip installs on Python >= 3.12): a result is ``xarray.DataTree``, the type
  ArviZ 1.x's own converters return, with the same groups, variables, dims, coords and attrs.
  It is built with xarray alone: sampling does not import ArviZ (~3 s) at all.

Reading a result, these forms work on both and are what the rest of mcsample uses:
``result.posterior["x"]``, ``result["posterior"]["x"]``, ``result.sample_stats["lp"]``,
``"lp" in result.sample_stats``, ``result.attrs``. Everything else that differs between the two
(the list of groups, a group as a plain ``xarray.Dataset``, the layout of ``az.ess`` and friends,
the constructors) goes through the functions here. No ``isinstance(..., az.InferenceData)``:
``InferenceData`` is gone (a warning alias) in ArviZ 1.x.
"""

from __future__ import annotations

import datetime
import functools
import re
import warnings

import numpy as np

from ._version import __version__

SAMPLE_DIMS = ("chain", "draw")


_PRELOAD = []  # the thread importing ArviZ in the background, once started


def preload() -> None:
    """Start importing what the result needs in a background thread, so that ``sample()`` does
    not wait for it after its chains finish: ArviZ on 0.x (~3-4 s), xarray on 1.x (~0.6 s;
    sampling never imports ArviZ 1.x). ``sample()`` calls it, and waits for it
    (``wait_for_preload``) before it returns or raises, so that no import runs while the caller's
    code does. ``MCSAMPLE_PRELOAD=0`` in the environment turns it off (the import then happens
    when the first result is built)."""
    import os
    import sys
    import threading
    if _PRELOAD or os.environ.get("MCSAMPLE_PRELOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        return
    try:
        module = "xarray" if arviz_major() >= 1 else "arviz"
    except Exception:  # noqa: BLE001 - no ArviZ to find: building the result will say so, not preload()
        return
    if module in sys.modules:
        return
    # catch_warnings is not thread-safe (it swaps the process's filters): a lasting, narrow filter
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    thread = threading.Thread(target=_import_quietly, args=(module,), name=f"mcsample-{module}-import",
                              daemon=True)
    _PRELOAD.append(thread)
    thread.start()


def _import_quietly(module):
    try:
        _import(module)
    except Exception:  # noqa: BLE001 - the first foreground use reports it
        pass


def _import(module):
    import importlib
    if module != "arviz":
        return importlib.import_module(module)
    with _cached_numba_ufuncs():
        return importlib.import_module(module)


class _cached_numba_ufuncs:
    """While ArviZ is imported, ArviZ's eagerly typed numba ufuncs are compiled with
    ``cache=True``. ArviZ 0.x builds ``arviz.stats.ecdf_utils._binom_pmf`` with
    ``numba.vectorize([signature])`` at import, which compiles it there and then, without a cache:
    0.8 s of every ``import arviz`` (a third of its cost outside scipy and matplotlib; measured
    with ``python -X importtime``). Cached, a new process loads it from numba's cache
    (``NUMBA_CACHE_DIR``, else ArviZ's ``__pycache__`` or the user-wide numba cache) in a few ms.
    ArviZ is not modified: ``numba.vectorize`` is wrapped for the duration of the import and only
    calls made from ``arviz.*`` modules with a signature list get ``cache=True``; any other call
    passes through unchanged, and the original is restored afterwards."""

    def __enter__(self):
        import sys

        import numba
        self._numba, self._original = numba, numba.vectorize
        original = self._original

        def vectorize(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if (not (caller == "arviz" or caller.startswith("arviz.")) or not args
                    or not isinstance(args[0], (list, tuple)) or "cache" in kwargs):
                return original(*args, **kwargs)
            cached = original(*args, cache=True, **kwargs)

            def decorate(func):
                try:
                    return cached(func)
                except RuntimeError:  # no writable cache directory: compile as ArviZ asked
                    return original(*args, **kwargs)(func)

            return decorate

        numba.vectorize = vectorize
        return self

    def __exit__(self, *exc):
        self._numba.vectorize = self._original
        return False


def wait_for_preload() -> None:
    """Wait for the background import to finish, if one was started.

    ``warnings.catch_warnings`` swaps the process's list of filters and, on exit, puts back the
    list it saved. Importing ArviZ 0.x enters ~300 such blocks (matplotlib's styles, pandas), some
    with ``simplefilter("ignore")``. A block entered in another thread while the import is inside
    one of its own closes out of order and leaves the import's list in force for the rest of the
    process: every warning silenced, ConvergenceWarning included (1 process in 4 with a tight loop
    of blocks in the main thread during the import). So mcsample enters no block while the import
    runs (``_quiet``), and ``sample()`` does not return with the import still running."""
    if _PRELOAD:
        _PRELOAD[0].join()


def _quiet():
    """``warnings.catch_warnings()``, entered once no background import is running."""
    wait_for_preload()
    return warnings.catch_warnings()


def _az():
    """ArviZ, imported on first use: it costs 3-4 s, which `import mcsample` should not pay."""
    import sys
    with _quiet():  # waits for a background import first
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces its 1.0 refactor
        if "arviz" in sys.modules:  # the import statement still waits for another thread's import
            import arviz
            return arviz
        return _import("arviz")


@functools.cache
def arviz_major() -> int:
    """The installed ArviZ's major version (0 or 1), read from the package metadata, so that
    building a result on ArviZ 1.x needs no ArviZ import. ``sample()`` asks it before each run: the name of
    the ``arviz-<version>.dist-info`` directory beside the package is one directory listing
    (~1 ms); ``importlib.metadata`` scans every installed distribution (~30 ms), so it is only
    the fallback."""
    import importlib.metadata
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec("arviz")
    if spec is not None and spec.origin:
        found = list(Path(spec.origin).parent.parent.glob("arviz-*.dist-info"))
        if len(found) == 1:
            version = found[0].name[len("arviz-"):]
            if version[:1].isdigit():
                return int(version.split(".")[0])
    try:
        version = importlib.metadata.version("arviz")
    except importlib.metadata.PackageNotFoundError:
        version = _az().__version__
    return int(version.split(".")[0])


def _group_attrs() -> dict:
    """The attrs ArviZ's converters put on every group (``make_attrs`` of the installed ArviZ),
    with mcsample as the inference library."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if arviz_major() >= 1:
        return {"created_at": now, "creation_library": "mcsample",
                "creation_library_version": __version__, "creation_library_language": "Python",
                "inference_library": "mcsample", "inference_library_version": __version__,
                "sample_dims": list(SAMPLE_DIMS)}
    return {"created_at": now, "arviz_version": _az().__version__,
            "inference_library": "mcsample", "inference_library_version": __version__}


def _draws_dataset(variables, names=None):
    """An xarray.Dataset of {name: (chain, draw, ...)} arrays, laid out as ArviZ's ``from_dict``
    lays it out: integer ``chain`` and ``draw`` coords, ``x``'s last dim ``param`` (coords
    ``names``), any other extra dims ``{var}_dim_{i}``."""
    import xarray as xr
    data_vars, coords = {}, {}
    for var, values in variables.items():
        values = np.asarray(values)
        if values.ndim < 2:
            raise ValueError(f"{var!r} must be (chain, draw, ...), got shape {values.shape}")
        if var == "x" and names is not None:
            extra = ("param",)
            coords["param"] = list(names)
        else:
            extra = tuple(f"{var}_dim_{i}" for i in range(values.ndim - 2))
        data_vars[var] = (SAMPLE_DIMS + extra, values)
    if data_vars:
        chains, draws = next(iter(data_vars.values()))[1].shape[:2]
        coords.update(chain=np.arange(chains), draw=np.arange(draws))
    return xr.Dataset(data_vars, coords=coords)


def from_datasets(groups, attrs=None):
    """A result from ready-made groups {name: xarray.Dataset}: ``xarray.DataTree`` on ArviZ 1.x,
    ``arviz.InferenceData`` on 0.x; ``attrs`` become the result's top-level attrs. Groups keep
    their own attrs; ArviZ's standard group attrs are added where missing."""
    defaults = _group_attrs()
    groups = {name: ds.assign_attrs({**defaults, **ds.attrs}) for name, ds in groups.items()}
    if arviz_major() >= 1:
        import xarray as xr
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(attrs or {})
        return tree
    with _quiet():
        warnings.filterwarnings("ignore", message=".*not defined in the InferenceData scheme")
        warnings.filterwarnings("ignore", message=".*not in the InferenceData schema")
        return _az().InferenceData(attrs=dict(attrs or {}), **groups)


def to_inference_data(posterior, stats, names, attrs, *, warmup_posterior=None, warmup_stats=None,
                      extra_groups=None):
    """The result of a run: ``posterior["x"]`` from the (chain, draw, dim) draws with ``param``
    coords ``names``, ``sample_stats`` from {name: (chain, draw)} arrays, top-level ``attrs``;
    ``warmup_posterior`` / ``warmup_sample_stats`` when ``warmup_posterior`` is given;
    ``extra_groups`` {name: xarray.Dataset} added as further groups (any dims, e.g. a
    ``step_stats`` group with dims (chain, step)). An empty stats dict gives no stats group, as
    ArviZ's ``from_dict`` does. ``xarray.DataTree`` on ArviZ 1.x, ``arviz.InferenceData`` on 0.x."""
    groups = {"posterior": _draws_dataset({"x": posterior}, names)}
    if stats:
        groups["sample_stats"] = _draws_dataset(stats)
    warmup = {}
    if warmup_posterior is not None:
        warmup["warmup_posterior"] = _draws_dataset({"x": warmup_posterior}, names)
        if warmup_stats:
            warmup["warmup_sample_stats"] = _draws_dataset(warmup_stats)
    for name, ds in (extra_groups or {}).items():
        if name in groups or name in warmup or name.startswith("warmup_"):
            raise ValueError(f"extra group {name!r} clashes with a standard group")
        groups[name] = ds
    # warmup groups last, the order InferenceData lists them in, so both list the same order
    return from_datasets({**groups, **warmup}, attrs)


def _is_tree(obj) -> bool:
    return hasattr(obj, "children") and hasattr(obj, "to_dataset")


def group_names(result) -> list[str]:
    """The names of the result's groups ("posterior", "sample_stats", ...)."""
    if _is_tree(result):
        return list(result.children)
    return list(result.groups())


def group(result, name):
    """Group ``name`` of the result as a plain ``xarray.Dataset`` (KeyError if absent)."""
    if _is_tree(result):
        if name not in result.children:
            raise KeyError(name)
        return result[name].to_dataset()
    if name not in result.groups():
        raise KeyError(name)
    return result[name]


def _dataset(out):
    """ArviZ 1.x's diagnostics return a DataTree node where 0.x returned a Dataset."""
    return out.to_dataset() if _is_tree(out) else out


def summary(idata, **kwargs):
    """ArviZ's summary with rows named by parameter ("mu", "x[0]"), not "x[mu]", "x[x[0]]". Its
    columns are the installed ArviZ's: both have ``mean``, ``sd``, ``ess_bulk``, ``ess_tail``,
    ``mcse_mean``, ``mcse_sd``; R-hat is ``r_hat``; the interval columns are ``hdi_3%``/``hdi_97%``
    on 0.x and ``eti89_lb``/``eti89_ub`` on 1.x."""
    with _quiet():
        warnings.simplefilter("ignore")
        table = _az().summary(idata, **kwargs)
    table.index = table.index.map(_row_name)
    fmt_map = getattr(table, "_fmt_map", None)  # ArviZ 1.x: display strings keyed by row name
    if isinstance(fmt_map, dict):
        table._fmt_map = {col: {_row_name(i): v for i, v in rows.items()} for col, rows in fmt_map.items()}
    return table


def _row_name(label):
    return re.sub(r"^x\[(.*)\]$", r"\1", label) if isinstance(label, str) else label


def _ess_kwargs(method) -> dict:
    """Tail ESS is the smaller ESS of the 5% and 95% quantile indicators (Vehtari et al. 2021;
    ArviZ 0.x). ArviZ 1.x's default takes the quantiles of its 89% interval instead (and fails on
    arrays without ``prob``); pass the 0.x ones so both report the same numbers."""
    return {"prob": (0.05, 0.95)} if method == "tail" and arviz_major() >= 1 else {}


def ess(idata, method="bulk"):
    """ESS of the posterior's variables, an ``xarray.Dataset`` (``ess(r)["x"]`` has dim param)."""
    with _quiet():
        warnings.simplefilter("ignore")
        return _dataset(_az().ess(idata, method=method, **_ess_kwargs(method)))


def rhat(idata):
    """R-hat of the posterior's variables, an ``xarray.Dataset``."""
    with _quiet():
        warnings.simplefilter("ignore")
        return _dataset(_az().rhat(idata))


def mcse(idata, method="mean"):
    """MCSE of the posterior's variables (or of a Dataset's), an ``xarray.Dataset``."""
    with _quiet():
        warnings.simplefilter("ignore")
        return _dataset(_az().mcse(idata, method=method))


def ess_of(values, method="bulk") -> np.ndarray:
    """ESS of each column of a (chain, draw, k) array."""
    az = _az()
    with _quiet():
        warnings.simplefilter("ignore")
        return np.array([float(az.ess(np.asarray(values[..., j]), method=method, **_ess_kwargs(method)))
                         for j in range(values.shape[-1])])


def rhat_of(values) -> np.ndarray:
    """Rank-normalised split R-hat of each column of a (chain, draw, k) array."""
    az = _az()
    with _quiet():
        warnings.simplefilter("ignore")
        return np.array([float(az.rhat(np.asarray(values[..., j]))) for j in range(values.shape[-1])])


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
    """The (chain, draw, dim) array of x (for a model's target, the unconstrained draws)."""
    if group in ("posterior", "warmup_posterior") and f"unconstrained_{group}" in group_names(idata):
        group = f"unconstrained_{group}"
    return np.asarray(idata[group]["x"].values)


def with_model_posterior(result, to_model):
    """``result`` of a target built from a model (``Target.from_pymc``): ``posterior`` (and
    ``warmup_posterior``) become ``to_model(x)``'s Dataset of the model's variables, and the
    sampler's draws ``x`` move to ``unconstrained_posterior`` (``unconstrained_warmup_posterior``)."""
    groups = {}
    for name in group_names(result):
        ds = group(result, name)
        if name in ("posterior", "warmup_posterior"):
            groups[name] = to_model(ds["x"].values).assign_attrs(ds.attrs)
            groups[f"unconstrained_{name}"] = ds
        else:
            groups[name] = ds
    warmup = [n for n in groups if n.startswith("warmup_") or n == "unconstrained_warmup_posterior"]
    order = [n for n in groups if n not in warmup] + warmup
    return from_datasets({n: groups[n] for n in order}, dict(result.attrs))
