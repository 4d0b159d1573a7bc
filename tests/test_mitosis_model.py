"""Model description and checksum verification (no real model needed), and the shipped model when present."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spindledx.errors import BadInputError
from spindledx.mitosis.model import DEFAULT_DESCRIPTION, ModelChecksumError, load_model, sha256_file


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
