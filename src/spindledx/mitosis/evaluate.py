"""MIDOG-rule evaluation: one-to-one matching of detections to ground-truth points, F1, points CSV loader.

A detection is a true positive when it is matched to a distinct ground-truth point within 7.5 µm (the MIDOG
challenge rule, Aubreville et al., Med Image Anal 2023). Matching is one-to-one and maximises the number of
matches (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``, on pairs within the radius).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from spindledx.detection.suppress import MIDOG_RADIUS_UM  # noqa: F401  (re-exported: the matching radius)
from spindledx.errors import BadInputError


@dataclass(frozen=True)
class Match:
    """Result of :func:`match_points`: counts and the matched ``(pred_index, gt_index)`` pairs."""

    tp: int
    fp: int
    fn: int
    pairs: tuple[tuple[int, int], ...]


def match_points(pred_xy: np.ndarray, gt_xy: np.ndarray, max_dist_px: float) -> Match:
    """One-to-one matching of predicted to ground-truth points within ``max_dist_px`` (inclusive).

    Parameters
    ----------
    pred_xy, gt_xy
        ``(N, 2)`` and ``(M, 2)`` point arrays in the same pixel frame (empty allowed).
    max_dist_px
        Hit radius in pixels, i.e. ``7.5 / mpp`` for the MIDOG rule.

    Returns
    -------
    Match
        ``tp`` = number of matched pairs (maximum cardinality; among those, minimum total distance),
        ``fp = N - tp``, ``fn = M - tp``.
    """
    pred = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    gt = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    if len(pred) == 0 or len(gt) == 0:
        return Match(0, len(pred), len(gt), ())
    dist = cdist(pred, gt)
    allowed = dist <= max_dist_px + 1e-9
    if not allowed.any():
        return Match(0, len(pred), len(gt), ())
    # maximise matches first, then prefer short distances: a pair within radius costs dist/(radius*big) - 1
    big = 1e6
    cost = np.where(allowed, dist / (max(max_dist_px, 1e-9) * big) - 1.0, 0.0)
    rows, cols = linear_sum_assignment(cost)
    pairs = tuple((int(r), int(c)) for r, c in zip(rows, cols, strict=True) if allowed[r, c])
    tp = len(pairs)
    return Match(tp, len(pred) - tp, len(gt) - tp, pairs)


def f1_scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """``(precision, recall, f1)``; each is 0.0 when its denominator is 0 (no predictions / no ground truth)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return precision, recall, f1


def detection_scores(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """``(precision, recall, f1)`` as reported to a user: None where undefined, never a 0.0 that reads as a
    measured failure. Precision is undefined without detections (``tp + fp == 0``); recall and F1 are undefined
    without ground-truth figures (``tp + fn == 0``: nothing could be found or missed)."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else None
    return precision, recall, f1


def load_points_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read a points CSV into ``{image name: (N, 2) xy array}``.

    Accepts columns ``image, cx, cy`` (as in ``midesec-train/mitoses.csv``) or ``image, x, y``; extra columns
    are ignored. Image names are kept as written (e.g. ``P0_00.png``).
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise BadInputError(f"points CSV not found: {path}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        raise BadInputError(f"cannot read points CSV {path} (expected columns image, cx, cy or image, x, y)") from None
    cols = {c.lower().strip(): c for c in df.columns}
    if "image" not in cols:
        raise BadInputError(f"points CSV {path} needs an 'image' column (with cx,cy or x,y)")
    if "cx" in cols and "cy" in cols:
        xc, yc = cols["cx"], cols["cy"]
    elif "x" in cols and "y" in cols:
        xc, yc = cols["x"], cols["y"]
    else:
        raise BadInputError(f"points CSV {path} needs columns cx,cy or x,y")
    try:
        xy = df[[xc, yc]].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise BadInputError(f"points CSV {path} has non-numeric coordinates") from exc
    if not np.isfinite(xy).all():
        raise BadInputError(f"points CSV {path} has NaN or infinite coordinates")
    names = df[cols["image"]].astype(str).to_numpy()
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(names):
        out[name] = xy[names == name]
    return out


def best_threshold(
    scores_per_image: list[np.ndarray],
    xy_per_image: list[np.ndarray],
    gt_per_image: list[np.ndarray],
    max_dist_px: float,
) -> tuple[float, float]:
    """Threshold that maximises F1 summed over images; returns ``(threshold, f1)``.

    Candidate thresholds are the observed scores. Used inside training folds only (never on the reported fold).
    """
    all_scores = np.unique(np.concatenate([s for s in scores_per_image if len(s)] or [np.zeros(0)]))
    best = (0.5, -1.0)
    if len(all_scores) == 0:
        return best
    grid = all_scores if len(all_scores) <= 400 else np.quantile(all_scores, np.linspace(0, 1, 400))
    for thr in grid:
        tp = fp = fn = 0
        for s, xy, gt in zip(scores_per_image, xy_per_image, gt_per_image, strict=True):
            m = match_points(xy[s >= thr], gt, max_dist_px)
            tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
        f1 = f1_scores(tp, fp, fn)[2]
        if f1 > best[1]:
            best = (float(thr), f1)
    return best
