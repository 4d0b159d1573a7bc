"""`score --out` writes candidates down to just below the threshold; `review` works on that folder."""

from __future__ import annotations

import json
from types import SimpleNamespace

from case_helpers import write_tiles

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.detection.types import Detection


class FakeModelDetector:
    """Stands in for the shipped detector: a model description with a threshold, outputs above ``threshold``."""

    model_description = SimpleNamespace(name="fake", version="t-1", sha256="ef" * 32, threshold=0.5, extra={})

    def __init__(self, threshold):
        self.threshold = 0.5 if threshold is None else threshold

    def __call__(self, rgb, mpp):
        points = [Detection(50.0, 50.0, 0.9), Detection(150.0, 50.0, 0.6), Detection(50.0, 150.0, 0.4),
                  Detection(150.0, 150.0, 0.2)]
        return [p for p in points if p.score >= self.threshold]


def test_score_out_writes_candidates_and_counts_as_at_the_threshold(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "factory", lambda threshold: FakeModelDetector(threshold))
    (tile,) = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "score"
    assert main(["score", str(tile), "--out", str(out), "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["count"] == 2  # what the detector at its threshold (0.5) finds
    doc = json.loads((out / "tile0_candidates.json").read_text())
    assert doc["threshold"] == 0.5 and abs(doc["review_floor"] - 0.3) < 1e-9
    assert [(c["score"], c["detected"]) for c in doc["candidates"]] == [(0.9, True), (0.6, True), (0.4, False)]
    assert doc["model"]["model_sha256"] == "ef" * 32
    assert main(["review", str(out)]) == 0
    assert (out / "review.html").is_file()
    capsys.readouterr()
    from spindledx.review.candidates import run_id
    from spindledx.review.page import DECISIONS_FORMAT

    decisions = {"format": DECISIONS_FORMAT, "run_id": run_id([doc]), "reviewer": "R", "date": "2026-11-29",
                 "decisions": [{"id": c["id"], "decision": "y"} for c in doc["candidates"]]}
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    assert main(["review", str(out), "--import", str(tmp_path / "d.json")]) == 0
    result = json.loads((out / "review_result.json").read_text())
    assert result["detector_count"] == 2 and result["confirmed_count"] == 3
    assert result["agreement"]["added_below_threshold"] == 1
