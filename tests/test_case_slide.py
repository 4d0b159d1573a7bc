"""`spindledx case --slide`: the hotspot's count enters the case; its candidates can be reviewed and imported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from case_helpers import PANEL, use_detector

from spindledx.cli import main
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT
from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff


def scored_disks(rgb, mpp):
    """The synthetic slides' dark-disk detector with scores: left half of the image 0.9, right half 0.4."""
    return [type(d)(d.x, d.y, 0.9 if d.x < rgb.shape[1] / 2 else 0.4) for d in dark_disk_detector(rgb, mpp)]


def test_case_on_a_slide_counts_its_hotspot(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, scored_disks)
    figures = np.array([[300.0, 300.0], [380.0, 420.0], [460.0, 300.0], [520.0, 460.0], [1500.0, 600.0]])
    rgb = make_slide_rgb(2000, 1000, tissue_boxes=[(50, 50, 1950, 950)], figures=figures, figure_radius_px=12,
                         seed=5)
    slide = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25)
    out = tmp_path / "case"
    code = main(["case", PANEL, "--site", "lung", "--slide", str(slide), "--out", str(out), "--area-mm2", "0.02",
                 "--necrosis", "<50"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    assert doc["inputs"]["evidence"]["kind"] == "slide"
    count = doc["count"]
    # the cluster on the left (x=1500 is below threshold), over the counted area inside the 0.02 mm² window
    assert count["area_mm2"] == pytest.approx(0.02, rel=0.01) and count["count"] == 4
    assert count["extrapolated"] is True and doc["grade"]["grade"] is None
    cands = json.loads((out / "s_candidates.json").read_text())
    assert cands["kind"] == "slide" and all(c["detected"] for c in cands["candidates"])
    assert (out / "case.html").is_file() and (out / "s_mitoses.geojson").is_file()
    page = (out / "review.html").read_text()
    assert page.count("class='card'") == 4
    decisions = {"format": DECISIONS_FORMAT, "run_id": run_id([cands]), "reviewer": "R", "date": "2026-11-29",
                 "decisions": [{"id": cands["candidates"][0]["id"], "decision": "n"}]}
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    assert main(["review", str(out), "--import", str(tmp_path / "d.json")]) == 0
    reviewed = json.loads((out / "case_reviewed.json").read_text())
    assert reviewed["count"]["count"] == 3 and reviewed["count"]["area_mm2"] == count["area_mm2"]


def test_case_refuses_tiles_and_slide_together(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(b"x")
    assert main(["case", PANEL, "--slide", str(tmp_path / "a.png"), "--tiles", str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err
