"""Files written by ``spindledx score --out``: detections CSV, QuPath GeoJSON, overlay PNG, JSON summary.

* CSV: one row per figure, columns ``image, x, y, score`` (pixel coordinates, x = column, y = row).
* GeoJSON: QuPath detection points written by :mod:`spindledx.detection.geojson` (the one writer).
* Overlay PNG: the tile with a circle of :data:`OVERLAY_RADIUS_UM` (7.5 µm, the MIDOG hit radius) around each
  figure and its score, drawn with OpenCV; figures the atypical head calls atypical are magenta and marked "A".
* CSV and GeoJSON carry the atypical label and probability of each figure (GeoJSON class ``Mitosis (atypical)``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from spindledx.detection.geojson import MITOSIS_COLOR_RGB, points_geojson
from spindledx.detection.geojson import write_geojson as write_collection
from spindledx.files import atomic_open, atomic_write_with, csv_safe
from spindledx.mitosis.score import TileScore

OVERLAY_RADIUS_UM = 7.5
CSV_COLUMNS = ("image", "x", "y", "score", "atypical", "atypical_score")
ATYPICAL_OVERLAY_RGB = (255, 60, 160)


def output_stem(image: str) -> str:
    """File-name stem for an image's outputs (``sample_slides/tile_01.png`` -> ``tile_01``)."""
    return Path(image).stem


def detection_rows(scores: Iterable[TileScore]) -> list[dict[str, Any]]:
    """CSV rows ``{"image", "x", "y", "score"}`` for every figure of every tile."""
    rows = []
    for result in scores:
        for det in result.mitoses:
            rows.append({"image": csv_safe(result.image), "x": round(float(det.x), 1), "y": round(float(det.y), 1),
                         "score": round(float(det.score), 4),
                         "atypical": "" if det.atypical is None else str(det.atypical).lower(),
                         "atypical_score": "" if det.atypical_score is None else round(float(det.atypical_score), 4)})
    return rows


def write_detections_csv(scores: TileScore | Iterable[TileScore], path: str | Path) -> Path:
    """Write the figures of one or several tiles as CSV (columns :data:`CSV_COLUMNS`); returns the path."""
    if isinstance(scores, TileScore):
        scores = [scores]
    path = Path(path)
    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(detection_rows(scores))
    return path


def to_geojson(result: TileScore) -> dict[str, Any]:
    """QuPath-importable GeoJSON FeatureCollection of the tile's figures as detection points."""
    from spindledx.detection.geojson import region_annotations

    region = getattr(result, "region", None)
    return points_geojson(((d.x, d.y, d.score, d.atypical, d.atypical_score) for d in result.mitoses),
                          source=result.image,
                          annotations=() if region is None else region_annotations(region, source=result.image))


def write_geojson(result: TileScore, path: str | Path) -> Path:
    """Write :func:`to_geojson` to ``path`` (atomically); returns the path."""
    return write_collection(to_geojson(result), path)


def draw_overlay(rgb: np.ndarray, result: TileScore, *, radius_um: float = OVERLAY_RADIUS_UM) -> np.ndarray:
    """Copy of ``rgb`` with a circle of ``radius_um`` and the score drawn at each figure (RGB uint8)."""
    canvas = np.ascontiguousarray(rgb.copy())
    radius_px = max(3, round(radius_um / result.mpp))
    thickness = max(1, round(radius_px / 12))
    font_scale = max(0.35, radius_px / 60)
    region = getattr(result, "region", None)
    if region is not None:  # the counted region's outline (holes included), dark grey
        from spindledx.detection.geojson import ROI_COLOR_RGB

        rings = [np.round(r).astype(np.int32).reshape(-1, 1, 2)
                 for p in region.polygons for r in (p.exterior, *p.holes)]
        cv2.polylines(canvas, rings, True, ROI_COLOR_RGB, max(2, thickness), lineType=cv2.LINE_AA)
    for det in result.mitoses:
        color = ATYPICAL_OVERLAY_RGB if det.atypical else MITOSIS_COLOR_RGB
        centre = (round(det.x), round(det.y))
        cv2.circle(canvas, centre, radius_px, (0, 0, 0), thickness + 2, lineType=cv2.LINE_AA)
        cv2.circle(canvas, centre, radius_px, color, thickness, lineType=cv2.LINE_AA)
        label = f"{det.score:.2f}" + (" A" if det.atypical else "")
        origin = (centre[0] + radius_px + 2, centre[1] - radius_px)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2,
                    cv2.LINE_AA)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, thickness, cv2.LINE_AA)
    return canvas


def write_overlay_png(rgb: np.ndarray, result: TileScore, path: str | Path, *,
                      radius_um: float = OVERLAY_RADIUS_UM) -> Path:
    """Write :func:`draw_overlay` as PNG; returns the path."""
    path = Path(path)
    overlay = cv2.cvtColor(draw_overlay(rgb, result, radius_um=radius_um), cv2.COLOR_RGB2BGR)

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, overlay):
            raise OSError(f"could not write {path}")

    return atomic_write_with(path, write)


def write_summary_json(scores: Iterable[TileScore], out_dir: str | Path, *, provenance: dict[str, Any],
                       inputs: Iterable[str] = (), outputs: Iterable[str | Path] = (),
                       options: dict[str, Any] | None = None, failed: Iterable[tuple[str, str]] = (),
                       warnings: Iterable[str] = ()) -> Path:
    """Write ``summary.json`` of a ``score`` run in the one summary shape (:mod:`spindledx.summary`): the
    ``score`` JSON list as ``results``, totals as ``counts``, the images that failed as ``errors``."""
    from spindledx.summary import write_summary

    scores = list(scores)
    failures = list(failed)
    counts = {"images": len(scores) + len(failures), "scored": len(scores), "failed": len(failures),
              "mitoses": sum(r.count for r in scores), "area_mm2": round(sum(r.area_mm2 for r in scores), 6)}
    return write_summary(out_dir, "score", provenance=provenance, inputs=inputs, outputs=outputs, options=options,
                         counts=counts, results=[r.to_dict() for r in scores],
                         flags=[f for r in scores for f in r.flags], warnings=warnings, errors=failures,
                         status="failed" if failures and not scores else "complete")


def write_tile_outputs(rgb: np.ndarray, result: TileScore, out_dir: str | Path, *,
                       stem: str | None = None) -> dict[str, Path]:
    """Write the CSV, GeoJSON and overlay PNG of one tile into ``out_dir``; returns ``{kind: path}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or output_stem(result.image)
    return {
        "csv": write_detections_csv(result, out_dir / f"{stem}_mitoses.csv"),
        "geojson": write_geojson(result, out_dir / f"{stem}_mitoses.geojson"),
        "overlay": write_overlay_png(rgb, result, out_dir / f"{stem}_overlay.png"),
    }
