"""Fit the head on decisions and anchors, choose the threshold, and measure before/after on held-out images.

Cross-validation holds out whole images (all the decisions on one image are in the same fold; folds are filled
largest image first, as scikit-learn's ``GroupKFold`` does) and, with them, a share of the anchor groups (MiDeSeC
fields), so that recall is also measured on anchor figures the fold's head never saw. In each fold the head is fitted
on the other images' decisions and anchors; the threshold of the fold is chosen on the training images only (an
inner cross-validation maximising F1 on their decisions) when they hold at least :data:`MIN_POSITIVES` confirmed
figures, and is the starting model's threshold otherwise. The held-out images' figures at that threshold are
compared with the starting model's at its own threshold: precision, recall with its Wilson interval (Wilson, J Am
Stat Assoc 1927;22:209), F1 and false detections per mm² of the held-out images (among the reviewed candidates).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from spindledx.adapt.head import DEFAULT_KEEP, DEFAULT_L2, Head, fit_head, gated_scores, view_probabilities

#: Fewest decided candidates (confirmed + rejected) from which an adapted model is judged.
MIN_DECISIONS = 30
#: Fewest reviewed images (cross-validation needs at least two groups).
MIN_IMAGES = 2
#: Fewest confirmed figures from which the threshold is chosen on the decisions (else the starting model's).
MIN_POSITIVES = 10
#: Most cross-validation folds.
MAX_FOLDS = 5


@dataclass
class LabSet:
    """Per decision: dihedral view features ``(V, N, D)`` and logits ``(V, N)``, stain-jittered training views
    ``(A, N, D)``/``(A, N)``, label, image index; per image: group name and area (mm²)."""

    views: np.ndarray
    view_logits: np.ndarray
    augmented: np.ndarray
    augmented_logits: np.ndarray
    labels: np.ndarray
    image: np.ndarray
    groups: list[str]
    areas_mm2: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class AnchorSet:
    """Anchor features ``(N, D)``, the starting model's logits on them, labels, groups."""

    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    groups: np.ndarray


@dataclass(frozen=True)
class Settings:
    """Scoring of the starting model (threshold, views, gate), the fit's penalty and the share of the fitted
    correction applied (``strength``)."""

    threshold: float
    ways: int
    gate: float | None
    l2: float = DEFAULT_L2
    keep: float = DEFAULT_KEEP
    strength: float = 1.0


def fit(lab: LabSet, rows: np.ndarray, anchors: AnchorSet, anchor_rows: np.ndarray, settings: Settings) -> Head:
    """Head fitted on the decisions ``rows`` (all their views, sharing one decision's weight), kept from changing
    the starting model's calls on the anchors ``anchor_rows`` (:func:`spindledx.adapt.head.fit_head`)."""
    views = np.concatenate([lab.views[:, rows], lab.augmented[:, rows]], axis=0)  # (V+A, n, D)
    logits = np.concatenate([lab.view_logits[:, rows], lab.augmented_logits[:, rows]], axis=0)
    n_views = views.shape[0]
    return fit_head(views.reshape(-1, views.shape[2]), logits.reshape(-1), np.tile(lab.labels[rows], n_views),
                    np.full(n_views * len(rows), 1.0 / n_views), keep_features=anchors.features[anchor_rows],
                    keep_labels=anchors.labels[anchor_rows], keep_weight=settings.keep, l2=settings.l2)


def lab_scores(head: Head, lab: LabSet, rows: np.ndarray, settings: Settings) -> np.ndarray:
    """Detector scores of the decisions ``rows`` with the head (gated test-time averaging)."""
    probs = view_probabilities(head.scaled(settings.strength), lab.views[:, rows], lab.view_logits[:, rows])
    return gated_scores(probs, ways=settings.ways, gate=settings.gate)


def anchor_scores(head: Head, anchors: AnchorSet, rows: np.ndarray, settings: Settings) -> np.ndarray:
    """One-view probabilities of the anchors ``rows`` with the head."""
    return expit(anchors.logits[rows] + settings.strength * head.correction(anchors.features[rows]))


def group_folds(sizes: np.ndarray, k: int) -> np.ndarray:
    """Fold of each group: largest group first into the fold with the fewest members (``GroupKFold``)."""
    fold_of = np.zeros(len(sizes), int)
    load = np.zeros(k)
    for g in np.argsort(-sizes, kind="stable"):
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    return fold_of


def anchor_fold(groups: np.ndarray, k: int) -> np.ndarray:
    """A fixed fold per anchor group (crc32 of the name modulo ``k``)."""
    return np.array([zlib.crc32(str(g).encode()) % k for g in groups])


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray, fallback: float) -> float:
    """The threshold (a score in ``scores``) maximising F1 on decided candidates; ``fallback`` without figures."""
    if labels.sum() == 0:
        return fallback
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    f1 = 2 * tp / (tp + fp + y.sum())
    i = int(np.argmax(f1))
    return float(s[i])


def choose_threshold(lab: LabSet, rows: np.ndarray, anchors: AnchorSet, anchor_rows: np.ndarray,
                     settings: Settings) -> tuple[float, str]:
    """The threshold of a head fitted on the decisions ``rows``: with :data:`MIN_POSITIVES` confirmed figures on at
    least two images, the one maximising F1 on those images' decisions scored by an inner cross-validation by image;
    otherwise the starting model's (the correction is then judged at the threshold the model was validated at).
    Returns the threshold and how it was chosen."""
    if lab.labels[rows].sum() < MIN_POSITIVES or len(np.unique(lab.image[rows])) < 2:
        return settings.threshold, f"the starting model's (fewer than {MIN_POSITIVES} confirmed figures)"
    oof = out_of_fold(lab, rows, anchors, anchor_rows, settings, nested=False)["scores"]
    return (best_f1_threshold(oof, lab.labels[rows], settings.threshold),
            "maximises F1 on the decisions of held-out images")


def out_of_fold(lab: LabSet, rows: np.ndarray, anchors: AnchorSet, anchor_rows: np.ndarray, settings: Settings, *,
                nested: bool = True) -> dict[str, Any]:
    """Scores of ``rows`` by heads fitted without their image; with ``nested``, also each fold's threshold and the
    held-out anchors' scores."""
    images = np.unique(lab.image[rows])
    k = min(MAX_FOLDS, len(images))
    sizes = np.array([np.sum(lab.image[rows] == i) for i in images])
    fold_of_image = dict(zip(images.tolist(), group_folds(sizes, k).tolist(), strict=True))
    fold = np.array([fold_of_image[i] for i in lab.image[rows]])
    a_fold = anchor_fold(anchors.groups, k)
    scores = np.zeros(len(rows))
    thresholds = np.full(len(rows), settings.threshold)
    a_scores = np.full(len(anchors.labels), np.nan)
    a_thresholds = np.full(len(anchors.labels), np.nan)
    how = []
    for f in range(k):
        train, test = rows[fold != f], rows[fold == f]
        a_train = anchor_rows & (a_fold != f)
        head = fit(lab, train, anchors, a_train, settings)
        scores[fold == f] = lab_scores(head, lab, test, settings)
        if nested:
            thr, why = choose_threshold(lab, train, anchors, a_train, settings)
            thresholds[fold == f] = thr
            a_test = anchor_rows & (a_fold == f)
            a_scores[a_test] = anchor_scores(head, anchors, np.flatnonzero(a_test), settings)
            a_thresholds[a_test] = thr
            how.append(why)
    return {"scores": scores, "thresholds": thresholds, "anchor_scores": a_scores, "anchor_thresholds": a_thresholds,
            "folds": k, "threshold_choice": how}


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion ``k / n`` (95% by default); None without trials."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def figures(called: np.ndarray, labels: np.ndarray, area_mm2: float, *, anchor_called: np.ndarray | None = None,
            anchor_labels: np.ndarray | None = None) -> dict[str, Any]:
    """Precision, recall (with Wilson interval), F1 and false detections per mm² among decided candidates; the
    recall over lab and held-out anchor figures together when anchors are given."""
    tp = int(np.sum(called & (labels == 1)))
    fp = int(np.sum(called & (labels == 0)))
    fn = int(np.sum(~called & (labels == 1)))
    out: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn,
                           "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                           "recall": round(tp / (tp + fn), 4) if tp + fn else None,
                           "f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp + fn else None,
                           "false_per_mm2": round(fp / area_mm2, 2) if area_mm2 > 0 else None,
                           "errors": fp + fn}
    lo, hi = wilson(tp, tp + fn)
    out["recall_ci95"] = [None if lo is None else round(lo, 4), None if hi is None else round(hi, 4)]
    if anchor_called is not None and anchor_labels is not None:
        pos = anchor_labels == 1
        a_tp, a_pos = int(np.sum(anchor_called & pos)), int(pos.sum())
        a_fp, a_neg = int(np.sum(anchor_called & ~pos)), int((~pos).sum())
        lo, hi = wilson(a_tp, a_pos)
        out["anchor_recall"] = round(a_tp / a_pos, 4) if a_pos else None
        out["anchor_recall_ci95"] = [None if lo is None else round(lo, 4), None if hi is None else round(hi, 4)]
        out["anchor_false_rate"] = round(a_fp / a_neg, 4) if a_neg else None
        k, n = tp + a_tp, tp + fn + a_pos
        lo, hi = wilson(k, n)
        out["combined_recall"] = round(k / n, 4) if n else None
        out["combined_recall_ci95"] = [None if lo is None else round(lo, 4), None if hi is None else round(hi, 4)]
        out["combined_positives"] = n
    return out


#: Shares of the fitted correction tried, strongest first (:func:`validate` keeps the strongest that is better).
STRENGTHS = (1.0, 0.5, 0.25, 0.125)


@dataclass
class Validation:
    """Held-out figures before and after (at the chosen strength), the verdict and its reasons, and the figures
    of every strength tried."""

    before: dict[str, Any]
    after: dict[str, Any]
    folds: int
    n_images: int
    n_decisions: int
    n_confirmed: int
    better: bool
    strength: float
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    threshold_choice: list[str] = field(default_factory=list)
    tried: list[dict[str, Any]] = field(default_factory=list)


def _verdict(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why ``after`` is not better than ``before`` (empty when it is)."""
    reasons = []
    if after["errors"] >= before["errors"]:
        reasons.append(f"not better on held-out images: {after['errors']} errors (false + missed) after, "
                       f"{before['errors']} before")
    low = before["combined_recall_ci95"][0]
    if low is not None and after["combined_recall"] is not None and after["combined_recall"] < low:
        reasons.append(f"recall falls to {after['combined_recall']:.2f}, below the starting model's 95% interval "
                       f"({low:.2f}-{before['combined_recall_ci95'][1]:.2f})")
    return reasons


def validate(lab: LabSet, anchors: AnchorSet, anchor_rows: np.ndarray, settings: Settings) -> Validation:
    """Grouped cross-validation of the adaptation: before/after on held-out images and anchors, and the verdict.

    Better means fewer errors (false detections plus missed figures) on the held-out images' decisions, with a
    recall over their confirmed figures and the held-out anchor figures not below the lower bound of the starting
    model's 95% interval. The correction is applied in full or in part (:data:`STRENGTHS`): the strongest share
    that is better on the held-out folds is kept, so that a laboratory whose rejected nuclei resemble figures
    gets a milder correction instead of one that loses figures. The share is chosen on the same folds that report
    it (one number out of four).
    """
    from dataclasses import replace

    rows = np.arange(len(lab))
    start = lab_scores(Head.zero(lab.views.shape[2]), lab, rows, settings)
    area = float(np.sum(lab.areas_mm2))
    tried, results = [], {}
    for strength in STRENGTHS:
        trial = replace(settings, strength=strength)
        res = out_of_fold(lab, rows, anchors, anchor_rows, trial)
        held = ~np.isnan(res["anchor_scores"])
        before = figures(start >= settings.threshold, lab.labels, area,
                         anchor_called=expit(anchors.logits[held]) >= settings.threshold,
                         anchor_labels=anchors.labels[held])
        after = figures(res["scores"] >= res["thresholds"], lab.labels, area,
                        anchor_called=res["anchor_scores"][held] >= res["anchor_thresholds"][held],
                        anchor_labels=anchors.labels[held])
        reasons = _verdict(before, after)
        results[strength] = (before, after, reasons, res)
        tried.append({"strength": strength, "false": after["fp"], "missed": after["fn"],
                      "combined_recall": after["combined_recall"], "better": not reasons})
        if not reasons:
            break
    chosen = next((s for s in STRENGTHS if s in results and not results[s][2]), STRENGTHS[-1])
    before, after, reasons, res = results[chosen]
    n_conf = int(lab.labels.sum())
    notes = []
    if len(anchors.labels) == 0:
        notes.append("no anchors for this model (its features are not the shipped model's): recall is judged on the "
                     "confirmed figures alone")
    if n_conf < MIN_POSITIVES:
        notes.append(f"only {n_conf} confirmed figures (fewer than {MIN_POSITIVES}): the threshold stays the starting "
                     "model's and recall is judged mostly on the anchor figures")
    return Validation(before=before, after=after, folds=res["folds"], n_images=len(lab.groups),
                      n_decisions=len(lab), n_confirmed=n_conf, better=not reasons, strength=chosen,
                      reasons=reasons, notes=notes, threshold_choice=sorted(set(res["threshold_choice"])), tried=tried)
