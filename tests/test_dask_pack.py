"""How targets travel to other processes (``mcsample._dask.pack``/``unpack``): as bytes that Dask's
scheduler does not unpickle, unpacked once per process. Needs neither Dask nor PyMC."""

import concurrent.futures as cf
import pickle

import numpy as np
import pytest

import mcsample as mc
from mcsample import _dask
from targets import gaussians

pytestmark = pytest.mark.filterwarnings("ignore::mcsample.ConvergenceWarning")


def g3(mean=(1.0, -1.0, 0.0)):
    return gaussians.diagonal(np.array(mean), np.array([1.0, 2.0, 0.5]), "g3")[0]


def test_a_packed_target_is_bytes_and_unpacks_once_per_process(monkeypatch):
    monkeypatch.setattr(_dask, "_UNPACKED", type(_dask._UNPACKED)())
    target = g3()
    blob = _dask.pack(target)
    assert type(blob) is bytes  # nothing a scheduler would rebuild
    first, again = _dask.unpack(blob), _dask.unpack(bytes(blob))
    assert again is first  # one build per process, whatever the number of tasks
    x = np.array([0.3, 0.1, -0.2])
    assert first.logp(x) == target.logp(x) and first.args[0].tolist() == target.args[0].tolist()
    other = _dask.unpack(_dask.pack(g3(mean=(0.0, 0.0, 0.0))))  # other data: another target
    assert other is not first and other.logp(x) != first.logp(x)


def test_the_unpacked_cache_keeps_the_most_recent_targets(monkeypatch):
    monkeypatch.setattr(_dask, "_UNPACKED", type(_dask._UNPACKED)())
    monkeypatch.setattr(_dask, "_UNPACKED_KEEP", 2)
    blobs = [pickle.dumps(("target", i)) for i in range(3)]
    a = _dask.unpack(blobs[0])
    _dask.unpack(blobs[1])
    assert _dask.unpack(blobs[0]) is a  # a hit makes it the most recent
    _dask.unpack(blobs[2])  # evicts blobs[1], the least recent
    assert len(_dask._UNPACKED) == 2 and _dask.unpack(blobs[0]) is a


def test_run_packed_calls_with_the_unpacked_target():
    target = g3()
    assert _dask.run_packed(lambda t, k, scale=1: (t.dim * scale, k), _dask.pack(target), "k", scale=2) == (6, "k")


class Inline(cf.Executor):
    """An executor that is not a thread pool (so chains run as segments, as on Dask) but runs
    each task at once in this process; it records what the tasks were given."""

    def __init__(self):
        self.arguments = []

    def submit(self, fn, /, *args, **kwargs):
        self.arguments.append(args)
        future = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_segments_get_the_packed_target_and_give_the_thread_executors_draws(monkeypatch):
    monkeypatch.setattr(_dask, "_SEGMENT_SECONDS", 1e-9)  # one chunk per segment: many tasks
    target = g3()
    kw = dict(draws=60, tune=60, chains=2, seed=4, progressbar=False)
    inline = Inline()
    remote = mc.sample(target, "nuts", executor=inline, **kw)
    assert len(inline.arguments) > 2 and all(type(args[1]) is bytes for args in inline.arguments)
    np.testing.assert_array_equal(remote.posterior["x"].values, mc.sample(target, "nuts", **kw).posterior["x"].values)


def test_compare_cells_get_the_packed_target_and_give_the_same_table():
    target = g3()
    kw = dict(budget=3000, chains=2, seed=2, tune=100, progressbar=False)
    inline = Inline()
    remote = mc.compare(target, ["gpss"], executor=inline, **kw)
    assert len(inline.arguments) == 1 and type(inline.arguments[0][1]) is bytes
    here = mc.compare(target, ["gpss"], **kw)
    for name in here.data_vars:
        if name != "wall_time":
            np.testing.assert_array_equal(here[name].values, remote[name].values, err_msg=name)
