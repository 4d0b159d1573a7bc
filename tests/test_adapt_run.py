"""`spindledx adapt`: a reviewed folder -> an adapted model (ONNX + card) used with `--model FOLDER`; the refusals
(too few decisions, not better) and the message when the training extra is missing."""

from __future__ import annotations

import builtins
import hashlib
import json

import cv2
import numpy as np
import pytest

from spindledx.cli import main
from spindledx.review.candidates import load_run_candidates, run_id
from spindledx.review.page import DECISIONS_FORMAT

onnx = pytest.importorskip("onnx")
MPP = 0.25
BLUE, BROWN = (70, 40, 120), (115, 60, 30)


def write_colour_model(folder):
    """A sigmoid-on-linear classifier of the shipped model's shape: mean RGB of the patch (the pooled features),
    a Gemm to one logit (darker = higher), Sigmoid. Dark blue and dark brown blobs score alike."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["n", 3, 32, 32])
    y = helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n"])
    inits = [numpy_helper.from_array(np.full((1, 3), -8.0, np.float32), "w"),
             numpy_helper.from_array(np.array([18.0], np.float32), "b"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    nodes = [helper.make_node("ReduceMean", ["patches"], ["features"], axes=[2, 3], keepdims=0),
             helper.make_node("Gemm", ["features", "w", "b"], ["gemm"], transB=1),
             helper.make_node("Squeeze", ["gemm", "axis"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["prob"])]
    model = helper.make_model(helper.make_graph(nodes, "colour", [x], [y], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "colour.onnx"
    onnx.save(model, path)
    card = {"name": "colour-test", "version": "0.0.1", "onnx_file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "input": {"patch_size": 32, "working_mpp": MPP}, "threshold": 0.5, "tta": 1}
    (folder / "colour.json").write_text(json.dumps(card))
    return folder / "colour.json"


def write_tiles(folder, n=3, per_kind=6, seed=0):
    """Pale tiles with dark blue blobs (figures) and dark brown blobs (pigment) at known places."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, figures = [], {}
    for i in range(n):
        rgb = np.full((256, 256, 3), (225, 190, 210), np.uint8)
        rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
        centres = [(24 + 44 * (k % 5) + rng.integers(-4, 5), 24 + 44 * (k // 5) + rng.integers(-4, 5))
                   for k in range(2 * per_kind)]
        for k, (cx, cy) in enumerate(centres):
            cv2.circle(rgb, (int(cx), int(cy)), int(rng.integers(7, 10)), BLUE if k % 2 == 0 else BROWN, -1)
        path = folder / f"tile{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(cv2.GaussianBlur(rgb, (3, 3), 0), cv2.COLOR_RGB2BGR))
        paths.append(path)
        figures[f"tile{i}"] = np.array(centres[::2], float)
    return paths, figures


def review(out, figures, path, *, decide=None):
    """A decisions file as the review page writes it: candidates near a blue blob are mitoses, the others not."""
    docs, _ = load_run_candidates(out)
    decisions = []
    for doc in docs:
        for c in doc["candidates"]:
            near = np.hypot(*(figures[doc["stem"]] - (c["x"], c["y"])).T).min() <= 8
            decisions.append({"id": c["id"], "decision": decide(c) if decide else ("y" if near else "n")})
    path.write_text(json.dumps({"format": DECISIONS_FORMAT, "run_id": run_id(docs),
                                "model_sha256": docs[0]["model"]["model_sha256"], "reviewer": "Dr Test",
                                "date": "2026-12-05T09:00:00Z", "n_candidates": len(decisions),
                                "decisions": decisions}))
    return path


@pytest.fixture()
def reviewed(tmp_path, capsys):
    card = write_colour_model(tmp_path / "colour")
    tiles, figures = write_tiles(tmp_path / "tiles")
    out = tmp_path / "scored"
    assert main(["score", *map(str, tiles), "--mpp", str(MPP), "--model", str(card), "--out", str(out)]) == 0, \
        capsys.readouterr().err
    decisions = review(out, figures, tmp_path / "decisions.json")
    assert main(["review", str(out), "--import", str(decisions)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return {"card": card, "tiles": tiles, "figures": figures, "out": out, "tmp": tmp_path}


def test_adapt_writes_a_model_that_score_uses_through_its_folder(reviewed, capsys):
    model_dir = reviewed["tmp"] / "lab_model"
    code = main(["adapt", str(reviewed["out"]), "--model", str(reviewed["card"]),
                 "--out", str(model_dir), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    card = json.loads(next(model_dir.glob("*.json")).read_text())
    assert card["adapted_from"]["name"] == "colour-test" and card["adapted_from"]["sha256"] == json.loads(
        reviewed["card"].read_text())["sha256"]
    assert card["adaptation"]["reviewers"] == ["Dr Test"] and card["adaptation"]["decisions"] >= 30
    assert card["adaptation"]["validation"]["correction_share"] in (1.0, 0.5, 0.25, 0.125)
    assert card["sha256"] == hashlib.sha256((model_dir / card["onnx_file"]).read_bytes()).hexdigest()
    before, after = doc["validation"]["before"], doc["validation"]["after"]
    assert after["errors"] < before["errors"] and after["recall"] is not None
    # the adapted model, given as its folder, through `score`: fewer brown blobs counted, blue ones kept
    counts = {}
    for name, model in (("start", reviewed["card"]), ("adapted", model_dir)):
        assert main(["score", *map(str, reviewed["tiles"]), "--mpp", str(MPP), "--model", str(model), "--format",
                     "json"]) == 0
        results = json.loads(capsys.readouterr().out)
        hits = false = 0
        for r in results:
            stem = r["image"].rsplit("/", 1)[-1].removesuffix(".png")
            for m in r["mitoses"]:
                near = np.hypot(*(reviewed["figures"][stem] - (m["x"], m["y"])).T).min() <= 8
                hits += near
                false += not near
        counts[name] = (hits, false)
    assert counts["adapted"][1] < counts["start"][1], counts
    assert counts["adapted"][0] >= counts["start"][0] - 1, counts
    assert main(["score", str(reviewed["tiles"][0]), "--mpp", str(MPP), "--model", str(model_dir), "--out",
                 str(reviewed["tmp"] / "again")]) == 0
    prov = json.loads((reviewed["tmp"] / "again" / "summary.json").read_text())["provenance"]
    assert prov["model_sha256"] == card["sha256"] and prov["adapted_from"]["name"] == "colour-test"
    assert main(["review", str(reviewed["tmp"] / "again")]) == 0
    page = (reviewed["tmp"] / "again" / "review.html").read_text()
    assert f"{card['name']} {card['version']}" in page and "adapted from colour-test 0.0.1" in page


def test_too_few_decisions_are_refused_with_how_many_more(reviewed, capsys):
    docs, _ = load_run_candidates(reviewed["out"])
    keep = {c["id"] for d in docs for c in d["candidates"][:3]}
    path = review(reviewed["out"], reviewed["figures"], reviewed["tmp"] / "few.json",
                  decide=lambda c: ("n" if c["id"] in keep else None))
    code = main(["adapt", f"{reviewed['out']}={path}", "--model", str(reviewed["card"]), "--out",
                 str(reviewed["tmp"] / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "at least 30 needed" in err and "more)" in err
    assert not (reviewed["tmp"] / "m").exists()


def test_a_model_that_is_not_better_is_refused_with_the_table(reviewed, capsys):
    # decisions that agree with the starting model everywhere: nothing to improve
    docs, _ = load_run_candidates(reviewed["out"])
    path = review(reviewed["out"], reviewed["figures"], reviewed["tmp"] / "same.json",
                  decide=lambda c: "y" if c["detected"] else "n")
    code = main(["adapt", f"{reviewed['out']}={path}", "--model", str(reviewed["card"]), "--out",
                 str(reviewed["tmp"] / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "not better on held-out images" in err
    assert "recall [95% CI]" in err and "false detections per mm²" in err
    assert not (reviewed["tmp"] / "m").exists()


def test_missing_training_extra_is_one_line(reviewed, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    code = main(["adapt", str(reviewed["out"]), "--out", str(reviewed["tmp"] / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'spindledx[train]'" in err and len(err.strip().splitlines()) == 1


def test_a_model_folder_must_hold_one_card(reviewed, capsys):
    folder = reviewed["tmp"] / "two"
    folder.mkdir()
    for name in ("a.json", "b.json"):
        (folder / name).write_text(reviewed["card"].read_text())
    assert main(["score", str(reviewed["tiles"][0]), "--mpp", str(MPP), "--model", str(folder)]) == 2
    assert "2 model cards" in capsys.readouterr().err
