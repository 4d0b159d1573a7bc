"""The exit-code contract under hostile input, closed streams and huge declared sizes: exit 2 with one line and no
traceback for bad input, 141 (quietly) for a closed pipe, and no unbounded read or allocation."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _one_error_line(err: str) -> None:
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture()
def case_dir(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def _decisions_text(out: Path, decisions: object) -> str:
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*_candidates.json"))]
    doc = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": "R", "date": "2026-11-29",
           "decisions": "@@"}
    return json.dumps(doc).replace('"@@"', json.dumps(decisions) if not isinstance(decisions, str) else decisions)


@pytest.mark.parametrize("decisions", [
    [{"id": ["a", "b"], "decision": "y"}],
    [{"id": 3, "decision": "y"}, {"id": "x", "decision": "n"}],
    [{"id": {"nested": 1}, "decision": "y"}],
    "[" * 100_000 + "]" * 100_000,
    [{"id": "tile0#0", "decision": ["y"]}],
])
def test_hostile_decisions_exit_2(case_dir, tmp_path, capsys, decisions):
    """Hostile ids in decisions.json (a list, mixed int/str, deeply nested) exited 1."""
    path = tmp_path / "d.json"
    path.write_text(_decisions_text(case_dir, decisions))
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    _one_error_line(capsys.readouterr().err)


def test_a_truncated_case_json_exits_2(case_dir, tmp_path, capsys):
    docs = [json.loads(p.read_text()) for p in sorted(case_dir.glob("*_candidates.json"))]
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": "R",
                                "decisions": [{"id": docs[0]["candidates"][0]["id"], "decision": "y"}]}))
    text = (case_dir / "case.json").read_text()
    for damaged in (text[: len(text) // 2], "[]", json.dumps({"count": 1})):
        (case_dir / "case.json").write_text(damaged)
        assert main(["review", str(case_dir), "--import", str(path)]) == 2
        _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("field", "value"), [("mpp", 0), ("mpp", "0.25"), ("x", "12"), ("score", None),
                                              ("width", -5), ("id", 7)])
def test_damaged_candidates_exit_2(case_dir, capsys, field, value):
    """Candidates with mpp 0 or a string coordinate exited 1."""
    path = next(case_dir.glob("*_candidates.json"))
    doc = json.loads(path.read_text())
    if field in ("x", "score", "id"):
        doc["candidates"][0][field] = value
    else:
        doc[field] = value
    path.write_text(json.dumps(doc))
    assert main(["review", str(case_dir)]) == 2
    _one_error_line(capsys.readouterr().err)


def test_review_import_of_dev_zero_is_refused_without_reading(case_dir, capsys):
    """`review --import /dev/zero` read without bound."""
    start = time.perf_counter()
    assert main(["review", str(case_dir), "--import", "/dev/zero"]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "not a regular file" in err


def test_an_oversized_decisions_file_is_refused(case_dir, tmp_path, capsys, monkeypatch):
    import spindledx.case.decisions as decisions_module

    monkeypatch.setattr(decisions_module, "MAX_DECISIONS_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(" " * 2000 + "{}")
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    assert "too large" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--objective", "1e-300"], ["--objective", "1e300"], ["--field-number", "1e300"],
                                  ["--mpp", "1_0"], ["--mpp=0_25"], ["--threshold", "0_5"]])
def test_number_options_that_python_would_accept_exit_2(tmp_path, capsys, monkeypatch, args):
    """`--objective 1e-300` exited 1; `--mpp 1_0` was read as 10."""
    monkeypatch.setattr(shipped, "factory", lambda threshold: fixed_detector)
    (tile,) = write_tiles(tmp_path, n=1)
    assert main(["score", str(tile), *args]) == 2
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["batch", "slide"])
def test_a_bad_dask_address_exits_2(tmp_path, capsys, command):
    (tile,) = write_tiles(tmp_path / "t", n=1)
    source = tile.parent if command == "batch" else tile
    assert main([command, str(source), "--out", str(tmp_path / "o"), "--dask", "junk", "--no-progress"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "tcp://host:8786" in err and not (tmp_path / "o").exists()


def test_resampling_above_the_tile_limit_is_refused_before_allocating():
    """`--mpp 5` allocated 5 GB after resampling to the detector's 0.25 µm/px."""
    from spindledx.errors import BadInputError
    from spindledx.imaging.resample import resample_to

    rgb = np.zeros((2500, 2500, 3), np.uint8)
    with pytest.raises(BadInputError, match="above the 100 MP limit"):
        resample_to(rgb, 5.0, 0.25)
    assert resample_to(rgb, 0.5, 0.25)[0].shape == (5000, 5000, 3)


def _forged_tiff(path: Path, *, width: int, height: int, byte_count: int) -> Path:
    """A 1 KB uncompressed RGB TIFF whose header declares ``width`` x ``height`` px in one strip."""
    buf = bytearray(b"II*\x00" + struct.pack("<I", 8))
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2),
            (277, 3, 1, 3), (273, 4, 1, 200), (279, 4, 1, byte_count), (282, 5, 1, 0)][:8]
    buf += struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        buf += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind,
                                                                                                  count, value)
    buf += struct.pack("<I", 0)
    buf += b"\0" * (1024 - len(buf))
    path.write_bytes(bytes(buf))
    return path


def test_a_tiny_tiff_declaring_a_huge_slide_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """A 1 KB TIFF claiming 100000 x 100000 px made `slide` run for minutes."""
    from spindledx.detection import shipped
    from spindledx.slide.synthetic import dark_disk_detector

    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    path = _forged_tiff(tmp_path / "huge.tif", width=100_000, height=100_000, byte_count=(3 * 10**10) & 0xFFFFFFFF)
    start = time.perf_counter()
    assert main(["slide", str(path), "--mpp", "0.25", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "100000 x 100000 px" in err


def test_the_declared_size_check_keeps_real_slides(tmp_path):
    from spindledx.imaging.slide import check_declared_size
    from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

    rgb = make_slide_rgb(1200, 900, tissue_boxes=[(100, 100, 1100, 800)], figures=np.zeros((0, 2)))
    check_declared_size(write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25, n_levels=2))


def test_tifffile_log_lines_never_reach_stderr(tmp_path):
    """A tifffile log line leaked to stderr."""
    rgb = (np.random.default_rng(0).integers(0, 40, (64, 64, 3)) + np.array([170, 90, 140])).astype(np.uint8).tobytes()
    buf = bytearray(b"II*\x00" + struct.pack("<I", 8))
    tags = [(256, 4, 1, 64), (257, 4, 1, 64), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2), (277, 3, 1, 3),
            (273, 4, 1, 300), (279, 4, 1, len(rgb)), (305, 99, 1, 0)]  # tag 305 with an invalid data type
    buf += struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        buf += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind,
                                                                                                  count, value)
    buf += struct.pack("<I", 0) + b"\0" * (300 - len(buf) - 4) + rgb
    path = tmp_path / "badtag.tif"
    path.write_bytes(bytes(buf))
    result = _run(["score", str(path), "--mpp", "0.25", "--format", "json"])
    assert "TiffTag" not in result.stderr and "tifffile" not in result.stderr, result.stderr


def test_a_link_inside_a_kb_site_folder_exits_2(tmp_path, capsys):
    """A symlink inside a `kb site` folder exited 1."""
    out = tmp_path / "site"
    assert main(["kb", "site", "--out", str(out)]) == 0
    victim = tmp_path / "victim.html"
    victim.write_text("mine")
    (out / "index.html").unlink()
    (out / "index.html").symlink_to(victim)
    capsys.readouterr()
    assert main(["kb", "site", "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err)
    assert victim.read_text() == "mine"


def _run(args: list[str], *, close: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    code = "import sys; from spindledx.cli import main; sys.exit(main(sys.argv[1:]))"
    preexec = (lambda: os.close(close)) if close is not None else None
    return subprocess.run([sys.executable, "-c", code, *args], env=env, preexec_fn=preexec, capture_output=close != 1
                          and "stdout" not in kwargs, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("args", [["panel", "-"], ["quiz", "--n", "2"]])
def test_closed_stdin_never_crashes(args):
    """`quiz` and `panel -` with stdin closed exited 1."""
    result = _run(args, close=0)
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr, result.stderr
    if args[0] == "panel":
        assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_closed_stdout_is_an_error_not_a_lost_result(tmp_path):
    """With stdout closed the run exited 0 and its result was lost."""
    err = tmp_path / "err.txt"
    with err.open("w") as fh:
        result = _run(["kb", "coverage"], close=1, stderr=fh)
    assert result.returncode == 2
    assert "standard output is closed" in err.read_text()


def test_a_closed_pipe_ends_quietly():
    """`kb coverage | head -1` exited 1."""
    env = {**os.environ, "PYTHONPATH": SRC}
    code = "import sys; from spindledx.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "kb", "coverage"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
