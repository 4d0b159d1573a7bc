"""One ``summary.json`` shape (:mod:`spindledx.summary`) for every command that writes an output folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.cli import main
from spindledx.detection.types import Detection
from spindledx.summary import KEY_TYPES, PROVENANCE_KEYS, SCHEMA, build_summary, check_summary


def _one_spot(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake detector: the darkest pixel of the tile."""
    y, x = np.unravel_index(int(np.argmin(rgb.astype(int).sum(axis=-1))), rgb.shape[:2])
    return [Detection(float(x), float(y), 0.9)]


def _run_score(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    from spindledx.detection import shipped

    monkeypatch.setattr(shipped, "factory", lambda threshold: _one_spot)
    tiles = write_tiles(tmp_path / "tiles", n=2, size_px=128)
    (tmp_path / "tiles" / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    assert main(["score", str(tmp_path / "tiles"), "--out", str(out), "--format", "json"]) == 2  # one bad file
    assert len(tiles) == 2
    return out / "summary.json", "score"


def _run_batch(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    import spindledx.detection.model as model_module
    from spindledx.detection import shipped

    monkeypatch.setattr(shipped, "factory", lambda threshold: _one_spot)
    monkeypatch.setattr(model_module, "load_shipped_model", lambda *a, **k: None)
    write_tiles(tmp_path / "tiles", n=2, size_px=128)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "tiles"), "--out", str(out), "--mpp", "0.25", "-j", "1",
                 "--no-progress"]) == 0
    return out / "summary.json", "batch"


def _run_slide(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    from spindledx.detection import shipped
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    rgb = make_slide_rgb(1024, 768, tissue_boxes=[(50, 50, 970, 700)], figures=np.array([[300.0, 300.0]]),
                         figure_radius_px=12, seed=6)
    slide = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25)
    out = tmp_path / "out"
    assert main(["slide", str(slide), "--out", str(out), "--area-mm2", "0.02", "--no-progress"]) == 0
    return out / "summary.json", "slide"


def _run_case(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=2)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--site", "lung", "--tiles", *map(str, tiles), "--out", str(out)]) == 0
    return out / "summary.json", "case"


def _run_review_import(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    from spindledx.review.candidates import load_candidate_files, run_id
    from spindledx.review.page import DECISIONS_FORMAT

    case_summary, _ = _run_case(tmp_path, monkeypatch)
    out = case_summary.parent
    docs = load_candidate_files(out)
    decisions = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": "R", "date": "2026-11-29",
                 "decisions": [{"id": docs[0]["candidates"][0]["id"], "decision": "n"}]}
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    before = case_summary.read_bytes()
    assert main(["review", str(out), "--import", str(tmp_path / "d.json")]) == 0
    assert case_summary.read_bytes() == before  # the case's own summary is not replaced
    return out / "review_summary.json", "review --import"


def _run_kb_site(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    from spindledx.teaching import site as site_module

    monkeypatch.setattr(site_module, "render_site", lambda kb=None: {"index.html": "<p>a</p>", "x/b.html": "b"})
    out = tmp_path / "site"
    assert main(["kb", "site", "--out", str(out)]) == 0
    return out / "summary.json", "kb site"


@pytest.mark.parametrize("run", [_run_score, _run_batch, _run_slide, _run_case, _run_review_import, _run_kb_site],
                         ids=["score", "batch", "slide", "case", "review-import", "kb-site"])
def test_every_command_writes_the_one_summary_shape(run, tmp_path, monkeypatch, capsys):
    path, command = run(tmp_path, monkeypatch)
    capsys.readouterr()
    doc = json.loads(path.read_text(encoding="utf-8"))
    check_summary(doc)
    assert list(doc) == list(KEY_TYPES) and doc["schema"] == SCHEMA and doc["command"] == command
    assert doc["status"] == "complete" and doc["inputs"] and doc["counts"]
    assert set(PROVENANCE_KEYS) <= set(doc["provenance"]) and doc["provenance"]["spindledx_version"]
    listed = set(doc["outputs"])
    assert listed and path.name not in listed
    assert all((path.parent / name).is_file() for name in listed)  # every listed output exists in the folder
    if command == "score":
        assert doc["counts"] == {"images": 3, "scored": 2, "failed": 1, "mitoses": 2,
                                 "area_mm2": doc["counts"]["area_mm2"]}
        assert [e["input"].endswith("broken.png") for e in doc["errors"]] == [True]
        assert [r["count"] for r in doc["results"]] == [1, 1]  # the `score --format json` objects
        assert {"mitoses.csv", "tile0_overlay.png", "tile1_candidates.json"} <= listed
    if command == "batch":
        assert {"tiles.csv", "report.html", "tiles.jsonl", "run.json"} <= listed
        assert doc["results"]["n_done"] == 2 and doc["counts"]["mitoses"] == 2
    if command == "slide":
        assert doc["results"]["count"] == doc["counts"]["detections"] == 1 and "s_mitoses.geojson" in listed
    if command == "case":
        assert {"case.json", "case.html", "review.html"} <= listed
        assert doc["results"]["count"]["count"] == doc["counts"]["mitoses"]
    if command == "kb site":
        assert doc["outputs"] == ["index.html", "site.json", "x/b.html"] and doc["counts"]["pages"] == 2
    if command == "review --import":
        assert "review_result.json" in listed and doc["counts"]["reviewed"] == 1


def test_the_check_refuses_other_shapes(tmp_path):
    good = build_summary("score", provenance={"spindledx_version": "x"}, out_dir=tmp_path,
                         outputs=[tmp_path / "a.csv"], counts={"n": 1}, errors=[("b.png", "broken")])
    assert good["outputs"] == ["a.csv"] and good["provenance"]["model_sha256"] is None
    bad_docs = [
        [good],
        {k: v for k, v in good.items() if k != "flags"},
        good | {"extra": 1},
        good | {"status": "done"},
        good | {"outputs": ["/etc/passwd"]},
        good | {"outputs": ["../x"]},
        good | {"counts": {"n": "one"}},
        good | {"counts": {"n": float("nan")}},
        good | {"errors": [{"image": "b.png"}]},
        good | {"provenance": {"spindledx_version": "x"}},
        good | {"created": "yesterday"},
    ]
    for doc in bad_docs:
        with pytest.raises(ValueError, match="not a spindledx summary"):
            check_summary(doc)
    with pytest.raises(ValueError, match="not inside the output folder"):
        build_summary("score", provenance={}, out_dir=tmp_path / "o", outputs=[tmp_path / "x.csv"])
