"""`batch --model CARD`: every tile scored with a model card's detector (in this process and in worker processes),
the model named in every output, a run with another model refused in the same folder, a bad card refused before
any tile is scored. The model is the tiny darkness ONNX graph of test_model_contract."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_model_contract import write_model

from spindledx.cli import main
from spindledx.errors import BadInputError
from spindledx.slide.synthetic import make_slide_rgb

pytest.importorskip("onnx")
MPP = 0.25


@pytest.fixture()
def tiles(tmp_path):
    """A folder of three 400 x 400 tiles with dark round figures."""
    from PIL import Image

    folder = tmp_path / "tiles"
    folder.mkdir()
    for i in range(3):
        figures = np.array([[120.0 + 40 * i, 150.0], [280.0, 260.0 - 30 * i]])
        rgb = make_slide_rgb(400, 400, tissue_boxes=[(20, 20, 380, 380)], figures=figures, figure_radius_px=12,
                             seed=10 + i)
        Image.fromarray(rgb).save(folder / f"tile{i}.png")
    return folder


def _rows(out) -> dict[str, dict]:
    with open(out / "tiles.csv", newline="", encoding="utf-8") as fh:
        return {r["key"]: r for r in csv.DictReader(fh)}


def _batch(tiles, out, card, *extra):
    return main(["batch", str(tiles), "--mpp", str(MPP), "--out", str(out), "--no-progress",
                 *(["--model", str(card)] if card is not None else []), *extra])


def test_batch_scores_with_the_model_card_in_process_and_in_workers(tmp_path, tiles, capsys):
    card = write_model(tmp_path / "model")
    sha = json.loads(card.read_text())["sha256"]
    assert _batch(tiles, tmp_path / "one", card) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "darkness-test 0.0.1" in printed and sha[:12] in printed
    assert _batch(tiles, tmp_path / "two", card.parent, "--jobs", "2") == 0, capsys.readouterr().err
    capsys.readouterr()
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert sorted(one) == sorted(two) and len(one) == 3
    assert sum(int(r["count"]) for r in one.values()) > 0  # the card's model found the dark figures
    for key, row in one.items():
        assert row["error"] == "" and two[key]["error"] == ""
        assert (row["count"], row["mitoses"]) == (two[key]["count"], two[key]["mitoses"])
        assert (row["model_name"], row["model_version"], row["model_sha256"]) == ("darkness-test", "0.0.1", sha)
    # the same tile counted by `score --model` gives the same figures
    assert main(["score", str(tiles / "tile0.png"), "--mpp", str(MPP), "--model", str(card), "--format",
                 "json"]) == 0
    scored = json.loads(capsys.readouterr().out)[0]
    row = next(r for r in one.values() if r["image"].endswith("tile0.png"))
    assert int(row["count"]) == scored["count"]
    assert [(round(m["x"], 3), round(m["y"], 3)) for m in json.loads(row["mitoses"])] == \
        [(round(m["x"], 3), round(m["y"], 3)) for m in scored["mitoses"]]


def test_batch_outputs_name_the_model(tmp_path, tiles, capsys):
    card = write_model(tmp_path / "model")
    doc = json.loads(card.read_text())
    doc["adapted_from"] = {"name": "spindledx-mitosis", "version": "9.9.9", "sha256": "a" * 64}
    card.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert _batch(tiles, out, card) == 0, capsys.readouterr().err
    prov = json.loads((out / "summary.json").read_text())["provenance"]
    assert (prov["model_name"], prov["model_version"], prov["model_sha256"]) == ("darkness-test", "0.0.1",
                                                                                 doc["sha256"])
    assert prov["adapted_from"] == {"name": "spindledx-mitosis", "version": "9.9.9", "sha256": "a" * 64}
    assert prov["threshold"] == doc["threshold"]
    run = json.loads((out / "run.json").read_text())
    assert (run["model_name"], run["model_version"], run["model_sha256"]) == ("darkness-test", "0.0.1",
                                                                               doc["sha256"])
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "darkness-test" in report and doc["sha256"] in report and "adapted from" in report
    review = (out / "review.html").read_text(encoding="utf-8")
    assert "darkness-test" in review and doc["sha256"][:12] in review and "spindledx-mitosis 9.9.9" in review


def test_a_rerun_with_another_model_is_refused_and_the_same_model_resumes(tmp_path, tiles, capsys):
    card = write_model(tmp_path / "model")
    out = tmp_path / "out"
    assert _batch(tiles, out, card) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert _batch(tiles, out, card) == 0
    assert "(3 already done)" in capsys.readouterr().out
    other = write_model(tmp_path / "other", patch_size=48)  # another ONNX graph: another sha256
    doc = json.loads(other.read_text())
    doc["version"] = "0.0.2"
    other.write_text(json.dumps(doc))
    before = (out / "tiles.jsonl").read_bytes()
    assert _batch(tiles, out, other) == 2
    err = capsys.readouterr().err
    assert "other inputs or settings (model)" in err and len(err.strip().splitlines()) == 1
    assert _batch(tiles, out, None) == 2  # nor with the shipped model
    assert "model" in capsys.readouterr().err
    assert (out / "tiles.jsonl").read_bytes() == before
    # the run record refuses too, where the folder's owner record is not consulted (the library's tile engine)
    from spindledx.qa.manifest import tiles_from_folder
    from spindledx.qa.runner import RunOptions, run_batch

    specs = tiles_from_folder(tiles, mpp=MPP)
    assert doc["sha256"] != json.loads(card.read_text())["sha256"]
    with pytest.raises(BadInputError, match=r"different settings \(model_version, model_sha256\)"):
        run_batch(specs, out, options=RunOptions(model=str(other), model_sha256=doc["sha256"]), progress=False)
    assert (out / "tiles.jsonl").read_bytes() == before


def test_a_bad_card_is_one_line_before_any_tile(tmp_path, tiles, capsys):
    out = tmp_path / "out"
    assert _batch(tiles, out, tmp_path / "absent.json") == 2
    err = capsys.readouterr().err
    assert "no such model card" in err and len(err.strip().splitlines()) == 1
    wrong = write_model(tmp_path / "wrong", patch_size=64, input_size=32)
    assert _batch(tiles, out, wrong) == 2
    err = capsys.readouterr().err
    assert "model contract" in err and len(err.strip().splitlines()) == 1
    card = write_model(tmp_path / "model")
    doc = json.loads(card.read_text())
    doc["sha256"] = "0" * 64
    card.write_text(json.dumps(doc))
    assert _batch(tiles, out, card) == 2
    err = capsys.readouterr().err
    assert "does not match" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_a_worker_scores_no_tile_with_a_card_changed_since_the_run_started(tmp_path, tiles):
    from spindledx.qa.manifest import tiles_from_folder
    from spindledx.qa.runner import RunOptions, process_tile

    card = write_model(tmp_path / "model")
    spec = tiles_from_folder(tiles, mpp=MPP)[0]
    row = process_tile(spec, options=RunOptions(model=str(card), model_sha256="0" * 64), model_threads=1)
    assert row["error_kind"] == "bad_input" and "this run started with" in row["error"] and "count" not in row
    row = process_tile(spec, options=RunOptions(model=str(card), model_sha256=json.loads(card.read_text())["sha256"]),
                       model_threads=1)
    assert row["error"] is None and row["count"] >= 0
