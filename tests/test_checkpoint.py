"""Checkpoint and resume (mcsample.checkpoint, sample(checkpoint=...), mc.resume): a resumed run
is bit-identical to an uninterrupted one; every kind of damage has its own clear error; a bad or
foreign file is never overwritten."""

import importlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mcsample as mc
from mcsample import checkpoint as ck
from targets import gaussians

sample_module = importlib.import_module("mcsample.sample")
pytestmark = pytest.mark.filterwarnings("ignore::mcsample.ConvergenceWarning")
ROOT = Path(__file__).resolve().parents[1]

MEAN, SCALE = np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5])
RUNS = {  # small runs whose warmup has windows (NUTS: metric; GPSS: frame refits)
    "nuts": dict(draws=60, tune=120, chains=2, seed=11),
    "gpss": dict(draws=60, tune=120, chains=2, seed=11, find_bulk=False),
    "rdmc": dict(draws=40, tune=60, chains=2, seed=11, n_steps=12, n_importance=16),
}


@pytest.fixture(scope="module")
def target():
    return gaussians.diagonal(MEAN, SCALE, "g3")[0]


@pytest.fixture(scope="module")
def reference(target):
    """Uninterrupted runs, without checkpoints."""
    return {name: mc.sample(target, name, progressbar=False, **kw) for name, kw in RUNS.items()}


def draws(result):
    return result.posterior["x"].values


def assert_same(a, b):
    np.testing.assert_array_equal(draws(a), draws(b))
    for name in a.sample_stats.data_vars:
        np.testing.assert_array_equal(a.sample_stats[name].values, b.sample_stats[name].values, err_msg=name)
    for key in ("n_logp", "n_grad"):
        assert a.attrs[key] == b.attrs[key], key


@pytest.fixture
def copies_at(monkeypatch, tmp_path):
    """Copies of the checkpoint file as the run writes it, one per write, in order: each is a
    state of a run stopped at that moment (chains at different iterations)."""
    written = []
    real = ck.Checkpointer.update

    def update(self, chain, snap):
        real(self, chain, snap)
        copy = tmp_path / f"copy{len(written)}.nc"
        shutil.copy(self.path, copy)
        written.append((copy, [None if c is None else c[0]["done"] for c in self.chains]))

    monkeypatch.setattr(ck.Checkpointer, "update", update)
    return written


@pytest.mark.parametrize("sampler", ["nuts", "gpss"])
def test_markov_resume_mid_warmup_and_mid_sampling_is_bit_identical(sampler, target, reference, tmp_path,
                                                                     copies_at):
    kw = RUNS[sampler]
    full = mc.sample(target, sampler, progressbar=False, checkpoint=tmp_path / "run.nc", checkpoint_every=25,
                     **kw)
    assert_same(full, reference[sampler])  # checkpointing itself changes nothing
    # Chains run as threads at their own pace, so a copy with every chain mid-warmup at once may
    # not exist; each chain writes every 25 iterations, so a copy with *that* chain mid-warmup
    # (and one with it mid-sampling) always does, whatever the scheduling.
    tune, total = kw["tune"], kw["tune"] + kw["draws"]
    stops = set()
    for chain in range(kw["chains"]):
        for lo, hi in ((0, tune), (tune, total)):
            stops.add(next(p for p, done in copies_at if done[chain] is not None and lo < done[chain] < hi))
    for path in sorted(stops):
        assert_same(mc.resume(path, target, progressbar=False), reference[sampler])


def test_resume_extends_a_finished_run_with_more_draws(target, tmp_path):
    kw = {**RUNS["nuts"], "draws": 30}
    path = tmp_path / "run.nc"
    mc.sample(target, "nuts", progressbar=False, checkpoint=path, **kw)
    longer = mc.resume(path, target, draws=70, progressbar=False)
    uninterrupted = mc.sample(target, "nuts", progressbar=False, **{**kw, "draws": 70})
    assert_same(longer, uninterrupted)
    header, _ = ck.read(path)
    assert header["draws"] == 70  # the file now holds the longer run
    with pytest.raises(ValueError, match="fewer than"):
        mc.resume(path, target, draws=10, progressbar=False)


def test_particle_run_resumes_between_time_steps(target, reference, tmp_path, copies_at):
    kw = RUNS["rdmc"]
    full = mc.sample(target, "rdmc", progressbar=False, checkpoint=tmp_path / "run.nc", checkpoint_every=3, **kw)
    assert_same(full, reference["rdmc"])
    n_steps = full.attrs["n_steps"]  # one stop per chain between its time steps (see above: threads)
    stops = {next(p for p, done in copies_at if done[c] is not None and 0 < done[c] < n_steps)
             for c in range(kw["chains"])}
    for mid in sorted(stops):
        resumed = mc.resume(mid, target, progressbar=False)
        assert_same(resumed, reference["rdmc"])
        np.testing.assert_array_equal(resumed.step_stats["importance_ess"].values,
                                      reference["rdmc"].step_stats["importance_ess"].values)
    with pytest.raises(ValueError, match="population size"):
        mc.resume(mid, target, draws=80, progressbar=False)


def test_same_call_continues_its_own_checkpoint(target, reference, tmp_path, copies_at):
    """Re-running the script after a crash: sample() with the same arguments picks the file up."""
    kw = RUNS["nuts"]
    mc.sample(target, "nuts", progressbar=False, checkpoint=tmp_path / "run.nc", checkpoint_every=25, **kw)
    crashed = tmp_path / "crashed.nc"
    shutil.copy(copies_at[2][0], crashed)
    again = mc.sample(target, "nuts", progressbar=False, checkpoint=crashed, checkpoint_every=25, **kw)
    assert_same(again, reference["nuts"])


def test_a_resume_without_the_generator_state_is_caught(target, reference, tmp_path, copies_at, monkeypatch):
    """Mutant: a snapshot that forgets the generator's state (restarting it from the seed) must
    fail the bit-identity check above, so that check has teeth."""
    kw = RUNS["nuts"]
    mc.sample(target, "nuts", progressbar=False, checkpoint=tmp_path / "run.nc", checkpoint_every=25, **kw)
    path = copies_at[len(copies_at) // 2][0]
    real = ck._Decoder.__call__

    def forgetful(self, node):
        if isinstance(node, dict) and "generator" in node:
            return np.random.default_rng(kw["seed"])
        return real(self, node)

    monkeypatch.setattr(ck._Decoder, "__call__", forgetful)
    resumed = mc.resume(path, target, progressbar=False)
    assert not np.array_equal(draws(resumed), draws(reference["nuts"]))


# -- bad checkpoints --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_file(target, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "run.nc"
    mc.sample(target, "nuts", progressbar=False, checkpoint=path, **{**RUNS["nuts"], "draws": 20, "tune": 30})
    return path


def damaged(good_file, tmp_path, how):
    data = bytearray(good_file.read_bytes())
    path = tmp_path / "bad.nc"
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    elif how == "flipped":  # a byte inside the packed float64 data
        import h5py
        with h5py.File(good_file, "r") as f:
            offset = f["data_float64"].id.get_offset()
        data[offset + 64] ^= 0xFF
    elif how == "garbage":
        data = b"this is not a netCDF file\n" * 10
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how, error, message", [
    ("truncated", ck.CheckpointTruncated, "truncated"),
    ("empty", ck.CheckpointTruncated, "empty"),
    ("flipped", ck.CheckpointCorrupt, "checksum mismatch"),
    ("garbage", ck.NotACheckpoint, "not a netCDF-4 file"),
])
def test_each_kind_of_damage_has_its_own_error(good_file, tmp_path, target, how, error, message):
    path = damaged(good_file, tmp_path, how)
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        mc.resume(path, target, progressbar=False)
    with pytest.raises(error, match=message):  # sample() does not overwrite it either
        mc.sample(target, "nuts", progressbar=False, checkpoint=path, **{**RUNS["nuts"], "draws": 20, "tune": 30})
    assert path.read_bytes() == before


def test_a_netcdf_file_that_is_not_a_checkpoint(tmp_path, target):
    import xarray as xr
    path = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ck.NotACheckpoint, match="not an mcsample checkpoint"):
        mc.resume(path, target, progressbar=False)


def test_mismatched_target_or_settings_are_refused_and_the_file_kept(good_file, tmp_path, target):
    path = tmp_path / "run.nc"
    shutil.copy(good_file, path)
    before = path.read_bytes()
    kw = {**RUNS["nuts"], "draws": 20, "tune": 30}
    other_data = gaussians.diagonal(MEAN + 1.0, SCALE, "g3")[0]
    with pytest.raises(ck.CheckpointMismatch, match="data"):
        mc.resume(path, other_data, progressbar=False)
    other_dim = gaussians.diagonal(np.zeros(2), np.ones(2), "g2")[0]
    with pytest.raises(ck.CheckpointMismatch, match="dimension 3"):
        mc.resume(path, other_dim, progressbar=False)
    with pytest.raises(ck.CheckpointMismatch, match="settings"):
        mc.sample(target, "nuts", progressbar=False, checkpoint=path, target_accept=0.9, **kw)
    with pytest.raises(ck.CheckpointMismatch, match="sampler"):
        mc.sample(target, "gpss", progressbar=False, checkpoint=path, **kw)
    with pytest.raises(ck.CheckpointMismatch, match="seed"):
        mc.sample(target, "nuts", progressbar=False, checkpoint=path, **{**kw, "seed": 12})
    with pytest.raises(ck.CheckpointMismatch, match="seed=None"):
        mc.sample(target, "nuts", progressbar=False, checkpoint=path, **{**kw, "seed": None})
    assert path.read_bytes() == before


def test_other_log_density_same_data(good_file, tmp_path, target):
    import numba

    @numba.njit
    def shifted(x, mean, scale):
        return -0.5 * np.sum(((x - mean) / scale) ** 2) + 1.0

    other = mc.Target(shifted, 3, args=target.args, name="g3")
    with pytest.raises(ck.CheckpointMismatch, match="log density differs"):
        mc.resume(good_file, other, progressbar=False)


def test_zarr_is_refused_with_the_reason(target):
    with pytest.raises(ValueError, match="atomically"):
        mc.sample(target, "nuts", progressbar=False, checkpoint="run.zarr", draws=5, tune=5)


def test_a_failed_write_leaves_the_old_checkpoint(good_file, tmp_path, monkeypatch):
    import h5netcdf
    path = tmp_path / "run.nc"
    shutil.copy(good_file, path)
    before = path.read_bytes()
    header, chains = ck.read(path)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(h5netcdf.File, "create_variable", disk_full)
    with pytest.raises(OSError, match="No space"):
        ck.write(path, header, chains)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]  # no temporary left behind


# -- a real interruption: Ctrl-C and SIGKILL of a separate process ---------------------------------

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, mcsample as mc
    from targets import gaussians
    target = gaussians.diagonal(np.array([1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5]), "g3")[0]
    result = mc.sample(target, "nuts", draws=4000, tune=200, chains=2, seed=5, progressbar=False,
                       checkpoint=sys.argv[1], checkpoint_every=50)
    print("interrupted" if result.attrs["interrupted"] else "finished", flush=True)
""")


def interrupt_run(tmp_path, sig):
    path = tmp_path / "run.nc"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for checkpoints past warmup in both chains
            if path.exists():
                try:
                    _, chains = ck.read(path)
                except ck.CheckpointError:
                    chains = [None]  # cannot happen with atomic writes; fail below if it persists
                if all(c is not None and c[0]["done"] > 400 for c in chains):
                    break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 120 s")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return path, proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_process_resumes_bit_identical(tmp_path, target, sig):
    path, code, out, err = interrupt_run(tmp_path, sig)
    if sig == signal.SIGINT:
        assert code == 0 and "interrupted" in out, err  # Ctrl-C returns the draws so far
    else:
        assert code == -signal.SIGKILL
    _, chains = ck.read(path)  # the last checkpoint survived intact
    assert all(c[0]["done"] < 4200 for c in chains)
    resumed = mc.resume(path, target, progressbar=False)
    full = mc.sample(target, "nuts", draws=4000, tune=200, chains=2, seed=5, progressbar=False)
    assert_same(resumed, full)


@pytest.mark.parametrize("sampler", mc.samplers.available())
def test_every_family_round_trips_through_a_file(sampler, target, tmp_path):
    """Any registered family's run, stopped part-way, written, read and restored, continues exactly
    as the original does (the contract in samplers/_base.py: state in arrays, scalars, tuples,
    dicts, the Generator and mcsample objects)."""
    cfg = mc.samplers.resolve(sampler, {})
    kind_particles = cfg.kind == mc.samplers.PARTICLES
    draws_, tune = (16, 40) if kind_particles else (20, 40)
    rng = np.random.default_rng(np.random.SeedSequence(4).spawn(1)[0].generate_state(1)[0])
    run = sample_module._start(cfg, target, rng, None, tune, draws_, 0, None)
    half = max(1, run.total // 2)
    run.advance(0, half)
    path = tmp_path / "one.nc"
    ck.write(path, {"sampler": sampler}, [ck.snapshot(run, half, 0)])
    _, chains = ck.read(path)
    twin = ck.restore(chains[0][0], chains[0][1], cfg, target)
    run.advance(half, run.total)
    twin.advance(half, twin.total)
    out = "particles" if kind_particles else "draws"
    np.testing.assert_array_equal(getattr(twin, out), getattr(run, out))
    np.testing.assert_array_equal(twin.n_logp, run.n_logp)
    np.testing.assert_array_equal(twin.n_grad, run.n_grad)
