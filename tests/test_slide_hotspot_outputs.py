"""`slide` outputs: hotspot polygons lie inside the image, a `fields` hotspot is exported as its ten fields."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spindledx.slide.outputs import write_outputs
from spindledx.slide.pipeline import analyze_slide
from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

WIDTH, HEIGHT = 1200, 900


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    figures = np.array([[300.0, 300.0], [420.0, 330.0], [900.0, 600.0], [1000.0, 700.0], [600.0, 450.0]])
    rgb = make_slide_rgb(WIDTH, HEIGHT, tissue_boxes=[(50, 50, WIDTH - 50, HEIGHT - 50)], figures=figures,
                         figure_radius_px=10, seed=3)
    return write_pyramidal_tiff(tmp_path_factory.mktemp("small") / "small.tif", rgb, mpp=0.25)


def _polygons(geo):
    return [f for f in geo["features"] if f["geometry"]["type"] == "Polygon"]


def test_a_window_larger_than_the_slide_is_clipped_to_it(small_slide, tmp_path):
    # default window = 10 HPF = 2.38 mm² (a circle 1.74 mm across) on a 0.3 x 0.225 mm slide
    result = analyze_slide(small_slide, detector=dark_disk_detector, out_dir=tmp_path / "run", shapes=("circle",))
    geo = json.loads(write_outputs(result, tmp_path / "run")["geojson"].read_text())
    (hotspot,) = _polygons(geo)
    ring = np.array(hotspot["geometry"]["coordinates"][0])
    assert ring[:, 0].min() >= -0.5 and ring[:, 0].max() <= WIDTH - 0.5
    assert ring[:, 1].min() >= -0.5 and ring[:, 1].max() <= HEIGHT - 0.5
    m = hotspot["properties"]["measurements"]
    assert m["area_inside_slide_mm2"] < m["window_area_mm2"] and "clipped" in hotspot["properties"]["name"]


def test_fields_hotspot_is_exported_as_ten_fields(small_slide, tmp_path):
    result = analyze_slide(small_slide, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.02,
                           shapes=("fields",))
    geo = json.loads(write_outputs(result, tmp_path / "run")["geojson"].read_text())
    fields = _polygons(geo)
    assert len(fields) == 10
    for f in fields:
        ring = np.array(f["geometry"]["coordinates"][0])
        assert ring[:, 0].min() >= -0.5 and ring[:, 0].max() <= WIDTH - 0.5
        assert ring[:, 1].min() >= -0.5 and ring[:, 1].max() <= HEIGHT - 0.5
    assert sorted(f["properties"]["measurements"]["field"] for f in fields) == list(range(1, 11))
    assert sum(f["properties"]["measurements"]["count"] for f in fields) == result.hotspots[0].count
    areas = [f["properties"]["measurements"]["area_mm2"] for f in fields]
    assert sum(areas) == pytest.approx(0.02, rel=1e-3)
