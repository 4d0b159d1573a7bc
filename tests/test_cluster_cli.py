"""`batch` and `slide` against a Dask scheduler and workers started as separate processes (as docs/cluster.md
describes for a lab's own cluster): the same results as a local run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spindledx.cli import main

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """A `dask scheduler` and a `dask worker` (2 single-threaded processes) with spindledx importable."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                                   "--host", "127.0.0.1", *common], env=env, cwd=folder,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "the scheduler did not start"
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--nworkers", "2",
                                           "--nthreads", "1", *common], env=env, cwd=folder,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_batch_on_a_running_scheduler_matches_a_local_run(scheduler_address, tmp_path):
    manifest = ROOT / "sample_slides" / "manifest.csv"
    assert main(["batch", str(manifest), "--out", str(tmp_path / "local"), "--jobs", "1", "--no-progress"]) == 0
    assert main(["batch", str(manifest), "--out", str(tmp_path / "dask"), "--dask", scheduler_address,
                 "--no-progress"]) == 0
    local, remote = _rows(tmp_path / "local" / "tiles.csv"), _rows(tmp_path / "dask" / "tiles.csv")
    assert len(local) == 4 and sum(int(r["count"]) for r in local) > 0
    assert sorted(remote, key=lambda r: r["image"]) == sorted(local, key=lambda r: r["image"])
    assert (tmp_path / "dask" / "report.html").is_file()


def test_batch_with_a_model_card_on_dask_workers_matches_a_local_run(scheduler_address, tmp_path):
    """The workers load the card themselves (from the path the run options carry) and name it in every row."""
    pytest.importorskip("onnx")
    from test_model_contract import write_model

    card = write_model(tmp_path / "model")
    tiles = ROOT / "sample_slides"
    common = ["--mpp", "0.25", "--model", str(card), "--no-progress"]
    assert main(["batch", str(tiles), "--out", str(tmp_path / "local"), "--jobs", "1", *common]) == 0
    assert main(["batch", str(tiles), "--out", str(tmp_path / "dask"), "--dask", scheduler_address, *common]) == 0
    local, remote = _rows(tmp_path / "local" / "tiles.csv"), _rows(tmp_path / "dask" / "tiles.csv")
    assert local and all(r["error"] == "" and r["model_name"] == "darkness-test" for r in local)
    assert sorted(remote, key=lambda r: r["image"]) == sorted(local, key=lambda r: r["image"])


def test_slide_on_a_running_scheduler_matches_a_local_run(scheduler_address, tmp_path):
    from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

    figures = np.array([[600.0, 500.0], [1500.0, 700.0], [1000.0, 1500.0], [1700.0, 1700.0]])
    rgb = make_slide_rgb(2200, 2200, tissue_boxes=[(100, 100, 2100, 2100)], figures=figures, figure_radius_px=20,
                         seed=3)
    slide = write_pyramidal_tiff(tmp_path / "synthetic.tif", rgb, mpp=0.25)
    common = ["--area-mm2", "0.1", "--format", "json", "--no-progress"]
    assert main(["slide", str(slide), "--out", str(tmp_path / "local"), "--jobs", "1", *common]) == 0
    assert main(["slide", str(slide), "--out", str(tmp_path / "dask"), "--dask", scheduler_address, *common]) == 0

    def points(folder: Path) -> np.ndarray:
        collection = json.loads(next(folder.glob("*_mitoses.geojson")).read_text())
        xy = [f["geometry"]["coordinates"] for f in collection["features"] if f["geometry"]["type"] == "Point"]
        return np.array(sorted(map(tuple, xy)))

    local, remote = points(tmp_path / "local"), points(tmp_path / "dask")
    assert len(local) > 0 and local.shape == remote.shape
    np.testing.assert_allclose(remote, local)
