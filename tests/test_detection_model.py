"""Model description and checksum verification (no real model needed), and the shipped model when present."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spindledx.detection.model import (
    DEFAULT_DESCRIPTION,
    ModelChecksumError,
    ModelDescription,
    gated_tta,
    load_model,
    sha256_file,
)
from spindledx.detection.patches import dihedral_views
from spindledx.errors import BadInputError


def _description(tmp_path, payload: bytes, sha: str):
    (tmp_path / "m.onnx").write_bytes(payload)
    desc = {
        "onnx_file": "m.onnx",
        "sha256": sha,
        "input": {"patch_size": 64, "working_mpp": 0.25},
        "threshold": 0.5,
        "version": "test",
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(desc))
    return path


def test_checksum_mismatch_raises_clear_error(tmp_path):
    path = _description(tmp_path, b"not the model", "0" * 64)
    with pytest.raises(ModelChecksumError, match="does not match"):
        load_model(path)


def test_checksum_error_is_bad_input(tmp_path):
    path = _description(tmp_path, b"abc", "f" * 64)
    with pytest.raises(BadInputError):
        load_model(path)


def test_sha256_file(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_missing_description_and_bad_json(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_model(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BadInputError, match="not valid JSON"):
        load_model(bad)
    incomplete = tmp_path / "inc.json"
    incomplete.write_text(json.dumps({"onnx_file": "m.onnx"}))
    with pytest.raises(BadInputError, match="invalid"):
        load_model(incomplete)


@pytest.mark.skipif(not DEFAULT_DESCRIPTION.is_file(), reason="no shipped model")
def test_shipped_model_loads_and_scores_batches():
    model = load_model()
    assert model.patch_size == 64 and model.working_mpp == 0.25 and 0 < model.threshold < 1
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (5, 64, 64, 3)).astype(np.uint8)
    p_all = model.predict(patches)
    p_split = np.concatenate([model.predict(patches[:2], batch_size=1), model.predict(patches[2:])])
    assert p_all.shape == (5,) and np.all((p_all >= 0) & (p_all <= 1))
    assert np.allclose(p_all, p_split, atol=1e-5)
    assert model.predict(patches[:0]).shape == (0,)


def test_dihedral_views_are_the_eight_distinct_symmetries():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    views = dihedral_views(x, 8)
    assert len({v.tobytes() for v in views}) == 8
    assert np.array_equal(views[0], x) and np.array_equal(views[1], x[..., ::-1])
    # every view is a rearrangement of the same pixels of the same patch and channel
    assert all(np.array_equal(np.sort(v[1, 2].ravel()), np.sort(x[1, 2].ravel())) for v in views)
    assert [len(dihedral_views(x, k)) for k in (1, 2, 4)] == [1, 2, 4]
    with pytest.raises(ValueError):
        dihedral_views(x, 3)


def test_gated_tta_averages_views_only_above_the_gate():
    # a "classifier" whose probability is the top-left pixel: it changes under flips and rotations
    def predict(batch: np.ndarray) -> np.ndarray:
        return batch[:, 0, 0, 0].copy()

    x = np.zeros((3, 3, 4, 4), dtype=np.float32)
    x[0, 0, 0, 0] = 0.05  # below the gate: single-view score kept
    x[1, 0, 0, 0] = 0.8  # above the gate: the other 7 views see 0 in that corner except the transpose
    x[2, 0] = 0.6  # constant patch: every view agrees
    p = gated_tta(predict, x, ways=8, gate=0.1)
    assert p[0] == pytest.approx(0.05)
    expected = np.mean([predict(v)[0] for v in dihedral_views(x[1:2], 8)])
    assert p[1] == pytest.approx(expected) and p[1] < 0.8
    assert p[2] == pytest.approx(0.6)
    assert np.array_equal(gated_tta(predict, x, ways=1, gate=0.1), predict(x))


def test_gated_description_is_parsed(tmp_path):
    path = _description(tmp_path, b"onnx", "0" * 64)  # parsing does not check the file
    raw = json.loads(path.read_text()) | {"tta": 8, "tta_gate": 0.1}
    desc = ModelDescription.from_dict(raw)
    assert desc.tta == 8 and desc.tta_gate == pytest.approx(0.1)
    assert ModelDescription.from_dict(json.loads(path.read_text())).tta_gate is None



def test_shipped_int8_graph_follows_its_float_graph_on_the_sample_slides():
    """The shipped card names its float graph and runs the 8-bit graph of its ``int8`` entry; on the candidates of
    the sample slides both give the same decisions and single-view probabilities within the card's recorded
    largest gap on the 35 MiDeSeC fields (plus 0.02 for fields it was not measured on)."""
    from pathlib import Path

    from spindledx.detection.candidates import find_candidates
    from spindledx.detection.model import MODELS_DIR, MitosisModel, load_shipped_model
    from spindledx.detection.patches import extract_patches, to_model_input
    from spindledx.imaging.reader import read_image

    card = json.loads(DEFAULT_DESCRIPTION.read_text(encoding="utf-8"))
    int8_entry = card["int8"]
    int8 = load_shipped_model()
    assert int8.description.sha256 == card["sha256"]  # the model is named by its float graph
    assert int8.onnx_path.name == int8_entry["onnx_file"] != card["onnx_file"]
    float_model = MitosisModel(ModelDescription.from_dict(card), MODELS_DIR / card["onnx_file"])
    tiles = sorted((Path(__file__).resolve().parents[1] / "sample_slides").glob("*.tif"))[:2]
    assert tiles
    for path in tiles:
        tile = read_image(path)
        patches = extract_patches(tile.rgb, find_candidates(tile.rgb, tile.mpp), size=64)
        x = to_model_input(patches)
        gap = np.abs(int8._run(x) - float_model._run(x)).max()
        assert 0 < gap <= int8_entry["check_against_float"]["single_view_max_abs_dp"] + 0.02
        thr = card["threshold"]
        assert np.array_equal(int8.predict(patches) >= thr, float_model.predict(patches) >= thr)


def test_int8_entry_is_verified_and_run(tmp_path):
    """A card's int8 graph is checksum-verified like its own graph; a wrong or incomplete entry is refused."""
    import shutil

    from spindledx.detection.model import MODELS_DIR

    card = json.loads(DEFAULT_DESCRIPTION.read_text(encoding="utf-8"))
    for name in (card["onnx_file"], card["int8"]["onnx_file"]):
        shutil.copyfile(str(MODELS_DIR / name), tmp_path / name)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    assert load_model(path).onnx_path == tmp_path / card["int8"]["onnx_file"]
    path.write_text(json.dumps(dict(card, int8=dict(card["int8"], sha256="0" * 64))))
    with pytest.raises(ModelChecksumError):
        load_model(path)
    path.write_text(json.dumps(dict(card, int8={"onnx_file": card["int8"]["onnx_file"]})))
    with pytest.raises(BadInputError, match="int8 needs onnx_file and sha256"):
        load_model(path)


def test_provenance_names_the_8bit_graph_that_runs():
    from spindledx.detection.model import shipped_description
    from spindledx.provenance import model_provenance

    desc = shipped_description()
    prov = model_provenance(None)
    assert prov["model_sha256"] == desc.sha256
    assert prov["model_int8_sha256"] == desc.extra["int8"]["sha256"] != desc.sha256
