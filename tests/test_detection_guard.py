"""Plausibility and out-of-distribution guard (spindledx.detection.guard)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from spindledx.detection import guard

SAMPLES = Path(__file__).resolve().parents[1] / "sample_slides"
TILE_MM2 = 1024 * 1024 * 0.25**2 / 1e6  # 0.0655 mm²


def _sample_tiles() -> list[np.ndarray]:
    paths = sorted(SAMPLES.glob("*.tif"))
    assert paths, "sample_slides/ has no tiles"
    return [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths]


def test_density_bound_is_a_poisson_test_at_100_per_mm2():
    # one 1024² tile: 6.6 figures expected at the bound; the smallest flagged count is far above it
    n_min = guard.min_implausible_count(TILE_MM2)
    assert 14 <= n_min <= 20
    assert not guard.density_is_implausible(n_min - 1, TILE_MM2)
    assert guard.density_is_implausible(n_min, TILE_MM2)
    # twelve figures in one tile (the busiest sample slide) stay plausible; the CMU-1 count does not
    assert not guard.density_is_implausible(12, TILE_MM2)
    assert guard.density_is_implausible(113, 0.591)
    assert not guard.density_is_implausible(0, TILE_MM2) and not guard.density_is_implausible(5, 0.0)


def test_over_dense_tile_is_flagged_with_a_sentence():
    rgb = _sample_tiles()[0]
    res = guard.guard_tile(rgb, 0.25, count=40)
    assert guard.IMPLAUSIBLE_DENSITY in res.flags
    d = res.to_dict()
    assert d["density_bound_per_mm2"] == 100.0
    assert any("beyond what any tumour shows" in m and "do not grade" in m for m in d["flag_messages"])


def test_sample_slides_are_quiet():
    for rgb in _sample_tiles():
        res = guard.guard_tile(rgb, 0.25, count=12)
        assert res.flags == (), res.to_dict()
        assert res.ood_score is not None and res.ood_score < res.ood_threshold


def test_ihc_image_is_out_of_distribution():
    from skimage import data

    ihc = data.immunohistochemistry()  # DAB + hematoxylin, bundled with scikit-image
    res = guard.guard_tile(ihc, 0.25, count=0)
    assert res.flags == (guard.OUT_OF_DISTRIBUTION,)
    assert "outside those of the detector's training images" in res.messages[0]


def test_grayscale_like_tile_is_out_of_distribution():
    rgb = _sample_tiles()[1]
    grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert guard.guard_tile(grey, 0.25, count=3).flags == (guard.OUT_OF_DISTRIBUTION,)


def test_blank_glass_gets_no_ood_judgement():
    blank = np.full((256, 256, 3), 245, np.uint8)
    assert guard.stain_features(blank, 0.25) is None
    res = guard.guard_tile(blank, 0.25, count=0)
    assert res.ood_score is None and res.flags == ()


def test_features_are_compared_at_the_same_scale():
    rgb = _sample_tiles()[2]
    half = cv2.resize(rgb, (512, 512), interpolation=cv2.INTER_AREA)  # the same tissue scanned at 0.5 µm/px
    f_full, f_half = guard.stain_features(rgb, 0.25), guard.stain_features(half, 0.5)
    np.testing.assert_allclose(f_full[:7], f_half[:7], atol=0.02)


def test_reference_is_package_data_with_its_rule():
    ref = guard.load_reference()
    assert ref.mean.shape == (len(guard.FEATURE_NAMES),) and ref.inv_cov.shape == (8, 8)
    assert "99th percentile" in ref.meta["threshold_rule"]
    assert ref.threshold == pytest.approx(ref.meta["training_d2_percentiles"]["99"], rel=0.01)
    assert sum(ref.meta["training_images"].values()) > 5000
