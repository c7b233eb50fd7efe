"""Chains and comparison cells on a Dask cluster: a LocalCluster of two worker processes gives
the draws of the default thread executor, bit for bit, even when a worker dies mid-run; so do a
PyMC target (compiled once per worker) and a scheduler and workers started as separate processes
and reached by address, as on a real cluster.

The cluster takes 5-25 s to start on a loaded 2-core machine, so only the NUTS check is in the
fast tier (skipped without ``mcsample[dask]``); the rest is ``-m slow``."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample import checkpoint as ck
from targets import gaussians

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.filterwarnings("ignore::mcsample.ConvergenceWarning")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def target():
    return gaussians.diagonal(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), "g3")[0]


RUN = dict(draws=200, tune=150, chains=4, seed=7, progressbar=False)


def same(a, b):
    np.testing.assert_array_equal(a.posterior["x"].values, b.posterior["x"].values)
    for name in a.sample_stats.data_vars:
        np.testing.assert_array_equal(a.sample_stats[name].values, b.sample_stats[name].values, err_msg=name)
    assert (a.attrs["n_logp"], a.attrs["n_grad"]) == (b.attrs["n_logp"], b.attrs["n_grad"])


def test_nuts_on_two_worker_processes_matches_threads_and_checkpoints(client, target, tmp_path):
    threads = mc.sample(target, "nuts", **RUN)
    path = tmp_path / "run.nc"
    remote = mc.sample(target, "nuts", executor=client.get_executor(), checkpoint=path, checkpoint_every=100, **RUN)
    same(remote, threads)
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids  # really other processes
    # each worker built the target's guarded gradient once, however many segments it ran
    guards = client.run(lambda: len(__import__("mcsample.target", fromlist=["_GUARD_CACHE"])._GUARD_CACHE))
    assert all(n <= 1 for n in guards.values()), guards
    assert mc.resume(path, target, draws=300, progressbar=False, executor=client.get_executor()).posterior[
        "x"].shape == (4, 300, 3)


@pytest.mark.slow
@pytest.mark.parametrize("sampler, settings", [("gpss", {}), ("rdmc", dict(draws=50, n_steps=15)),
                                               ("ensemble_score", dict(draws=40, n_steps=20))])
def test_other_families_match_threads(client, target, sampler, settings):
    kw = {**RUN, **settings}
    same(mc.sample(target, sampler, executor=client.get_executor(), **kw), mc.sample(target, sampler, **kw))


# A target costing ~1 ms per gradient (d = 3): long enough runs to kill a worker in the middle.
@numba.njit(cache=True)
def slow_gauss(x, mean, scale, reps):
    total = 0.0
    for _ in range(reps):
        total += -0.5 * np.sum(((x - mean) / scale) ** 2)
    return total / reps


@numba.njit(cache=True)
def slow_gauss_grad(x, mean, scale, reps):
    lp = 0.0
    g = np.zeros(x.size)
    for _ in range(reps):
        z = (x - mean) / scale
        lp += -0.5 * np.sum(z * z)
        g += -z / scale
    return lp / reps, g / reps


@pytest.mark.slow
def test_a_killed_worker_changes_nothing(client, tmp_path):
    slow = mc.Target(slow_gauss, 3, logp_grad=slow_gauss_grad,
                     args=(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), 3000), name="slow")
    kw = dict(draws=600, tune=200, chains=4, seed=3, progressbar=False)
    threads = mc.sample(slow, "nuts", **kw)
    out = {}
    path = tmp_path / "run.nc"
    runner = threading.Thread(target=lambda: out.update(r=mc.sample(slow, "nuts", executor=client.get_executor(),
                                                                    checkpoint=path, checkpoint_every=50, **kw)))
    runner.start()
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:  # some segments are done, others running
        time.sleep(0.1)
    victim = None
    while victim is None and runner.is_alive() and time.monotonic() < deadline:  # a worker mid-segment
        busy = [w for w, tasks in client.processing().items() if tasks]
        victim = busy[0] if busy else None
        time.sleep(0.02)
    assert victim is not None, "the run ended before a worker could be killed"
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    runner.join(300)
    assert "r" in out
    same(out["r"], threads)
    assert pid not in client.run(os.getpid).values()  # the worker really died (its nanny restarted it)


MAIN_SCRIPT = textwrap.dedent("""
    import numba, numpy as np, mcsample as mc
    from dask.distributed import Client, LocalCluster

    @numba.njit
    def logp(x, c):                      # defined in __main__, as in a notebook
        return -0.5 * np.sum((x - c) ** 2)

    @numba.njit
    def logp_grad(x, c):
        return -0.5 * np.sum((x - c) ** 2), -(x - c)

    if __name__ == "__main__":
        t = mc.Target(logp, 2, logp_grad=logp_grad, args=(np.array([0.5, -0.5]),))
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
            for sampler in ("nuts", "gpss"):
                kw = dict(draws=100, tune=100, chains=2, seed=1, progressbar=False)
                a = mc.sample(t, sampler, executor=client.get_executor(), **kw).posterior["x"].values
                b = mc.sample(t, sampler, **kw).posterior["x"].values
                print(sampler, "identical" if np.array_equal(a, b) else "DIFFERENT")
""")


@pytest.mark.slow
def test_a_target_defined_in_main_travels(tmp_path):
    script = tmp_path / "notebook_like.py"
    script.write_text(MAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "nuts identical" in proc.stdout and "gpss identical" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_compare_cells_as_tasks_give_the_same_table(client, target):
    from targets import gaussians as g
    ref = g.diagonal(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), "g3")[1]
    kw = dict(budget=20000, chains=2, seed=1, tune=200, reference=ref, progressbar=False)
    here = mc.compare(target, ["nuts", "gpss", "rdmc"], **kw)
    remote = mc.compare(target, ["nuts", "gpss", "rdmc"], executor=client.get_executor(), **kw)
    for name in here.data_vars:
        if name != "wall_time":
            np.testing.assert_array_equal(here[name].values, remote[name].values, err_msg=name)


# -- a PyMC target on the workers ------------------------------------------------------------


@pytest.fixture(scope="module")
def schools_pymc():
    pm = pytest.importorskip("pymc")
    import targets
    y, sigma = targets.get("eight_schools_noncentered")[0].args
    with pm.Model(coords={"school": [f"s{j}" for j in range(len(y))]}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_trans = pm.Normal("theta_trans", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * theta_trans, dims="school")
        pm.Normal("y", theta, sigma=sigma, observed=y, dims="school")
    return mc.Target.from_pymc(model, name="eight_schools_pymc")


@pytest.mark.slow
def test_a_pymc_target_travels_and_is_compiled_once_per_worker(client, schools_pymc, monkeypatch):
    from mcsample import _dask, _pymc
    monkeypatch.setattr(_dask, "_SEGMENT_SECONDS", 0.5)  # several segments (tasks) per worker
    kw = dict(draws=150, tune=150, chains=4, seed=5, progressbar=False)
    threads = mc.sample(schools_pymc, "nuts", **kw)
    here = _pymc.travel_counts()
    with distributed.get_task_stream(client) as stream:
        remote = mc.sample(schools_pymc, "nuts", executor=client.get_executor(), **kw)
    for group in ("unconstrained_posterior", "posterior", "sample_stats"):
        for name in threads[group].data_vars:
            np.testing.assert_array_equal(remote[group][name].values, threads[group][name].values, err_msg=name)
    tasks = {}
    for task in stream.data:
        tasks[task["worker"]] = tasks.get(task["worker"], 0) + 1
    counts = client.run(_pymc.travel_counts)
    assert len(counts) == 2 and all(tasks.get(w, 0) >= 2 for w in counts), tasks  # both workers, many tasks
    assert [c.compiled for c in counts.values()] == [1, 1], counts  # once per worker, not per task
    # Dask's scheduler unpickles task arguments; the target travels as bytes, so the scheduler (in
    # this process for a LocalCluster) never rebuilt it: nothing arrived here
    assert _pymc.travel_counts() == here
    # a new dataset: no new compile on the workers either
    other = schools_pymc.model.with_data(y=np.arange(8.0))
    kw2 = {**kw, "draws": 50, "tune": 50}
    np.testing.assert_array_equal(mc.sample(other, "nuts", executor=client.get_executor(), **kw2)
                                  .unconstrained_posterior["x"].values,
                                  mc.sample(other, "nuts", **kw2).unconstrained_posterior["x"].values)
    assert [c.compiled for c in client.run(_pymc.travel_counts).values()] == [1, 1]


# -- a scheduler and workers of their own, reached by address ------------------------------------


@pytest.fixture(scope="module")
def address_client(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes started from the command line (as on
    a real cluster, where they run on other machines), and a Client given the scheduler's tcp
    address."""
    logs = tmp_path_factory.mktemp("dask_cli")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    info = logs / "scheduler.json"

    def start(name, *args):
        out = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=out, stderr=subprocess.STDOUT), out

    procs = [start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                   "--no-dashboard", "--scheduler-file", str(info), "--idle-timeout", "900")]
    c = None
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs += [start(f"worker{i}", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                        "--no-dashboard", "--name", f"worker{i}") for i in range(2)]
        c = distributed.Client(address, timeout=120)
        c.wait_for_workers(2, timeout=180)
        yield c
    finally:
        if c is not None:
            c.close()
        for proc, out in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            out.close()


@pytest.mark.slow
def test_a_scheduler_address_with_workers_in_their_own_processes_gives_the_same_draws(address_client, target):
    workers = address_client.run(os.getpid)
    assert len(set(workers.values())) == 2 and os.getpid() not in workers.values()
    for sampler in ("nuts", "gpss"):
        same(mc.sample(target, sampler, executor=address_client.get_executor(), **RUN), mc.sample(target, sampler, **RUN))
