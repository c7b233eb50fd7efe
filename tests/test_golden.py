"""Seeded runs of every family are pinned draw for draw (as nutpie pins its sampler): a refactoring
of the driver or of a kernel must not change one bit of the draws, statistics or counts. Files
and the runs behind them: tests/golden/make_golden.py (regenerate only for an intended change)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("make_golden", Path(__file__).parent / "golden" / "make_golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


@pytest.mark.parametrize("stem, sampler, settings", golden.RUNS, ids=[r[0] for r in golden.RUNS])
def test_seeded_run_is_bit_identical_to_golden(stem, sampler, settings):
    expected = np.load(golden.HERE / f"{stem}.npz")
    got = golden.arrays(golden.run(sampler, settings))
    assert sorted(got) == sorted(expected.files)
    for key in expected.files:
        assert got[key].dtype == expected[key].dtype, key
        assert np.array_equal(got[key], expected[key]), (
            f"{stem}: {key} differs from the golden run "
            f"(max |diff| {np.max(np.abs(got[key].astype(float) - expected[key])):.3g})")
