"""The user's log-density, validated once and compiled to a stable function type.

Kernels never see the user's numba dispatcher: a cached kernel that takes a dispatcher is typed
by the dispatcher's identity and recompiles in every new process. Nor do they see the types of
the user's data. The user's functions are wrapped in ``numba.cfunc`` guards of the fixed types

    logp:      float64(float64[::1] x, int64 data address)
    logp_grad: Tuple(float64, float64[::1])(float64[::1] x, int64 data address)

which numba types as first-class ``FunctionType``s, and kernels call ``fn(x, *kernel_args)``
with ``kernel_args == (address,)``. A kernel is therefore compiled once per machine and served
from the on-disk cache to every target and process. Per data signature only a small function
without a try block is compiled, which rebuilds the data arrays from the address and calls the
user's function; the cfunc that catches its exceptions is one for every target, compiled once
per machine (see "the guard" and "type erasure" below).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import inspect
import os
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numba
import numba.extending
import numba.np.numpy_support
import numpy as np
from numba import types
from numba.core.registry import CPUDispatcher


__all__ = ["Target"]

_FD_RTOL = 1e-4  # central differences with h ~ 1e-6 |x| are good to ~1e-8 relative; 1e-4 is slack for curvature
_MAX_TEST_POINTS = 100


@numba.njit(cache=True)
def _call_logp_grad(fn, x, args):
    return fn(x, *args)


@numba.njit(cache=True)
def _call_logp(fn, x, args):
    return fn(x, *args)


def _is_numba_function(f) -> bool:
    return isinstance(f, CPUDispatcher)


# -- the guard ----------------------------------------------------------------------------------
#
# Kernels call the user's function through a cfunc, which cannot pass an exception on: numba
# prints "Exception ignored" and returns a garbage default (0.0, or a null gradient array that
# crashes the kernel). So the cfunc is a guard around the user's dispatcher: an exception (a
# division by zero at an extreme point, say) or a gradient of the wrong length becomes NaN, which
# the samplers treat as a rejected proposal or a divergence. A gradient the user returns as
# float64[::1] is passed on as it is ("logp_grad_view"); only other dtypes or layouts are copied
# ("logp_grad").
#
# A try block is what a new data signature paid for most: numba compiled the guard with one in
# ~1.5 s of CPU against ~0.5 s without (benchmarks/first_draw_split.py). So for erased data (the
# usual case) the guard is split in two:
# - per data signature, ``_INNERS``: a plain function without try, of the fixed type
#   ``(int64 x address, int64 x size, int64 data address)``, that rebuilds x and the data and
#   calls the user's function. x arrives as an address because an exception skips the release of
#   whatever references the raising frames hold: an x passed as an array would keep one more
#   reference per exception, and never be freed;
# - one cfunc per kind for every target (``_erased_guard``), compiled once per machine, that calls
#   the inner function through its address with numba's own calling convention
#   (``_caught_call``), which returns an error status instead of raising, and turns an error into
#   NaN. The inner's address travels in the kernel_args block, next to the data's.
# Data that keep their types in the kernels (strings, lists, ...) still get a guard with a try
# block per target (``_GUARDS``): they cannot share a signature anyway.
_INNERS = {
    "logp": """
def inner(xp, n{params}):
    x = carray(_pointer(xp, np.float64), n)
{prelude}    return float(user(x{call}))
""",
    "logp_grad": """
def inner(xp, n{params}):
    x = carray(_pointer(xp, np.float64), n)
{prelude}    lp, g = user(x{call})
    out = np.empty(x.size)
    if g.size != x.size:
        for i in range(x.size):
            out[i] = np.nan
        return np.nan, out
    for i in range(x.size):  # any dtype or layout the user returns, as float64[::1]
        out[i] = g[i]
    return float(lp), out
""",
    "logp_grad_view": """
def inner(xp, n{params}):
    x = carray(_pointer(xp, np.float64), n)
{prelude}    lp, g = user(x{call})
    if g.size != x.size:
        out = np.empty(x.size)
        for i in range(x.size):
            out[i] = np.nan
        return np.nan, out
    return float(lp), g
""",
}

_GUARDS = {
    "logp": """
def guarded(x{params}):
{prelude}    ok = True
    try:
        lp = user(x{call})
    except Exception:
        ok = False
    if not ok:
        return np.nan
    return float(lp)
""",
    "logp_grad": """
def guarded(x{params}):
{prelude}    ok = True
    try:
        lp, g = user(x{call})
    except Exception:
        ok = False
    if not ok or g.size != x.size:
        return np.nan, np.full(x.size, np.nan)
    out = np.empty(x.size)  # any dtype or layout the user returns, as float64[::1]
    for i in range(x.size):
        out[i] = g[i]
    return float(lp), out
""",
    "logp_grad_view": """
def guarded(x{params}):
{prelude}    ok = True
    try:
        lp, g = user(x{call})
    except Exception:
        ok = False
    if not ok or g.size != x.size:
        return np.nan, np.full(x.size, np.nan)
    return float(lp), g
""",
}


# -- type erasure ------------------------------------------------------------------------------
#
# Kernels are typed by the function type of the cfunc they call and by the type of the data tuple
# they pass on. Were those the user's data types, every new data signature would recompile every
# kernel (NUTS: 14 s quiet, ~100 s on a loaded machine). So the data are erased at the boundary:
# the kernels see the fixed types
#     logp:      float64(float64[::1] x, int64 address)
#     logp_grad: Tuple(float64, float64[::1])(float64[::1] x, int64 address)
# and ``kernel_args == (address,)``, the address of a header of three int64: the addresses of the
# inner logp and logp_grad functions (0 until compiled) and of the data block, which holds, per
# array, its data pointer and shape (scalars sit in one-element arrays). The inner function
# generated for a data layout rebuilds the arrays from the block with ``numba.carray`` (no copy)
# and calls the user's function with them: only that small function is compiled per data
# signature, and the kernels and the guards once per machine. Data numba cannot rebuild from
# memory (strings, lists, typed containers, records, non-contiguous arrays inside tuples) keep
# their own types in the kernels' signature instead.

_ERASED_ARGS = (types.int64,)
_LP_RETURN = types.float64
_LG_RETURN = types.Tuple((types.float64, types.float64[::1]))


@numba.extending.intrinsic
def _address_as_pointer(typingctx, address, dtype):
    """``address`` (an integer) as a pointer to ``dtype`` values, for ``numba.carray``."""
    if not isinstance(address, types.Integer) or not isinstance(dtype, (types.NumberClass, types.DType)):
        return None
    pointee = dtype.instance_type if isinstance(dtype, types.NumberClass) else dtype.dtype
    signature = types.CPointer(pointee)(address, dtype)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


def _pointer(address, dtype):
    """``address`` as a pointer to ``dtype`` values: a ctypes pointer in Python, so that a guard
    also runs uncompiled (a cfunc called from Python runs its Python function), and a raw
    pointer in compiled code."""
    ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
    return ctypes.cast(ctypes.c_void_p(int(address)), ctypes.POINTER(ctype))


@numba.extending.overload(_pointer)
def _pointer_compiled(address, dtype):
    return lambda address, dtype: _address_as_pointer(address, dtype)


class _DataLayout(NamedTuple):
    """How a target's data reach the user's function from inside a guard."""

    erased: bool
    params: str  # the guard's parameters after x
    prelude: str  # guard source that rebuilds the data (before the try block)
    call: str  # the user's arguments after x
    user_types: tuple  # numba types the user's function receives after x
    kernel_types: tuple  # numba types of kernel_args (the cfunc's parameters after x)
    kernel_args: tuple  # what kernels pass after x
    keep: tuple  # arrays that must live as long as the target (the block and scalar boxes)
    header: np.ndarray | None = None  # erased: [inner logp, inner logp_grad, data block] addresses


def _typed_layout(arg_types, kernel_args):
    names = [f"a{i}" for i in range(len(arg_types))]
    params = "".join(f", {n}" for n in names)
    return _DataLayout(False, params, "", params, tuple(arg_types), tuple(arg_types), tuple(kernel_args), ())


def _data_layout(args) -> _DataLayout:
    """The erased layout of ``args`` when numba can rebuild every leaf from memory, else the typed
    one (the data's own types in the kernels' signature)."""
    arg_types = _numba_types_of(args)
    block, keep = [], []

    def rebuild(value, ty):
        """Source that rebuilds ``value`` inside the guard, and the type the user receives."""
        if type(value) is tuple:  # not namedtuples: their class cannot be named in the guard
            parts = [rebuild(v, t) for v, t in zip(value, ty)]
            return "(" + "".join(p + ", " for p, _ in parts) + ")", types.BaseTuple.from_types([t for _, t in parts])
        if isinstance(ty, types.Array):
            if (ty.layout != "C" or ty.ndim < 1 or not isinstance(ty.dtype, (types.Float, types.Integer,
                                                                             types.Complex, types.Boolean))):
                raise _NotErasable
            k = len(block)
            block.extend([value.ctypes.data, *value.shape])
            keep.append(value)
            shape = "".join(f"meta[{k + 1 + i}], " for i in range(ty.ndim))
            return (f"carray(_pointer(meta[{k}], np.{_scalar_name(value.dtype)}), ({shape}))",
                    types.Array(ty.dtype, ty.ndim, "C"))
        if isinstance(ty, (types.Float, types.Integer, types.Complex, types.Boolean)):
            box = np.array([value], dtype=numba.np.numpy_support.as_dtype(ty))
            k = len(block)
            block.append(box.ctypes.data)
            keep.append(box)
            return f"carray(_pointer(meta[{k}], np.{_scalar_name(box.dtype)}), 1)[0]", ty
        raise _NotErasable

    try:
        rebuilt = [rebuild(a, t) for a, t in zip(args, arg_types)]
    except _NotErasable:
        return _typed_layout(arg_types, args)
    meta = np.array(block + [0], dtype=np.int64)  # never empty: its address must be a real one
    header = np.array([0, 0, meta.ctypes.data], dtype=np.int64)
    prelude = f"    meta = carray(_pointer(addr, np.int64), {meta.size})\n"
    return _DataLayout(True, ", addr", prelude, "".join(f", {src}" for src, _ in rebuilt),
                       tuple(t for _, t in rebuilt), _ERASED_ARGS, (_DataAddress(header, (meta, *keep)),),
                       (header, meta, *keep), header)


class _DataAddress(int):
    """The header's address as kernels receive it (an int64), holding the header, the data block
    and every array it points into alive as long as anything holds it: ``kernel_args`` may
    outlive its Target (``fn, args = t.logp_grad_fn, t.kernel_args``), and a freed block would be
    read as garbage."""

    def __new__(cls, header, keep):
        self = super().__new__(cls, header.ctypes.data)
        self.keep = (header, *keep)
        return self

    def __reduce__(self):  # a copy in another process would point nowhere: travel as a plain int
        return int, (int(self),)



class _NotErasable(Exception):
    pass


def _scalar_name(dtype) -> str:
    """The numpy scalar type's name as the guard spells it (``np.bool`` is numpy 2 only)."""
    return "bool_" if dtype == np.bool_ else dtype.name


_GUARD_CACHE = {}  # (user function, kind, layout) -> guard cfunc or inner address: one compile per process
_INNER_BY_ADDRESS = {}  # inner function's address -> its dispatcher (keeps its code alive; uncompiled guards)


def _guarded_cfunc(user, layout, kind):
    """The cfunc kernels call for ``kind`` ("logp" or "logp_grad"): for erased data the guard
    shared by every target, after writing the address of this layout's inner function into the
    target's header; for typed data a guard of its own."""
    if layout.header is None:
        return _typed_guard(user, layout, kind)
    layout.header[0 if kind == "logp" else 1] = _inner_address(user, layout, kind)
    return _erased_guard(kind)


def _inner_address(user, layout, kind):
    """Compile (or load from the cache) the per-layout function without try, ``_INNERS[kind]``,
    and return the address of its native code (numba's calling convention, not a C one)."""
    key = ("inner", user, kind, layout.params, layout.prelude, layout.call, layout.user_types)
    if key not in _GUARD_CACHE:
        if kind == "logp_grad" and _returns_contiguous_float64(user, (types.float64[::1], *layout.user_types)):
            kind = "logp_grad_view"
        signature = (_LP_RETURN if kind == "logp" else _LG_RETURN)(types.int64, types.int64, *_ERASED_ARGS)
        inner, cache = _function_from_source(user, _INNERS[kind].format(
            params=layout.params, prelude=layout.prelude, call=layout.call), "inner")
        dispatcher = numba.njit(signature, cache=cache)(inner)
        result = dispatcher.overloads[signature.args]
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        _INNER_BY_ADDRESS[address] = dispatcher
        _GUARD_CACHE[key] = address
    return _GUARD_CACHE[key]


def _typed_guard(user, layout, kind):
    signature = (_LP_RETURN if kind == "logp" else _LG_RETURN)(types.float64[::1], *layout.kernel_types)
    key = (user, kind, layout.params, layout.prelude, layout.call, layout.user_types)
    if key not in _GUARD_CACHE:
        if kind == "logp_grad" and _returns_contiguous_float64(user, (types.float64[::1], *layout.user_types)):
            kind = "logp_grad_view"
        guarded, cache = _function_from_source(user, _guard_source(kind, layout), "guarded")
        _GUARD_CACHE[key] = numba.cfunc(signature, cache=cache)(guarded)
    return _GUARD_CACHE[key]


def _function_from_source(user, source, name):
    """Function ``name`` of ``source`` (a template filled in for a layout, calling ``user``), and
    whether numba may cache it: from a generated module file when the user's function can be
    imported by name, else exec'd (a notebook's function, a closure), which numba cannot cache."""
    module = _guard_module(user, source)
    if module is not None:
        return getattr(module, name), True
    namespace = {"user": user, "np": np, "carray": numba.carray, "_pointer": _pointer}
    exec(source, namespace)  # noqa: S102 - fixed templates
    return namespace[name], False


# The guards of erased targets, one per kind for every target; ``header`` is the address kernels
# pass (kernel_args[0]). Uncompiled (a cfunc called from Python runs these), ``_caught_*`` call
# the inner's dispatcher inside a Python try.

def _erased_logp(x, header):
    h = numba.carray(_pointer(header, np.int64), 3)
    ok, lp = _caught_logp(h[0], x, h[2])
    if not ok:
        return np.nan
    return lp


def _erased_logp_grad(x, header):
    h = numba.carray(_pointer(header, np.int64), 3)
    ok, out = _caught_logp_grad(h[1], x, h[2])
    if not ok:
        g = np.empty(x.size)
        for i in range(x.size):
            g[i] = np.nan
        return np.nan, g
    return out


@functools.cache
def _erased_guard(kind):
    """The shared guard cfunc for ``kind``, compiled once per machine (numba's cache) and once
    per process."""
    if kind == "logp":
        return numba.cfunc(_LP_RETURN(types.float64[::1], *_ERASED_ARGS), cache=True)(_erased_logp)
    return numba.cfunc(_LG_RETURN(types.float64[::1], *_ERASED_ARGS), cache=True)(_erased_logp_grad)


def _caught_call(restype):
    """An intrinsic ``(address, x address, x size, data) -> (ok, value)`` that calls the inner
    function at ``address`` (of type ``restype(int64, int64, int64)``) with numba's calling
    convention, which returns a status code rather than raising: ``ok`` is False, and ``value``
    zeros, when the function raised. As numba's own ``try``/``except`` does, the exception's
    record is dropped."""
    argtys = (types.int64, types.int64, types.int64)

    @numba.extending.intrinsic
    def caught(typingctx, address, xp, n, data):
        if not all(isinstance(a, types.Integer) for a in (address, xp, n, data)):
            return None
        signature = types.Tuple((types.boolean, restype))(address, xp, n, data)

        def codegen(context, builder, sig, args):
            fnty = context.call_conv.get_function_type(restype, argtys)
            callee = builder.inttoptr(args[0], fnty.as_pointer())
            values = [context.cast(builder, v, t, types.int64) for v, t in zip(args[1:], sig.args[1:])]
            status, value = context.call_conv.call_function(builder, callee, restype, argtys, values)
            return context.make_tuple(builder, sig.return_type, (builder.not_(status.is_error), value))

        return signature, codegen

    return caught


_caught_logp_native = _caught_call(_LP_RETURN)
_caught_logp_grad_native = _caught_call(_LG_RETURN)


def _caught_logp(address, x, data):
    try:
        return True, _INNER_BY_ADDRESS[int(address)](x.ctypes.data, x.size, data)
    except Exception:  # noqa: BLE001 - as the compiled guard: any exception is NaN
        return False, np.nan


def _caught_logp_grad(address, x, data):
    try:
        return True, _INNER_BY_ADDRESS[int(address)](x.ctypes.data, x.size, data)
    except Exception:  # noqa: BLE001
        return False, (np.nan, np.full(x.size, np.nan))


@numba.extending.overload(_caught_logp)
def _caught_logp_compiled(address, x, data):
    return lambda address, x, data: _caught_logp_native(address, x.ctypes.data, x.size, data)


@numba.extending.overload(_caught_logp_grad)
def _caught_logp_grad_compiled(address, x, data):
    return lambda address, x, data: _caught_logp_grad_native(address, x.ctypes.data, x.size, data)


def _returns_contiguous_float64(user, arg_types) -> bool:
    """Whether the user's ``logp_grad`` compiled for these argument types (x first) returns its
    gradient as float64[::1] (compiling it now, as the guard would)."""
    arg_types = tuple(arg_types)
    user.compile(arg_types)  # a TypingError here is the user's, reported as the guard's would be
    result = user.overloads.get(arg_types)
    if result is None:
        return False
    ret = result.signature.return_type
    if not isinstance(ret, types.BaseTuple) or len(ret) != 2:
        return False
    grad = ret[1]
    return (isinstance(grad, types.Array) and grad.dtype == types.float64 and grad.ndim == 1
            and grad.layout == "C")


def _guard_source(kind, layout):
    return _GUARDS[kind].format(params=layout.params, prelude=layout.prelude, call=layout.call)


def _guard_module(user, source):
    """A generated module of ``source`` that imports the user's function by name, so that numba
    can cache the compiled code of its functions on disk. The file name hashes the user's source, the
    guard's (which spells out the data layout) and numba's version, so an edited function gets a
    new guard. Returns None when the function cannot be imported by name or the cache directory
    is not writable."""
    func = user.py_func
    module, qualname = getattr(func, "__module__", None), func.__qualname__
    if (module in (None, "__main__") or "." in qualname or "<" in qualname
            or not all(part.isidentifier() for part in module.split("."))  # runpy's "<run_path>"
            or getattr(sys.modules.get(module), qualname, None) is not user):
        return None
    try:
        user_source = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    digest = hashlib.sha1(f"{module}:{qualname}:{user_source}:{source}:{numba.__version__}".encode()).hexdigest()
    name = f"mcsample_guard_{digest[:20]}"
    directory = Path(os.environ.get("MCSAMPLE_CACHE_DIR", Path.home() / ".cache" / "mcsample")) / "guards"
    path = directory / f"{name}.py"
    try:
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            text = (f"# generated by mcsample.target for {module}.{qualname}\n"
                    "import numpy as np\nfrom numba import carray\nfrom mcsample.target import _pointer\n"
                    f"from {module} import {qualname} as user\n" + source)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)  # atomic: concurrent processes never see half a file
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod  # numba's cache re-imports the module by name on load
            spec.loader.exec_module(mod)
    except (OSError, ImportError, SyntaxError):
        return None
    if mod.user is not user:  # another object under that name: do not trust the cache
        return None
    return mod


# As the compiled guards do: an exception raised inside the cfunc would be printed and dropped by
# numba ("Exception ignored"), the kernel receiving 0.0 (a flat density where the function failed,
# so chains ran away) or a gradient of the wrong length. So both become NaN, a rejected proposal.
def _python_logp(f, x):
    try:
        return float(f(x))
    except Exception:  # noqa: BLE001 - any failure of the user's function at x
        return np.nan


def _python_logp_grad(f, x):
    try:
        lp, g = f(x)
        g = np.ascontiguousarray(g, dtype=np.float64)
        if g.shape == x.shape:
            return float(lp), g
    except Exception:  # noqa: BLE001
        pass
    return np.nan, np.full(x.size, np.nan)


def _object_mode_cfunc(py_callable, returns_grad: bool):
    """Wrap a plain Python callable so kernels can call it (slowly, holding the GIL). It has the
    erased signature (its data are bound in Python; the address is ignored), so object-mode
    targets share the kernels compiled for every other target."""
    if returns_grad:
        @numba.njit
        def call(x):
            with numba.objmode(lp="float64", g="float64[::1]"):
                lp, g = _python_logp_grad(py_callable, x)
            return lp, g
    else:
        @numba.njit
        def call(x):
            with numba.objmode(lp="float64"):
                lp = _python_logp(py_callable, x)
            return lp

    def wrapper(x, addr):
        return call(x)

    signature = (_LG_RETURN if returns_grad else _LP_RETURN)(types.float64[::1], *_ERASED_ARGS)
    return numba.cfunc(signature)(wrapper)


class _ReturnTypeError(ValueError):
    """The user's function returned the wrong kind of value (not retried at other points)."""


class Target:
    """An unnormalized log-density on R^dim, with an optional gradient.

    Parameters
    ----------
    logp : callable
        ``logp(x, *args) -> float``; ideally ``@numba.njit``. Plain Python callables work in
        numba's object mode (one warning, then slow).
    dim : int
        Length of ``x``.
    logp_grad : callable, optional
        ``logp_grad(x, *args) -> (float, float64[::1])``. Needed by gradient-based samplers.
    args : tuple
        Data passed to both functions after ``x``. Keep data here rather than in globals:
        numba freezes global arrays into the compiled code.
    names : list of str, optional
        Parameter names, ``x[0], x[1], ...`` by default.
    name : str, optional
        The target's name in tables and plots.
    check_grad : bool
        Compare ``logp_grad`` with central finite differences of ``logp`` at the test point.
    test_point : array, optional
        Where validation evaluates; by default 0, then uniform(-2, 2) draws until finite.

    Evaluations made through :meth:`logp` and :meth:`logp_grad` from Python are counted in
    ``n_logp`` and ``n_grad``; kernels count their own and report them per draw.

    ``model`` is None, or for a target built from a model (:meth:`from_pymc`) what maps its
    unconstrained draws back to the model's variables; ``sample()`` uses it.
    """

    model = None

    @classmethod
    def from_pymc(cls, model=None, *, name=None, check_grad=True):
        """A Target on a PyMC model's unconstrained flat vector, Jacobians included, its log
        density and gradient compiled to numba by PyTensor; ``sample()`` of it returns the model's
        variables with PyMC's dims and coords. Needs ``pip install 'mcsample[pymc]'``; see
        :mod:`mcsample._pymc`."""
        from ._pymc import from_pymc
        return from_pymc(model, name=name, check_grad=check_grad, target_class=cls)

    def __init__(self, logp, dim, *, logp_grad=None, args=(), names=None, name=None,
                 check_grad=True, test_point=None):
        self.dim = _validate_dim(dim)
        if not callable(logp):
            raise ValueError(f"logp must be callable, got {type(logp).__name__}")
        if logp_grad is not None and not callable(logp_grad):
            raise ValueError(f"logp_grad must be callable or None, got {type(logp_grad).__name__}")
        if isinstance(args, list):
            args = tuple(args)
        if not isinstance(args, tuple):
            raise ValueError(f"args must be a tuple of data arguments, got {type(args).__name__}")
        self.args = tuple(_as_kernel_data(a) for a in args)
        self.names = _validate_names(names, self.dim)
        self.name = str(name) if name is not None else getattr(logp, "__name__", "target")
        self._logp_user = logp
        self._logp_grad_user = logp_grad
        self.is_compiled = _is_numba_function(logp) and (logp_grad is None or _is_numba_function(logp_grad))
        if not self.is_compiled:
            warnings.warn(
                f"Target {self.name!r}: logp/logp_grad are plain Python callables; they run in "
                "numba object mode, holding the GIL, and are slow. Decorate them with @numba.njit.",
                stacklevel=2,
            )
        self.n_logp = 0
        self.n_grad = 0
        self._build_functions()
        self.test_point = self._find_test_point(test_point)
        if logp_grad is not None:
            self._check_gradient(self.test_point, check_grad)
            _ = self.logp_grad_fn  # compile now: its type errors belong to construction

    # -- compiled functions ---------------------------------------------------------------------

    @property
    def has_grad(self) -> bool:
        return self._logp_grad_user is not None

    def _build_functions(self):
        """The data layout now; the kernel functions on first use (a new data signature compiles
        a small inner function per kind, ~0.2-0.5 s, and NUTS never needs ``logp_fn``)."""
        if self.is_compiled:
            self._layout = _data_layout(self.args)
        else:  # object mode: the data are bound in Python; the address is a placeholder
            self._layout = _DataLayout(True, ", addr", "", "", (), _ERASED_ARGS, (0,), ())
        self.kernel_args = self._layout.kernel_args
        self._logp_fn = self._logp_grad_fn = None

    @property
    def logp_fn(self):
        """``logp`` as a cfunc of fixed type for the kernels, called as ``fn(x, *kernel_args)``;
        exceptions inside it give NaN."""
        if self._logp_fn is None:
            self._logp_fn = self._kernel_function(self._logp_user, "logp", "a float")
        return self._logp_fn

    @property
    def logp_grad_fn(self):
        """``logp_grad`` as a cfunc of fixed type for the kernels, or None without a gradient."""
        if self._logp_grad_fn is None and self._logp_grad_user is not None:
            self._logp_grad_fn = self._kernel_function(self._logp_grad_user, "logp_grad",
                                                       "a tuple (float, float64 1-D array)")
        return self._logp_grad_fn

    def _kernel_function(self, user, what, expected):
        if self.is_compiled:
            return _compile_user(user, self._layout, what, expected)
        data = self.args
        return _object_mode_cfunc(lambda x: user(x, *data), what == "logp_grad")

    # Targets travel to other processes (Dask, process pools): cfuncs do not pickle and the data
    # block holds addresses, so both are rebuilt on arrival from the user's functions (numba
    # dispatchers pickle by reference) and the data.
    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_logp_fn", "_logp_grad_fn", "kernel_args", "_layout"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build_functions()

    def __reduce_ex__(self, protocol):
        # a target built from a model (PyMC) travels as its model, compiled once per process on arrival
        reduce = getattr(self.model, "_reduce_target", None)
        return reduce(self) if reduce is not None else super().__reduce_ex__(protocol)

    # -- evaluation from Python ----------------------------------------------------------------

    def logp(self, x) -> float:
        """log p(x); counted in ``n_logp``. Evaluated by the user's own function, so that its
        exceptions surface here (inside the samplers they count as a rejected proposal)."""
        x = self._as_point(x)
        self.n_logp += 1
        value = self._logp_user(x, *self.args)
        if not isinstance(value, (float, int, np.floating, np.integer)) or isinstance(value, bool):
            raise _ReturnTypeError(f"logp must return a float, got {type(value).__name__}")
        return float(value)

    def logp_grad(self, x):
        """(log p(x), grad log p(x)); counted in ``n_grad``."""
        if self._logp_grad_user is None:
            raise ValueError(f"Target {self.name!r} has no logp_grad")
        x = self._as_point(x)
        self.n_grad += 1
        out = self._logp_grad_user(x, *self.args)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _ReturnTypeError(f"logp_grad must return a tuple (float, gradient), got {type(out).__name__}")
        return float(out[0]), np.asarray(out[1], dtype=np.float64)

    def _as_point(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {x.shape}")
        return x

    # -- validation ----------------------------------------------------------------------------

    def _find_test_point(self, test_point):
        if test_point is not None:
            x = self._as_point(test_point)
            lp = self._checked_logp(x)
            if not np.isfinite(lp):
                raise ValueError(f"logp at the given test_point is {lp}, not finite")
            return x
        rng = np.random.default_rng(0)
        x = np.zeros(self.dim)
        for _ in range(_MAX_TEST_POINTS):
            if np.isfinite(self._checked_logp(x)):
                return x
            x = rng.uniform(-2.0, 2.0, self.dim)
        first = getattr(self, "_first_error", None)
        cause = "" if first is None else f"; logp raised {type(first).__name__}: {first}"
        raise ValueError(
            f"logp is not finite at 0 nor at {_MAX_TEST_POINTS - 1} uniform(-2, 2) points{cause}; "
            "pass test_point= inside the support") from first

    def _checked_logp(self, x) -> float:
        """logp for the test-point search: NaN and exceptions count as outside the support; the
        first exception is kept to explain a search that finds nothing."""
        try:
            value = self.logp(x)
        except _ReturnTypeError:
            raise
        except (TypeError, numba.core.errors.TypingError) as err:
            # a call that cannot work anywhere (wrong number or types of arguments), not a point
            # outside the support: say so now rather than after 100 points
            raise ValueError(
                f"calling logp(x, *args) with x of shape ({self.dim},) and {len(self.args)} data "
                f"argument(s) raised {type(err).__name__}: {_plain_message(err)}") from err
        except Exception as err:  # the user's function may fail off its support
            self._first_error = getattr(self, "_first_error", None) or err
            return -np.inf
        return -np.inf if np.isnan(value) else value

    def _check_gradient(self, x, check_grad: bool):
        lp, g = self.logp_grad(x)
        g = np.asarray(g)
        if g.shape != (self.dim,):
            raise ValueError(f"logp_grad must return a gradient of shape ({self.dim},), got {g.shape}")
        if not np.isfinite(lp) or not np.all(np.isfinite(g)):
            raise ValueError(f"logp_grad is not finite at the test point {x}: value {lp}, gradient {g}")
        lp_ref = self.logp(x)
        if not np.isclose(lp, lp_ref, rtol=1e-8, atol=1e-8):
            raise ValueError(f"logp_grad's value {lp!r} differs from logp's {lp_ref!r} at the test point")
        if check_grad:
            fd, rounding = self._finite_difference_gradient(x)
            bad = np.abs(g - fd) > _FD_RTOL * (1.0 + np.abs(fd)) + rounding
            if np.any(bad):
                i = int(np.argmax(bad))
                raise ValueError(
                    f"logp_grad disagrees with finite differences of logp at the test point: "
                    f"component {i} ({self.names[i]}) is {g[i]!r}, finite differences give {fd[i]!r}. "
                    "Pass check_grad=False to skip this check.")

    def _finite_difference_gradient(self, x):
        """Central differences and, per component, a bound on their rounding error: logp's value
        is only good to a few ulps of its magnitude, so with |logp| ~ 1e9 (a parameter sd 1e-2
        away from 0 at 1e3) the difference quotient is unreliable to ~1, whatever the gradient."""
        fd = np.empty(self.dim)
        rounding = np.empty(self.dim)
        for i in range(self.dim):
            h = 1e-6 * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            lp_up, lp_down = self.logp(up), self.logp(down)
            fd[i] = (lp_up - lp_down) / (2.0 * h)
            rounding[i] = 8.0 * np.finfo(float).eps * max(abs(lp_up), abs(lp_down)) / (2.0 * h)
        return fd, rounding

    def __repr__(self):
        grad = "with gradient" if self.has_grad else "no gradient"
        return f"Target({self.name!r}, dim={self.dim}, {grad})"


def _validate_dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return int(dim)


def _as_kernel_data(a):
    """An array argument as numba can take it without changing its values: C-contiguous (a copy of
    a Fortran-ordered or strided one) and in native byte order (data read from files often are
    not, and numba rejects them). 0-d arrays stay 0-d (``ascontiguousarray`` would make them 1-d)."""
    if not isinstance(a, np.ndarray):
        return a
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a if a.ndim == 0 else np.ascontiguousarray(a)


def _plain_message(err) -> str:
    """An exception's message without the terminal colour codes numba puts in its own."""
    import re
    return re.sub(r"\x1b\[[0-9;]*m", "", str(err))


def _validate_names(names, dim):
    if names is None:
        return [f"x[{i}]" for i in range(dim)]
    if isinstance(names, str):  # list("ab") would silently be two names
        if dim != 1:
            raise ValueError(f"names must be a list of {dim} names, got the string {names!r}")
        names = [names]
    names = [str(n) for n in names]
    if len(names) != dim:
        raise ValueError(f"names has {len(names)} entries but dim is {dim}")
    if len(set(names)) != dim:
        raise ValueError("names must be unique")
    return names


def _numba_types_of(args):
    arg_types = []
    for i, a in enumerate(args):
        try:
            arg_types.append(numba.typeof(a))
        except (ValueError, TypeError, numba.core.errors.NumbaError) as err:
            raise ValueError(f"args[{i}] of type {type(a).__name__} cannot be passed to numba: "
                             f"{_plain_message(err)}") from None
    return tuple(arg_types)


def _compile_user(func, layout, what, expected):
    try:
        return _guarded_cfunc(func, layout, what)
    except numba.core.errors.TypingError as err:
        raise ValueError(
            f"{what} could not be compiled for x: float64[::1] and args of types "
            f"{layout.user_types}; it must accept (x, *args) and return {expected}. "
            f"numba said:\n{_plain_message(err)}") from None
