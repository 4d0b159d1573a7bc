"""``review.html``: a keyboard-first gallery where a pathologist confirms the detector's candidates.

Every candidate (:mod:`spindledx.review.candidates`) is shown as a square crop of :data:`CROP_UM` µm centred on
the figure, at the image's native resolution, ordered by detector score across all images; candidates just
below the threshold follow the detections after a separator. Keys: arrows (or j/k) move, ``y``/``n``/``u`` =
mitosis / not mitosis / unsure (and move on), ``z`` undoes the last decision; clicking a crop selects it and the
toolbar buttons decide. Decisions persist in ``localStorage`` (keyed by the run id) and export as
``decisions.json`` with the reviewer's name and the date; ``spindledx review DIR --import decisions.json``
recomputes the counts (:mod:`spindledx.case.decisions`). One file: crops are inline JPEG ``data:`` URIs, the
script and style are inline, nothing is fetched, so it works from ``file://`` offline. Rendered from the package
template ``review/review.html.j2`` (:mod:`spindledx.pages`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.pages import render
from spindledx.review.candidates import check_image_identity, run_id

CROP_UM = 64.0
CROP_JPEG_QUALITY = 90
DECISIONS_FORMAT = "spindledx-decisions/1"


def crop(rgb: np.ndarray, x: float, y: float, side_px: int) -> np.ndarray:
    """``side_px`` square of ``rgb`` centred on ``(x, y)`` (pixels), padded with white outside the image."""
    h, w = rgb.shape[:2]
    half = side_px // 2
    x0, y0 = int(round(x)) - half, int(round(y)) - half
    out = np.full((side_px, side_px, 3), 255, np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side_px), min(h, y0 + side_px)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _jpeg_uri(rgb: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY,
                                                                           CROP_JPEG_QUALITY])
    if not ok:
        raise OSError("could not encode a crop")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _read_rgb(doc: dict[str, Any]) -> np.ndarray:
    from spindledx.imaging.reader import read_image

    return read_image(check_image_identity(doc), mpp=doc["mpp"]).rgb


def _slide_crops(doc: dict[str, Any], side: int) -> list[np.ndarray]:
    """Level-0 windows of a whole slide around each candidate (white outside the slide)."""
    from spindledx.imaging.slide import open_slide

    path = check_image_identity(doc)
    half = side // 2
    with open_slide(path, mpp=doc["mpp"]) as slide:
        return [slide.read_level(0, int(round(c["x"])) - half, int(round(c["y"])) - half, side, side)
                for c in doc["candidates"]]


def review_items(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """All candidates of all images with their crop, ordered: detections by score, then the rest by score."""
    items = []
    for doc in docs:
        if not doc["candidates"]:
            continue
        side = max(16, int(round(CROP_UM / doc["mpp"])))
        if doc.get("kind") == "slide":
            crops = _slide_crops(doc, side)
        else:
            rgb = _read_rgb(doc)
            ox, oy = doc.get("origin") or (0.0, 0.0)
            crops = [crop(rgb, c["x"] - ox, c["y"] - oy, side) for c in doc["candidates"]]
        for c, rgb_crop in zip(doc["candidates"], crops, strict=True):
            items.append({**c, "stem": doc["stem"], "threshold": doc["threshold"], "crop": _jpeg_uri(rgb_crop)})
    items.sort(key=lambda c: (not c["detected"], -c["score"], c["stem"], c["id"]))
    return items


def render_review_html(docs: Sequence[dict[str, Any]], *, title: str = "Review of mitotic figure candidates") -> str:
    """The review page for the candidates files of one output folder (template ``review/review.html.j2``; the
    keyboard script and the style are ``review/review.js`` and ``review/review.css`` beside it)."""
    rid = run_id(docs)
    items = review_items(docs)
    thresholds = sorted({float(d["threshold"]) for d in docs})
    floors = sorted({float(d["review_floor"]) for d in docs})
    detector_count = sum(1 for c in items if c["detected"])
    model = (docs[0].get("model") or {}) if docs else {}
    first_of: set[str] = set()
    for c in items:  # the first card of each image carries the image's anchor (the batch report links to it)
        c["anchor"] = c["stem"] not in first_of
        first_of.add(c["stem"])
    payload = {"run_id": rid, "decisions_format": DECISIONS_FORMAT, "model_sha256": model.get("model_sha256"),
               "detector_count": detector_count,
               "candidates": [{"id": c["id"], "detected": bool(c["detected"])} for c in items]}
    kept_only = any(d.get("kind") in ("detections only", "slide") and d["threshold"] == d["review_floor"]
                    for d in docs)
    return render("review/review.html.j2", title=title, subtitle=f"run {rid}", run_id=rid, items=items,
                  n_images=len(docs), thresholds=thresholds, floors=floors, detector_count=detector_count,
                  crop_um=f"{CROP_UM:g}", kept_only_detections=kept_only,
                  flagged=[f"{d['stem']} ({', '.join(f.replace('_', ' ') for f in d['flags'])})"
                           for d in docs if d.get("flags")],
                  no_candidates=[d["stem"] for d in docs if not d["candidates"]],
                  model_name=model.get("model_name"), model_version=model.get("model_version"),
                  model_sha12=(model.get("model_sha256") or "")[:12], adapted_from=_adapted_text(model),
                  payload=payload)


def _adapted_text(model: dict[str, Any]) -> str | None:
    """What the run's model was adapted from (name, version, sha256), or None for a model not made by ``adapt``."""
    adapted = model.get("adapted_from")
    if not isinstance(adapted, dict):
        return None
    return f"{adapted.get('name')} {adapted.get('version')} (sha256 {str(adapted.get('sha256') or '')[:12]}…)"


def write_review_page(out_dir: str | Path, docs: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write ``review.html`` into ``out_dir`` from its candidates files; returns the path."""
    from spindledx.files import atomic_write_text as write_text_atomic
    from spindledx.review.candidates import load_candidate_files

    out_dir = Path(out_dir)
    docs = list(docs) if docs is not None else load_candidate_files(out_dir)
    return write_text_atomic(out_dir / "review.html", render_review_html(docs))
