"""`make demo` writes a new folder per run and deletes nothing (a review made in an earlier run's folder stays)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def fresh_stamp() -> str:
    """A venv stamp newer than pyproject.toml: make takes the venv as made and installs nothing (in a fresh
    checkout every file has about the same time, so the Makefile itself is no safe stamp)."""
    with tempfile.NamedTemporaryFile(prefix="spindledx-stamp-", delete=False) as handle:
        return handle.name


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "demo", f"STAMP={fresh_stamp()}", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=60)


def test_demo_deletes_nothing_and_writes_a_new_run_folder() -> None:
    run = dry_run()
    assert run.returncode == 0, run.stderr
    commands = run.stdout
    assert not re.search(r"(^|[\s;&|])rm\s", commands), commands
    outs = re.findall(r"--out \"?([^\"\s]+)", commands)
    assert outs and all(re.fullmatch(r"demo_out/run-\d{8}-\d{6}/\w+", o) for o in outs), outs


def test_clean_leaves_demo_out_alone() -> None:
    run = subprocess.run(["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "demo_out" not in run.stdout


def test_demo_refuses_a_folder_that_exists(tmp_path: Path) -> None:
    existing = tmp_path / "run-1"
    (existing / "case").mkdir(parents=True)
    (existing / "case" / "decisions.json").write_text("{}")
    run = subprocess.run(["make", "demo", f"STAMP={fresh_stamp()}", "BIN=/nonexistent", f"DEMO_OUT={existing}"],
                         cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode != 0
    assert "exists" in run.stderr
    assert (existing / "case" / "decisions.json").read_text() == "{}"
