"""H&E evidence of a case: score tiles with the detector, keep the candidates below threshold for review, write
the per-image outputs (CSV, QuPath GeoJSON, overlay PNG, candidates file) into the case folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.case.candidates import candidates_document, split_candidates, write_candidates
from spindledx.errors import BadInputError

THUMBNAIL_PX = 320


@dataclass(frozen=True)
class ScoredImages:
    """Per-image score records, candidates documents, overlay thumbnails (PNG bytes by stem) and warnings."""

    records: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    thumbnails: dict[str, bytes]
    warnings: list[str]
    flags: list[str]


def thumbnail_png(rgb: np.ndarray, *, max_px: int = THUMBNAIL_PX) -> bytes:
    """PNG bytes of ``rgb`` downscaled so that its longer side is at most ``max_px`` (area interpolation)."""
    import cv2

    scale = max_px / max(rgb.shape[:2])
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode a PNG thumbnail")
    return png.tobytes()


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

    records, docs, warnings, flags = [], [], [], []
    thumbs: dict[str, bytes] = {}
    for image, stem in zip(images, stems, strict=True):
        tile = read_image(image, mpp=mpp)
        found = [d for d in detector(tile.rgb, tile.mpp) if 0 <= d.x < tile.width and 0 <= d.y < tile.height]
        found = suppress_detections(found, mpp=tile.mpp)
        cands = split_candidates(found, stem=stem, threshold=threshold, review_floor=review_floor)
        counted = [d for d in found if d.score >= threshold]
        result = summarize(tile, counted, hpf_area_mm2=hpf_area_mm2)
        record = result.to_dict()
        tile_flags = list(getattr(result, "flags", ()) or ())
        record["stem"] = stem
        record["flags"] = tile_flags
        record["n_candidates_below_threshold"] = sum(1 for c in cands if not c.detected)
        records.append(record)
        flags.extend(tile_flags)
        warnings.extend(result.warnings)
        write_tile_outputs(tile.rgb, result, out_dir, stem=stem)
        doc = candidates_document(image=image, stem=stem, width=tile.width, height=tile.height, mpp=tile.mpp,
                                  threshold=threshold, review_floor=review_floor, model=model, candidates=cands)
        write_candidates(doc, out_dir)
        docs.append(doc)
        thumbs[stem] = thumbnail_png(draw_overlay(tile.rgb, result))
    if not records:
        raise BadInputError("no image given")
    return ScoredImages(records, docs, thumbs, warnings, flags)
