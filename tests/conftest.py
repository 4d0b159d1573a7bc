"""Shared fixtures: the real data in ../shared/data is optional, tests that need it skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is not there."""
    if not (SHARED_DATA / "midesec-train" / "mitoses.csv").is_file():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA
