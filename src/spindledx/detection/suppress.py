"""The one suppression of nearby detections (greedy point non-maximum suppression), used by every stage.

Detections nearer than :data:`MIDOG_RADIUS_UM` (7.5 µm, the MIDOG hit radius; Aubreville et al., Med Image Anal
2023) are one figure: the highest score is kept and the others within the radius (inclusive) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spindledx.detection.types import Detection

#: MIDOG hit radius in micrometres (Aubreville et al., Med Image Anal 2023).
MIDOG_RADIUS_UM = 7.5


def suppress_nearby(xy: np.ndarray, scores: np.ndarray, *, radius_um: float = MIDOG_RADIUS_UM,
                    mpp: float) -> np.ndarray:
    """Indices of the points kept by greedy non-maximum suppression, highest score first.

    Parameters
    ----------
    xy
        ``(N, 2)`` point coordinates in pixels.
    scores
        ``(N,)`` scores; ties keep the earlier point.
    radius_um
        Suppression radius in µm; a point is dropped when a higher-scoring kept point lies within it (inclusive).
    mpp
        µm per pixel of ``xy``.

    Returns
    -------
    numpy.ndarray
        int64 indices into ``xy``, by decreasing score.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if len(order) < 2:
        return order.astype(np.int64)
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    radius_px = radius_um / mpp
    suppressed = np.zeros(len(xy), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[tree.query_ball_point(xy[i], radius_px + 1e-9)] = True
    return np.asarray(keep, dtype=np.int64)


def suppress_detections(detections: Sequence[Detection], *, mpp: float,
                        radius_um: float = MIDOG_RADIUS_UM) -> list[Detection]:
    """:func:`suppress_nearby` on :class:`Detection` objects: the kept ones, highest score first."""
    dets = list(detections)
    xy = np.array([[d.x, d.y] for d in dets], dtype=float).reshape(-1, 2)
    keep = suppress_nearby(xy, np.array([d.score for d in dets], dtype=float), radius_um=radius_um, mpp=mpp)
    return [dets[i] for i in keep]
