"""The user's log-density, validated once and compiled to a stable function type.

Kernels never see the user's numba dispatcher: a cached kernel that takes a dispatcher is typed
by the dispatcher's identity and recompiles in every new process. Instead the user's functions
are compiled into ``numba.cfunc`` objects with fixed signatures

    logp:      float64(float64[::1] x, *data)
    logp_grad: Tuple(float64, float64[::1])(float64[::1] x, *data)

which numba types as first-class ``FunctionType``s. A kernel is therefore compiled once per
signature (the types of the data, not their values) and served from the on-disk cache to every
target and process with the same data types.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from numba import types
from numba.core.registry import CPUDispatcher

__all__ = ["Target"]

_FD_RTOL = 1e-4  # central differences with h ~ 1e-6 |x| are good to ~1e-8 relative; 1e-4 is slack for curvature
_MAX_TEST_POINTS = 100


@numba.njit(cache=True)
def _call_logp(fn, x, args):
    return fn(x, *args)


@numba.njit(cache=True)
def _call_logp_grad(fn, x, args):
    return fn(x, *args)


def _is_numba_function(f) -> bool:
    return isinstance(f, CPUDispatcher)


def _compile_cfunc(py_func, signature):
    """cfunc with on-disk caching where numba can locate the source (not in an interpreter)."""
    try:
        return numba.cfunc(signature, cache=True)(py_func)
    except RuntimeError as err:  # "cannot cache ... as it uses lifted code" / no locator
        if "cache" not in str(err):
            raise
        return numba.cfunc(signature)(py_func)


def _object_mode_cfunc(py_callable, signature, returns_grad: bool):
    """Wrap a plain Python callable so kernels can call it (slowly, holding the GIL)."""
    if returns_grad:
        @numba.njit
        def call(x):
            with numba.objmode(lp="float64", g="float64[::1]"):
                lp, g = py_callable(x)
                lp = float(lp)
                g = np.ascontiguousarray(g, dtype=np.float64)
            return lp, g
    else:
        @numba.njit
        def call(x):
            with numba.objmode(lp="float64"):
                lp = float(py_callable(x))
            return lp

    def wrapper(x):
        return call(x)

    return numba.cfunc(signature)(wrapper)


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
    """

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
        self.args = tuple(np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in args)
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

    # -- compiled functions ---------------------------------------------------------------------

    @property
    def has_grad(self) -> bool:
        return self._logp_grad_user is not None

    def _build_functions(self):
        if self.is_compiled:
            arg_types = _numba_types_of(self.args)
            kernel_args = self.args
        else:  # object mode: bind the data in Python, kernels get an empty data tuple
            arg_types, kernel_args = (), ()
        self.kernel_args = kernel_args
        lp_sig = types.float64(types.float64[::1], *arg_types)
        lg_sig = types.Tuple((types.float64, types.float64[::1]))(types.float64[::1], *arg_types)
        if self.is_compiled:
            self.logp_fn = _compile_user(self._logp_user, lp_sig, "logp", "a float")
            self.logp_grad_fn = (None if self._logp_grad_user is None else
                                 _compile_user(self._logp_grad_user, lg_sig, "logp_grad",
                                               "a tuple (float, float64 1-D array)"))
        else:
            data = self.args
            lp_user, lg_user = self._logp_user, self._logp_grad_user
            self.logp_fn = _object_mode_cfunc(lambda x: lp_user(x, *data), lp_sig, False)
            self.logp_grad_fn = (None if lg_user is None else
                                 _object_mode_cfunc(lambda x: lg_user(x, *data), lg_sig, True))

    # Targets travel to other processes (Dask, process pools): cfuncs do not pickle, so they are
    # rebuilt on arrival from the user's functions (numba dispatchers pickle by reference).
    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("logp_fn", "logp_grad_fn", "kernel_args"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build_functions()

    # -- evaluation from Python ----------------------------------------------------------------

    def logp(self, x) -> float:
        """log p(x); counted in ``n_logp``."""
        x = self._as_point(x)
        self.n_logp += 1
        return float(_call_logp(self.logp_fn, x, self.kernel_args))

    def logp_grad(self, x):
        """(log p(x), grad log p(x)); counted in ``n_grad``."""
        if self.logp_grad_fn is None:
            raise ValueError(f"Target {self.name!r} has no logp_grad")
        x = self._as_point(x)
        self.n_grad += 1
        lp, g = _call_logp_grad(self.logp_grad_fn, x, self.kernel_args)
        return float(lp), g

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
        raise ValueError(
            f"logp is not finite at 0 nor at {_MAX_TEST_POINTS - 1} uniform(-2, 2) points; "
            "pass test_point= inside the support")

    def _checked_logp(self, x) -> float:
        value = self.logp(x)
        if isinstance(value, float) and np.isnan(value):
            return -np.inf  # treated as outside the support while searching for a test point
        return value

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
            fd = self._finite_difference_gradient(x)
            bad = np.abs(g - fd) > _FD_RTOL * (1.0 + np.abs(fd))
            if np.any(bad):
                i = int(np.argmax(bad))
                raise ValueError(
                    f"logp_grad disagrees with finite differences of logp at the test point: "
                    f"component {i} ({self.names[i]}) is {g[i]!r}, finite differences give {fd[i]!r}. "
                    "Pass check_grad=False to skip this check.")

    def _finite_difference_gradient(self, x):
        fd = np.empty(self.dim)
        for i in range(self.dim):
            h = 1e-6 * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (self.logp(up) - self.logp(down)) / (2.0 * h)
        return fd

    def __repr__(self):
        grad = "with gradient" if self.has_grad else "no gradient"
        return f"Target({self.name!r}, dim={self.dim}, {grad})"


def _validate_dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return int(dim)


def _validate_names(names, dim):
    if names is None:
        return [f"x[{i}]" for i in range(dim)]
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
        except (ValueError, TypeError) as err:
            raise ValueError(f"args[{i}] of type {type(a).__name__} cannot be passed to numba: {err}") from None
    return tuple(arg_types)


def _compile_user(func, signature, what, expected):
    try:
        return _compile_cfunc(func.py_func, signature)
    except numba.core.errors.TypingError as err:
        raise ValueError(
            f"{what} could not be compiled for x: float64[::1] and args of types "
            f"{signature.args[1:]}; it must accept (x, *args) and return {expected}. "
            f"numba said:\n{err}") from None
