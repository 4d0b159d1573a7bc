"""Ctrl-C during `batch --dask local`: the command stops with 130 and one line; no worker prints a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("distributed")


@pytest.mark.slow
def test_ctrl_c_during_a_local_dask_batch_is_quiet(tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i in range(12):
        for src in sorted((ROOT / "sample_slides").glob("*.tif")):
            shutil.copy(src, tiles / f"{src.stem}_{i}.tif")
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from spindledx.entry import run; run()", "batch", str(tiles), "--mpp", "0.25",
               "--out", str(out), "--dask", "local", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = out / "tiles.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (log.exists() and log.stat().st_size):
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.skip("the batch ended before it could be interrupted")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "interrupted" in text and len(text.strip().splitlines()) <= 2, text
    assert sum(1 for _ in log.open(encoding="utf-8")) >= 1  # what was done is kept for a resume
