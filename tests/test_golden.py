"""Seeded runs of every family are pinned draw for draw (as nutpie pins its sampler): a refactoring
of the driver or of a kernel must not change one bit of the draws, statistics or counts. Files
and the runs behind them: tests/golden/make_golden.py (regenerate only for an intended change).

Bit for bit holds under the numpy that wrote the files. Another numpy's LAPACK-backed routines
may round differently in the last bits (numpy 2.5's ``eigh``, used by the slice samplers' frame
fit, differs from 2.4's by ~1e-15), so there floats are held to 1e-9 relative and every count,
flag and integer statistic still exactly."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("make_golden", Path(__file__).parent / "golden" / "make_golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


@pytest.mark.parametrize("stem, sampler, settings", golden.RUNS, ids=[r[0] for r in golden.RUNS])
def test_seeded_run_is_bit_identical_to_golden(stem, sampler, settings):
    with np.load(golden.HERE / f"{stem}.npz") as stored:
        expected = {k: stored[k] for k in stored.files}
    same_numpy = str(expected.pop("numpy_version")) == np.__version__
    got = golden.arrays(golden.run(sampler, settings))
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        assert got[key].dtype == want.dtype, key
        if same_numpy or want.dtype.kind != "f":
            assert np.array_equal(got[key], want), (
                f"{stem}: {key} differs from the golden run "
                f"(max |diff| {np.max(np.abs(got[key].astype(float) - want)):.3g})")
        else:
            np.testing.assert_allclose(got[key], want, rtol=1e-9, atol=1e-12, err_msg=f"{stem}: {key}")
