"""Slide-level guard flags and atypical labels, computed once the slide's detections are final.

* Atypical head (:mod:`spindledx.detection.atypical`): the working-resolution patch around every detection is read
  from the slide (the same raster the detector saw) and labelled normal/atypical.
* Guard (:mod:`spindledx.detection.guard`): the whole-tissue count over the tissue area gets the density test; the
  out-of-distribution score of the slide is the median of the scores of up to :data:`OOD_SAMPLE_TILES` tissue
  tiles spread evenly over the tissue (the detector ran on every tile; the stain statistics of a few are enough).
* Specificity (:mod:`spindledx.detection.specificity`): the darkness of up to 64 detections against the candidate
  nuclei around them, read from the slide at 0.25 µm/px (:func:`interphase_check`, which ``score`` uses on a tile
  too, so that the same points give the same flag on every route); ``interphase_like`` when they look like a field
  of interphase nuclei.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spindledx.detection import guard, specificity

#: Tissue tiles whose stain statistics are measured for the slide's out-of-distribution score.
OOD_SAMPLE_TILES = 16


@dataclass(frozen=True)
class SlideChecks:
    """Guard flags of the whole-tissue count, and the atypical label of every detection."""

    flags: tuple[str, ...]
    flag_messages: tuple[str, ...]
    ood_score: float | None
    ood_threshold: float
    ood_tiles: int
    atypical: np.ndarray | None  # (N,) bool, None when no head is shipped
    atypical_scores: np.ndarray | None
    interphase: specificity.SpecificityResult = specificity.NOT_JUDGED
    source: Any = field(default=None, repr=False, compare=False)  # slide info or in-memory slide (not serialised)
    points_level0: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def atypical_count(self) -> int | None:
        return None if self.atypical is None else int(self.atypical.sum())

    def subset(self, keep: np.ndarray, tissue_area_mm2: float) -> SlideChecks:
        """The checks of the detections selected by the boolean mask ``keep`` (e.g. those above a higher
        threshold): atypical labels subset, the density flag and the specificity check judged again on the kept
        detections."""
        keep = np.asarray(keep, bool)
        judged = guard.judge(int(keep.sum()), tissue_area_mm2, self.ood_score)
        points = None if self.points_level0 is None else self.points_level0[keep]
        interphase = self.interphase
        if self.source is not None and points is not None:
            interphase = _check_source(self.source, points)
        return SlideChecks(judged.flags + interphase.flags, judged.messages + interphase.messages, self.ood_score,
                           self.ood_threshold, self.ood_tiles,
                           None if self.atypical is None else self.atypical[keep],
                           None if self.atypical_scores is None else self.atypical_scores[keep],
                           interphase, self.source, points)

    def to_json(self, count: int) -> dict[str, Any]:
        from spindledx.detection.atypical import atypical_fraction

        n = self.atypical_count
        return {"flags": list(self.flags), "flag_messages": list(self.flag_messages),
                "ood_score": None if self.ood_score is None else round(self.ood_score, 2),
                "ood_threshold": round(self.ood_threshold, 2), "ood_tiles_measured": self.ood_tiles,
                "density_bound_per_mm2": guard.DENSITY_BOUND_PER_MM2,
                "atypical_count": n, "atypical_fraction": None if n is None else atypical_fraction(n, count),
                "interphase_check": self.interphase.to_dict()}


def _check_source(source: Any, points_level0: np.ndarray) -> specificity.SpecificityResult:
    """:func:`interphase_check` on the slide that ``source`` describes: reopened from its file (a
    :class:`~spindledx.imaging.slide.SlideInfo`) or an in-memory slide as it is."""
    from spindledx.imaging.slide import SlideInfo, open_slide

    if len(points_level0) < specificity.MIN_RANKED:
        return interphase_check(None, points_level0)
    if isinstance(source, SlideInfo):
        with open_slide(source.path, mpp=source.mpp, backend=source.backend) as slide:
            return interphase_check(slide, points_level0)
    return interphase_check(source, points_level0)


def interphase_check(slide: Any, points_level0: np.ndarray) -> specificity.SpecificityResult:
    """The specificity check (:func:`spindledx.detection.specificity.check_points`) on detections at level-0
    ``points_level0`` (``(N, 2)`` x, y) of ``slide``, its windows read from the slide's raster at
    :data:`~spindledx.detection.specificity.CHECK_MPP` (white beyond the slide)."""
    from spindledx.slide.tiling import make_raster, read_raster

    pts = np.asarray(points_level0, float).reshape(-1, 2)
    if len(pts) < specificity.MIN_RANKED:
        return specificity.check_points(lambda x, y, s: np.zeros((s, s, 3), np.uint8), pts)
    raster = make_raster(slide.info, specificity.CHECK_MPP)
    xs, ys = raster.from_level0(pts[:, 0], pts[:, 1])
    return specificity.check_points(lambda x, y, s: read_raster(slide, raster, x, y, s, s),
                                    np.column_stack([xs, ys]), mpp=raster.mpp)


def slide_checks(slide: Any, raster: Any, tiles: list[Any], detections_level0: np.ndarray,
                 tissue_area_mm2: float) -> SlideChecks:
    """Flags and atypical labels for a slide whose detections (level-0 ``x, y, score`` rows) are final.

    Parameters
    ----------
    slide, raster, tiles
        The open slide, its working raster and the tissue tiles the detector ran on.
    detections_level0
        ``(N, 3)`` rows ``x, y, score`` in level-0 pixels.
    tissue_area_mm2
        Area of the tissue mask (the denominator of the whole-tissue average).
    """
    from spindledx.detection.atypical import load_atypical_model, score_patches
    from spindledx.slide.tiling import read_raster

    scores = []
    picks = np.unique(np.linspace(0, len(tiles) - 1, min(OOD_SAMPLE_TILES, len(tiles))).round().astype(int))
    for i in picks if len(tiles) else []:
        t = tiles[int(i)]
        s = guard.ood_score(read_raster(slide, raster, t.x, t.y, t.width, t.height), raster.mpp)
        if s is not None:
            scores.append(s)
    ood = float(np.median(scores)) if scores else None
    judged = guard.judge(len(detections_level0), tissue_area_mm2, ood)
    points = np.asarray(detections_level0, float).reshape(-1, 3)[:, :2]
    interphase = interphase_check(slide, points)
    head = load_atypical_model()
    atypical = atypical_scores = None
    if head is not None:
        size = head.patch_size
        patches = np.empty((len(detections_level0), size, size, 3), np.uint8)
        xs, ys = raster.from_level0(detections_level0[:, 0], detections_level0[:, 1])
        for k, (x, y) in enumerate(zip(np.rint(xs).astype(int), np.rint(ys).astype(int), strict=True)):
            patches[k] = read_raster(slide, raster, x - size // 2, y - size // 2, size, size)
        atypical_scores = score_patches(head, patches)  # the 8 dihedral views, as `score` labels figures
        atypical = atypical_scores >= head.threshold
    return SlideChecks(judged.flags + interphase.flags, judged.messages + interphase.messages, judged.ood_score,
                       judged.ood_threshold, len(scores), atypical, atypical_scores, interphase,
                       slide.info if slide.info.path else slide, points)
