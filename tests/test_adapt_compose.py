"""The adapted model is one ONNX graph: the shipped graph with the head composed between its logit and sigmoid,
scoring exactly what the head computes on the shipped model's features; a zero head changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from spindledx.detection.model import DEFAULT_DESCRIPTION, MODELS_DIR, read_description
from spindledx.mitosis.synthetic import make_tile

onnx = pytest.importorskip("onnx")


def _patches():
    from spindledx.detection.candidates import find_candidates
    from spindledx.detection.patches import extract_patches

    rgb, _ = make_tile(size_px=256, n_mitoses=2, seed=11)
    return extract_patches(rgb, find_candidates(rgb, 0.25)[:24], size=64)


def _run(model_bytes, x):
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0]).reshape(-1)


def test_composed_graph_scores_what_the_head_computes():
    from spindledx.adapt.compose import compose
    from spindledx.adapt.features import FeatureExtractor
    from spindledx.adapt.head import Head
    from spindledx.detection.patches import to_model_input

    desc = read_description(DEFAULT_DESCRIPTION)
    raw = (MODELS_DIR / desc.onnx_file).read_bytes()
    extractor = FeatureExtractor(raw)
    assert extractor.cut.width == 128
    x = to_model_input(_patches())
    features, logits = extractor.features(x)
    shipped = _run(raw, x)
    np.testing.assert_allclose(expit(logits), shipped, atol=1e-5)
    np.testing.assert_allclose(extractor.head(features), logits, atol=1e-4)
    rng = np.random.default_rng(0)
    head = Head(rng.normal(0, 0.5, 128), -0.3, features.mean(axis=0), features.std(axis=0) + 1e-3)
    model, cut = compose(extractor.model, extractor.cut, head, tag="t")
    adapted = _run(model.SerializeToString(), x)
    np.testing.assert_allclose(adapted, expit(logits + head.correction(features)), atol=1e-4)
    assert not np.allclose(adapted, shipped, atol=1e-3)
    # the composed graph can be cut again (a model adapted from an adapted model)
    again = FeatureExtractor(model.SerializeToString(), hint={"features": cut.features, "logit": cut.logit,
                                                              "width": cut.width})
    _, new_logits = again.features(x)
    np.testing.assert_allclose(expit(new_logits), adapted, atol=1e-5)
    zero, _ = compose(extractor.model, extractor.cut, Head.zero(128), tag="z")
    np.testing.assert_allclose(_run(zero.SerializeToString(), x), shipped, atol=1e-6)


def test_stain_jitter_keeps_shape_and_changes_colour():
    from spindledx.adapt.features import stain_jitter

    patches = _patches()
    out = stain_jitter(patches, np.random.default_rng(1))
    assert out.shape == patches.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - patches).mean() > 2


def test_anchors_are_features_of_the_shipped_model_with_field_groups():
    from spindledx.adapt.anchors import load_anchors

    anchors = load_anchors()
    assert anchors.feature_extractor_sha256 == read_description(DEFAULT_DESCRIPTION).sha256
    assert anchors.features.shape == (len(anchors), 128) and 0 < anchors.labels.mean() < 1
    assert "P0_00.png" in set(anchors.groups)
    fewer = anchors.without({"P0_00.png"})
    assert len(fewer) < len(anchors) and "P0_00.png" not in set(fewer.groups)
