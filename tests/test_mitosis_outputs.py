"""Outputs of `score --out`: detections CSV columns, QuPath GeoJSON structure, overlay PNG."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from spindledx.detection.types import Detection
from spindledx.imaging.reader import tile_from_array
from spindledx.mitosis.outputs import (
    CSV_COLUMNS,
    draw_overlay,
    to_geojson,
    write_detections_csv,
    write_summary_json,
    write_tile_outputs,
)
from spindledx.mitosis.score import score_image


def _result(points=((50.0, 60.0, 0.9), (150.0, 120.0, 0.6))):
    tile = tile_from_array(np.full((200, 240, 3), (200, 120, 170), np.uint8), 0.25, name="dir/case_1.png")
    return tile, score_image(tile, detector=lambda rgb, mpp: [Detection(*p) for p in points])


def test_csv_columns_and_rows(tmp_path):
    _, result = _result()
    path = write_detections_csv(result, tmp_path / "d.csv")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS == ("image", "x", "y", "score", "atypical", "atypical_score")
    assert [(r["image"], float(r["x"]), float(r["y"]), float(r["score"])) for r in rows] == [
        ("dir/case_1.png", 50.0, 60.0, 0.9), ("dir/case_1.png", 150.0, 120.0, 0.6)]


def test_geojson_is_a_qupath_detection_feature_collection():
    _, result = _result()
    data = to_geojson(result)
    json.dumps(data)  # serialisable
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 2
    ids = set()
    for feature, det in zip(data["features"], result.mitoses, strict=True):
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [det.x, det.y]}
        props = feature["properties"]
        assert props["objectType"] == "detection"
        assert props["classification"]["name"] == "Mitosis"
        assert len(props["classification"]["color"]) == 3
        assert props["measurements"]["score"] == det.score
        ids.add(feature["id"])
    assert len(ids) == 2
    assert to_geojson(result) == data  # deterministic ids


def test_overlay_draws_circles_at_figures_only():
    tile, result = _result()
    overlay = draw_overlay(tile.rgb, result)
    assert overlay.shape == tile.rgb.shape and overlay.dtype == np.uint8
    changed = np.any(overlay != tile.rgb, axis=2)
    radius_px = 7.5 / 0.25
    ys, xs = np.nonzero(changed)
    assert changed[60, 50 + int(radius_px)]  # on the circle of the first figure
    assert not changed[60, 50]  # centre left visible
    near = np.hypot(xs - 50, ys - 60) < 4 * radius_px
    near |= np.hypot(xs - 150, ys - 120) < 4 * radius_px
    assert near.all()  # everything drawn is near a figure (circle + score label)
    assert not np.array_equal(tile.rgb, overlay)


def test_tile_outputs_and_summary_written(tmp_path):
    tile, result = _result()
    paths = write_tile_outputs(tile.rgb, result, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"case_1_mitoses.csv", "case_1_mitoses.geojson",
                                                "case_1_overlay.png"}
    with Image.open(paths["overlay"]) as im:
        assert im.size == (240, 200) and im.mode == "RGB"
    summary = write_summary_json([result], tmp_path / "out", provenance={"spindledx_version": "test"},
                                 inputs=[result.image, "bad.png"], outputs=paths.values(),
                                 failed=[("bad.png", "broken")])
    data = json.loads(summary.read_text())
    assert summary.name == "summary.json" and data["command"] == "score" and data["results"][0]["count"] == 2
    assert data["counts"]["mitoses"] == 2 and data["counts"]["failed"] == 1
    assert data["outputs"] == sorted(p.name for p in paths.values())
    assert data["errors"] == [{"input": "bad.png", "error": "broken"}]
