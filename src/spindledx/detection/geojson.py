"""The one QuPath GeoJSON writer (tiles and slides).

RFC 7946 FeatureCollection in image (level-0) pixel coordinates, with the properties QuPath (>= 0.3) reads on
File > Import objects: ``objectType`` (``"detection"`` for mitotic figures, ``"annotation"`` for regions such as
a hotspot), ``classification: {"name", "color": [r, g, b]}`` and ``measurements``. Feature ids are name-based
UUIDs (RFC 4122 version 5), so the same input gives the same file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from spindledx.files import atomic_write_text

MITOSIS_CLASS = "Mitosis"
MITOSIS_COLOR_RGB = (255, 200, 0)
ATYPICAL_CLASS = "Mitosis (atypical)"
ATYPICAL_COLOR_RGB = (255, 60, 160)
_UUID_NAMESPACE = uuid.UUID("5b1f0c9e-6d0a-4e0e-9a7e-3c2f4d1b8a61")


def points_geojson(points: Iterable[tuple[float, ...]], *, source: str,
                   annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """FeatureCollection of mitotic figures as QuPath detection points, plus any annotation features.

    Parameters
    ----------
    points
        ``(x, y, score)`` in pixels of the image (x = column, y = row), or ``(x, y, score, atypical,
        atypical_score)``: a figure the atypical head labelled atypical gets the class ``Mitosis (atypical)``, and
        the atypical probability is a measurement.
    source
        Image or slide name, part of the feature ids.
    annotations
        Extra features (e.g. from :func:`polygon_annotation`), appended after the points.
    """
    features: list[dict[str, Any]] = []
    for index, point in enumerate(points):
        x, y, score = round(float(point[0]), 1), round(float(point[1]), 1), point[2]
        atypical = point[3] if len(point) > 3 else None
        atypical_score = point[4] if len(point) > 4 else None
        name, color = (ATYPICAL_CLASS, ATYPICAL_COLOR_RGB) if atypical else (MITOSIS_CLASS, MITOSIS_COLOR_RGB)
        measurements = {"score": round(float(score), 4)}
        if atypical_score is not None:
            measurements["atypical_score"] = round(float(atypical_score), 4)
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid5(_UUID_NAMESPACE, f"{source}#{index}#{x:.1f},{y:.1f}")),
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {
                "objectType": "detection",
                "name": f"mitosis {index + 1}",
                "classification": {"name": name, "color": list(color)},
                "measurements": measurements,
                "isLocked": False,
            },
        })
    return {"type": "FeatureCollection", "features": features + list(annotations)}


def polygon_annotation(ring: Iterable[tuple[float, float]], *, source: str, name: str, class_name: str,
                       color_rgb: tuple[int, int, int], measurements: dict[str, Any]) -> dict[str, Any]:
    """A locked QuPath annotation feature with one closed polygon ring (pixel coordinates)."""
    coords = [[round(float(x), 1), round(float(y), 1)] for x, y in ring]
    return {
        "type": "Feature",
        "id": str(uuid.uuid5(_UUID_NAMESPACE, f"{source}#{class_name}#{name}")),
        "geometry": {"type": "Polygon", "coordinates": [coords]},
        "properties": {"objectType": "annotation", "name": name,
                       "classification": {"name": class_name, "color": list(color_rgb)},
                       "measurements": measurements, "isLocked": True},
    }


ROI_CLASS = "Region of interest"
ROI_COLOR_RGB = (30, 30, 30)


def region_annotations(region: Any, *, source: str) -> list[dict[str, Any]]:
    """The polygons of a region of interest (:class:`spindledx.imaging.roi.Region`), holes kept, as locked QuPath
    annotations of class ``Region of interest``: the area a count was restricted to."""
    features = []
    for i, poly in enumerate(region.polygons):
        rings = [[[round(float(x), 1), round(float(y), 1)] for x, y in ring] for ring in (poly.exterior, *poly.holes)]
        for ring in rings:
            if ring[0] != ring[-1]:
                ring.append(list(ring[0]))
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid5(_UUID_NAMESPACE, f"{source}#roi#{i}")),
            "geometry": {"type": "Polygon", "coordinates": rings},
            "properties": {"objectType": "annotation", "name": f"counted region {i + 1}",
                           "classification": {"name": ROI_CLASS, "color": list(ROI_COLOR_RGB)},
                           "isLocked": True},
        })
    return features


def write_geojson(collection: dict[str, Any], path: str | Path) -> Path:
    """Write a FeatureCollection (from :func:`points_geojson`) to ``path`` atomically; returns the path."""
    return atomic_write_text(path, json.dumps(collection, indent=1, ensure_ascii=False))
