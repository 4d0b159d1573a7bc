"""Tile -> mitotic figures: resample to 0.25 µm/px, hematoxylin candidates, CNN patch scores, threshold, dedupe.

:func:`detect_mitoses` is the project's default :data:`spindledx.mitosis.types.Detector`. Coordinates of the
returned detections are in the pixels of the image as given (not of the working resolution).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree

from spindledx.errors import BadInputError
from spindledx.mitosis.candidates import find_candidates
from spindledx.mitosis.evaluate import MIDOG_RADIUS_UM
from spindledx.mitosis.model import MitosisModel, load_model
from spindledx.mitosis.patches import extract_patches
from spindledx.mitosis.stain import scale_stain_concentrations
from spindledx.mitosis.types import Detection


def dedupe_points(xy: np.ndarray, scores: np.ndarray, radius_px: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of points kept, highest score first.

    A point is dropped when a higher-scoring kept point lies within ``radius_px`` (inclusive).
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order
    tree = cKDTree(xy)
    suppressed = np.zeros(len(xy), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[tree.query_ball_point(xy[i], radius_px + 1e-9)] = True
    return np.asarray(keep, dtype=np.int64)


def resample_to(rgb: np.ndarray, mpp: float, target_mpp: float) -> tuple[np.ndarray, float, float]:
    """Resample ``rgb`` from ``mpp`` to ``target_mpp``; returns ``(image, scale_x, scale_y)`` (input px per working px).

    Uses ``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR`` when enlarging; no-op within 1%.
    """
    factor = mpp / target_mpp  # working px per input px
    if abs(factor - 1.0) < 0.01:
        return rgb, 1.0, 1.0
    h, w = rgb.shape[:2]
    new_w, new_h = max(int(round(w * factor)), 1), max(int(round(h * factor)), 1)
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    out = cv2.resize(rgb, (new_w, new_h), interpolation=interp)
    return out, w / new_w, h / new_h


def _check_input(rgb: np.ndarray, mpp: float) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise BadInputError(f"detect_mitoses needs an RGB array of shape (H, W, 3), got {shape}")
    if rgb.dtype != np.uint8:
        raise BadInputError(f"detect_mitoses needs a uint8 RGB image, got dtype {rgb.dtype}")
    if not (isinstance(mpp, int | float) and np.isfinite(mpp) and 0.05 <= mpp <= 10.0):
        raise BadInputError(f"mpp must be a resolution in µm/px between 0.05 and 10, got {mpp!r}")


def detect_mitoses(
    rgb: np.ndarray,
    mpp: float,
    *,
    threshold: float | None = None,
    model: MitosisModel | None = None,
) -> list[Detection]:
    """Detect mitotic figures in an H&E tile.

    Parameters
    ----------
    rgb
        uint8 RGB image ``(H, W, 3)``.
    mpp
        Its resolution in µm/px.
    threshold
        Decision threshold on the classifier probability; default the model's cross-validated threshold.
    model
        A loaded :class:`~spindledx.mitosis.model.MitosisModel`; default :func:`~spindledx.mitosis.model.load_model`.

    Returns
    -------
    list of Detection
        Sorted by decreasing score, no two within 7.5 µm (MIDOG radius), ``(x, y)`` in input-image pixels.
    """
    _check_input(rgb, mpp)
    if model is None:
        model = load_model()
    thr = model.threshold if threshold is None else float(threshold)
    work_mpp = model.working_mpp
    work, sx, sy = resample_to(np.ascontiguousarray(rgb), float(mpp), work_mpp)
    cand = find_candidates(work, work_mpp)
    if len(cand) == 0:
        return []
    # optional per-image stain scaling, declared by the model description ("stain_scaling": {percentile, target})
    description = getattr(model, "description", None)
    scaling = getattr(description, "extra", {}).get("stain_scaling") if description is not None else None
    patch_source = work
    if scaling:
        patch_source = scale_stain_concentrations(
            work, percentile=float(scaling["percentile"]), target=tuple(scaling["target"])
        )
    scores = model.predict(extract_patches(patch_source, cand, size=model.patch_size))
    keep = scores >= thr
    cand, scores = cand[keep], scores[keep]
    order = dedupe_points(cand, scores, MIDOG_RADIUS_UM / work_mpp)
    # centre of working pixel i lies at input coordinate (i + 0.5) * s - 0.5
    xs = cand[:, 0] * sx + (sx - 1) / 2
    ys = cand[:, 1] * sy + (sy - 1) / 2
    return [Detection(x=float(xs[i]), y=float(ys[i]), score=float(scores[i])) for i in order]
