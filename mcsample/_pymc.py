"""PyMC models as targets: ``Target.from_pymc(model)``.

A PyMC model's free variables live on constrained spaces (``tau > 0``, simplices, ...); PyMC
maps each onto R^k with a transform and keeps the unconstrained *value variable* (``tau_log__``).
The target here is the joint log density of the value variables, flattened into one vector
``x`` in the order of ``model.free_RVs``, with the log-Jacobians of the transforms included:
the density Stan, nutpie and ``pm.sample`` itself run NUTS on. Its log density and gradient
are one PyTensor graph compiled to numba (PyTensor's numba backend, ``mode="NUMBA"``), the way
nutpie's ``compile_pymc_model(backend="numba")`` does it.

Data. Observed values and ``pm.Data`` containers become inputs of the compiled function and
travel in ``Target.args``, so ``target.model.with_data(y=...)`` gives a target on a new
dataset (same shapes or not) without compiling again. Arrays written into the model as plain
numpy constants (a design matrix used as ``X @ beta`` without ``pm.Data``) are folded into the
compiled graph: a new one means calling ``from_pymc`` again. Wrap them in ``pm.Data``.

Results. ``mc.sample`` of such a target returns the model's variables on their constrained
scale, with PyMC's names, shapes, dims and coords, plus the model's deterministics, in the
``posterior`` group, as ``pm.sample`` does; the sampler's unconstrained draws are kept in the
``unconstrained_posterior`` group (``x``, dim ``param``). The map from one to the other is a
second PyTensor graph, vectorised over all draws at once and run once after sampling.

Travelling (Dask workers, process pools). The compiled functions are closures over PyTensor's
graphs and do not pickle, so such a target pickles as its *model*: the ``pm.Model`` (cloudpickled
once per model, bytes cached), its fingerprint (SHA-256 of those bytes), its name and its current
data. On arrival the process looks the fingerprint up in a per-process cache of compiled models
and compiles the model only when it is missing, so a worker compiles each model once however many
tasks (chain segments, comparison cells, datasets given by ``with_data``) it runs; the data come
with every task. ``travel_counts()`` says how many models this process has compiled and how many
targets have arrived in it. The draws
do not depend on where a chain runs: the same graph compiled by the same PyTensor and numba gives
the same floating-point results (checked against the thread executor on a 2-worker Dask cluster).

Not covered: posterior predictive sampling (use ``pm.sample_posterior_predictive`` on the
result, which has PyMC's layout) and discrete free variables (no sampler here moves on a discrete
space).

This module imports PyMC and PyTensor; ``import mcsample`` never imports it.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np

__all__ = ["from_pymc", "PyMCModel", "travel_counts"]

_OBJECT_MODE = re.compile(r"Numba will use object mode to run (.+?)'s perform method")


def _import_pymc():
    try:
        import pymc
        import pytensor
        import pytensor.tensor as pt
    except ImportError as err:
        raise ImportError("Target.from_pymc needs PyMC and PyTensor: pip install 'mcsample[pymc]'") from err
    return pymc, pytensor, pt


def from_pymc(model=None, *, name=None, check_grad=True, target_class=None):
    """A :class:`mcsample.Target` on ``model``'s unconstrained flat vector (see the module
    docstring). ``model`` defaults to the model of the enclosing ``with`` block.

    Raises ``ValueError`` for a model without free variables, for discrete free variables, and
    for a model whose graph PyTensor cannot compile to numba (naming the op)."""
    pm, _, _ = _import_pymc()
    try:
        model = pm.modelcontext(model)
    except TypeError as err:
        raise ValueError(f"from_pymc needs a pymc.Model, got {type(model).__name__}") from err
    if not isinstance(model, pm.Model):
        raise ValueError(f"from_pymc needs a pymc.Model, got {type(model).__name__}")
    _check_free_variables(model)
    name = str(name) if name is not None else (model.name or "pymc_model")
    info = _compile(model, name, check_grad, target_class)
    return info._target(list(info.data.values()))


def _compile(model, name, check_grad, target_class):
    """The PyMCModel of ``model``: its graphs built and compiled (the expensive part)."""
    _, pytensor, pt = _import_pymc()
    from pytensor.graph.replace import graph_replace
    t0 = time.perf_counter()

    layout = _Layout.of(model)
    x = pt.TensorType("float64", shape=(layout.dim,))("x")
    to_x = {value: x[sl].reshape(shape).astype(value.dtype)
            for value, sl, shape in zip(layout.values, layout.slices, layout.shapes)}
    logp = graph_replace(model.logp(jacobian=True, sum=True), to_x, strict=False)
    grad = pt.grad(logp, x)
    data = _DataInputs.of(model, [logp, grad])
    logp, grad = graph_replace([logp, grad], data.replacements, strict=False)
    inputs = [x, *data.symbolic]
    lg_jit = _compile_numba(pytensor, inputs, [logp, grad], name)
    lp_jit = _compile_numba(pytensor, inputs, [logp], name)
    logp_fn, logp_grad_fn = _numba_functions(lp_jit, lg_jit, data.values, name)
    info = PyMCModel(pm_model=model, layout=layout, data_names=data.names, data=dict(zip(data.names, data.values)),
                     expand=_Expand.of(model, layout, data, pytensor, pt), compile_time=time.perf_counter() - t0,
                     _functions=(logp_fn, logp_grad_fn), _target_class=target_class,
                     _check_grad=check_grad, _name=name)
    with _LOCK:
        _COUNTS["compiled"] += 1
    return info


# -- travelling to other processes -------------------------------------------------------------

_COMPILED = {}  # fingerprint -> PyMCModel compiled (or first pickled) in this process
_COUNTS = {"compiled": 0, "arrived": 0}
_LOCK = threading.RLock()  # a Dask worker may unpickle on several threads at once


class TravelCounts(NamedTuple):
    compiled: int  # models compiled in this process: from_pymc calls and first arrivals
    arrived: int  # PyMC targets unpickled in this process (one per Dask task that carries one)


def travel_counts() -> TravelCounts:
    """How many PyMC models this process has compiled and how many PyMC targets it received."""
    with _LOCK:
        return TravelCounts(**_COUNTS)


@dataclass(frozen=True)
class _Portable:
    """What a PyMC target pickles as, apart from its data: the model and how it was built."""

    fingerprint: str  # SHA-256 of model_bytes: the per-process cache's key
    model_bytes: bytes  # the pm.Model, cloudpickled (models defined in __main__ or a notebook too)
    name: str
    check_grad: bool
    target_class: object


def _rebuild_target(portable, data):
    """Unpickling a PyMC target: its model from this process's cache, compiled on first arrival."""
    with _LOCK:  # two tasks arriving together on one worker compile the model once
        _COUNTS["arrived"] += 1
        info = _COMPILED.get(portable.fingerprint)
        if info is None:
            _import_pymc()
            model = pickle.loads(portable.model_bytes)  # noqa: S301 - our own bytes, sent by the driver
            info = _compile(model, portable.name, portable.check_grad, portable.target_class)
            info._shared["portable"] = portable
            _COMPILED[portable.fingerprint] = info
    # the driver checked the gradient against finite differences when it built the target
    return info._with_values(list(data), check_grad=False)


# -- checks ------------------------------------------------------------------------------------


def _check_free_variables(model):
    if not model.free_RVs:
        raise ValueError("the PyMC model has no free variables (nothing to sample): every random "
                         "variable is observed")
    discrete = [rv.name for rv in model.free_RVs if not rv.dtype.startswith("float")]
    if discrete:
        raise ValueError(
            f"the PyMC model has discrete free variables: {', '.join(discrete)}. mcsample samples "
            "continuous densities on R^d; its gradient-based samplers (nuts, and the diffusion "
            "families) need a gradient and its gradient-free ones (gpss, the slice samplers, ...) "
            "move on R^d too, so none of them can sample a discrete variable. Marginalise it out "
            "(pymc_extras.marginalize) or use PyMC's own Metropolis / Gibbs steps (pm.sample with "
            "step=pm.Metropolis or pm.CategoricalGibbsMetropolis).")


# -- the flat vector ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where each value variable sits in the flat vector, and the parameter names."""

    values: list  # the model's value variables, in the order of model.free_RVs
    rv_names: list
    shapes: list
    slices: list
    names: list  # one per coordinate of x: "mu", "tau_log__", "theta[0]", "z[0,1]"

    @classmethod
    def of(cls, model):
        point = model.initial_point()
        values = [model.rvs_to_values[rv] for rv in model.free_RVs]
        shapes, slices, names, start = [], [], [], 0
        for value in values:
            shape = tuple(int(s) for s in np.shape(point[value.name]))
            size = int(np.prod(shape, dtype=int))
            shapes.append(shape)
            slices.append(slice(start, start + size))
            start += size
            if shape == ():
                names.append(value.name)
            else:
                names.extend(f"{value.name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape))
        return cls(values, [rv.name for rv in model.free_RVs], shapes, slices, names)

    @property
    def dim(self):
        return self.slices[-1].stop

    def initial_point(self, model):
        """PyMC's initial point (its distributions' moments, transformed) as a flat vector."""
        point = model.initial_point()
        return np.concatenate([np.ravel(point[v.name]).astype(np.float64) for v in self.values])


@dataclass(frozen=True)
class _DataInputs:
    """The model's data as inputs of the compiled function: ``pm.Data`` (shared variables) and
    observed values. Each gets a symbolic input of its dtype and rank, with only its length-1 axes
    fixed (PyTensor does not broadcast an axis it does not know to be 1), so a dataset of another
    size needs no new compile."""

    names: list  # of the arguments
    originals: list  # shared variables and observed constants in the graph
    inputs: list  # what replaces each: a symbolic argument, or a constant for a dim's length
    values: list  # of the arguments
    symbolic: list  # the arguments' symbolic inputs

    @classmethod
    def of(cls, model, graphs):
        import pytensor.tensor as pt
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.basic import Constant
        from pytensor.tensor import TensorType
        try:
            from pytensor.graph.traversal import graph_inputs
        except ImportError:  # PyTensor < 2.32
            from pytensor.graph.basic import graph_inputs

        observed = {model.rvs_to_values[rv]: rv.name for rv in model.observed_RVs}
        shared_names = {var: name for name, var in model.named_vars.items()}
        dim_lengths = {id(v) for v in model.dim_lengths.values()}
        names, originals, inputs, values = [], [], [], []
        for var in graph_inputs(graphs):
            if isinstance(var, SharedVariable):
                if not isinstance(var.type, TensorType):
                    raise ValueError(f"the PyMC model's log density depends on {var} of type {var.type}, "
                                     "which cannot be passed to numba")
                value = var.get_value(borrow=True)
                if id(var) in dim_lengths:  # a dim's length: fixed, as the shapes it sets are
                    names.append(None)
                    originals.append(var)
                    inputs.append(pt.constant(np.asarray(value), dtype=var.dtype))
                    values.append(None)
                    continue
                label = shared_names.get(var, var.name)
            elif isinstance(var, Constant) and var in observed:
                value = var.data
                label = observed[var]
            else:
                continue
            if label is None or label in names:
                raise ValueError(f"the PyMC model's data {var} has no name, or a name used twice")
            value = np.array(value, order="C")  # keeps 0-d arrays 0-d
            names.append(label)
            originals.append(var)
            shape = tuple(1 if s == 1 else None for s in value.shape)
            inputs.append(TensorType(str(value.dtype), shape=shape)(label))
            values.append(value)
        keep = [i for i, n in enumerate(names) if n is not None]
        return cls([names[i] for i in keep], originals, inputs, [values[i] for i in keep],
                   [inputs[i] for i in keep])

    @property
    def replacements(self):
        return dict(zip(self.originals, self.inputs))


# -- compilation -------------------------------------------------------------------------------


def _compile_numba(pytensor, inputs, outputs, name):
    """``pytensor.function(..., mode="NUMBA")``'s numba dispatcher. PyTensor runs an op without a
    numba implementation in numba's object mode (holding the GIL, slow) and only warns: here that
    is an error naming the op."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn = pytensor.function(inputs, outputs, mode="NUMBA", on_unused_input="ignore")
        except NotImplementedError as err:
            raise ValueError(f"PyMC model {name!r}: PyTensor cannot compile it to numba: {err}") from err
    ops = sorted({m.group(1) for w in caught for m in [_OBJECT_MODE.search(str(w.message))] if m})
    for w in caught:
        if not _OBJECT_MODE.search(str(w.message)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if ops:
        raise ValueError(
            f"PyMC model {name!r}: PyTensor has no numba implementation of the op(s) {', '.join(ops)}; "
            "it would run them in Python object mode, holding the GIL, which defeats the compiled "
            "samplers. Give the op a numba implementation (pytensor.link.numba.dispatch.numba_funcify) "
            "or write that part of the model with PyTensor's own operations.")
    return fn.vm.jit_fn


_WRAPPERS = """
def logp_c(x{params}):
    try:
        return lp_jit(x{params})[0].item()
    except Exception:
        return np.nan

def logp_grad_c(x{params}):
    try:
        lp, g = lg_jit(x{params})
        return lp.item(), np.ascontiguousarray(g)
    except Exception:
        return np.nan, np.full(x.size, np.nan)

def logp(x{params}):
    return logp_cfunc(x{params})

def logp_grad(x{params}):
    return logp_grad_cfunc(x{params})
"""


def _numba_functions(lp_jit, lg_jit, data, name):
    """The Target's ``logp(x, *data) -> float`` and ``logp_grad(x, *data) -> (float, array)``.

    PyTensor's compiled graphs return tuples of arrays (the log density as a 0-d array); each is
    wrapped once in a ``numba.cfunc`` of the Target's signature for these data, and the Target is
    given small njit functions that call the cfunc through its address. Calling the graph's
    dispatcher directly would have numba link and re-optimise the whole graph again into every
    function that calls it (the Target's guard: 8-14 s per model on two busy cores). An exception
    inside the graph (a failed shape or parameter check) becomes NaN here, since a cfunc cannot
    pass it on. The functions are written out per number of data arguments: numba mistypes
    ``*data`` when called from compiled code with one array."""
    from numba import types
    arg_types = tuple(numba.typeof(v) for v in data)
    lp_sig = types.float64(types.float64[::1], *arg_types)
    lg_sig = types.Tuple((types.float64, types.float64[::1]))(types.float64[::1], *arg_types)
    namespace = {"lp_jit": lp_jit, "lg_jit": lg_jit, "np": np}
    exec(_WRAPPERS.format(params="".join(f", d{i}" for i in range(len(data)))), namespace)  # noqa: S102
    try:
        namespace["logp_grad_cfunc"] = numba.cfunc(lg_sig)(namespace["logp_grad_c"])
        namespace["logp_cfunc"] = numba.cfunc(lp_sig)(namespace["logp_c"])
    except numba.core.errors.NumbaError as err:
        raise ValueError(f"PyMC model {name!r}: numba could not compile PyTensor's graph:\n{err}") from None
    return numba.njit(namespace["logp"]), numba.njit(namespace["logp_grad"])


# -- back to the model's variables -------------------------------------------------------------


@dataclass
class _Expand:
    """Unconstrained draws (n, dim) -> each free variable on its constrained scale and each
    deterministic, (n, *shape). One graph vectorised over the draws when PyTensor can, else the
    single-draw graph in a loop."""

    names: list
    fn: object
    batched: bool

    @classmethod
    def of(cls, model, layout, data, pytensor, pt):
        from pytensor.graph.replace import graph_replace, vectorize_graph

        variables = list(model.free_RVs) + list(model.deterministics)
        names = [v.name for v in variables]
        x = pt.TensorType("float64", shape=(layout.dim,))("x")
        to_x = {value: x[sl].reshape(shape).astype(value.dtype)
                for value, sl, shape in zip(layout.values, layout.slices, layout.shapes)}
        outputs = graph_replace(model.replace_rvs_by_values(variables), to_x, strict=False)
        outputs = graph_replace(outputs, data.replacements, strict=False)
        inputs = [x, *data.symbolic]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                xs = pt.matrix("xs", dtype="float64")
                batched = vectorize_graph(outputs, replace={x: xs})
                fn = pytensor.function([xs, *data.symbolic], batched, mode="FAST_COMPILE",
                                       on_unused_input="ignore")
                return cls(names, fn, True)
            except Exception:  # an op PyTensor cannot vectorise: one draw at a time
                fn = pytensor.function(inputs, outputs, mode="FAST_COMPILE", on_unused_input="ignore")
                return cls(names, fn, False)

    def __call__(self, flat, data):
        if self.batched:
            return [np.asarray(v) for v in self.fn(flat, *data)]
        rows = [self.fn(row, *data) for row in flat]
        return [np.stack([np.asarray(r[i]) for r in rows]) for i in range(len(self.names))]


@dataclass
class PyMCModel:
    """What a Target built by ``Target.from_pymc`` knows about its model (``target.model``).

    ``posterior(draws)`` maps ``(chain, draw, dim)`` unconstrained draws to an ``xarray.Dataset``
    of the model's variables with PyMC's dims and coords (``mc.sample`` calls it);
    ``with_data(**values)`` is a Target on new data without compiling again; ``data`` holds the
    current values by name; ``compile_time`` is the seconds PyTensor and numba took."""

    pm_model: object
    layout: _Layout
    data_names: list
    data: dict
    expand: _Expand
    compile_time: float
    _functions: tuple = field(repr=False, default=())
    _target_class: object = field(repr=False, default=None)
    _check_grad: bool = field(repr=False, default=True)
    _name: str = field(repr=False, default="pymc_model")
    # made once per compile and shared by with_data's copies: "portable" (the model as bytes, see
    # _portable) and "start" (PyMC's initial point, which PyMC compiles a function to compute)
    _shared: dict = field(repr=False, default_factory=dict, compare=False)

    @property
    def names(self):
        return list(self.layout.names)

    def _target(self, values, check_grad=None):
        if self._target_class is None:
            from .target import Target
            cls = Target
        else:
            cls = self._target_class
        logp, logp_grad = self._functions
        if "start" not in self._shared:
            self._shared["start"] = self.layout.initial_point(self.pm_model)
        start = self._shared["start"]
        check = self._check_grad if check_grad is None else check_grad
        target = cls(logp, self.layout.dim, logp_grad=logp_grad, args=tuple(values), names=self.layout.names,
                     name=self._name, check_grad=check, test_point=_finite_start(logp, start, values))
        target.model = self
        return target

    def _with_values(self, values, check_grad=None):
        """A Target on this compiled model with the data ``values`` (in the order of data_names)."""
        model = PyMCModel(**{**self.__dict__, "data": dict(zip(self.data_names, values))})
        return model._target(values, check_grad)

    def _portable(self):
        """The model as bytes and its fingerprint, made once per compiled model (``with_data``'s
        targets share it). Registers this model in the process's cache, so that a target pickled
        and unpickled here (a process pool's fork, an in-process Dask worker) is not compiled again."""
        with _LOCK:
            if "portable" not in self._shared:
                import cloudpickle
                data = cloudpickle.dumps(self.pm_model)
                portable = _Portable(hashlib.sha256(data).hexdigest(), data, self._name, self._check_grad,
                                     self._target_class)
                _COMPILED.setdefault(portable.fingerprint, self)
                self._shared["portable"] = portable
            return self._shared["portable"]

    def _reduce_target(self, target):
        """``target.__reduce_ex__`` for a target of this model: the model's portable form and the
        target's data (see "Travelling" in the module docstring)."""
        return _rebuild_target, (self._portable(), tuple(target.args))

    def with_data(self, **values):
        """A Target on the same model with some data replaced (by the names in ``data``), reusing
        the compiled functions. Each array keeps its dtype and rank; lengths may change."""
        unknown = sorted(set(values) - set(self.data_names))
        if unknown:
            raise ValueError(f"unknown data {', '.join(unknown)}; this model's data are "
                             f"{', '.join(self.data_names) or 'none (numpy constants are folded into the graph)'}")
        new = dict(self.data)
        for key, value in values.items():
            old = self.data[key]
            value = np.asarray(value)
            if value.ndim != old.ndim:
                raise ValueError(f"data {key!r} must have {old.ndim} dimension(s), got shape {value.shape}")
            if not np.can_cast(value.dtype, old.dtype, casting="same_kind"):
                raise ValueError(f"data {key!r} must be castable to {old.dtype}, got {value.dtype}")
            new[key] = np.ascontiguousarray(value, dtype=old.dtype)
        return self._with_values([new[k] for k in self.data_names])

    def posterior(self, draws):
        """The ``posterior`` group of ``mc.sample``'s result for unconstrained ``draws``
        (chain, draw, dim): every free variable constrained, and every deterministic."""
        import xarray as xr
        draws = np.asarray(draws, dtype=np.float64)
        chains, n = draws.shape[:2]
        flat = np.ascontiguousarray(draws.reshape(chains * n, self.layout.dim))
        data = [self.data[k] for k in self.data_names]
        if flat.shape[0]:
            outputs = self.expand(flat, data)
        else:  # an empty run: shapes from one evaluation
            outputs = [v[:0] for v in self.expand(np.zeros((1, self.layout.dim)), data)]
        model = self.pm_model
        dims_of = getattr(model, "named_vars_to_dims", {}) or {}
        data_vars, coords = {}, {"chain": np.arange(chains), "draw": np.arange(n)}
        for var, values in zip(self.expand.names, outputs):
            values = values.reshape((chains, n) + values.shape[1:])
            dims = tuple(d if d is not None else f"{var}_dim_{i}"
                         for i, d in enumerate(dims_of.get(var) or (None,) * (values.ndim - 2)))
            if len(dims) != values.ndim - 2:
                dims = tuple(f"{var}_dim_{i}" for i in range(values.ndim - 2))
            for d, size in zip(dims, values.shape[2:]):
                labels = model.coords.get(d) if d in model.coords else None
                if d not in coords:
                    coords[d] = np.asarray(labels) if labels is not None and len(labels) == size else np.arange(size)
            data_vars[var] = (("chain", "draw") + dims, values)
        return xr.Dataset(data_vars, coords=coords)


def _finite_start(logp, start, data):
    """PyMC's initial point when the log density is finite there, else None (the Target then
    searches, as for any target)."""
    try:
        return start if np.isfinite(logp(start, *data)) else None
    except Exception:
        return None
