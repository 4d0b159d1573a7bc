"""Regions of interest from QuPath: GeoJSON annotations (Polygon / MultiPolygon, holes kept) in level-0 pixels.

QuPath's *File > Export objects as GeoJSON* writes a FeatureCollection (or, in older versions, a bare list of
features) whose coordinates are level-0 pixels of the image (x right, y down). A feature's class is
``properties.classification.name`` (a plain string in some exports). :func:`load_roi` keeps the polygons, picks
them by class when asked, and refuses anything that is not a region. A :class:`Region` answers two questions:
which points lie in it (:meth:`Region.contains`, exact, holes excluded) and how much of each cell of a grid it
covers (:meth:`Region.coverage`, by supersampled rasterisation with :func:`skimage.draw.polygon`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.errors import BadInputError

#: Share of a region that may lie outside the image before it is refused (drawing slips past the edge).
MAX_OUTSIDE_FRACTION = 0.05


@dataclass(frozen=True)
class Polygon:
    """One polygon: an exterior ring and its holes, ``(N, 2)`` arrays of level-0 ``x, y``."""

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()

    @property
    def area_px(self) -> float:
        """Area in level-0 px² (shoelace; holes subtracted)."""
        return max(0.0, _ring_area(self.exterior) - sum(_ring_area(h) for h in self.holes))


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


@dataclass(frozen=True)
class Region:
    """Union of polygons (level-0 pixels) read from a GeoJSON file.

    Attributes
    ----------
    polygons
        The polygons (overlaps count once: membership is a union).
    source
        File read.
    classes
        Classes of the features kept (empty names for unclassified ones).
    """

    polygons: tuple[Polygon, ...]
    source: str = ""
    classes: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in level-0 pixels."""
        pts = np.vstack([p.exterior for p in self.polygons])
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def contains(self, x: Iterable[float] | np.ndarray, y: Iterable[float] | np.ndarray) -> np.ndarray:
        """True for the level-0 points inside any polygon and outside its holes."""
        from skimage.measure import points_in_poly

        pts = np.column_stack([np.asarray(x, float).ravel(), np.asarray(y, float).ravel()])
        inside = np.zeros(len(pts), bool)
        if not len(pts):
            return inside
        for poly in self.polygons:
            hit = points_in_poly(pts, poly.exterior)
            for hole in poly.holes:
                hit &= ~points_in_poly(pts, hole)
            inside |= hit
        return inside

    def coverage(self, shape: tuple[int, int], cell_px: float, *, width: int, height: int,
                 supersample: int = 4) -> np.ndarray:
        """Fraction of every cell of a ``shape`` grid (cell ``(r, c)`` covers level-0 ``[c, c + 1) * cell_px`` in
        x, the same in y) that lies inside the region and inside the ``width`` x ``height`` image."""
        from skimage.draw import polygon as fill

        s = max(1, int(supersample))
        rows, cols = shape[0] * s, shape[1] * s
        fine = np.zeros((rows, cols), bool)
        step = cell_px / s
        for poly in self.polygons:
            part = np.zeros_like(fine)
            rr, cc = fill(poly.exterior[:, 1] / step - 0.5, poly.exterior[:, 0] / step - 0.5, shape=fine.shape)
            part[rr, cc] = True
            for hole in poly.holes:
                rr, cc = fill(hole[:, 1] / step - 0.5, hole[:, 0] / step - 0.5, shape=fine.shape)
                part[rr, cc] = False
            fine |= part
        fine &= image_cells((rows, cols), step, width=width, height=height)
        return fine.reshape(shape[0], s, shape[1], s).mean(axis=(1, 3))

    def check_inside(self, width: int, height: int, *, image: str = "the image") -> None:
        """Refuse a region that lies outside the ``width`` x ``height`` image, wholly or for more than
        :data:`MAX_OUTSIDE_FRACTION` of its area (a region drawn on another image or another level)."""
        total = sum(p.area_px for p in self.polygons)
        if total <= 0:
            raise BadInputError(f"{self.source or 'roi'}: the region has no area")
        xmin, ymin, xmax, ymax = self.bounds
        if xmin >= 0 and ymin >= 0 and xmax <= width and ymax <= height:
            return
        cell = max(1.0, max(width, height) / 1024.0)
        shape = (int(np.ceil(max(ymax, height) / cell)) + 1, int(np.ceil(max(xmax, width) / cell)) + 1)
        inside = float(self.coverage(shape, cell, width=width, height=height, supersample=2).sum()) * cell * cell
        where = f"(x {xmin:.0f}-{xmax:.0f}, y {ymin:.0f}-{ymax:.0f} px; {image} is {width} x {height} px)"
        if xmax <= 0 or ymax <= 0 or xmin >= width or ymin >= height or inside <= 0:
            raise BadInputError(f"{self.source or 'roi'}: the region lies outside {image} {where}; was it drawn on "
                                "another image?")
        if inside < (1.0 - MAX_OUTSIDE_FRACTION) * total:
            raise BadInputError(f"{self.source or 'roi'}: {100 * (1 - inside / total):.0f} % of the region lies "
                                f"outside {image} {where}; was it drawn on another image?")


def image_cells(shape: tuple[int, int], cell_px: float, *, width: int, height: int) -> np.ndarray:
    """True for the cells of a grid whose centre lies inside the ``width`` x ``height`` image."""
    cy = (np.arange(shape[0]) + 0.5) * cell_px
    cx = (np.arange(shape[1]) + 0.5) * cell_px
    return (cy[:, None] < height) & (cx[None, :] < width)


def _feature_class(feature: dict[str, Any]) -> str:
    props = feature.get("properties") or {}
    cls = props.get("classification")
    if isinstance(cls, dict):
        return str(cls.get("name") or "")
    if isinstance(cls, str):
        return cls
    return str(props.get("class") or "")


def _ring(coords: Any, source: str) -> np.ndarray:
    try:
        ring = np.asarray(coords, float)[:, :2]
    except (TypeError, ValueError, IndexError):
        raise BadInputError(f"{source}: a polygon ring is not a list of [x, y] pairs") from None
    if len(ring) < 3 or not np.isfinite(ring).all():
        raise BadInputError(f"{source}: a polygon ring has fewer than 3 points or a non-finite coordinate")
    return ring


def _polygons(geometry: dict[str, Any], source: str) -> list[Polygon]:
    kind = geometry.get("type")
    if kind == "Polygon":
        rings = geometry.get("coordinates") or []
        return [Polygon(_ring(rings[0], source), tuple(_ring(r, source) for r in rings[1:]))] if rings else []
    if kind == "MultiPolygon":
        return [p for rings in geometry.get("coordinates") or []
                for p in _polygons({"type": "Polygon", "coordinates": rings}, source)]
    if kind == "GeometryCollection":
        return [p for g in geometry.get("geometries") or [] for p in _polygons(g, source)]
    return []


def _features(doc: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(doc, list):
        return [f for item in doc for f in _features(item, source)]
    if not isinstance(doc, dict):
        raise BadInputError(f"{source}: not GeoJSON (expected a FeatureCollection, a Feature or a list of them)")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        return [f for f in doc.get("features") or [] if isinstance(f, dict)]
    if kind == "Feature":
        return [doc]
    if kind in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise BadInputError(f"{source}: not GeoJSON (type {kind!r})")


def read_geojson(path: str | Path) -> Any:
    """The parsed JSON of a GeoJSON file, or BadInputError naming it."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadInputError(f"{p}: cannot read it as GeoJSON ({type(exc).__name__})") from None


def load_roi(path: str | Path, roi_class: str | None = None) -> Region:
    """The polygon annotations of a GeoJSON file, optionally only those of class ``roi_class`` (case-insensitive).

    Raises
    ------
    BadInputError
        Not GeoJSON, no polygon in it, or no polygon of the class asked for (the classes found are listed).
    """
    source = str(path)
    features = _features(read_geojson(path), source)
    kept: list[Polygon] = []
    classes: list[str] = []
    seen: set[str] = set()
    for feature in features:
        polys = _polygons(feature.get("geometry") or {}, source)
        if not polys:
            continue
        name = _feature_class(feature)
        seen.add(name)
        if roi_class is not None and name.casefold() != roi_class.strip().casefold():
            continue
        kept.extend(polys)
        classes.append(name)
    if not kept:
        if roi_class is not None and seen:
            shown = ", ".join(sorted(n or "(unclassified)" for n in seen))
            raise BadInputError(f"{source}: no region of class {roi_class!r}; the classes there are: {shown}")
        raise BadInputError(f"{source}: no Polygon or MultiPolygon annotation in it")
    return Region(tuple(kept), source=source, classes=tuple(dict.fromkeys(classes)))
