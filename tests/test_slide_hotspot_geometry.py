"""Hotspot outlines in level-0 pixels: clipped to the image, and a `fields` hotspot as its ten fields."""

from __future__ import annotations

import numpy as np
import pytest

from spindledx.slide.hotspot import Hotspot, clip_polygon, hotspot_regions_level0, polygon_area


def _hotspot(shape, cx, cy, w, h, area=2.376):
    return Hotspot(shape=shape, centre_x_um=cx, centre_y_um=cy, width_um=w, height_um=h, area_mm2=area,
                   tissue_fraction=0.9, count=3, mitoses_per_mm2=1.0, mitoses_per_10hpf=1.0, hpf_area_mm2=0.2376,
                   mitotic_score=1)


def test_clip_polygon_square_half_outside():
    square = np.array([[-10.0, 0.0], [10.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    clipped = clip_polygon(square, 0.0, 0.0, 100.0, 100.0)
    assert polygon_area(clipped) == pytest.approx(100.0)
    assert clipped[:, 0].min() == 0.0 and np.allclose(clipped[0], clipped[-1])
    assert len(clip_polygon(square + 500, 0.0, 0.0, 100.0, 100.0)) == 0


def test_circle_wider_than_the_image_is_clipped_to_it():
    # the case of the issue: a 2.38 mm² circle (radius 870 µm) on an image 2,220 px = 555 µm wide at 0.25 µm/px
    hotspot = _hotspot("circle", 277.0, 300.0, 1740.0, 1740.0)
    width, height = 2220, 2400
    (region,) = hotspot_regions_level0(hotspot, mpp=0.25, width_px=width, height_px=height)
    poly = region["polygon"]
    assert poly[:, 0].min() >= -0.5 and poly[:, 0].max() <= width - 0.5
    assert poly[:, 1].min() >= -0.5 and poly[:, 1].max() <= height - 0.5
    assert region["clipped"] is True
    assert region["area_mm2"] == pytest.approx(width * height * 0.25 ** 2 / 1e6, rel=0.02)  # the whole image


def test_fields_hotspot_gives_ten_fields_with_their_counts():
    hotspot = _hotspot("fields", 1500.0, 800.0, 5 * 487.4, 2 * 487.4)
    points_um = np.array([[400.0, 500.0], [1500.0, 800.0], [2600.0, 1000.0], [2800.0, 1000.0]])
    regions = hotspot_regions_level0(hotspot, mpp=0.5, width_px=6000, height_px=4000,
                                     points_level0=points_um / 0.5 - 0.5)
    assert len(regions) == 10
    areas = [r["area_mm2"] for r in regions]
    assert sum(areas) == pytest.approx(hotspot.area_mm2, rel=1e-3) and max(areas) == pytest.approx(min(areas))
    assert sum(r["count"] for r in regions) == 3 and not any(r["clipped"] for r in regions)
