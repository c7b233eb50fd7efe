"""Shared fixtures.

``seed_offset`` shifts the seeds of the statistical tests: ``MCSAMPLE_TEST_SEED_OFFSET=7 pytest``
reruns them on fresh random streams, which is how their false-alarm rate is measured (every
threshold is set for any seed, never tuned to one)."""

import os

import pytest


@pytest.fixture(scope="session")
def seed_offset() -> int:
    return int(os.environ.get("MCSAMPLE_TEST_SEED_OFFSET", "0"))
