"""The speed-ups of the per-field path change no result.

Each fast path is compared with the straightforward computation it replaces, kept here as the reference:
``local_peaks`` with skimage ``peak_local_max``, ``concentration_channel`` with optical density by table then the
least-squares weights, ``gated_tta`` (extra views batched, and with a decision threshold stopped early where the
threshold is out of reach) with one call per view for every patch, and the shipped models' probabilities with the
batch and thread count they run with. The same comparisons run on the sample slides and,
when ``../shared/data`` is there, on the 35 MiDeSeC training fields (read there, never copied). The whole ``score``
output (detections, probabilities, atypical labels, counts, flags) before and after a change is compared by
``scripts/compare_score_outputs.py``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.feature import peak_local_max

from spindledx.detection.candidates import candidate_channel, find_candidates, local_peaks
from spindledx.detection.model import DEFAULT_DESCRIPTION, gated_tta, load_model
from spindledx.detection.patches import dihedral_views, extract_patches, to_model_input
from spindledx.imaging.reader import read_image
from spindledx.imaging.stain import REFERENCE_STAIN_MATRIX, concentration_channel, concentrations, rgb_to_od

SAMPLE_SLIDES = sorted((Path(__file__).resolve().parents[1] / "sample_slides").glob("*.tif"))


def reference_concentrations(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The previous uint8 path: OD of each channel by table, then one multiply-add per channel."""
    m = np.asarray(matrix, dtype=np.float32)
    pinv = np.linalg.pinv(m).astype(np.float32)
    od_lut = rgb_to_od(np.arange(256, dtype=np.float32))
    od = [od_lut[rgb[..., c]] for c in range(3)]
    return np.stack([od[0] * pinv[0, k] + od[1] * pinv[1, k] + od[2] * pinv[2, k] for k in range(m.shape[0])],
                    axis=-1)


def reference_candidates(rgb: np.ndarray, mpp: float = 0.25) -> np.ndarray:
    """``find_candidates`` with its defaults as it was: skimage ``peak_local_max`` on the smoothed H map."""
    h = np.maximum(reference_concentrations(rgb, REFERENCE_STAIN_MATRIX)[..., 0], 0.0).astype(np.float32)
    smooth = cv2.GaussianBlur(h, (0, 0), max(0.75 / mpp, 0.5))
    threshold = max(float(np.percentile(smooth[::2, ::2], 80.0)), 0.1)
    peaks = peak_local_max(smooth, min_distance=max(int(round(4.0 / mpp)), 1), threshold_abs=threshold,
                           exclude_border=False)
    return peaks[:, ::-1].astype(np.float64) if len(peaks) else np.zeros((0, 2))


def reference_gated_tta(predict, x: np.ndarray, *, ways: int, gate: float) -> np.ndarray:
    """``gated_tta`` as it was: one ``predict`` call per extra view."""
    p = np.asarray(predict(x), dtype=np.float32).reshape(-1)
    sel = np.flatnonzero(p >= gate)
    if ways > 1 and len(sel):
        total = p[sel].astype(np.float64)
        for v in dihedral_views(x[sel], ways)[1:]:
            total += np.asarray(predict(v), dtype=np.float64).reshape(-1)
        p = p.copy()
        p[sel] = (total / ways).astype(np.float32)
    return p


def test_concentration_channel_is_the_same_float32_arithmetic():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    for matrix in (REFERENCE_STAIN_MATRIX, np.array([[0.6, 0.75, 0.3], [0.1, 0.95, 0.2]])):
        ref = reference_concentrations(rgb, matrix)
        assert np.array_equal(concentrations(rgb, matrix), ref)
        assert np.array_equal(concentration_channel(rgb, matrix, 1), ref[..., 1])
    with pytest.raises(ValueError):
        concentration_channel(rgb.astype(np.float32), REFERENCE_STAIN_MATRIX)


def test_model_input_is_the_same_division():
    rng = np.random.default_rng(6)
    patches = rng.integers(0, 256, (7, 10, 10, 3), dtype=np.uint8)
    expected = np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
    got = to_model_input(patches)
    assert got.flags.c_contiguous and got.dtype == np.float32 and np.array_equal(got, expected)


def test_local_peaks_equal_peak_local_max_with_ties_and_plateaus():
    rng = np.random.default_rng(4)
    for i in range(400):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        image = rng.integers(0, 4, shape).astype(np.float32)  # many equal neighbours
        if i % 2:
            image = cv2.GaussianBlur(image, (0, 0), 1.0)
        min_distance, threshold = int(rng.integers(1, 6)), float(rng.uniform(-1, 3))
        expected = peak_local_max(image, min_distance=min_distance, threshold_abs=threshold, exclude_border=False)
        got = local_peaks(image, min_distance=min_distance, threshold_abs=threshold)
        assert np.array_equal(got, expected), (i, min_distance, threshold)
    flat = np.full((12, 9), 2.0, dtype=np.float32)
    assert local_peaks(flat, min_distance=2, threshold_abs=1.0).shape == (0, 2)


def test_gated_tta_one_call_equals_one_call_per_view():
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(3, 6, 6)).astype(np.float32)

    def predict(batch: np.ndarray) -> np.ndarray:  # orientation-dependent, one value per patch
        return 1.0 / (1.0 + np.exp(-(batch * weights).sum(axis=(1, 2, 3)) / 20.0))

    x = rng.uniform(0, 1, (40, 3, 6, 6)).astype(np.float32)
    for ways in (1, 2, 4, 8):
        for gate in (0.0, 0.5, 1.1):
            full = reference_gated_tta(predict, x, ways=ways, gate=gate)
            assert np.array_equal(gated_tta(predict, x, ways=ways, gate=gate), full)
            for threshold in (0.0, 0.3, 0.5, 0.55, 0.7, 1.0):
                _assert_same_decisions(gated_tta(predict, x, ways=ways, gate=gate, threshold=threshold), full,
                                       threshold)


def _assert_same_decisions(early: np.ndarray, full: np.ndarray, threshold: float) -> None:
    """At or above ``threshold``: the same patches with the same probabilities; below it: still below."""
    kept = full >= threshold
    assert np.array_equal(early >= threshold, kept)
    assert np.array_equal(early[kept], full[kept])


def test_early_stop_saves_views_and_keeps_every_reachable_patch():
    calls = []

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return batch[:, 0, 0, 0].copy()  # the top-left pixel: changes with the view

    x = np.zeros((3, 1, 4, 4), dtype=np.float32)
    x[0] = 0.2  # every view 0.2: mean 0.2, out of reach of 0.7 once 4 views are in: (0.8 + 4) / 8 < 0.7
    x[1] = 0.9  # every view 0.9: kept
    x[2, 0, 0, 0] = 0.95  # a bright corner: 0.95 in the first view, 0 in views 2-4, so (0.95 + 4) / 8 < 0.7
    full = reference_gated_tta(predict, x, ways=8, gate=0.1)
    calls.clear()
    early = gated_tta(predict, x, ways=8, gate=0.1, threshold=0.7)
    _assert_same_decisions(early, full, 0.7)
    # single view; views 2 and 3 of all three (one call per view); view 4 of all three (after 3 views each can
    # still reach 0.7: (0.6 + 5) / 8 = 0.7 and (0.95 + 5) / 8 > 0.7); views 5-8 of the one left
    assert calls == [3, 3, 3, 3, 1, 1, 1, 1]
    assert early[1] == full[1] and early[0] == pytest.approx(0.2)


@pytest.mark.skipif(not DEFAULT_DESCRIPTION.is_file(), reason="no shipped model")
def test_shipped_model_probability_does_not_depend_on_batch_or_threads():
    rgb = read_image(SAMPLE_SLIDES[2]).rgb
    x = to_model_input(extract_patches(rgb, find_candidates(rgb, 0.25)[:70], size=64))
    one = load_model(threads=1)
    two = load_model(threads=2)
    run1 = one._run(x, batch_size=256)
    assert np.array_equal(two._run(x, batch_size=256), run1)
    assert np.array_equal(one._run(x, batch_size=16), run1)
    assert np.array_equal(one._run(np.concatenate([x[::-1], x]), batch_size=512)[len(x):], run1)


def _fields(shared: Path | None) -> list[tuple[Path, float | None]]:
    fields: list[tuple[Path, float | None]] = [(p, None) for p in SAMPLE_SLIDES]
    if shared is not None:
        fields += [(p, 0.25) for p in sorted((shared / "midesec-train").glob("*.png"))]
    return fields


def _check_candidates(fields: list[tuple[Path, float | None]]) -> None:
    for path, mpp in fields:
        rgb = read_image(path, mpp=mpp).rgb
        assert np.array_equal(candidate_channel(rgb), np.maximum(
            reference_concentrations(rgb, REFERENCE_STAIN_MATRIX)[..., 0], 0.0)), path.name
        assert np.array_equal(find_candidates(rgb, 0.25), reference_candidates(rgb)), path.name


def test_candidates_unchanged_on_sample_slides():
    _check_candidates(_fields(None))


def test_candidates_unchanged_on_midesec_fields(shared_data):
    _check_candidates(_fields(shared_data)[len(SAMPLE_SLIDES):][::5])  # all 35: scripts/compare_score_outputs.py


def _check_detector(fields: list[tuple[Path, float | None]]) -> None:
    model = load_model()
    desc = model.description
    for path, mpp in fields:
        rgb = read_image(path, mpp=mpp).rgb
        patches = extract_patches(rgb, find_candidates(rgb, 0.25), size=model.patch_size)
        slow = reference_gated_tta(model._run, to_model_input(patches), ways=desc.tta, gate=desc.tta_gate or 1.0)
        assert np.array_equal(model.predict(patches), slow), path.name
        for threshold in (0.2, 0.5, model.threshold, 0.9):  # e.g. the review floor of `case`, the shipped one
            _assert_same_decisions(model.predict(patches, threshold=threshold), slow, threshold)


@pytest.mark.skipif(not DEFAULT_DESCRIPTION.is_file(), reason="no shipped model")
def test_detector_probabilities_unchanged_on_sample_slides():
    """Gated test-time averaging with one inference run for all extra views, against one run per view."""
    _check_detector(_fields(None)[2:3])


@pytest.mark.skipif(not DEFAULT_DESCRIPTION.is_file(), reason="no shipped model")
def test_detector_probabilities_unchanged_on_midesec_fields(shared_data):
    _check_detector(_fields(shared_data)[len(SAMPLE_SLIDES):][::17])
