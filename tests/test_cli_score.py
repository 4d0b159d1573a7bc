"""`spindledx score` / `spindledx evaluate` end to end, with a fake detector injected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.detection.types import Detection


def dark_spot_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake detector: one detection per dark (sum < 150) connected blob."""
    from scipy import ndimage

    labels, n = ndimage.label(rgb.astype(int).sum(axis=2) < 150)
    centres = ndimage.center_of_mass(np.ones_like(labels), labels, range(1, n + 1))
    return [Detection(float(c[1]), float(c[0]), 0.9) for c in centres]


@pytest.fixture(autouse=True)
def fake_detector(monkeypatch):
    monkeypatch.setattr(shipped, "factory", lambda threshold: dark_spot_detector)


def _tile(path, spots, size=(200, 240)):
    rgb = np.full((*size, 3), (235, 170, 220), np.uint8)
    for x, y in spots:
        rgb[y - 3 : y + 4, x - 3 : x + 4] = (40, 20, 80)
    Image.fromarray(rgb).save(path, dpi=(25400 / 0.25, 25400 / 0.25))
    return path


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "tiles"
    (root / "sub").mkdir(parents=True)
    _tile(root / "a.png", [(50, 50), (150, 100)])
    _tile(root / "sub" / "b.png", [(30, 40)])
    return root


def test_score_folder_json(folder, capsys):
    assert main(["score", str(folder), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["image"] for d in data] == [str(folder / "a.png"), str(folder / "sub" / "b.png")]
    assert [d["count"] for d in data] == [2, 1]
    assert {
        "image",
        "width",
        "height",
        "mpp",
        "area_mm2",
        "mitoses",
        "count",
        "mitoses_per_mm2",
        "mitoses_per_10hpf",
        "hpf_area_mm2",
    } <= set(data[0])


def test_score_table_states_hpf_area(folder, capsys):
    assert main(["score", str(folder / "a.png"), "--field-number", "20", "--objective", "40"]) == 0
    out = capsys.readouterr().out
    assert "0.1963 mm²" in out  # pi (20/40/2)^2
    assert "FNCLCC" in out


def test_score_csv(folder, capsys):
    assert main(["score", str(folder), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "image,x,y,score,atypical,atypical_score" and len(lines) == 4


def test_folder_with_bad_image_scores_the_others_and_exits_2(folder, tmp_path, capsys):
    (folder / "broken.png").write_text("not an image")
    (folder / "empty.tif").write_bytes(b"")
    out = tmp_path / "out"
    code = main(["score", str(folder), "--out", str(out), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"error: {folder / 'broken.png'}" in captured.err
    assert "empty.tif" in captured.err and "2 of 4 images could not be scored" in captured.err
    assert "Traceback" not in captured.err
    data = json.loads(captured.out)
    assert [d["count"] for d in data] == [2, 1]
    for stem in ("a", "b"):
        assert (out / f"{stem}_mitoses.csv").is_file()
        assert json.loads((out / f"{stem}_mitoses.geojson").read_text())["type"] == "FeatureCollection"
        assert (out / f"{stem}_overlay.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert [d["count"] for d in summary["results"]] == [2, 1]
    assert sorted(Path(e["input"]).name for e in summary["errors"]) == ["broken.png", "empty.tif"]


def test_empty_folder_and_missing_path_are_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["score", str(tmp_path / "empty")]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.png")]) == 2
    assert main(["score", str(tmp_path / "empty"), "--mpp", "100"]) == 2


def test_assumed_mpp_warning_on_stderr(tmp_path, capsys):
    path = tmp_path / "nometa.png"
    Image.fromarray(np.full((64, 64, 3), (235, 170, 220), np.uint8)).save(path)
    assert main(["score", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "assuming 0.25" in captured.err
    assert json.loads(captured.out)[0]["mpp_source"] == "assumed"
    assert main(["score", str(path), "--format", "json", "--mpp", "0.5"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["mpp"] == 0.5 and "assuming" not in captured.err


def test_hpf_options_conflict(folder, capsys):
    assert main(["score", str(folder), "--hpf-area-mm2", "0.3", "--field-number", "20"]) == 2
    assert main(["score", str(folder), "--hpf-area-mm2", "0.3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["hpf_area_mm2"] == 0.3


def _truth_csv(path, rows):
    path.write_text("image,figure,cx,cy\n" + "".join(f"{i},{k},{x},{y}\n" for k, (i, x, y) in enumerate(rows)))
    return path


def test_evaluate_runs_detector_and_sums_over_images(folder, tmp_path, capsys):
    # a.png has spots at (50,50) and (150,100); b.png at (30,40). Truth: one hit within 7.5 µm (30 px),
    # one miss 40 px away (> 30 px), one figure the detector does not see.
    truth = _truth_csv(
        tmp_path / "truth.csv", [("a.png", 55, 60), ("a.png", 190, 100), ("b.png", 30, 41), ("b.png", 100, 150)]
    )
    assert main(["evaluate", str(folder), "--truth", str(truth), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["tp"], data["fp"], data["fn"]) == (2, 1, 2)
    assert data["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert data["recall"] == pytest.approx(0.5)
    assert data["f1"] == pytest.approx(4 / 7, abs=1e-4)
    per_image = {r["image"]: r for r in data["images"]}
    assert per_image["a.png"]["count_error"] == 0 and per_image["b.png"]["count_error"] == -1
    assert data["mean_abs_count_error"] == pytest.approx(0.5)


def test_evaluate_from_predictions_csv_and_score_output(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["score", str(folder), "--out", str(out), "--format", "json"]) == 0
    capsys.readouterr()
    truth = _truth_csv(tmp_path / "truth.csv", [("a.png", 50, 50), ("a.png", 150, 100), ("b.png", 30, 40)])
    assert (
        main(
            ["evaluate", "--pred", str(out / "mitoses.csv"), "--truth", str(truth), "--mpp", "0.25", "--format", "json"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert (data["tp"], data["fp"], data["fn"], data["f1"]) == (3, 0, 0, 1.0)
    assert main(["evaluate", "--pred", str(out / "mitoses.csv"), "--truth", str(truth)]) == 0
    captured = capsys.readouterr()
    assert "F1 1.000" in captured.out and "assuming 0.25" in captured.err


def test_evaluate_bad_input(tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    truth.write_text("image,a,b\nx.png,1,2\n")
    assert main(["evaluate", "--truth", str(truth), "--pred", str(truth)]) == 2
    assert main(["evaluate", "--truth", str(tmp_path / "missing.csv"), "--pred", str(truth)]) == 2
    good = _truth_csv(tmp_path / "good.csv", [("x.png", 1, 2)])
    assert main(["evaluate", "--truth", str(good)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_hidden_files_skipped_and_out_must_be_a_folder(folder, tmp_path, capsys):
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert main(["score", str(folder), "--format", "csv"]) == 0
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    assert main(["score", str(folder), "--out", str(not_a_dir)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_same_warning_for_many_images_is_printed_once(tmp_path, capsys):
    for name in ("x.png", "y.png", "z.png"):
        Image.fromarray(np.full((64, 64, 3), (235, 170, 220), np.uint8)).save(tmp_path / name)
    assert main(["score", str(tmp_path), "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert err.count("assuming 0.25") == 1 and "3 images (x.png, y.png, z.png)" in err


def test_table_states_the_model_accuracy_when_the_detector_has_a_model(folder, monkeypatch, capsys):
    from spindledx.detection import FunctionDetector
    from spindledx.detection.model import ModelDescription

    described = FunctionDetector(dark_spot_detector, model_description=ModelDescription.from_dict(
        {"onnx_file": "m.onnx", "sha256": "0" * 64, "input": {"patch_size": 64, "working_mpp": 0.25},
         "threshold": 0.5, "version": "9.9.9", "cv": {"mean_f1": 0.5817}}
    ))
    monkeypatch.setattr(shipped, "factory", lambda threshold: described)
    assert main(["score", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Detector model 9.9.9: cross-validated F1 0.58" in out and "screening aid" in out
    assert main(["score", str(folder), "--format", "json"]) == 0
    json.loads(capsys.readouterr().out)  # the JSON contract stays pure JSON


def test_table_without_model_description_has_no_accuracy_line(folder, capsys):
    assert main(["score", str(folder)]) == 0
    assert "Detector model" not in capsys.readouterr().out
