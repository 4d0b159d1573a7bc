"""Count figures marked elsewhere: QuPath points or detections (GeoJSON) or a CSV of ``x,y[,class]``.

The points are counted exactly as ``score`` counts a detector's figures (:func:`spindledx.mitosis.score.
score_image`): only those in the counted area (image ∩ tissue ∩ region of interest), one figure per 7.5 µm,
density over the counted area, per 10 HPF with its Poisson interval, flags. The image gives the µm per pixel and
the tissue. Coordinates are level-0 pixels of that image (what QuPath exports and what spindledx writes), so a
GeoJSON exported by ``score --out``, corrected in QuPath (points moved, deleted or added with the point tool) and
exported again counts the corrected figures.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spindledx.detection.types import Detection
from spindledx.errors import BadInputError

POINT_TYPES = ("Point", "MultiPoint")


@dataclass(frozen=True)
class PointSet:
    """Points read from a file: level-0 ``Detection``s (score 1.0 unless the file gives one) and what was skipped."""

    points: tuple[Detection, ...]
    source: str
    classes: tuple[str, ...] = ()
    skipped: int = 0


def _class_of(props: dict[str, Any]) -> str:
    cls = props.get("classification")
    if isinstance(cls, dict):
        return str(cls.get("name") or "")
    return str(cls or props.get("class") or "")


def _score_of(props: dict[str, Any]) -> float:
    measurements = props.get("measurements")
    if isinstance(measurements, dict):
        value = measurements.get("score")
    elif isinstance(measurements, list):  # QuPath 0.2: [{"name": ..., "value": ...}]
        value = next((m.get("value") for m in measurements if isinstance(m, dict) and m.get("name") == "score"),
                     None)
    else:
        value = None
    try:
        return min(1.0, max(0.0, float(value))) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def _centroid(ring: list) -> tuple[float, float]:
    import numpy as np

    pts = np.asarray(ring, float)[:, :2]
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def _geometry_points(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point":
        return [(float(coords[0]), float(coords[1]))]
    if kind == "MultiPoint":
        return [(float(c[0]), float(c[1])) for c in coords]
    if kind == "Polygon" and coords:  # a cell or nucleus detection: its centre
        return [_centroid(coords[0])]
    return []


def points_from_geojson(doc: Any, *, source: str, point_class: str | None = None) -> PointSet:
    """Points of QuPath point annotations (MultiPoint), point detections (Point) and cell/nucleus detections
    (Polygon: the centre), optionally only those of class ``point_class`` (case-insensitive). Region
    annotations (polygons whose ``objectType`` is ``annotation``) are not points and are skipped."""
    from spindledx.imaging.roi import _features

    kept: list[Detection] = []
    classes: list[str] = []
    skipped = 0
    seen: set[str] = set()
    for feature in _features(doc, source):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        if geometry.get("type") not in POINT_TYPES and props.get("objectType") != "detection":
            skipped += 1
            continue
        try:
            xy = _geometry_points(geometry)
        except (TypeError, ValueError, IndexError):
            raise BadInputError(f"{source}: a point has no numeric x, y") from None
        name = _class_of(props)
        seen.add(name)
        if point_class is not None and name.casefold() != point_class.strip().casefold():
            skipped += len(xy)
            continue
        score = _score_of(props)
        kept.extend(Detection(x, y, score) for x, y in xy)
        classes.append(name)
    if point_class is not None and not kept and seen:
        shown = ", ".join(sorted(n or "(unclassified)" for n in seen))
        raise BadInputError(f"{source}: no points of class {point_class!r}; the classes there are: {shown}")
    return PointSet(tuple(kept), source, tuple(dict.fromkeys(classes)), skipped)


def points_from_csv(text: str, *, source: str, point_class: str | None = None) -> PointSet:
    """Points of a CSV ``x,y[,class]`` (with or without that header; further columns are ignored)."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        return PointSet((), source)
    header = [c.strip().lower() for c in rows[0]]
    first_line = 1
    if "x" in header and "y" in header:
        ix, iy = header.index("x"), header.index("y")
        ic = header.index("class") if "class" in header else None
        rows, first_line = rows[1:], 2
    else:
        ix, iy, ic = 0, 1, 2
    kept: list[Detection] = []
    classes: list[str] = []
    skipped = 0
    for n, row in enumerate(rows, start=first_line):
        try:
            x, y = float(row[ix]), float(row[iy])
        except (ValueError, IndexError):
            raise BadInputError(f"{source}: line {n}: expected numbers x,y (got {','.join(row)[:60]!r})") from None
        name = row[ic].strip() if ic is not None and ic < len(row) else ""
        if point_class is not None and name.casefold() != point_class.strip().casefold():
            skipped += 1
            continue
        kept.append(Detection(x, y, 1.0))
        classes.append(name)
    return PointSet(tuple(kept), source, tuple(dict.fromkeys(classes)), skipped)


def load_points(path: str | Path, *, point_class: str | None = None) -> PointSet:
    """Points of a GeoJSON (``.geojson``/``.json``) or CSV file, in level-0 pixels of their image."""
    p = Path(path)
    if p.suffix.lower() in (".geojson", ".json"):
        from spindledx.imaging.roi import read_geojson

        return points_from_geojson(read_geojson(p), source=str(p), point_class=point_class)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInputError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{p}: cannot read it ({type(exc).__name__})") from None
    return points_from_csv(text, source=str(p), point_class=point_class)


class PointsDetector:
    """A :class:`~spindledx.detection.types.Detector` that returns the given points (for the counting stages)."""

    def __init__(self, points: PointSet) -> None:
        self.points = points
        self.name = f"points from {Path(points.source).name}"
        self.model_description = None  # provenance names the points file, not a model

    def prepare(self) -> None:
        """Nothing to load."""

    def __call__(self, rgb: Any, mpp: float) -> list[Detection]:
        return list(self.points.points)


def count_points(points: str | Path | PointSet, image: str | Path, *, mpp: float | None = None,
                 roi: Any = None, point_class: str | None = None, hpf_area_mm2: float | None = None) -> Any:
    """Count points marked on ``image`` as ``score`` counts detections; returns a
    :class:`~spindledx.mitosis.score.TileScore` (points outside the image or the counted area are not counted).
    """
    from spindledx import counting
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.score import score_image

    point_set = points if isinstance(points, PointSet) else load_points(points, point_class=point_class)
    tile = read_image(image, mpp=mpp)
    return score_image(tile, detector=PointsDetector(point_set), roi=roi,
                       hpf_area_mm2=counting.DEFAULT_HPF_AREA_MM2 if hpf_area_mm2 is None else hpf_area_mm2)


def count_points_on_slide(points: str | Path | PointSet, slide: str | Path, *, mpp: float | None = None,
                          roi: Any = None, point_class: str | None = None, hpf_area_mm2: float | None = None,
                          area_mm2: float | None = None, shape: str = "circle", backend: str = "auto"
                          ) -> dict[str, Any]:
    """Count points marked on a whole slide as ``slide`` counts detections: only those in the counted area (image
    ∩ tissue ∩ ``roi``), one figure per 7.5 µm, the hotspot of ``area_mm2`` (default 10 HPF) searched on them, and
    the slide's count (:func:`spindledx.slide.pipeline.slide_answer`) with its interval and flags.

    Returns a JSON-ready dict: ``answer`` (the count record), ``hotspot``, ``counted_area``, ``n_points`` given,
    ``n_outside_counted_area``, ``n_merged`` (within 7.5 µm of another point) and the slide's size and scale.
    """
    import numpy as np

    from spindledx import counting
    from spindledx.detection.suppress import MIDOG_RADIUS_UM, suppress_nearby
    from spindledx.imaging.slide import open_slide
    from spindledx.slide.area import counted_area, require_area
    from spindledx.slide.hotspot import find_hotspot
    from spindledx.slide.pipeline import slide_answer
    from spindledx.slide.tissue import detect_tissue

    hpf = counting.DEFAULT_HPF_AREA_MM2 if hpf_area_mm2 is None else counting.check_hpf_area_mm2(hpf_area_mm2)
    point_set = points if isinstance(points, PointSet) else load_points(points, point_class=point_class)
    name = Path(slide).name
    with open_slide(slide, mpp=mpp, backend=backend) as handle:
        info = handle.info
        tissue = detect_tissue(handle)
    area = require_area(counted_area(tissue.mask, tissue.raster.level0_per_px, mpp=info.mpp, width=info.width,
                                     height=info.height, region=roi, image=name), image=name)
    rows = np.array([(p.x, p.y, p.score) for p in point_set.points], float).reshape(-1, 3)
    inside = area.contains(rows[:, 0], rows[:, 1]) if len(rows) else np.zeros(0, bool)
    kept = rows[inside]
    if len(kept) > 1:
        kept = kept[np.sort(suppress_nearby(kept[:, :2], kept[:, 2], radius_um=MIDOG_RADIUS_UM, mpp=info.mpp))]
    hotspot = find_hotspot((kept[:, :2] + 0.5) * info.mpp, area.coverage, area.cell_um, area_mm2=area_mm2,
                           shape=shape, hpf_area=hpf)
    answer = slide_answer(area, hotspot, kept, hpf)
    return {"slide": str(slide), "points": point_set.source, "width": info.width, "height": info.height,
            "mpp": info.mpp, "mpp_source": info.mpp_source, "answer": answer, "hotspot": hotspot.to_json(),
            "counted_area": area.to_json(), "n_points": len(rows), "n_outside_counted_area": int((~inside).sum()),
            "n_merged": int(inside.sum()) - len(kept),
            "points_counted": [[round(float(x), 1), round(float(y), 1)] for x, y, _ in kept]}
