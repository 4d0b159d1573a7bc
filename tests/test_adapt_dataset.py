"""Crops of reviewed candidates are cut again as the detector cuts them: from a tile (resampled to the working
resolution) and from a whole slide (a window around each candidate) alike; a replaced image is refused."""

from __future__ import annotations

import numpy as np
import pytest

from spindledx.adapt.dataset import _slide_patches, _work_image
from spindledx.detection.patches import extract_patches
from spindledx.engine.store import content_identity
from spindledx.errors import BadInputError
from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

FIGURES = np.array([[150.0, 140.0], [300.0, 260.0], [37.0, 20.0]])


@pytest.fixture()
def image(tmp_path):
    rgb = make_slide_rgb(420, 320, tissue_boxes=[(0, 0, 420, 320)], figures=FIGURES, figure_radius_px=10, seed=5)
    path = write_pyramidal_tiff(tmp_path / "region.tif", rgb, mpp=0.25, n_levels=1)
    return path, rgb


def _doc(path, kind):
    return {"image": str(path), "image_identity": content_identity(path), "mpp": 0.25, "kind": kind,
            "origin": [0.0, 0.0], "candidates": [{"id": f"r#{i}", "x": float(x), "y": float(y), "score": 0.9,
                                                  "detected": True} for i, (x, y) in enumerate(FIGURES)]}


def test_slide_and_tile_crops_are_the_detector_crops(image):
    path, rgb = image
    doc = _doc(path, "slide")
    from_slide = _slide_patches(doc, doc["candidates"], working_mpp=0.25, size=64)
    work, sx, sy, ox, oy = _work_image(_doc(path, "tile"), 0.25)
    assert (sx, sy, ox, oy) == (1.0, 1.0, 0.0, 0.0)
    expected = extract_patches(rgb, FIGURES, size=64)
    np.testing.assert_array_equal(extract_patches(work, FIGURES, size=64), expected)
    inside = [0, 1]  # the third point is near the border, where the detector mirrors and a slide window pads
    np.testing.assert_array_equal(from_slide[inside], expected[inside])


def test_a_replaced_image_is_refused(image):
    path, rgb = image
    doc = _doc(path, "tile")
    write_pyramidal_tiff(path, rgb[::-1].copy(), mpp=0.25, n_levels=1)
    with pytest.raises(BadInputError, match="changed since the run"):
        _work_image(doc, 0.25)
