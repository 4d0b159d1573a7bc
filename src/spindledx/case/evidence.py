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
                hpf_area_mm2: float, roi: Any = None) -> ScoredImages:
    """Score every image, writing its outputs into ``out_dir``.

    Each image is counted over its counted area (image ∩ tissue ∩ ``roi``, :func:`spindledx.mitosis.score.
    tile_area`), as ``score`` counts it.

    ``detector`` must return every figure down to ``review_floor`` (a run of the shipped detector at that
    threshold); figures at or above ``threshold`` are counted, the others only go to the review page.
    An unreadable image is an error (BadInputError naming it): a case is not reported on part of its evidence.
    """
    from spindledx.detection.suppress import suppress_detections
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.outputs import draw_overlay, write_tile_outputs
    from spindledx.mitosis.score import summarize, tile_area

    records, docs, warnings, flags, written = [], [], [], [], []
    thumbs: dict[str, bytes] = {}
    for image, stem in zip(images, stems, strict=True):
        tile = read_image(image, mpp=mpp)
        found = [d for d in detector(tile.rgb, tile.mpp) if 0 <= d.x < tile.width and 0 <= d.y < tile.height]
        found = suppress_detections(found, mpp=tile.mpp)
        area = tile_area(tile, roi)
        if found:
            inside = area.contains(np.array([d.x for d in found]), np.array([d.y for d in found]))
            found = [d for d, k in zip(found, inside, strict=True) if k]
        cands = split_candidates(found, stem=stem, threshold=threshold, review_floor=review_floor)
        counted = [d for d in found if d.score >= threshold]
        result = summarize(tile, counted, hpf_area_mm2=hpf_area_mm2, area=area)
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
        doc["area_mm2"] = result.area_mm2  # the counted area, which `review --import` counts over
        doc["flags"] = tile_flags
        written.append(write_candidates(doc, out_dir))
        docs.append(doc)
        thumbs[stem] = thumbnail_png(draw_overlay(tile.rgb, result))
    if not records:
        raise BadInputError("no image given")
    return ScoredImages(records, docs, thumbs, warnings, flags, written)


def score_slide(path: Path, *, detector: Callable, threshold: float, review_floor: float, out_dir: Path,
                model: dict[str, Any], mpp: float | None = None, hpf_area_mm2: float, shape: str = "circle",
                area_mm2: float | None = None, roi: Any = None) -> ScoredImages:
    """Score a whole slide and count it as ``slide`` does, keeping the counted figures' candidates.

    The detector runs once over the counted area (image ∩ tissue ∩ ``roi``) at ``review_floor``
    (:func:`spindledx.slide.pipeline.analyze_slide`, per-tile files under ``out_dir/slide_run``); the detections
    at or above ``threshold`` are the counted ones. The count is :func:`spindledx.slide.pipeline.slide_answer`:
    the whole counted area when it is no larger than the hotspot window (default 10 HPF), else the hotspot's
    figures over the counted area inside the window. Candidates for the review page are those of the counted
    region, both counted and just below the threshold. The slide outputs (GeoJSON, thumbnail, heat map,
    summaries) go into ``out_dir``.
    """
    import dataclasses

    from spindledx.slide.hotspot import find_hotspot
    from spindledx.slide.outputs import write_outputs
    from spindledx.slide.pipeline import MANIFEST, analyze_slide, in_hotspot, slide_answer, whole_tissue_average

    result = analyze_slide(path, mpp=mpp, detector=detector, out_dir=out_dir / "slide_run", hpf_area=hpf_area_mm2,
                           area_mm2=area_mm2, shapes=(shape,), roi=roi)
    info, area = result.info, result.area
    dets = result.detections
    keep = dets[:, 2] >= threshold if len(dets) else np.zeros(0, bool)
    counted = dets[keep] if len(dets) else dets
    hotspot = find_hotspot((counted[:, :2] + 0.5) * info.mpp if len(counted) else np.zeros((0, 2)),
                           area.coverage, area.cell_um, area_mm2=area_mm2, shape=shape, hpf_area=hpf_area_mm2)
    checks = None if result.checks is None else result.checks.subset(keep, area.area_mm2)
    answer = slide_answer(area, hotspot, counted, hpf_area_mm2, flags=() if checks is None else checks.flags,
                          flag_messages=() if checks is None else checks.flag_messages)
    final = dataclasses.replace(result, detections=counted, hotspots=(hotspot,),
                                average=whole_tissue_average(len(counted), area.area_mm2, hpf_area_mm2),
                                checks=checks, answer=answer)
    written = [*write_outputs(final, out_dir).values(), out_dir / "slide_run" / MANIFEST]
    whole = answer["method"] == "whole counted area"
    members = (np.ones(len(dets), bool) if whole or not len(dets)
               else in_hotspot(hotspot, dets[:, 0], dets[:, 1], info.mpp))
    from spindledx.files import output_stems

    stem = output_stems([Path(path)])[0]
    points = [_Point(float(x), float(y), float(s)) for x, y, s in dets[members]]
    cands = split_candidates(points, stem=stem, threshold=threshold, review_floor=review_floor)
    doc = candidates_document(image=path, stem=stem, width=info.width, height=info.height, mpp=info.mpp,
                              threshold=threshold, review_floor=review_floor, model=model, candidates=cands,
                              kind="slide")
    doc["area_mm2"] = answer["area_mm2"]
    doc["flags"] = list(answer["flags"])
    written.append(write_candidates(doc, out_dir))
    warnings = list(hotspot.warnings) if not whole else []
    record = {"image": str(path), "stem": stem, "width": info.width, "height": info.height, "mpp": info.mpp,
              "mpp_source": info.mpp_source, "area_mm2": answer["area_mm2"], "count": answer["count"],
              "mitoses_per_mm2": answer["mitoses_per_mm2"], "mitoses_per_10hpf": answer["mitoses_per_10hpf"],
              "hpf_area_mm2": hpf_area_mm2, "method": answer["method"], "hotspot": hotspot.to_json(),
              "counted_area": area.to_json(), "slide_count": int(len(counted)),
              "tissue_area_mm2": round(area.area_mm2, 6),
              "n_candidates_below_threshold": sum(1 for c in cands if not c.detected),
              "flags": list(answer["flags"]), "flag_messages": list(answer["flag_messages"]),
              "atypical_count": None if checks is None or not whole else checks.atypical_count,
              "interphase_check": None if checks is None else checks.interphase.to_dict()}
    thumb_path = out_dir / f"{stem}_thumbnail.png"
    thumbs = {stem: thumb_path.read_bytes()} if thumb_path.is_file() else {}
    warnings.extend(f"{stem}: {m}" for m in answer["flag_messages"])
    return ScoredImages([record], [doc], thumbs, warnings, list(answer["flags"]), written)


@dataclass(frozen=True)
class _Point:
    x: float
    y: float
    score: float
