"""The tile engine's run store, lock and workers (issue 11, defects 3, 4, 7 and 8)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from spindledx.detection.types import Detection
from spindledx.engine.store import ResultLog, RunLock
from spindledx.errors import BadInputError
from spindledx.files import atomic_write_text
from spindledx.mitosis.synthetic import make_tile
from spindledx.qa.manifest import load_manifest
from spindledx.qa.runner import run_and_write

MPP = 0.25


def fixed_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    gray = rgb.astype(np.float32).sum(axis=-1)
    y, x = np.unravel_index(int(np.argmin(gray)), gray.shape)
    return [Detection(float(x), float(y), 0.9)]


def _tiles(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb, _ = make_tile(size_px=128, n_mitoses=1, seed=30 + i, mpp=MPP)
        cv2.imwrite(str(folder / f"t{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def test_torn_last_line_does_not_swallow_the_next_row(tmp_path):
    """Defect 7: a row appended after a torn line was glued to it and lost."""
    log = ResultLog(tmp_path / "tiles.jsonl")
    log.append({"key": "a"})
    with open(log.path, "a") as fh:
        fh.write('{"key": "b", "err')  # a crash mid-write
    log.append({"key": "c"})
    assert sorted(log.read()) == ["a", "c"]
    log.append({"key": "d"})
    assert sorted(ResultLog(log.path).read()) == ["a", "c", "d"]


def test_resume_redoes_rows_whose_inputs_changed(tmp_path):
    """Defect 3: resume kept old rows when the manifest's mpp, case or annotations (or --mpp) changed."""
    folder = _tiles(tmp_path / "in")
    manifest = folder / "m.csv"
    manifest.write_text("image,mpp,case\nt0.png,0.25,A\nt1.png,0.25,A\n")
    out = tmp_path / "out"
    first = run_and_write(load_manifest(manifest), out, detector=fixed_detector, progress=False)
    assert first.outcome.n_new == 2
    again = run_and_write(load_manifest(manifest), out, detector=fixed_detector, progress=False)
    assert again.outcome.n_new == 0 and again.outcome.n_skipped == 2
    manifest.write_text("image,mpp,case\nt0.png,0.5,A\nt1.png,0.25,B\n")
    changed = run_and_write(load_manifest(manifest), out, detector=fixed_detector, progress=False)
    assert changed.outcome.n_new == 2
    rows = {r["key"]: r for r in changed.outcome.rows}
    assert rows["t0.png"]["mpp"] == 0.5 and rows["t1.png"]["case"] == "B"
    assert rows["t0.png"]["area_mm2"] == pytest.approx(4 * first.outcome.rows[0]["area_mm2"])
    (folder / "pts.csv").write_text("image,x,y\nt0.png,5,5\n")
    manifest.write_text("image,mpp,case,annotations\nt0.png,0.5,A,pts.csv\nt1.png,0.25,B,\n")
    annotated = run_and_write(load_manifest(manifest), out, detector=fixed_detector, progress=False)
    assert annotated.outcome.n_new == 1


def test_slide_resume_refuses_a_replaced_slide_file(tmp_path):
    """Defect 4: `slide` resumed with old tiles after the slide file was replaced by another of the same size."""
    from spindledx.slide.pipeline import analyze_slide
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    def slide(seed: int) -> np.ndarray:
        figures = np.random.default_rng(seed).uniform(100, 500, (4, 2))
        return make_slide_rgb(640, 640, tissue_boxes=[(40, 40, 600, 600)], figures=figures, nuclei_per_mpx=100,
                              seed=seed)

    path = write_pyramidal_tiff(tmp_path / "s.tif", slide(1), mpp=MPP)
    analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "o", jobs=1, tile_um=128)
    write_pyramidal_tiff(path, slide(2), mpp=MPP)
    with pytest.raises(BadInputError, match="file"):
        analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "o", jobs=1, tile_um=128)
    redone = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "o", jobs=1, tile_um=128,
                           restart=True)
    assert redone.n_tiles_resumed == 0


def test_two_runs_on_one_out_cannot_interleave(tmp_path):
    """Defect 8: two runs on one --out both did all the work."""
    folder = _tiles(tmp_path / "in")
    specs = load_manifest(_manifest(folder))
    with RunLock(tmp_path / "out"):
        code = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from spindledx.engine.store import RunLock
            from spindledx.errors import BadInputError
            try:
                RunLock({str(tmp_path / "out")!r}).__enter__()
            except BadInputError as exc:
                print(exc)
                raise SystemExit(2)
            """)], capture_output=True, text=True)
        assert code.returncode == 2 and "in use by another spindledx run" in code.stdout
        result = run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)  # same process
    assert result.outcome.n_new == 2


def _manifest(folder: Path) -> Path:
    path = folder / "m.csv"
    path.write_text("image\n" + "".join(f"{p.name}\n" for p in sorted(folder.glob("*.png"))))
    return path


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """Defect 8: a full disk left a truncated report.html."""
    page = tmp_path / "report.html"
    atomic_write_text(page, "<html>old</html>")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write_text(page, "<html>" + "x" * 100_000)
    assert page.read_text() == "<html>old</html>" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


SLOW_BATCH = """
import os, sys, time
import numpy as np
from spindledx.cli import main
from spindledx.detection.types import Detection
import spindledx.detection.model as model_module
from spindledx.detection import shipped

def slow(rgb, mpp):
    with open(os.path.join(sys.argv[2], f"pid-{os.getpid()}"), "w"):
        pass
    time.sleep(float(sys.argv[3]))
    return [Detection(1.0, 1.0, 0.9)]

shipped.factory = lambda threshold: slow  # also in workers, which import this file
model_module.load_shipped_model = lambda *a, **k: None
if __name__ == "__main__":
    sys.exit(main(["batch", sys.argv[1], "--out", sys.argv[2], "--mpp", "0.25", "--no-progress", "-j", sys.argv[4]]))
"""


def _start_batch(tmp_path: Path, *, sleep: float, jobs: int, n: int) -> tuple[subprocess.Popen, Path]:
    folder = _tiles(tmp_path / "in", n)
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "slow_batch.py"
    script.write_text(SLOW_BATCH)
    log = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - a file, not a pipe: workers must not hold it open
    proc = subprocess.Popen([sys.executable, str(script), str(_manifest(folder)), str(out), str(sleep), str(jobs)],
                            stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path)
    log.close()
    return proc, out


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_sigterm_writes_the_tables(tmp_path):
    """Defect 8: SIGTERM wrote no tables."""
    proc, out = _start_batch(tmp_path, sleep=0.5, jobs=1, n=6)
    assert _wait_for(lambda: (out / "tiles.jsonl").exists() and (out / "tiles.jsonl").stat().st_size > 0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130 and "Traceback" not in err
    assert (out / "tiles.csv").exists() and (out / "report.html").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["results"]["interrupted"] is True


def test_workers_die_with_their_parent(tmp_path):
    """Defect 8: after kill -9 of `batch`, its worker processes kept running."""
    proc, out = _start_batch(tmp_path, sleep=30.0, jobs=2, n=4)
    assert _wait_for(lambda: len(list(out.glob("pid-*"))) >= 2)
    pids = [int(p.name.split("-")[1]) for p in out.glob("pid-*")]
    proc.kill()
    proc.wait(timeout=30)

    def gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            with open(f"/proc/{pid}/stat") as fh:  # a zombie (exited, not yet reaped) counts as gone
                if fh.read().split()[2] != "Z":
                    return False
        return True

    assert _wait_for(gone, timeout=20)


def test_a_damaged_saved_slide_tile_is_redone(tmp_path):
    """Defect 11: a corrupt saved slide tile stopped the resumed run with an unexpected error."""
    from spindledx.slide.pipeline import analyze_slide
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    figures = np.array([[200.0, 200.0], [420.0, 380.0]])
    rgb = make_slide_rgb(640, 640, tissue_boxes=[(40, 40, 600, 600)], figures=figures, nuclei_per_mpx=100, seed=4)
    path = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=MPP)
    first = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "o", jobs=1, tile_um=128)
    saved = sorted((tmp_path / "o" / "tiles").glob("*.jsonl"))
    saved[0].write_bytes(b'{"x": 1, "y"\x00\xff')
    again = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "o", jobs=1, tile_um=128)
    assert again.n_tiles_run == 1 and again.n_tiles_resumed == first.n_tiles - 1
    np.testing.assert_allclose(np.sort(again.detections, axis=0), np.sort(first.detections, axis=0))
