"""Files written by ``spindledx slide``: QuPath GeoJSON, thumbnail and heat-map PNGs, JSON/CSV summaries.

* ``<stem>_mitoses.geojson``: RFC 7946 FeatureCollection in level-0 (full-resolution) pixel coordinates, which
  is what QuPath expects on File > Import objects: one ``Point`` detection per figure (``objectType:
  "detection"``, class ``Mitosis``, ``measurements.score``, as ``spindledx score`` writes them) and the hotspot
  windows as ``Polygon`` annotations (class ``Hotspot``, with count and area) clipped to the slide: a window
  reaching past the edge is cut at it (its area inside the slide is stated), and a ``fields`` hotspot is exported
  as its ten fields, each with its own count.
* ``<stem>_mitoses.csv``: ``x, y, score`` in level-0 pixels.
* ``<stem>_thumbnail.png``: the tissue-mask thumbnail with the mask outline, the detections and the hotspot(s).
* ``<stem>_heatmap.png``: detection density (mitoses/mm² in a one-HPF disk around each point) over the
  thumbnail, hotspot(s) outlined.
* ``<stem>_summary.json`` / ``<stem>_summary.csv``: :meth:`SlideResult.to_json` and one flat CSV row per hotspot.
* ``summary.json`` (the ``slide`` command): the run in the one summary shape of :mod:`spindledx.summary`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.detection.geojson import MITOSIS_COLOR_RGB, points_geojson, polygon_annotation, write_geojson
from spindledx.files import atomic_open, atomic_write_text, atomic_write_with, csv_safe, output_stems, printable
from spindledx.slide.hotspot import density_map, hotspot_regions_level0
from spindledx.slide.pipeline import MANIFEST, SlideResult

HOTSPOT_CLASS = "Hotspot"
HOTSPOT_COLOR_RGB = (0, 160, 255)


def hotspot_regions(result: SlideResult, index: int = 0) -> list[dict[str, Any]]:
    """Hotspot ``index`` as polygons in level-0 pixels clipped to the slide (ten fields for a ``fields``
    hotspot), with each region's area inside the slide and its detections
    (:func:`spindledx.slide.hotspot.hotspot_regions_level0`)."""
    return hotspot_regions_level0(result.hotspots[index], mpp=result.info.mpp, width_px=result.info.width,
                                  height_px=result.info.height, points_level0=result.detections[:, :2])


def to_geojson(result: SlideResult) -> dict[str, Any]:
    """QuPath-importable FeatureCollection: detections as points, hotspots as polygon annotations inside the
    slide (a ``fields`` hotspot as its ten fields, each with its count)."""
    name = Path(result.info.path).name
    hotspots = []
    for k, hotspot in enumerate(result.hotspots):
        regions = hotspot_regions(result, k)
        for i, region in enumerate(regions):
            if len(region["polygon"]) == 0:
                continue
            label = (f"hotspot ({hotspot.shape}, {hotspot.area_mm2:.3g} mm², {hotspot.count} mitoses)"
                     if len(regions) == 1 else
                     f"hotspot field {i + 1} of {len(regions)} ({region['count']} mitoses; the {hotspot.area_mm2:.3g}"
                     f" mm² hotspot has {hotspot.count})")
            if region["clipped"]:
                label += ", clipped to the slide"
            measurements = {"count": region["count"], "area_mm2": region["area_mm2"]}
            if len(regions) == 1:
                measurements.update(count=hotspot.count, window_area_mm2=hotspot.area_mm2,
                                    area_inside_slide_mm2=region["area_mm2"],
                                    mitoses_per_mm2=hotspot.mitoses_per_mm2,
                                    mitoses_per_10hpf=hotspot.mitoses_per_10hpf)
                measurements.pop("area_mm2")
            else:
                measurements["field"] = i + 1
            hotspots.append(polygon_annotation(region["polygon"], source=f"{name}#{k}#{i}", name=label,
                                               class_name=HOTSPOT_CLASS, color_rgb=HOTSPOT_COLOR_RGB,
                                               measurements=measurements))
    region = None if result.area is None else result.area.region
    if region is not None:
        from spindledx.detection.geojson import region_annotations

        hotspots.extend(region_annotations(region, source=name))
    return points_geojson(_points(result), source=name, annotations=hotspots)


def _points(result: SlideResult) -> list[tuple]:
    """``(x, y, score[, atypical, atypical_score])`` per detection (level-0 pixels)."""
    checks = result.checks
    if checks is None or checks.atypical is None:
        return [tuple(row) for row in result.detections]
    return [(x, y, s, bool(a), float(p)) for (x, y, s), a, p in
            zip(result.detections, checks.atypical, checks.atypical_scores, strict=True)]


def summary_rows(result: SlideResult) -> list[dict[str, Any]]:
    """Flat CSV rows: one per hotspot shape, with the whole-tissue average on every row."""
    base = {"slide": result.info.path, "mpp": result.info.mpp, "mpp_source": result.info.mpp_source,
            "objective_power": result.info.objective_power, "tissue_area_mm2": round(result.tissue.area_mm2, 4),
            "count_total": len(result.detections),
            "average_mitoses_per_mm2": round(result.average.mitoses_per_mm2, 4),
            "average_mitoses_per_10hpf": round(result.average.mitoses_per_10hpf, 3),
            "average_fnclcc_mitotic_score": result.average.mitotic_score, "hpf_area_mm2": result.average.hpf_area_mm2,
            "detector": result.detector_name}
    if result.checks is not None:
        extra = result.checks.to_json(len(result.detections))
        base |= {"atypical_count": extra["atypical_count"], "atypical_fraction": extra["atypical_fraction"],
                 "flags": ";".join(extra["flags"]), "ood_score": extra["ood_score"]}
    rows = []
    for h in result.hotspots:
        rows.append({**base, "hotspot_shape": h.shape, "hotspot_area_mm2": h.area_mm2,
                     "hotspot_centre_x_um": round(h.centre_x_um, 1), "hotspot_centre_y_um": round(h.centre_y_um, 1),
                     "hotspot_tissue_fraction": round(h.tissue_fraction, 3), "hotspot_count": h.count,
                     "hotspot_mitoses_per_mm2": round(h.mitoses_per_mm2, 4),
                     "hotspot_mitoses_per_10hpf": round(h.mitoses_per_10hpf, 3),
                     "hotspot_fnclcc_mitotic_score": h.mitotic_score})
    return rows


def _thumb_xy(result: SlideResult, xy_level0: np.ndarray) -> np.ndarray:
    """Level-0 pixel coordinates to thumbnail pixel coordinates (for drawing)."""
    s = result.tissue.raster.level0_per_px
    return (np.asarray(xy_level0, float) + 0.5) / s - 0.5


def _figure(result: SlideResult, *, heat: bool) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from skimage.measure import find_contours

    thumb = result.tissue.thumbnail
    h, w = thumb.shape[:2]
    scale = 8.0 / max(h, w)
    fig = Figure(figsize=(max(3.0, w * scale) + (1.2 if heat else 0.0), max(3.0, h * scale)), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(thumb, interpolation="nearest")
    if heat:
        cell_um = result.tissue.raster.level0_per_px * result.info.mpp
        radius_um = math.sqrt(result.average.hpf_area_mm2 * 1e6 / math.pi)
        if result.hotspots:  # small windows: smooth at half the window radius so the map shows structure
            radius_um = min(radius_um, 0.5 * math.sqrt(result.hotspots[0].area_mm2 * 1e6 / math.pi))
        points_um = (result.detections[:, :2] + 0.5) * result.info.mpp
        dens = density_map(points_um, result.tissue.mask.shape, cell_um, radius_um=radius_um)
        shown = np.ma.masked_where(~result.tissue.mask, dens)
        im = ax.imshow(shown, cmap="inferno", alpha=0.65, interpolation="bilinear",
                       vmin=0.0, vmax=max(1e-9, float(dens.max())))
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=f"mitoses / mm² (disk of {radius_um:.0f} µm radius)")
    else:
        for contour in find_contours(result.tissue.mask.astype(float), 0.5):
            ax.plot(contour[:, 1], contour[:, 0], color="#2ca02c", linewidth=0.8)
        if len(result.detections):
            xy = _thumb_xy(result, result.detections[:, :2])
            ax.scatter(xy[:, 0], xy[:, 1], s=6, c=[np.array(MITOSIS_COLOR_RGB) / 255], edgecolors="black",
                       linewidths=0.3)
    region = None if result.area is None else result.area.region
    if region is not None:  # the region of interest counted in, holes included
        from spindledx.detection.geojson import ROI_COLOR_RGB

        for j, ring in enumerate(r for p in region.polygons for r in (p.exterior, *p.holes)):
            xy = _thumb_xy(result, np.vstack([ring, ring[:1]]))
            ax.plot(xy[:, 0], xy[:, 1], "--", color=np.array(ROI_COLOR_RGB) / 255, linewidth=1.2,
                    label="region of interest" if j == 0 else None)
    styles = {"circle": "-", "square": "--", "fields": ":"}
    for k, hotspot in enumerate(result.hotspots):
        for i, region in enumerate(hotspot_regions(result, k)):
            if len(region["polygon"]) == 0:
                continue
            poly = _thumb_xy(result, region["polygon"])
            ax.plot(poly[:, 0], poly[:, 1], styles[hotspot.shape], color=np.array(HOTSPOT_COLOR_RGB) / 255,
                    linewidth=1.5, label=(f"hotspot {hotspot.shape}: {hotspot.count} in {hotspot.area_mm2:.3g} mm²"
                                          if i == 0 else None))
    if result.hotspots or region is not None:
        ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(f"{Path(result.info.path).name}: {len(result.detections)} detections, "
                 + (f"tissue {result.tissue.area_mm2:.2f} mm²" if region is None else
                    f"{result.area.area_mm2:.3g} mm² of tissue in the region"), fontsize=8)
    fig.tight_layout()
    return fig


def write_outputs(result: SlideResult, out_dir: str | Path) -> dict[str, Path]:
    """Write every output file of a slide into ``out_dir``; returns ``{kind: path}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stems([Path(result.info.path)])[0]
    paths = {"geojson": out_dir / f"{stem}_mitoses.geojson", "csv": out_dir / f"{stem}_mitoses.csv",
             "summary_json": out_dir / f"{stem}_summary.json", "summary_csv": out_dir / f"{stem}_summary.csv",
             "thumbnail": out_dir / f"{stem}_thumbnail.png", "heatmap": out_dir / f"{stem}_heatmap.png"}
    write_geojson(to_geojson(result), paths["geojson"])
    with atomic_open(paths["csv"], newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x", "y", "score", "atypical", "atypical_score"])
        for point in _points(result):
            x, y, score = point[:3]
            atypical = "" if len(point) < 4 else str(point[3]).lower()
            atypical_score = "" if len(point) < 5 else round(float(point[4]), 5)
            writer.writerow([round(float(x), 2), round(float(y), 2), round(float(score), 5), atypical, atypical_score])
    atomic_write_text(paths["summary_json"], json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    rows = summary_rows(result)
    with atomic_open(paths["summary_csv"], newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["slide"])
        writer.writeheader()
        writer.writerows([{k: csv_safe(v) for k, v in row.items()} for row in rows])
    for kind, heat in (("thumbnail", False), ("heatmap", True)):
        figure = _figure(result, heat=heat)
        atomic_write_with(paths[kind], lambda tmp, figure=figure: figure.savefig(tmp, format="png"))
    return paths


def write_slide_summary(result: SlideResult, out_dir: str | Path, written: Iterable[Path], *,
                        provenance: dict[str, Any], options: dict[str, Any]) -> Path:
    """``summary.json`` of a ``slide`` run in the one summary shape (:mod:`spindledx.summary`): the
    :meth:`SlideResult.to_json` object as ``results``, tile and detection totals as ``counts``. The per-tile
    detection files under ``tiles/`` are counted (``counts["tiles"]``), not listed."""
    from spindledx.summary import write_summary

    out_dir = Path(out_dir)
    counts = {"tiles": result.n_tiles, "tiles_run": result.n_tiles_run, "tiles_resumed": result.n_tiles_resumed,
              "detections": int(len(result.detections)), "tissue_area_mm2": round(result.tissue.area_mm2, 6)}
    return write_summary(out_dir, "slide", provenance=provenance, inputs=[printable(result.info.path)],
                         options=options, outputs=[p for p in [*written, out_dir / MANIFEST] if p.exists()],
                         counts=counts, results=result.to_json(),
                         flags=result.checks.flags if result.checks is not None else (),
                         warnings=[w for h in result.hotspots for w in h.warnings])
