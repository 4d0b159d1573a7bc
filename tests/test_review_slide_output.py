"""`spindledx review` on a `slide --out` folder: the hotspot's detections, crops read from the slide."""

from __future__ import annotations

import json

import numpy as np

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.review.candidates import load_candidate_files, run_id
from spindledx.review.page import DECISIONS_FORMAT
from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff


def test_review_a_slide_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    figures = np.array([[300.0, 300.0], [380.0, 420.0], [460.0, 300.0], [1700.0, 800.0]])
    rgb = make_slide_rgb(2000, 1000, tissue_boxes=[(50, 50, 1950, 950)], figures=figures, figure_radius_px=12,
                         seed=6)
    slide = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25)
    out = tmp_path / "slide_out"
    assert main(["slide", str(slide), "--out", str(out), "--area-mm2", "0.02", "--no-progress"]) == 0
    assert main(["review", str(out)]) == 0
    capsys.readouterr()
    (doc,) = load_candidate_files(out)
    assert doc["kind"] == "slide" and len(doc["candidates"]) == 3  # the cluster in the hotspot, not x=1700
    assert (out / "review.html").read_text().count("class='card'") == 3
    decisions = {"format": DECISIONS_FORMAT, "run_id": run_id([doc]), "reviewer": "R", "date": "2026-11-29",
                 "decisions": [{"id": c["id"], "decision": "y"} for c in doc["candidates"][:2]]}
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    assert main(["review", str(out), "--import", str(tmp_path / "d.json")]) == 0
    result = json.loads((out / "review_result.json").read_text())
    assert result["confirmed_count"] == 3 and result["partial"] is True and result["count"]["area_mm2"] == 0.02
