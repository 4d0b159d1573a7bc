"""H&E evidence of a case: score tiles with the detector, keep the candidates below threshold for review, write
the per-image outputs (CSV, QuPath GeoJSON, overlay PNG, candidates file) into the case folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.errors import BadInputError
from spindledx.review.candidates import candidates_document, split_candidates, write_candidates

THUMBNAIL_PX = 320


@dataclass(frozen=True)
class ScoredImages:
    """Per-image score records, candidates documents, overlay thumbnails (PNG bytes by stem), warnings, flags and
    the files written."""

    records: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    thumbnails: dict[str, bytes]
    warnings: list[str]
    flags: list[str]
    outputs: list[Path] = field(default_factory=list)


def thumbnail_png(rgb: np.ndarray, *, max_px: int = THUMBNAIL_PX) -> bytes:
    """PNG bytes of ``rgb`` downscaled so that its longer side is at most ``max_px`` (area interpolation)."""
    import cv2

    scale = max_px / max(rgb.shape[:2])
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode a PNG thumbnail")
    return png.tobytes()


def tile_guard(result: Any, rgb: np.ndarray) -> tuple[list[str], list[str]]:
    """Flags of one tile's count and their sentences: the score's own when it carries them, else
    :func:`spindledx.detection.guard.guard_tile` (implausible density, out-of-distribution stain/texture)."""
    flags = getattr(result, "flags", None)
    if flags is not None:
        return list(flags), list(getattr(result, "flag_messages", ()) or ())
    from spindledx.detection.guard import guard_tile

    g = guard_tile(rgb, result.mpp, result.count)
    return list(g.flags), list(g.messages)


def score_tiles(images: Sequence[Path], *, stems: Sequence[str], detector: Callable, threshold: float,
                review_floor: float, out_dir: Path, model: dict[str, Any], mpp: float | None = None,
                hpf_area_mm2: float) -> ScoredImages:
    """Score every image, writing its outputs into ``out_dir``.

    ``detector`` must return every figure down to ``review_floor`` (a run of the shipped detector at that
    threshold); figures at or above ``threshold`` are counted, the others only go to the review page.
    An unreadable image is an error (BadInputError naming it): a case is not reported on part of its evidence.
    """
    from spindledx.detection.suppress import suppress_detections
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.outputs import draw_overlay, write_tile_outputs
    from spindledx.mitosis.score import summarize

    records, docs, warnings, flags, written = [], [], [], [], []
    thumbs: dict[str, bytes] = {}
    for image, stem in zip(images, stems, strict=True):
        tile = read_image(image, mpp=mpp)
        found = [d for d in detector(tile.rgb, tile.mpp) if 0 <= d.x < tile.width and 0 <= d.y < tile.height]
        found = suppress_detections(found, mpp=tile.mpp)
        cands = split_candidates(found, stem=stem, threshold=threshold, review_floor=review_floor)
        counted = [d for d in found if d.score >= threshold]
        result = summarize(tile, counted, hpf_area_mm2=hpf_area_mm2)
        record = result.to_dict()
        tile_flags, messages = tile_guard(result, tile.rgb)
        record["stem"] = stem
        record["flags"] = tile_flags
        record["flag_messages"] = messages
        record["n_candidates_below_threshold"] = sum(1 for c in cands if not c.detected)
        records.append(record)
        flags.extend(tile_flags)
        warnings.extend(f"{stem}: {m}" for m in messages)
        warnings.extend(result.warnings)
        written.extend(write_tile_outputs(tile.rgb, result, out_dir, stem=stem).values())
        doc = candidates_document(image=image, stem=stem, width=tile.width, height=tile.height, mpp=tile.mpp,
                                  threshold=threshold, review_floor=review_floor, model=model, candidates=cands)
        doc["flags"] = tile_flags
        written.append(write_candidates(doc, out_dir))
        docs.append(doc)
        thumbs[stem] = thumbnail_png(draw_overlay(tile.rgb, result))
    if not records:
        raise BadInputError("no image given")
    return ScoredImages(records, docs, thumbs, warnings, flags, written)


def score_slide(path: Path, *, detector: Callable, threshold: float, review_floor: float, out_dir: Path,
                model: dict[str, Any], mpp: float | None = None, hpf_area_mm2: float, shape: str = "circle",
                area_mm2: float | None = None) -> ScoredImages:
    """Score a whole slide and count its hotspot (the ``slide`` stage), keeping the hotspot's candidates.

    The detector runs once over the tissue at ``review_floor`` (:func:`spindledx.slide.pipeline.analyze_slide`,
    per-tile files under ``out_dir/slide_run``); the detections at or above ``threshold`` are the counted ones
    and the hotspot is searched on them (:func:`spindledx.slide.hotspot.find_hotspot`, default 10 HPF). The
    count is the hotspot's: its figures over its area inside the slide (clipped to the image). Candidates for the
    review page are the hotspot's, both counted and just below the threshold. The slide outputs (GeoJSON,
    thumbnail, heat map, summaries) go into ``out_dir``.
    """
    import dataclasses

    from spindledx.slide.hotspot import find_hotspot, hotspot_regions_level0
    from spindledx.slide.outputs import write_outputs
    from spindledx.slide.pipeline import MANIFEST, analyze_slide, whole_tissue_average

    result = analyze_slide(path, mpp=mpp, detector=detector, out_dir=out_dir / "slide_run", hpf_area=hpf_area_mm2,
                           area_mm2=area_mm2, shapes=(shape,))
    info = result.info
    dets = result.detections
    keep = dets[:, 2] >= threshold if len(dets) else np.zeros(0, bool)
    counted = dets[keep] if len(dets) else dets
    cell_um = result.tissue.raster.level0_per_px * info.mpp
    hotspot = find_hotspot((counted[:, :2] + 0.5) * info.mpp if len(counted) else np.zeros((0, 2)),
                           result.tissue.mask, cell_um, area_mm2=area_mm2, shape=shape, hpf_area=hpf_area_mm2)
    final = dataclasses.replace(result, detections=counted, hotspots=(hotspot,),
                                average=whole_tissue_average(len(counted), result.tissue.area_mm2, hpf_area_mm2),
                                checks=None if result.checks is None
                                else result.checks.subset(keep, result.tissue.area_mm2))
    written = [*write_outputs(final, out_dir).values(), out_dir / "slide_run" / MANIFEST]
    regions = hotspot_regions_level0(hotspot, mpp=info.mpp, width_px=info.width, height_px=info.height)
    clipped = any(r["clipped"] for r in regions)  # the window's own area unless the slide edge cuts it
    inside_area = float(sum(r["area_mm2"] for r in regions)) if clipped else float(hotspot.area_mm2)
    # membership as the hotspot counts it (boundary included): disk for a circle, rectangle otherwise
    pts_um = (dets[:, :2] + 0.5) * info.mpp if len(dets) else np.zeros((0, 2))
    dx, dy = pts_um[:, 0] - hotspot.centre_x_um, pts_um[:, 1] - hotspot.centre_y_um
    if hotspot.shape == "circle":
        in_hotspot = np.hypot(dx, dy) <= hotspot.radius_um
    else:
        in_hotspot = (np.abs(dx) <= hotspot.width_um / 2) & (np.abs(dy) <= hotspot.height_um / 2)
    from spindledx.files import output_stems

    stem = output_stems([Path(path)])[0]
    points = [_Point(float(x), float(y), float(s)) for x, y, s in dets[in_hotspot]]
    cands = split_candidates(points, stem=stem, threshold=threshold, review_floor=review_floor)
    count = int(sum(1 for c in cands if c.detected))
    doc = candidates_document(image=path, stem=stem, width=info.width, height=info.height, mpp=info.mpp,
                              threshold=threshold, review_floor=review_floor, model=model, candidates=cands,
                              kind="slide")
    doc["area_mm2"] = inside_area
    written.append(write_candidates(doc, out_dir))
    from spindledx.counting import MitoticDensity

    value = MitoticDensity.of(count, inside_area, hpf_area_mm2)
    warnings = list(hotspot.warnings)
    if clipped:
        warnings.append(f"the {hotspot.area_mm2:.3g} mm² hotspot window reaches past the slide edge: "
                        f"{inside_area:.3g} mm² of it lie on the slide and were counted")
    record = {"image": str(path), "stem": stem, "width": info.width, "height": info.height, "mpp": info.mpp,
              "mpp_source": info.mpp_source, "area_mm2": round(inside_area, 6), "count": count,
              "mitoses_per_mm2": round(value.per_mm2, 4), "mitoses_per_10hpf": round(value.per_10hpf, 4),
              "hpf_area_mm2": hpf_area_mm2, "hotspot": hotspot.to_json(),
              "slide_count": int(len(counted)), "tissue_area_mm2": round(result.tissue.area_mm2, 6),
              "n_candidates_below_threshold": sum(1 for c in cands if not c.detected), "flags": [],
              "flag_messages": []}
    thumb_path = out_dir / f"{stem}_thumbnail.png"
    thumbs = {stem: thumb_path.read_bytes()} if thumb_path.is_file() else {}
    return ScoredImages([record], [doc], thumbs, warnings, [], written)


@dataclass(frozen=True)
class _Point:
    x: float
    y: float
    score: float
