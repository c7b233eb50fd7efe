"""Checkpoints of a ``sample()`` run: write, read and validate them, and restore its chains.

A checkpoint is one netCDF-4 file (written with h5netcdf, so ``xarray.open_dataset`` and ArviZ
read it): JSON in its attributes and plain numeric arrays in its variables, never a pickle.

- ``header`` (JSON): what the run is (sampler, settings, seed, chains, tune, draws, init,
  evaluation budget) and a fingerprint of its target (name, dimension, a hash of the data in
  ``args`` and log p at fixed points), so that a file cannot be resumed with another target or
  other settings.
- ``chains`` (JSON): per chain, how far it got (``done`` of ``total`` iterations or time steps)
  and its run's state as a tree: every attribute of the family's run object (draws so far,
  statistics, kernel and adaptation state, the generator's bit state, scratch buffers) with
  arrays replaced by the names of netCDF variables. Restoring rebuilds the same object graph, so
  a resumed run continues bit for bit where it stopped.
- ``checksum``: SHA-256 of the header, the chains' JSON and every array's bytes.

Why netCDF and not zarr: a checkpoint must be replaced atomically (write a temporary file, then
``os.replace``), which works for one file and not for a zarr store (a directory); and h5netcdf is
already installed with ArviZ 0.x.

Markov chains are checkpointed between any two iterations (warmup included); particle runs
between time steps (the population, its pilot's frame and the per-step diagnostics so far).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import threading
from pathlib import Path

import numpy as np

__all__ = ["CheckpointError", "CheckpointCorrupt", "CheckpointTruncated", "CheckpointMismatch",
           "NotACheckpoint", "read", "write", "snapshot", "restore", "target_fingerprint"]

FORMAT = "mcsample-checkpoint"
VERSION = 1
_LOGP_POINTS = 3  # fixed points at which the fingerprint evaluates log p


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the subclass says why."""


class NotACheckpoint(CheckpointError):
    """The file is a readable netCDF/HDF5 file but not an mcsample checkpoint (or a newer one)."""


class CheckpointCorrupt(CheckpointError):
    """The file's bytes are damaged: unreadable structure or a checksum mismatch."""


class CheckpointTruncated(CheckpointError):
    """The file ends before its own recorded end (an interrupted copy, a full disk)."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint belongs to another run: other target, sampler, settings, seed or sizes."""


# -- the run's state as JSON + arrays ----------------------------------------------------------


class _Encoder:
    """Walks a run object into a JSON tree plus named arrays. Arrays shared between attributes
    (NUTS's ``q`` is its state's ``q``) are stored once and shared again on restore. The run's
    settings and target are not stored here (the header carries them): they become markers that
    ``restore`` replaces with the caller's objects."""

    def __init__(self, settings, target, prefix):
        self.arrays = {}
        self.prefix = prefix
        self._seen = {}
        self._objects, self._keep = {}, []
        self._settings, self._target = settings, target
        self._target_attrs = {id(v): k for k, v in vars(target).items()
                              if isinstance(v, (np.ndarray, tuple)) or callable(v)}

    def __call__(self, value, where="run"):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return {"float": value.hex()}
        if value is self._settings:
            return {"settings": True}
        if value is self._target:
            return {"target": True}
        if id(value) in self._target_attrs and not isinstance(value, (np.ndarray, np.generic)):
            return {"target_attr": self._target_attrs[id(value)]}
        if isinstance(value, np.generic):
            return {"scalar": value.dtype.str, "value": self._array(np.asarray(value))}
        if isinstance(value, np.ndarray):
            return self._array(value)
        if id(value) in self._objects:  # one object reached twice (a pilot chain shares its parent's rng)
            return {"ref": self._objects[id(value)]}
        if isinstance(value, (np.random.Generator, list, dict)) or (
                hasattr(value, "__dict__") and not callable(value) and not isinstance(value, type)):
            self._objects[id(value)] = len(self._objects)
            self._keep.append(value)  # ids stay unique while the walk lasts
        if isinstance(value, np.random.Generator):
            bits = value.bit_generator
            return {"generator": type(bits).__name__, "state": self(bits.state, where + ".rng")}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return {"namedtuple": _class_path(type(value)),
                    "fields": [self(v, f"{where}.{k}") for k, v in zip(value._fields, value)]}
        if isinstance(value, (tuple, list)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {kind: [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"{where}: dict keys must be strings to be checkpointed")
            return {"dict": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if hasattr(value, "__dict__") and not callable(value) and not isinstance(value, type):
            return {"object": _class_path(type(value)),
                    "attrs": {k: self(v, f"{where}.{k}") for k, v in vars(value).items()}}
        raise TypeError(f"cannot checkpoint {where} of type {type(value).__module__}.{type(value).__qualname__}")

    def _array(self, a):
        key = self._seen.get(id(a))
        if key is None:
            key = f"{self.prefix}{len(self.arrays)}"
            self._seen[id(a)] = key
            self.arrays[key] = a.copy()
        return {"array": key, "dtype": a.dtype.str}


def _class_path(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path):
    """Only classes of mcsample itself are rebuilt from a file (a file cannot name arbitrary code)."""
    module, _, qualname = path.partition(":")
    if module != "mcsample" and not module.startswith("mcsample."):
        raise CheckpointCorrupt(f"checkpoint names class {path}, which is not part of mcsample")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _Decoder:
    def __init__(self, arrays, settings, target):
        self.arrays, self.settings, self.target = arrays, settings, target
        self._built = {}
        self._objects = []  # in the encoder's order: a "ref" is an index here

    def __call__(self, node):
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if "float" in node:
            return float.fromhex(node["float"])
        if "array" in node:
            key = node["array"]
            if key not in self._built:  # shared arrays stay shared
                self._built[key] = self.arrays[key]
            return self._built[key]
        if "settings" in node:
            return self.settings
        if "target" in node:
            return self.target
        if "target_attr" in node:
            return getattr(self.target, node["target_attr"])
        if "scalar" in node:
            return np.dtype(node["scalar"]).type(self(node["value"])[()])
        if "ref" in node:
            return self._objects[node["ref"]]
        if "generator" in node:
            bits = getattr(np.random, node["generator"])()
            gen = np.random.Generator(bits)
            self._objects.append(gen)
            bits.state = self(node["state"])
            return gen
        if "namedtuple" in node:
            return _import_class(node["namedtuple"])(*[self(v) for v in node["fields"]])
        if "tuple" in node:
            return tuple(self(v) for v in node["tuple"])
        if "list" in node:
            out = []
            self._objects.append(out)
            out.extend(self(v) for v in node["list"])
            return out
        if "dict" in node:
            out = {}
            self._objects.append(out)
            out.update({k: self(v) for k, v in node["dict"].items()})
            return out
        if "object" in node:
            cls = _import_class(node["object"])
            obj = cls.__new__(cls)
            self._objects.append(obj)
            obj.__dict__.update({k: self(v) for k, v in node["attrs"].items()})
            return obj
        raise CheckpointCorrupt(f"unknown node in a checkpoint's state: {sorted(node)}")


def snapshot(run, done, chain):
    """(state, arrays): ``run``'s whole state after ``done`` units as a JSON-able dict and a dict
    of arrays named ``c{chain}_*``. Safe to call between two ``advance`` calls only."""
    enc = _Encoder(run.settings, run.target, f"c{chain}_")
    tree = enc(run)
    return {"chain": chain, "done": int(done), "total": int(run.total), "run": tree}, enc.arrays


def restore(state, arrays, settings, target):
    """The run object of ``snapshot``, attached to the caller's ``settings`` and ``target``."""
    return _Decoder(arrays, settings, target)(state["run"])


def extend(run, draws):
    """Grow a Markov chain's output buffers to ``tune + draws`` iterations (``mc.resume`` with more
    draws): iteration i of the longer run is iteration i of this one."""
    total = run.tune + draws
    if total < run.total:
        raise ValueError(f"cannot shorten a run to {draws} draws: it was started with {run.total - run.tune}")
    if total == run.total:
        return run

    def grow(a):
        out = np.zeros((total,) + a.shape[1:], dtype=a.dtype)
        out[:a.shape[0]] = a
        return out

    run.draws = grow(run.draws)
    run.stats = {k: grow(v) for k, v in run.stats.items()}
    run.n_logp, run.n_grad = grow(run.n_logp), grow(run.n_grad)
    run.total = total
    return run


# -- what the run is -----------------------------------------------------------------------------


def _hash_data(args):
    h = hashlib.sha256()
    for a in args:
        if isinstance(a, np.ndarray):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(repr(a).encode())
    return h.hexdigest()


def target_fingerprint(target):
    """Name, dimension, a hash of ``args`` and log p (hex floats) at a few fixed points."""
    rng = np.random.default_rng(20240521)
    points = [np.asarray(target.test_point, dtype=float)] + [
        rng.uniform(-1.5, 1.5, target.dim) for _ in range(_LOGP_POINTS - 1)]
    values = []
    for x in points:
        try:
            values.append(float(target._logp_user(np.ascontiguousarray(x), *target.args)).hex())
        except Exception as err:  # noqa: BLE001 - a failing point is part of the fingerprint
            values.append(f"error: {type(err).__name__}")
    return {"name": target.name, "dim": int(target.dim), "names": list(target.names),
            "data_sha256": _hash_data(target.args), "logp": values}


def check_target(header, target, path):
    """Raise CheckpointMismatch naming how ``target`` differs from the checkpoint's."""
    want, have = header["target"], target_fingerprint(target)
    if want["dim"] != have["dim"]:
        raise CheckpointMismatch(f"{path}: checkpoint is for a target of dimension {want['dim']} "
                                 f"({want['name']!r}), this target has dimension {have['dim']}")
    if want["data_sha256"] != have["data_sha256"]:
        raise CheckpointMismatch(f"{path}: the target's data (args) differ from the checkpoint's "
                                 f"(target {want['name']!r}); resume with the same data")
    if want["logp"] != have["logp"]:
        raise CheckpointMismatch(f"{path}: the target's log density differs from the checkpoint's "
                                 f"(target {want['name']!r}: log p at fixed points {want['logp']} in the "
                                 f"file, {have['logp']} now); resume with the same target")


_RUN_FIELDS = ("sampler", "settings", "seed", "chains", "tune", "init", "budget")


def check_run(header, run_header, path):
    """Raise CheckpointMismatch naming the first field of the run that differs (draws may grow)."""
    for key in _RUN_FIELDS:
        if header[key] != run_header[key]:
            raise CheckpointMismatch(
                f"{path}: an existing checkpoint of another run ({key} is {header[key]!r} in the file, "
                f"{run_header[key]!r} here); it is left untouched. Continue it with mcsample.resume, or "
                "write this run's checkpoint to another path")


# -- the file ------------------------------------------------------------------------------------


def _checksum(header_json, chains_json, arrays):
    h = hashlib.sha256()
    h.update(header_json.encode())
    h.update(chains_json.encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_path(path):
    path = Path(path)
    if path.suffix == ".zarr":
        raise ValueError("checkpoints are netCDF files (.nc): a zarr store is a directory, which cannot be "
                         "replaced atomically, so a crash mid-write could leave no good checkpoint")
    return path


_write_lock = threading.Lock()


def _pack(arrays):
    """One flat netCDF variable per dtype (h5netcdf spends ~15 ms per variable: a NUTS chain has
    ~50 arrays) and an index {key: [dtype, shape, offset]}. Bools are stored as uint8."""
    groups, index = {}, {}
    for key in sorted(arrays):
        a = arrays[key]
        stored = np.dtype(np.uint8) if a.dtype == np.bool_ else a.dtype.newbyteorder("=")
        parts = groups.setdefault(stored.str, [])
        offset = sum(p.size for p in parts)
        parts.append(np.ascontiguousarray(a, dtype=stored).ravel())
        index[key] = [a.dtype.str, list(a.shape), offset]
    return {f"data_{np.dtype(d).name}": (np.concatenate(p) if p else np.zeros(0, d)) for d, p in groups.items()}, index


def _unpack(packed, index):
    arrays = {}
    for key, (dtype, shape, offset) in index.items():
        dtype = np.dtype(dtype)
        stored = np.dtype(np.uint8) if dtype == np.bool_ else dtype.newbyteorder("=")
        flat = packed[f"data_{stored.name}"]
        n = int(np.prod(shape, dtype=np.int64))
        arrays[key] = flat[offset:offset + n].astype(dtype).reshape(shape)
    return arrays


def write(path, header, chains):
    """Write ``header`` and ``chains`` (a list of (state, arrays) per chain, None for a chain not
    started) to ``path`` atomically: a temporary file in the same directory, flushed to disk, then
    renamed over the old one. A crash leaves the old checkpoint or the new one, never half."""
    import h5netcdf
    path = check_path(path)
    states = [c[0] if c is not None else None for c in chains]
    arrays = {}
    for c in chains:
        if c is not None:
            arrays.update(c[1])
    packed, index = _pack(arrays)
    header_json = json.dumps(header, sort_keys=True)
    chains_json = json.dumps({"chains": states, "index": index})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with _write_lock:
        try:
            with h5netcdf.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = VERSION
                f.attrs["header"] = header_json
                f.attrs["chains"] = chains_json
                f.attrs["checksum"] = _checksum(header_json, chains_json, packed)
                for key, data in packed.items():
                    f.dimensions[key] = data.size
                    f.create_variable(key, (key,), dtype=data.dtype, data=data)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    try:  # the rename itself survives a power cut once the directory is synced
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def read(path):
    """(header, chains) of a checkpoint, chains as in ``write``. Each kind of damage raises its
    own CheckpointError subclass, with the path."""
    import h5netcdf
    path = check_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointTruncated(f"{path}: the checkpoint file is empty (0 bytes), e.g. a copy that never "
                                  "finished; no state to resume from")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError as err:
        raise CheckpointCorrupt(f"{path}: cannot read the checkpoint: {err}") from None
    if magic != b"\x89HDF\r\n\x1a\n":
        raise NotACheckpoint(f"{path}: not a netCDF-4 file (no HDF5 signature): not an mcsample checkpoint")
    try:
        with h5netcdf.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("format") != FORMAT:
                raise NotACheckpoint(f"{path}: a netCDF file, but not an mcsample checkpoint (no "
                                     f"format={FORMAT!r} attribute)")
            if int(attrs.get("format_version", -1)) > VERSION:
                raise NotACheckpoint(f"{path}: checkpoint format version {attrs['format_version']} is newer "
                                     f"than this mcsample reads ({VERSION}); upgrade mcsample")
            packed = {k: np.array(v[...]) for k, v in f.variables.items()}
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError ...
        message = str(err)
        if "truncated" in message.lower():
            raise CheckpointTruncated(f"{path}: the checkpoint file is truncated ({size} bytes on disk, "
                                      f"fewer than it records: {message}); no state to resume from") from None
        raise CheckpointCorrupt(f"{path}: the checkpoint file is damaged and cannot be read as netCDF "
                                f"({type(err).__name__}: {message})") from None
    header_json, chains_json = str(attrs.get("header", "")), str(attrs.get("chains", ""))
    if not (_is_json(header_json) and _is_json(chains_json)):
        raise CheckpointCorrupt(f"{path}: the checkpoint's JSON attributes are damaged")
    if _checksum(header_json, chains_json, packed) != attrs.get("checksum"):
        raise CheckpointCorrupt(f"{path}: checksum mismatch: the checkpoint's data were altered after it "
                                "was written (bit rot, a partial overwrite); refusing to resume from it")
    header, table = json.loads(header_json), json.loads(chains_json)
    arrays = _unpack(packed, table["index"])
    chains = [None if s is None else (s, {k: v for k, v in arrays.items() if k.startswith(f"c{s['chain']}_")})
              for s in table["chains"]]
    return header, chains


def _is_json(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def settings_from_header(header):
    """The sampler's settings object from the checkpoint (arrays come back from JSON lists), checked
    to serialise exactly as it was written."""
    from . import samplers as _samplers
    raw = json.loads(header["settings"])
    cls = type(_samplers.resolve(header["sampler"], {}))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in raw.items() if k in fields}
    cfg = cls(**values)
    if cfg.to_json() != header["settings"]:
        raise CheckpointMismatch(f"settings {header['settings']} of the checkpoint cannot be rebuilt by this "
                                 f"mcsample ({cfg.to_json()}); resume with the version that wrote it "
                                 f"({header.get('mcsample_version')})")
    return cfg


# -- what the driver uses ------------------------------------------------------------------------


def new_header(cfg, target, entropy, chains, tune, draws, inits, budget, every):
    from ._version import __version__
    return {"sampler": cfg.name, "kind": cfg.kind, "settings": cfg.to_json(), "seed": int(entropy),
            "chains": int(chains), "tune": int(tune), "draws": int(draws),
            "init": None if inits[0] is None else [np.asarray(x, dtype=float).tolist() for x in inits],
            "budget": None if budget is None else float(budget), "checkpoint_every": every,
            "target": target_fingerprint(target), "mcsample_version": __version__}


class Checkpointer:
    """The file a running ``sample()`` keeps up to date: the latest snapshot of every chain,
    written whole (and atomically) each time a chain reports one. Thread-safe."""

    def __init__(self, path, header, chains):
        self.path = check_path(path)
        self.header = header
        self.chains = list(chains)
        self._lock = threading.Lock()

    def update(self, chain, snap):
        with self._lock:
            self.chains[chain] = snap
            write(self.path, self.header, self.chains)

    def flush(self):
        with self._lock:
            write(self.path, self.header, self.chains)

    def save_run(self, chain, run, done):
        self.update(chain, snapshot(run, done, chain))
