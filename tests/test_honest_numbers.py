"""Numbers that never overstate: what a review covered, runs that scored nothing, undefined scores, NaN, colour
spaces other than RGB, repeated manifest columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT


@pytest.fixture()
def case_dir(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=2)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--site", "lung", "--tiles", str(tiles[0]), str(tiles[1]), "--out", str(out),
                 "--necrosis", "<50"]) == 0
    capsys.readouterr()
    return out


def _docs(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*_candidates.json"))]


def _write_decisions(path: Path, out: Path, decisions: list[dict], **extra) -> Path:
    docs = _docs(out)
    doc = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": "Dr A", "date": "2026-11-29T09:00:00Z",
           "decisions": decisions, **extra}
    path.write_text(json.dumps(doc) if isinstance(doc, dict) else doc)
    return path


def test_an_empty_decisions_file_is_not_a_review(case_dir, tmp_path, capsys):
    """An empty decisions.json gave "Reviewed by Dr A: 2 figures confirmed"."""
    path = _write_decisions(tmp_path / "d.json", case_dir, [])
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    assert "holds no decisions" in capsys.readouterr().err
    assert not (case_dir / "case_reviewed.html").exists()


def test_the_case_headline_says_what_was_reviewed(case_dir, tmp_path, capsys):
    first = _docs(case_dir)[0]["candidates"][0]["id"]
    path = _write_decisions(tmp_path / "d.json", case_dir, [{"id": first, "decision": "y"}])
    assert main(["review", str(case_dir), "--import", str(path)]) == 0
    page = (case_dir / "case_reviewed.html").read_text()
    n = sum(len(d["candidates"]) for d in _docs(case_dir))
    assert f"1 of {n} candidates decided" in page and "Partial review" in page
    assert "figures confirmed" not in page


def test_the_terminal_line_after_import_gives_the_area_and_extrapolation(case_dir, tmp_path, capsys):
    """The line after import gave per-10-HPF without the area or "extrapolated"."""
    ids = [c["id"] for d in _docs(case_dir) for c in d["candidates"]]
    path = _write_decisions(tmp_path / "d.json", case_dir, [{"id": i, "decision": "y"} for i in ids])
    assert main(["review", str(case_dir), "--import", str(path)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "/10 HPF" in line and " mm² = " in line and "HPF counted, extrapolated" in line


@pytest.mark.parametrize("date", ["NaN", "Infinity", "-Infinity"])
def test_decisions_with_nan_never_make_invalid_json(case_dir, tmp_path, capsys, date):
    """Decisions dated NaN made review_result.json invalid JSON."""
    first = _docs(case_dir)[0]["candidates"][0]["id"]
    path = _write_decisions(tmp_path / "d.json", case_dir, [{"id": first, "decision": "y"}])
    path.write_text(path.read_text().replace('"2026-11-29T09:00:00Z"', date))
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a JSON number" in err and "Traceback" not in err
    assert not (case_dir / "review_result.json").exists()


def test_summary_is_failed_when_nothing_was_scored(tmp_path, monkeypatch, capsys):
    """summary.json said `complete` when 0 of N tiles were scored."""
    monkeypatch.setattr(shipped, "factory", lambda threshold: fixed_detector)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "b.png").write_bytes(b"")
    assert main(["score", str(folder), "--out", str(tmp_path / "out"), "--format", "json"]) == 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["counts"]["scored"] == 0


def test_batch_summary_is_failed_when_nothing_was_scored(tmp_path, monkeypatch, capsys):
    import spindledx.detection.model as model_module

    monkeypatch.setattr(shipped, "factory", lambda threshold: fixed_detector)
    monkeypatch.setattr(model_module, "load_shipped_model", lambda *a, **k: None)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out), "--jobs", "1", "--no-progress"]) == 2
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"
    assert "failed: no tile could be scored" in (out / "report.html").read_text()


def test_evaluate_without_truth_reports_undefined_not_zero(tmp_path, capsys):
    """`evaluate` with no truth reported precision/recall/F1 = 0.0."""
    truth = tmp_path / "truth.csv"
    truth.write_text("image,x,y\n")
    pred = tmp_path / "pred.csv"
    pred.write_text("image,x,y\na.png,10,10\n")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--mpp", "0.25", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recall"] is None and doc["f1"] is None and doc["precision"] == 0.0
    assert any("undefined" in w for w in doc["warnings"])
    pred.write_text("image,x,y\n")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--mpp", "0.25", "--format", "json",
                 "a.png"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["precision"] is None and doc["recall"] is None and doc["f1"] is None
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--mpp", "0.25", "a.png"]) == 0
    assert "precision undefined  recall undefined  F1 undefined" in capsys.readouterr().out


def test_evaluate_with_no_images_writes_valid_json(tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    truth.write_text("image,x,y\n")
    pred = tmp_path / "pred.csv"
    pred.write_text("image,x,y\n")
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--mpp", "0.25", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert doc["mean_abs_count_error"] is None


def _cmyk_from_rgb(rgb: np.ndarray) -> np.ndarray:
    rgbf = rgb.astype(np.float64) / 255.0
    k = 1.0 - rgbf.max(axis=2)
    denom = np.where(k < 1.0, 1.0 - k, 1.0)
    cmy = (1.0 - rgbf - k[..., None]) / denom[..., None]
    return np.round(np.dstack([cmy, k]) * 255.0).astype(np.uint8)


def test_a_cmyk_tiff_is_converted_to_rgb(tmp_path):
    """A CMYK TIFF was read as RGB + alpha (0 figures instead of 2)."""
    import tifffile

    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.synthetic import make_tile

    rgb, _ = make_tile(size_px=256, n_mitoses=2, seed=3, mpp=0.25)
    path = tmp_path / "cmyk.tif"
    tifffile.imwrite(path, _cmyk_from_rgb(rgb), photometric="separated")
    tile = read_image(path, mpp=0.25)
    assert tile.rgb.shape == rgb.shape
    assert np.abs(tile.rgb.astype(int) - rgb.astype(int)).max() <= 3
    assert any("CMYK" in w for w in tile.warnings)


def test_a_tiff_in_another_colour_space_is_refused(tmp_path, capsys):
    import tifffile

    path = tmp_path / "lab.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8),
                     photometric="cielab")
    assert main(["score", str(path), "--mpp", "0.25"]) == 2
    assert "CIELAB colour space" in capsys.readouterr().err


@pytest.mark.parametrize("header", ["image,IMAGE", "image, Image ", "image,case,CASE"])
def test_a_manifest_with_a_repeated_column_is_refused(tmp_path, header):
    """A manifest with columns `image` and `IMAGE` dropped one silently."""
    from spindledx.errors import BadInputError
    from spindledx.qa.manifest import load_manifest

    write_tiles(tmp_path, n=1)
    manifest = tmp_path / "m.csv"
    n = header.count(",") + 1
    manifest.write_text(header + "\n" + ",".join(["tile0.png"] * n) + "\n")
    with pytest.raises(BadInputError, match="appears more than once"):
        load_manifest(manifest)


def test_points_csv_with_a_repeated_column_is_refused(tmp_path):
    from spindledx.errors import BadInputError
    from spindledx.qa.manifest import read_points_csv

    path = tmp_path / "p.csv"
    path.write_text("image,x,X,y\na.png,1,2,3\n")
    with pytest.raises(BadInputError, match="appears more than once"):
        read_points_csv(path)


def test_detection_scores_are_undefined_without_a_denominator():
    from spindledx.mitosis.evaluate import detection_scores

    assert detection_scores(0, 0, 0) == (None, None, None)
    assert detection_scores(0, 3, 0) == (0.0, None, None)
    assert detection_scores(0, 0, 2) == (None, 0.0, 0.0)
    assert detection_scores(3, 1, 2) == pytest.approx((0.75, 0.6, 2 * 3 / (6 + 3)))
