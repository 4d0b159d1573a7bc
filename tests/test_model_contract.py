"""`--model CARD`: any detector that follows the model contract (ONNX + JSON model card) is loaded, checked and
named in the provenance; here a tiny ONNX model built by the test (mean darkness of the patch)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from spindledx.cli import main
from spindledx.errors import BadInputError
from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

onnx = pytest.importorskip("onnx")
MPP = 0.25
FIGURES = np.array([[300.0, 260.0], [420.0, 500.0], [700.0, 300.0], [900.0, 560.0]])


def write_model(folder, *, patch_size=64, threshold=0.5, input_size=None):
    """A model card and an ONNX graph scoring a patch by its darkness: 1 - mean(RGB), 8 bits in, in [0, 1]."""
    from onnx import TensorProto, helper

    size = input_size or patch_size
    x = helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["n", 3, size, size])
    y = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    gain = helper.make_tensor("gain", TensorProto.FLOAT, [], [1.6])
    nodes = [helper.make_node("ReduceMean", ["patches"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Sub", ["one", "m"], ["d"]),
             helper.make_node("Mul", ["d", "gain"], ["p"])]
    graph = helper.make_graph(nodes, "darkness", [x], [y], initializer=[one, gain])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "darkness.onnx"
    onnx.save(model, onnx_path)
    card = {"name": "darkness-test", "version": "0.0.1", "onnx_file": onnx_path.name,
            "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            "input": {"patch_size": patch_size, "working_mpp": 0.25, "layout": "NCHW float32 RGB in [0, 1]",
                      "output": "probability per patch"},
            "threshold": threshold, "tta": 1}
    card_path = folder / "darkness.json"
    card_path.write_text(json.dumps(card))
    return card_path


@pytest.fixture()
def image(tmp_path):
    rgb = make_slide_rgb(1200, 800, tissue_boxes=[(100, 100, 1100, 700)], figures=FIGURES, figure_radius_px=12,
                         seed=3)
    return write_pyramidal_tiff(tmp_path / "region.tif", rgb, mpp=MPP, n_levels=1)


def test_a_contract_model_is_loaded_and_named(tmp_path, image, capsys):
    card = write_model(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["score", str(image), "--mpp", str(MPP), "--model", str(card), "--out", str(out), "--format",
                 "json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)[0]
    summary = json.loads((out / "summary.json").read_text())
    prov = summary["provenance"]
    assert prov["model_name"] == "darkness-test" and prov["model_version"] == "0.0.1"
    assert prov["model_sha256"] == json.loads(card.read_text())["sha256"]
    xy = np.array([[m["x"], m["y"]] for m in result["mitoses"]]).reshape(-1, 2)
    near = [np.hypot(*(xy - f).T).min() < 12 if len(xy) else False for f in FIGURES]
    assert sum(near) >= 2, (xy, near)  # the model's own answer: dark patches on the figures
    assert main(["slide", str(image), "--mpp", str(MPP), "--model", str(card), "--out", str(tmp_path / "s"),
                 "--format", "json"]) == 0, capsys.readouterr().err
    slide_doc = json.loads(capsys.readouterr().out)
    assert "darkness-test 0.0.1" in slide_doc["detector"]
    assert slide_doc["answer"]["count"] == result["count"]


def test_a_model_that_breaks_the_contract_is_refused(tmp_path, image, capsys):
    card = write_model(tmp_path / "wrong", patch_size=64, input_size=32)
    assert main(["score", str(image), "--mpp", str(MPP), "--model", str(card)]) == 2
    assert "model contract" in capsys.readouterr().err
    doc = json.loads(card.read_text())
    doc["sha256"] = "0" * 64
    card.write_text(json.dumps(doc))
    assert main(["score", str(image), "--mpp", str(MPP), "--model", str(card)]) == 2
    assert "does not match" in capsys.readouterr().err
    from spindledx.detection.model import load_model_file

    with pytest.raises(BadInputError, match="no such model card"):
        load_model_file(tmp_path / "absent.json")


def test_case_names_the_model_it_counted_with(tmp_path, image, capsys):
    card = write_model(tmp_path / "model")
    out = tmp_path / "case"
    assert main(["case", "actin+ desmin+ CK-pan- CD34-", "--tiles", str(image), "--mpp", str(MPP), "--model",
                 str(card), "--out", str(out)]) == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    assert doc["provenance"]["model_name"] == "darkness-test" and doc["provenance"]["model_version"] == "0.0.1"
    assert doc["provenance"]["model_card"] == str(card)


def test_a_20x_image_gives_the_same_figures_through_score_and_slide(tmp_path, capsys):
    """The model works at 0.25 µm/px: a 0.5 µm/px image reaches it by the same 2x raster on both routes."""
    card = write_model(tmp_path / "model")
    rgb = make_slide_rgb(700, 500, tissue_boxes=[(40, 40, 660, 460)], figures=FIGURES / 2, figure_radius_px=6,
                         seed=4)
    image = write_pyramidal_tiff(tmp_path / "twenty.tif", rgb, mpp=0.5, n_levels=1)
    assert main(["score", str(image), "--mpp", "0.5", "--model", str(card), "--format", "json"]) == 0
    scored = json.loads(capsys.readouterr().out)[0]
    assert main(["slide", str(image), "--mpp", "0.5", "--model", str(card), "--out", str(tmp_path / "s"),
                 "--format", "json"]) == 0, capsys.readouterr().err
    slide_doc = json.loads(capsys.readouterr().out)
    exported = json.loads((tmp_path / "s" / "twenty_mitoses.geojson").read_text())
    points = sorted(tuple(f["geometry"]["coordinates"]) for f in exported["features"]
                    if f["geometry"]["type"] == "Point")
    assert scored["count"] > 0 and sorted((m["x"], m["y"]) for m in scored["mitoses"]) == points
    assert (scored["count"], scored["area_mm2"]) == (slide_doc["answer"]["count"], slide_doc["answer"]["area_mm2"])
