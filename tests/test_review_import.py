"""`spindledx review DIR --import decisions.json`: recomputed counts, agreement, partial reviews, refusals."""

from __future__ import annotations

import json

import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.case.decisions import CONFIRMED_CLASS, REJECTED_CLASS, cohen_kappa
from spindledx.cli import main
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


def _candidates(out):
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*_candidates.json"))]
    return docs, [c for d in docs for c in d["candidates"]]


def _decisions(out, chosen: dict[str, str], path=None, **extra):
    docs, _ = _candidates(out)
    doc = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "model_sha256": docs[0]["model"]["model_sha256"],
           "reviewer": "Dr Test", "date": "2026-11-29T09:00:00Z",
           "decisions": [{"id": k, "decision": v} for k, v in chosen.items()], **extra}
    path = path or out.parent / "decisions.json"
    path.write_text(json.dumps(doc))
    return path


def test_full_review_recomputes_count_grade_and_geojson(case_dir, capsys):
    _, cands = _candidates(case_dir)
    detected = [c["id"] for c in cands if c["detected"]]
    below = [c["id"] for c in cands if not c["detected"]]
    assert len(detected) == 4 and len(below) == 4
    # reject one detection, confirm one figure from below the threshold, everything else decided
    chosen = {i: "y" for i in detected} | {i: "n" for i in below}
    chosen[detected[0]] = "n"
    chosen[below[0]] = "y"
    path = _decisions(case_dir, chosen)
    assert main(["review", str(case_dir), "--import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "detector count 4, confirmed count 4" in out
    result = json.loads((case_dir / "review_result.json").read_text())
    assert result["confirmed_count"] == 4 and result["detector_count"] == 4 and not result["partial"]
    assert result["agreement"]["detections_confirmed"] == 3 and result["agreement"]["added_below_threshold"] == 1
    assert result["agreement"]["kappa"] == pytest.approx(cohen_kappa(
        [(True, False), (True, True), (True, True), (True, True), (False, True), (False, False), (False, False),
         (False, False)]), abs=1e-4)
    assert result["reviewer"] == "Dr Test"
    assert result["provenance"]["model_sha256"] == "ab" * 32 and result["provenance"]["spindledx_version"]
    reviewed = json.loads((case_dir / "case_reviewed.json").read_text())
    assert reviewed["count"]["count"] == 4 and reviewed["count"]["method"].startswith("review")
    assert reviewed["review"]["confirmed_count"] == 4 and reviewed["detector_count"]["count"] == 4
    assert reviewed["grade"]["status"] == "extrapolated"
    assert reviewed["differential"][0]["id"] == "leiomyosarcoma"
    assert (case_dir / "case_reviewed.html").is_file()
    classes = [f["properties"]["classification"]["name"]
               for p in sorted(case_dir.glob("*_reviewed.geojson")) for f in json.loads(p.read_text())["features"]]
    assert classes.count(CONFIRMED_CLASS) == 4 and classes.count(REJECTED_CLASS) == 4


def test_partial_review_counts_unreviewed_by_the_detector_and_says_so(case_dir, capsys):
    _, cands = _candidates(case_dir)
    first = next(c["id"] for c in cands if c["detected"])
    path = _decisions(case_dir, {first: "n"})
    assert main(["review", str(case_dir), "--import", str(path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((case_dir / "review_result.json").read_text())
    assert result["partial"] is True and result["confirmed_count"] == 3  # 4 detected - 1 rejected
    assert "7 of 8 candidates were not reviewed" in result["partial_note"]
    assert "partial review" in out and "3 of them counted" in out


def test_decisions_for_another_run_are_refused_with_one_line(case_dir, tmp_path, capsys):
    _, cands = _candidates(case_dir)
    path = _decisions(case_dir, {cands[0]["id"]: "y"})
    doc = json.loads(path.read_text())
    doc["run_id"] = "0123456789abcdef"
    path.write_text(json.dumps(doc))
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another set of candidates" in err
    doc["model_sha256"] = "cd" * 32
    path.write_text(json.dumps(doc))
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    assert "another detector model" in capsys.readouterr().err
    assert not (case_dir / "review_result.json").exists()


@pytest.mark.parametrize("content, message", [
    ("not json", "not a readable JSON"),
    (json.dumps({"format": "other"}), "not a spindledx-decisions/1 file"),
    (json.dumps({"format": DECISIONS_FORMAT, "run_id": "x", "decisions": [{"id": "a", "decision": "maybe"}]}),
     "is not y, n or u"),
])
def test_bad_decisions_files(case_dir, tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["review", str(case_dir), "--import", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_review_of_a_folder_without_candidates_is_refused(tmp_path, capsys):
    assert main(["review", str(tmp_path)]) == 2
    assert "no *_candidates.json" in capsys.readouterr().err


def test_review_rewrites_the_page(case_dir, capsys):
    (case_dir / "review.html").unlink()
    assert main(["review", str(case_dir)]) == 0
    assert (case_dir / "review.html").is_file() and "review page:" in capsys.readouterr().out


def test_cohen_kappa_known_values():
    assert cohen_kappa([(True, True), (False, False)]) == pytest.approx(1.0)
    assert cohen_kappa([(True, False), (False, True)]) == pytest.approx(-1.0)
    assert cohen_kappa([]) is None and cohen_kappa([(True, True)]) is None


def test_review_page_names_images_the_guard_flagged(tmp_path, monkeypatch, capsys):
    from case_helpers import grid_detector

    use_detector(monkeypatch, grid_detector(6, low=0.6))  # an implausible density on a tiny tile
    tiles = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    page = (out / "review.html").read_text()
    # a grid of detections that ignores the nuclei is interphase-like too, and the page says what that means
    assert "guard flagged these images" in page and "tile0 (implausible density, interphase like)" in page
    assert "no darker than the nuclei around them" in page


def test_interphase_like_is_judged_again_on_the_reviewed_count(tmp_path, monkeypatch, capsys):
    """A grid of detections ignoring the nuclei is interphase-like; confirming them all keeps the flag on the
    reviewed count (read again from the image), rejecting all but a few clears it (too few to judge)."""
    from case_helpers import grid_detector

    use_detector(monkeypatch, grid_detector(6, low=0.6))
    tiles = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    assert "interphase_like" in json.loads((out / "case.json").read_text())["count"]["flags"]
    _, cands = _candidates(out)
    detected = [c["id"] for c in cands if c["detected"]]
    assert main(["review", str(out), "--import", str(_decisions(out, {i: "y" for i in detected}))]) == 0
    reviewed = json.loads((out / "review_result.json").read_text())
    assert "interphase_like" in reviewed["count"]["flags"] and "interphase_like" in reviewed["detector"]["flags"]
    chosen = {i: "n" for i in detected[3:]} | {i: "y" for i in detected[:3]}
    assert main(["review", str(out), "--import", str(_decisions(out, chosen)), "--replace"]) == 0, \
        capsys.readouterr().err
    reviewed = json.loads((out / "review_result.json").read_text())
    assert reviewed["count"]["count"] == 3 and "interphase_like" not in reviewed["count"]["flags"]
    assert "interphase_like" in reviewed["detector"]["flags"]
