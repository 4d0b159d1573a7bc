"""Batch runner: resume after interruption, corrupt files, local processes and Dask give the same rows, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.detection.types import Detection
from spindledx.engine.store import ResultLog as ResultStore
from spindledx.mitosis.synthetic import make_tile
from spindledx.qa.manifest import tiles_from_folder
from spindledx.qa.runner import JSONL_NAME, run_and_write

MPP = 0.25
TIMING = {"seconds"}


def fixed_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Deterministic fake: the darkest pixel of the tile and a point at (10, 10)."""
    gray = rgb.astype(np.float32).sum(axis=-1)
    y, x = np.unravel_index(int(np.argmin(gray)), gray.shape)
    return [Detection(float(x), float(y), 0.9), Detection(10.0, 10.0, 0.6)]


class InterruptAfter:
    """Detector that behaves like :func:`fixed_detector` for ``k`` tiles, then acts like Ctrl-C."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls = 0

    def __call__(self, rgb: np.ndarray, mpp: float) -> list[Detection]:
        self.calls += 1
        if self.calls > self.k:
            raise KeyboardInterrupt
        return fixed_detector(rgb, mpp)


def _make_set(folder: Path, n: int, *, size: int = 192) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rgb, figures = make_tile(size_px=size, n_mitoses=1, seed=10 + i, mpp=MPP)
        cv2.imwrite(str(folder / f"t{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        rows += [{"image": f"t{i:02d}.png", "x": f.x, "y": f.y} for f in figures]
    ann = folder.parent / f"{folder.name}_points.csv"
    pd.DataFrame(rows).to_csv(ann, index=False)
    return folder, ann


def _strip(rows) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_resume_after_interruption_has_no_duplicates(tmp_path: Path) -> None:
    folder, ann = _make_set(tmp_path / "tiles", 5)
    specs = tiles_from_folder(folder, mpp=MPP, annotations=ann)
    out = tmp_path / "out"
    first = run_and_write(specs, out, detector=InterruptAfter(2), progress=False)
    assert first.outcome.interrupted and first.summary["interrupted"] is True
    assert len(first.outcome.rows) == 2 and (out / "report.html").exists()
    assert len(pd.read_csv(out / "tiles.csv")) == 2
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    second = run_and_write(specs, out, detector=fixed_detector, progress=False)
    assert not second.outcome.interrupted
    assert second.outcome.n_skipped == 2 and second.outcome.n_new == 3
    table = pd.read_csv(out / "tiles.csv")
    assert list(table["key"]) == [s.key for s in specs]
    assert table["error"].isna().all()
    lines = (out / JSONL_NAME).read_text().splitlines()
    assert len(lines) == 5 and len({json.loads(x)["key"] for x in lines}) == 5
    # a third run has nothing left to do
    third = run_and_write(specs, out, detector=InterruptAfter(0), progress=False)
    assert third.outcome.n_new == 0 and not third.outcome.interrupted
    summary = json.loads((out / "summary.json").read_text())
    det = summary["results"]["detection"]
    assert summary["status"] == "complete" and summary["counts"]["resumed"] == 5
    # each tile's figure, plus the (10, 10) point where that corner is tissue (a detection on glass is not counted)
    assert det["tp"] + det["fn"] == 5 and det["tp"] + det["fp"] == int(table["count"].sum())
    assert 5 < int(table["count"].sum()) < 10


def test_truncated_last_line_is_ignored(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / JSONL_NAME)
    store.append({"key": "a", "error": None})
    with open(store.path, "a") as fh:
        fh.write('{"key": "b", "err')
    assert list(store.read()) == ["a"]


def test_corrupt_files_become_error_rows_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    folder, _ = _make_set(tmp_path / "tiles", 2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (folder / "empty.png").write_bytes(b"")
    specs = tiles_from_folder(folder, mpp=MPP)
    result = run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)
    errors = {r["key"]: r for r in result.outcome.rows if r["error"]}
    assert set(errors) == {"broken.png", "empty.png"}
    assert all(r["error_kind"] == "bad_input" for r in errors.values())
    assert result.summary["n_done"] == 2 and result.summary["n_failed"] == 2
    # the CLI goes through the batch, then exits 2 saying how many failed (fake model, in-process)
    import spindledx.detection.model as model_module

    monkeypatch.setattr(shipped, "factory", lambda threshold: fixed_detector)
    monkeypatch.setattr(model_module, "load_shipped_model", lambda *a, **k: None)
    code = main(["batch", str(folder), "--out", str(tmp_path / "cli"), "--mpp", "0.25", "--jobs", "1",
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and "2 of 4 tiles failed" in captured.err and "Traceback" not in captured.err
    assert "2 of 4 tiles scored" in captured.out and (tmp_path / "cli" / "report.html").exists()


def test_local_processes_match_in_process(tmp_path: Path) -> None:
    folder, ann = _make_set(tmp_path / "tiles", 3)
    specs = tiles_from_folder(folder, mpp=MPP, annotations=ann)
    one = run_and_write(specs, tmp_path / "j1", detector=fixed_detector, progress=False)
    two = run_and_write(specs, tmp_path / "j2", detector=fixed_detector, jobs=2, progress=False)
    assert _strip(one.outcome.rows) == _strip(two.outcome.rows)
    assert len(one.outcome.rows) == 3 and all(r["error"] is None and r["count"] >= 1 for r in one.outcome.rows)


@pytest.mark.slow
def test_dask_local_cluster_matches_local(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    import cloudpickle

    # the fake detector lives in this test module, which Dask workers cannot import: ship it by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        folder, ann = _make_set(tmp_path / "tiles", 3, size=160)
        specs = tiles_from_folder(folder, mpp=MPP, annotations=ann)
        local = run_and_write(specs, tmp_path / "local", detector=fixed_detector, progress=False)
        dask = run_and_write(specs, tmp_path / "dask", detector=fixed_detector, dask="local", progress=False)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert _strip(local.outcome.rows) == _strip(dask.outcome.rows)
    assert local.summary["detection"] == dask.summary["detection"]
    assert len(local.outcome.rows) == 3 and all(r["error"] is None and r["count"] >= 1 for r in local.outcome.rows)


def test_batch_f1_agrees_with_spindledx_evaluate(tmp_path: Path, capsys) -> None:
    folder, ann = _make_set(tmp_path / "tiles", 3)
    specs = tiles_from_folder(folder, mpp=MPP, annotations=ann)
    result = run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)
    pred = tmp_path / "pred.csv"
    pd.DataFrame([{"image": r["key"], "x": m["x"], "y": m["y"], "score": m["score"]}
                  for r in result.outcome.rows for m in r["mitoses"]]).to_csv(pred, index=False)
    capsys.readouterr()
    code = main(["evaluate", "--pred", str(pred), "--truth", str(ann), "--mpp", str(MPP), "--format", "json"])
    assert code == 0
    evaluated = json.loads(capsys.readouterr().out)
    det = result.summary["detection"]
    assert (det["tp"], det["fp"], det["fn"], det["f1"]) == (evaluated["tp"], evaluated["fp"], evaluated["fn"],
                                                            evaluated["f1"])


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    from spindledx.errors import BadInputError
    from spindledx.qa.runner import RunOptions

    folder, _ = _make_set(tmp_path / "tiles", 1)
    specs = tiles_from_folder(folder, mpp=MPP)
    run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)
    with pytest.raises(BadInputError, match="different settings .*threshold"):
        run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False,
                      options=RunOptions(threshold=0.7))


def test_changed_image_is_scored_again_on_resume(tmp_path: Path) -> None:
    import os

    folder, _ = _make_set(tmp_path / "tiles", 2)
    specs = tiles_from_folder(folder, mpp=MPP)
    run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)
    changed = folder / "t01.png"
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = run_and_write(specs, tmp_path / "out", detector=fixed_detector, progress=False)
    assert again.outcome.n_skipped == 1 and again.outcome.n_new == 1
    assert len(pd.read_csv(tmp_path / "out" / "tiles.csv")) == 2


@pytest.mark.parametrize(("behaviour", "code", "message"), [
    ("interrupt", 130, "run the same command again to resume"),
    ("crash", 1, "2 of 2 tiles failed (0 unreadable or bad input)"),
])
def test_cli_exit_codes_for_interrupt_and_failures(tmp_path: Path, capsys, monkeypatch, behaviour, code,
                                                   message) -> None:
    import spindledx.detection.model as model_module

    def make(threshold):
        def detector(rgb, mpp):
            if behaviour == "interrupt":
                raise KeyboardInterrupt
            raise ValueError("boom")
        return detector

    monkeypatch.setattr(shipped, "factory", make)
    monkeypatch.setattr(model_module, "load_shipped_model", lambda *a, **k: None)
    folder, _ = _make_set(tmp_path / "tiles", 2)
    out = tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out), "--mpp", "0.25", "--jobs", "1", "--no-progress"]) == code
    assert message in capsys.readouterr().err
    assert (out / "report.html").exists() and (out / "summary.json").exists()


def killing_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake that kills its worker process on the one 160-px tile (a crashed or OOM-killed worker)."""
    import os
    import signal

    if rgb.shape[0] == 160:
        os.kill(os.getpid(), signal.SIGKILL)
    return fixed_detector(rgb, mpp)


def test_killed_worker_loses_nothing_done(tmp_path: Path) -> None:
    folder, ann = _make_set(tmp_path / "tiles", 3)
    rgb, _ = make_tile(size_px=160, n_mitoses=1, seed=99, mpp=MPP)
    cv2.imwrite(str(folder / "t99_kill.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    specs = tiles_from_folder(folder, mpp=MPP)
    out = tmp_path / "out"
    first = run_and_write(specs, out, detector=killing_detector, jobs=2, progress=False)
    rows = {r["key"]: r for r in first.outcome.rows}
    assert "worker process died" in rows["t99_kill.png"]["error"]
    assert len(rows) == 4 and not first.outcome.interrupted
    done_before = {k for k, r in rows.items() if not r["error"]}
    second = run_and_write(specs, out, detector=fixed_detector, jobs=1, progress=False)
    assert second.outcome.n_skipped == len(done_before) and second.summary["n_failed"] == 0
    assert len(pd.read_csv(out / "tiles.csv")) == 4
