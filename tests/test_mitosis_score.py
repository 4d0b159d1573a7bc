"""score_image: counting arithmetic, deduplication, thresholds and the score JSON contract (docs/architecture.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from spindledx import counting
from spindledx.detection.suppress import suppress_detections
from spindledx.detection.types import Detection
from spindledx.errors import BadInputError
from spindledx.imaging.reader import tile_from_array
from spindledx.mitosis.score import TileScore, score_image

CONTRACT_KEYS = {"image", "width", "height", "mpp", "area_mm2", "mitoses", "count", "mitoses_per_mm2",
                 "mitoses_per_10hpf", "hpf_area_mm2"}


def fixed_detector(points):
    def detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3
        return [Detection(x, y, s) for x, y, s in points]
    return detector


def test_counts_use_the_tile_area():
    tile = tile_from_array(np.full((1000, 800, 3), (200, 120, 170), np.uint8), 0.25)
    result = score_image(tile, detector=fixed_detector([(10, 10, 0.9), (500, 500, 0.8), (700, 900, 0.7)]))
    area = 1000 * 0.25 * 800 * 0.25 / 1e6  # 0.05 mm²
    assert result.area_mm2 == pytest.approx(area)
    assert result.count == 3
    assert result.mitoses_per_mm2 == pytest.approx(3 / area)
    assert result.mitoses_per_10hpf == pytest.approx(3 / area * 10 * counting.DEFAULT_HPF_AREA_MM2)
    assert result.fnclcc_mitotic_score == 3  # 142.6 per 10 HPF
    assert result.hpf_area_mm2 == counting.DEFAULT_HPF_AREA_MM2


def test_hpf_area_changes_only_the_per_10hpf_figure():
    tile = tile_from_array(np.full((400, 400, 3), (200, 120, 170), np.uint8), 0.5)
    det = fixed_detector([(100, 100, 0.9)])
    small = score_image(tile, detector=det, hpf_area_mm2=0.15)
    large = score_image(tile, detector=det, hpf_area_mm2=0.30)
    assert small.mitoses_per_mm2 == large.mitoses_per_mm2 == pytest.approx(1 / 0.04)
    assert large.mitoses_per_10hpf == pytest.approx(2 * small.mitoses_per_10hpf)


def test_duplicates_within_7_5_um_are_merged():
    mpp = 0.25  # 7.5 µm = 30 px
    dets = [Detection(100, 100, 0.6), Detection(120, 100, 0.9), Detection(160, 100, 0.8), Detection(400, 50, 0.5)]
    kept = suppress_detections(dets, mpp=mpp)
    assert [(d.x, d.y) for d in kept] == [(120, 100), (160, 100), (400, 50)]
    # at 0.5 µm/px 7.5 µm = 15 px: (100,100) and (120,100) are 20 px apart, both kept
    assert len(suppress_detections(dets, mpp=0.5)) == 4


def test_threshold_filters_injected_detector_and_out_of_bounds_dropped():
    tile = tile_from_array(np.full((200, 200, 3), (200, 120, 170), np.uint8), 0.25)
    det = fixed_detector([(20, 20, 0.3), (150, 150, 0.7), (250, 10, 0.99)])
    assert score_image(tile, detector=det).count == 2
    assert score_image(tile, detector=det, threshold=0.5).count == 1
    with pytest.raises(BadInputError):
        score_image(tile, detector=det, threshold=1.5)


def test_json_contract(tmp_path):
    path = tmp_path / "tile.png"
    Image.fromarray(np.full((256, 320, 3), (230, 170, 215), np.uint8)).save(path, dpi=(25400 / 0.5, 25400 / 0.5))
    result = score_image(path, detector=fixed_detector([(12.34, 56.78, 0.91234), (200, 100, 0.5)]))
    assert isinstance(result, TileScore)
    data = json.loads(result.to_json())
    assert set(data) >= CONTRACT_KEYS
    assert {"mpp_source", "fnclcc_mitotic_score", "warnings"} <= set(data)
    assert data["image"] == str(path) and (data["width"], data["height"]) == (320, 256)
    assert data["mpp"] == 0.5 and data["mpp_source"] == "metadata"
    assert data["count"] == len(data["mitoses"]) == 2
    first = data["mitoses"][0]
    assert {k: first[k] for k in ("x", "y", "score")} == {"x": 12.3, "y": 56.8, "score": 0.9123}
    assert isinstance(first["atypical"], bool) and 0.0 <= first["atypical_score"] <= 1.0  # the shipped head
    assert data["atypical_count"] == sum(m["atypical"] for m in data["mitoses"])
    assert data["area_mm2"] == pytest.approx(320 * 0.5 * 256 * 0.5 / 1e6)


def test_mpp_override_on_tile_and_path(tmp_path):
    tile = tile_from_array(np.full((100, 100, 3), (200, 120, 170), np.uint8), 0.25)
    result = score_image(tile, mpp=0.5, detector=fixed_detector([]))
    assert result.mpp == 0.5 and result.count == 0 and result.fnclcc_mitotic_score == 1
    with pytest.raises(BadInputError):
        score_image(tile, mpp=0.0, detector=fixed_detector([]))
