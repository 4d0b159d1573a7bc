"""Figures marked elsewhere are counted as `score` counts: QuPath GeoJSON (points, detections) and CSV, and the
round trip spindledx -> QuPath (points moved, deleted, added) -> spindledx gives the corrected count."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from spindledx.cli import main
from spindledx.detection.types import Detection
from spindledx.errors import BadInputError
from spindledx.mitosis.points import count_points, load_points, points_from_csv

MPP = 0.25
POINTS = [(100.0, 100.0), (300.0, 120.0), (500.0, 400.0), (200.0, 600.0), (650.0, 650.0)]


@pytest.fixture()
def image(tmp_path):
    rgb = np.full((800, 800, 3), (200, 120, 170), np.uint8)
    rgb[:, 560:] = (242, 240, 244)  # glass on the right
    path = tmp_path / "tile.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_csv_with_or_without_header_and_classes(tmp_path, image):
    assert len(points_from_csv("1,2\n3,4\n", source="p.csv").points) == 2
    picked = points_from_csv("x,y,class\n1,2,Mitosis\n3,4,Other\n", source="p.csv", point_class="mitosis")
    assert [(p.x, p.y) for p in picked.points] == [(1.0, 2.0)] and picked.skipped == 1
    with pytest.raises(BadInputError, match="line 2"):
        points_from_csv("x,y\n1,oops\n", source="p.csv")
    (tmp_path / "p.csv").write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in POINTS) + "760,100\n")
    result = count_points(tmp_path / "p.csv", image, mpp=MPP)
    assert result.count == 4 and result.n_outside_counted_area == 2  # (650, 650) and (760, 100) lie on glass
    assert result.area_mm2 == pytest.approx(560 * 800 * MPP**2 / 1e6, rel=0.03)


def test_qupath_round_trip_gives_the_edited_count(tmp_path, image, monkeypatch, capsys):
    from spindledx.detection import shipped

    monkeypatch.setattr(shipped, "factory",
                        lambda threshold: lambda rgb, mpp: [Detection(x, y, 0.9) for x, y in POINTS])
    assert main(["score", str(image), "--mpp", str(MPP), "--out", str(tmp_path / "out")]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    exported = json.loads((tmp_path / "out" / "tile_mitoses.geojson").read_text())
    points = [f for f in exported["features"] if f["geometry"]["type"] == "Point"]
    assert len(points) == 4  # (650, 650) lies on glass
    # in QuPath: delete one figure, move another, add two with the point tool (a MultiPoint annotation)
    edited = [f for f in points if f["geometry"]["coordinates"] != [300.0, 120.0]]
    edited[0]["geometry"]["coordinates"] = [edited[0]["geometry"]["coordinates"][0] + 40.0,
                                            edited[0]["geometry"]["coordinates"][1] + 25.0]
    added = {"type": "Feature", "id": "1e2a", "geometry": {"type": "MultiPoint",
                                                          "coordinates": [[400.0, 250.0], [420.0, 500.0]]},
             "properties": {"objectType": "annotation", "classification": {"name": "Mitosis",
                                                                           "color": [255, 200, 0]}}}
    qupath = {"type": "FeatureCollection", "features": [*edited, added]}
    (tmp_path / "edited.geojson").write_text(json.dumps(qupath, indent=2))
    assert main(["count-points", str(tmp_path / "edited.geojson"), "--image", str(image), "--mpp", str(MPP),
                 "--format", "json"]) == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)[0]
    assert doc["count"] == 5  # 4 exported, 1 deleted, 2 added
    assert [round(m["x"]) for m in doc["mitoses"]].count(140) == 1  # the moved figure is where it was moved to
    # a QuPath 0.2 export (a bare list of features) of the same points gives the same count
    (tmp_path / "list.geojson").write_text(json.dumps([*edited, added]))
    assert load_points(tmp_path / "list.geojson").points == load_points(tmp_path / "edited.geojson").points


def test_points_command_writes_outputs_and_names_the_points_in_provenance(tmp_path, image, capsys):
    (tmp_path / "p.csv").write_text("".join(f"{x},{y},Mitosis\n" for x, y in POINTS))
    out = tmp_path / "out"
    assert main(["count-points", str(tmp_path / "p.csv"), "--image", str(image), "--mpp", str(MPP), "--out",
                 str(out), "--class", "Mitosis"]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["model_name"] == "points from p.csv"
    assert summary["results"][0]["count"] == 4 and (out / "tile_overlay.png").is_file()


def test_points_need_exactly_one_image_or_slide(tmp_path, image, capsys):
    (tmp_path / "p.csv").write_text("1,2\n")
    assert main(["count-points", str(tmp_path / "p.csv")]) == 2
    assert main(["count-points", str(tmp_path / "p.csv"), "--image", str(image), "--slide", str(image)]) == 2
    assert "--image" in capsys.readouterr().err
