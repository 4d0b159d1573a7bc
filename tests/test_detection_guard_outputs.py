"""Guard flags and atypical labels in every output: score (JSON, CSV, table, files), batch, slide."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spindledx.cli import main
from spindledx.detection import atypical as atypical_mod
from spindledx.detection import shipped
from spindledx.detection.types import Detection
from spindledx.mitosis.synthetic import make_tile

MPP = 0.25


class FakeHead:
    """Stand-in atypical head: a figure is atypical when its patch centre is darker than 250 (summed RGB)."""

    threshold = 0.5
    patch_size = 64
    working_mpp = 0.25

    class description:  # noqa: N801 - mimics ModelDescription
        version = "test"
        tta = 1

    def predict(self, patches: np.ndarray) -> np.ndarray:
        centre = patches[:, 28:36, 28:36].astype(np.float32).sum(axis=3).mean(axis=(1, 2))
        return (centre < 250).astype(np.float32) * 0.8 + 0.1


@pytest.fixture()
def head(monkeypatch):
    monkeypatch.setattr(atypical_mod, "load_atypical_model", lambda threads=2: FakeHead())


def _tile_with_spots(path: Path, spots: list[tuple[int, int, int]], size: int = 256) -> Path:
    """H&E-like synthetic tile with magenta spots (R = B = level, G = 0): dark ones are atypical for the fake head."""
    rgb, _ = make_tile(size_px=size, n_mitoses=0, seed=3, mpp=MPP)
    for x, y, level in spots:
        cv2.circle(rgb, (x, y), 6, (level, 0, level), -1)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def spot_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """One detection per drawn spot (pixels with green 0 and red = blue > 0)."""
    from scipy import ndimage

    mask = (rgb[..., 1] == 0) & (rgb[..., 0] == rgb[..., 2]) & (rgb[..., 0] > 0)
    labels, n = ndimage.label(mask)
    centres = ndimage.center_of_mass(mask, labels, range(1, n + 1))
    return [Detection(float(c[1]), float(c[0]), 0.9) for c in centres]


def test_score_json_csv_geojson_and_table_carry_atypical_and_flags(tmp_path, head, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "factory", lambda threshold: spot_detector)
    tile = _tile_with_spots(tmp_path / "t.png", [(60, 60, 40), (180, 150, 200)])
    assert main(["score", str(tile), "--mpp", "0.25", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["count"] == 2
    labels = sorted((m["atypical"], m["atypical_score"] > 0.5) for m in data["mitoses"])
    assert labels == [(False, False), (True, True)]
    assert (data["atypical_count"], data["atypical_fraction"]) == (1, 0.5)
    assert data["flags"] == [] and data["ood_score"] < data["ood_threshold"]

    out = tmp_path / "out"
    assert main(["score", str(tile), "--mpp", "0.25", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "atypical" in table and "1 (50%)" in table
    with open(out / "t_mitoses.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["atypical"] for r in rows) == ["false", "true"]
    classes = sorted(f["properties"]["classification"]["name"]
                     for f in json.loads((out / "t_mitoses.geojson").read_text())["features"])
    assert classes == ["Mitosis", "Mitosis (atypical)"]
    summary = json.loads((out / "summary.json").read_text())["results"][0]
    assert summary["atypical_count"] == 1 and summary["flags"] == []


def test_over_dense_tile_is_flagged_in_json_and_table(tmp_path, head, monkeypatch, capsys):
    spots = [(20 + 36 * i, 20 + 36 * j, 120) for i in range(7) for j in range(7)]  # 49 in 0.0041 mm²
    monkeypatch.setattr(shipped, "factory", lambda threshold: spot_detector)
    tile = _tile_with_spots(tmp_path / "dense.png", spots)
    assert main(["score", str(tile), "--mpp", "0.25", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    # every spot is detected and each is exactly as dark as the spots around it: interphase-like as well
    assert data["count"] == 49 and data["flags"] == ["implausible_density", "interphase_like"]
    assert "beyond what any tumour shows" in data["flag_messages"][0]
    assert "no darker than the median nucleus around them" in data["flag_messages"][1]
    assert main(["score", str(tile), "--mpp", "0.25"]) == 0
    table = capsys.readouterr().out
    assert "(flagged)" in table and "implausible_density" in table and "do not grade" in table


def test_ihc_image_is_flagged_out_of_distribution_by_score(tmp_path, monkeypatch, capsys):
    from skimage import data

    path = tmp_path / "ihc.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.immunohistochemistry(), cv2.COLOR_RGB2BGR))
    monkeypatch.setattr(shipped, "factory", lambda threshold: lambda rgb, mpp: [])
    assert main(["score", str(path), "--mpp", "0.25", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["flags"] == ["out_of_distribution"] and result["ood_score"] > result["ood_threshold"]


def test_sample_slides_score_without_flags(capsys):
    from spindledx.mitosis.score import score_image

    for path in sorted((Path(__file__).resolve().parents[1] / "sample_slides").glob("*.tif")):
        result = score_image(path, detector=lambda rgb, mpp: [Detection(100.0, 100.0, 0.9)] * 1)
        assert result.flags == (), (path.name, result.flag_messages)


def test_batch_rows_tables_and_report_carry_guard_and_atypical(tmp_path, head):
    from spindledx.qa.manifest import tiles_from_folder
    from spindledx.qa.runner import run_and_write

    folder = tmp_path / "tiles"
    folder.mkdir()
    _tile_with_spots(folder / "a.png", [(60, 60, 40), (180, 150, 200)])
    _tile_with_spots(folder / "b.png", [(20 + 36 * i, 20 + 36 * j, 120) for i in range(7) for j in range(7)])
    result = run_and_write(tiles_from_folder(folder, mpp=MPP), tmp_path / "out", detector=spot_detector,
                           progress=False)
    rows = {r["key"]: r for r in result.outcome.rows}
    a, b = rows["a.png"], rows["b.png"]
    assert (a["atypical_count"], a["atypical_fraction"], a["guard_flags"]) == (1, 0.5, [])
    # b: 49 equal spots, every one detected, each as dark as its neighbours: implausible and interphase-like
    assert b["guard_flags"] == ["implausible_density", "interphase_like"] and "implausible_density" in b["flags"]
    assert result.summary["guard"] == {"implausible_density": 1, "out_of_distribution": 0, "interphase_like": 1}
    table = (tmp_path / "out" / "tiles.csv").read_text()
    assert "atypical_count" in table.splitlines()[0] and "guard_flags" in table.splitlines()[0]
    report = (tmp_path / "out" / "report.html").read_text()
    assert "beyond what any tumour shows" in report and "Count plausibility" in report
    assert "these look like interphase nuclei" in report and "interphase-like when its detections" in report


def test_slide_outputs_carry_guard_and_atypical(tmp_path, head):
    from spindledx.slide.outputs import write_outputs
    from spindledx.slide.pipeline import analyze_slide
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    figures = np.array([[600.0, 600.0], [900.0, 700.0], [1300.0, 900.0]])
    rgb = make_slide_rgb(2048, 1536, tissue_boxes=[(100, 100, 1900, 1400)], figures=figures, figure_radius_px=20,
                         seed=2)
    path = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=MPP)
    result = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.05)
    summary = result.to_json()
    assert summary["count"] == 3 and summary["atypical_count"] == 3 and summary["atypical_fraction"] == 1.0
    assert summary["flags"] == [] and summary["ood_tiles_measured"] >= 1
    paths = write_outputs(result, tmp_path / "files")
    classes = {f["properties"]["classification"]["name"]
               for f in json.loads(paths["geojson"].read_text())["features"] if f["geometry"]["type"] == "Point"}
    assert classes == {"Mitosis (atypical)"}
    assert "atypical" in paths["csv"].read_text().splitlines()[0]


def test_slide_and_score_label_figures_through_the_same_eight_view_average(tmp_path, head, monkeypatch):
    """`slide` used to score one view per figure while `score` averaged eight: both now call score_patches."""
    from spindledx.slide.pipeline import analyze_slide
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    class Asymmetric(FakeHead):
        def predict(self, patches: np.ndarray) -> np.ndarray:  # depends on orientation: top-left quadrant
            return patches[:, :32, :32].astype(np.float32).mean(axis=(1, 2, 3)) / 255.0

    patches = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    views = [np.rot90(patches, k, axes=(1, 2)) for k in range(4)] + [
        np.rot90(patches[:, :, ::-1], k, axes=(1, 2)) for k in range(4)]
    expected = np.mean([Asymmetric().predict(v) for v in views], axis=0)
    assert np.allclose(atypical_mod.score_patches(Asymmetric(), patches), expected)
    assert not np.allclose(Asymmetric().predict(patches), expected)  # one view would differ

    calls = []
    original = atypical_mod.score_patches
    monkeypatch.setattr(atypical_mod, "score_patches", lambda h, p: calls.append(len(p)) or original(h, p))
    figures = np.array([[600.0, 600.0], [900.0, 700.0]])
    rgb = make_slide_rgb(1024, 1024, tissue_boxes=[(50, 50, 1000, 1000)], figures=figures, figure_radius_px=20, seed=2)
    result = analyze_slide(write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=MPP), detector=dark_disk_detector,
                           out_dir=tmp_path / "run", area_mm2=0.05)
    assert result.to_json()["count"] == 2 and calls == [2]
