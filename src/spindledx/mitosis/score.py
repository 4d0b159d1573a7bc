"""Score one H&E tile: detect mitotic figures, then count them per mm² and per 10 HPF.

The arithmetic is that of :mod:`spindledx.counting` (area in mm² from the size and µm/px, density = count / area,
per 10 HPF = density x 10 x HPF area, FNCLCC mitotic score). Detections closer than
:data:`DEDUP_RADIUS_UM` (7.5 µm, the MIDOG hit radius) are merged, keeping the higher score, so that one figure
is never counted twice. The JSON form is the ``score`` contract of docs/architecture.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spindledx import counting
from spindledx.detection.suppress import MIDOG_RADIUS_UM, suppress_detections
from spindledx.detection.types import Detection, Detector, as_detector
from spindledx.errors import BadInputError
from spindledx.imaging.reader import Tile, read_image

if TYPE_CHECKING:
    from spindledx.imaging.roi import Region
    from spindledx.slide.area import CountedArea

DEDUP_RADIUS_UM = MIDOG_RADIUS_UM
"""Detections nearer than this are one figure (the MIDOG hit radius; Aubreville et al., Med Image Anal 2023)."""


@dataclass(frozen=True)
class TileScore:
    """Mitotic count of one tile (the ``score`` JSON object of docs/architecture.md, plus provenance).

    Attributes
    ----------
    image
        Path of the image as given.
    width, height
        Size in pixels.
    mpp, mpp_source
        Resolution in µm/px and where it came from (``override``, ``metadata`` or ``assumed``).
    area_mm2
        Counted area in mm²: image ∩ tissue ∩ region of interest (:mod:`spindledx.slide.area`).
    mitoses
        Detected figures (pixel coordinates of the image), highest score first.
    count
        Number of figures.
    mitoses_per_mm2, mitoses_per_10hpf, hpf_area_mm2
        Density and its per-10-HPF equivalent for HPFs of ``hpf_area_mm2`` each.
    fnclcc_mitotic_score
        1, 2 or 3 from the per-10-HPF figure (meaningful only over a counted area of about 10 HPF or more).
    warnings
        One-line messages for the user.
    flags
        Guard flags (:mod:`spindledx.detection.guard`): ``implausible_density`` and/or ``out_of_distribution``,
        and ``interphase_like`` (:mod:`spindledx.detection.specificity`: the detections are no darker than the
        nuclei around them); ``flag_messages`` says each in a sentence, ``ood_score`` is the stain/texture distance
        to the training images (None: too little tissue to judge), ``interphase_check`` the figures of the
        specificity check.
    counted_area, n_outside_counted_area
        How the counted area was made (definition, region file) and how many detections fell outside it (not
        counted).
    atypical_count, atypical_fraction
        Figures the atypical head (:mod:`spindledx.detection.atypical`) labels atypical, and their share of
        ``count`` (None when nothing was counted or no head is shipped).
    """

    image: str
    width: int
    height: int
    mpp: float
    mpp_source: str
    area_mm2: float
    mitoses: tuple[Detection, ...]
    count: int
    mitoses_per_mm2: float
    mitoses_per_10hpf: float
    hpf_area_mm2: float
    fnclcc_mitotic_score: int
    warnings: tuple[str, ...] = field(default=())
    flags: tuple[str, ...] = field(default=())
    flag_messages: tuple[str, ...] = field(default=())
    ood_score: float | None = None
    ood_threshold: float | None = None
    atypical_count: int | None = None
    atypical_fraction: float | None = None
    counted_area: dict[str, Any] | None = None
    n_outside_counted_area: int = 0
    interphase_check: dict[str, Any] | None = None
    region: Any = field(default=None, repr=False, compare=False)  # the Region counted in (not serialised)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the ``score`` keys (coordinates to 0.1 px, scores to 1e-4)."""
        return {
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "mpp": self.mpp,
            "mpp_source": self.mpp_source,
            "area_mm2": round(self.area_mm2, 6),
            "mitoses": [{"x": round(float(d.x), 1), "y": round(float(d.y), 1), "score": round(float(d.score), 4),
                         "atypical": d.atypical,
                         "atypical_score": None if d.atypical_score is None else round(float(d.atypical_score), 4)}
                        for d in self.mitoses],
            "count": self.count,
            "mitoses_per_mm2": round(self.mitoses_per_mm2, 4),
            "mitoses_per_10hpf": round(self.mitoses_per_10hpf, 4),
            "hpf_area_mm2": round(self.hpf_area_mm2, 6),
            "fnclcc_mitotic_score": self.fnclcc_mitotic_score,
            **count_extras(self.count, self.area_mm2, self.hpf_area_mm2),
            "warnings": list(self.warnings),
            "atypical_count": self.atypical_count,
            "atypical_fraction": self.atypical_fraction,
            "flags": list(self.flags),
            "flag_messages": list(self.flag_messages),
            "ood_score": None if self.ood_score is None else round(self.ood_score, 2),
            "ood_threshold": None if self.ood_threshold is None else round(self.ood_threshold, 2),
            "counted_area": self.counted_area,
            "n_outside_counted_area": self.n_outside_counted_area,
            "interphase_check": self.interphase_check,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The :meth:`to_dict` object as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def count_extras(count: int, area_mm2: float, hpf_area_mm2: float) -> dict[str, Any]:
    """How far a count can be trusted as a score: HPF counted, whether the per-10-HPF figure and the score are
    extrapolated (less than :data:`spindledx.counting.MIN_GRADING_HPF` counted), the exact Poisson 95 % interval
    per 10 HPF and the mitotic scores it spans."""
    if area_mm2 <= 0:
        return {"n_hpf": 0.0, "extrapolated": True, "mitoses_per_10hpf_ci95": None, "mitotic_scores_ci95": []}
    value = counting.MitoticDensity.of(count, area_mm2, hpf_area_mm2)
    n_hpf = area_mm2 / hpf_area_mm2
    low, high = value.per_10hpf_interval()
    return {"n_hpf": round(n_hpf, 3), "extrapolated": bool(n_hpf < counting.MIN_GRADING_HPF * (1 - 1e-6)),
            "mitoses_per_10hpf_ci95": [round(low, 3), round(high, 3)],
            "mitotic_scores_ci95": list(value.fnclcc_scores_in_interval())}


def default_detector(*, threshold: float | None = None) -> Detector:
    """The shipped detector (:func:`spindledx.detection.shipped.shipped_detector`), model loaded once per process."""
    from spindledx.detection import shipped

    return shipped.shipped_detector(threshold, prepare=True)


def score_image(source: str | Path | Tile, *, mpp: float | None = None, detector: Detector | None = None,
                hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, threshold: float | None = None,
                roi: Region | None = None, area: CountedArea | None = None) -> TileScore:
    """Detect and count mitotic figures in one tile.

    Parameters
    ----------
    source
        Image path (read with :func:`spindledx.imaging.reader.read_image`) or an already read :class:`Tile`.
    mpp
        Resolution override in µm/px (for a path; a :class:`Tile` keeps its own unless this is given).
    detector
        ``(rgb, mpp) -> list[Detection]``; default :func:`default_detector`.
    hpf_area_mm2
        Area of one high-power field for the per-10-HPF figure (default: field number 22 at 40x, 0.238 mm²).
    threshold
        Minimum detection score. Passed to the default detector; for an injected detector, detections below
        it are dropped.
    roi
        Region of interest (:func:`spindledx.imaging.roi.load_roi`): only figures inside it are counted, over its
        area on tissue.
    area
        The tile's counted area when the caller has it already (:func:`tile_area` of the same tile and ``roi``).

    Returns
    -------
    TileScore
    """
    if isinstance(source, Tile):
        tile = source
        if mpp is not None:
            tile = Tile(rgb=tile.rgb, mpp=counting.check_mpp(mpp), mpp_source="override", path=tile.path,
                        width=tile.width, height=tile.height, warnings=tile.warnings)
    else:
        tile = read_image(source, mpp=mpp)
    counting.check_hpf_area_mm2(hpf_area_mm2)
    area = tile_area(tile, roi) if area is None else area
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BadInputError(f"threshold must be between 0 and 1 (got {threshold})")
    run = default_detector(threshold=threshold) if detector is None else as_detector(detector)
    found = detect_on_raster(run, tile)
    if detector is not None and threshold is not None:
        found = [d for d in found if d.score >= threshold]
    found = [d for d in found if 0 <= d.x < tile.width and 0 <= d.y < tile.height]
    mitoses = suppress_detections(found, mpp=tile.mpp, radius_um=DEDUP_RADIUS_UM)
    # the atypical head runs with the detector's onnxruntime threads (1 in worker processes)
    return summarize(tile, mitoses, hpf_area_mm2=hpf_area_mm2, model_threads=getattr(run, "threads", 2),
                     area=area)


def _working_mpp(detector: Any) -> float | None:
    """The working µm/px of the model behind ``detector`` (through a wrapping function detector), or None."""
    for candidate in (detector, getattr(detector, "func", None)):
        description = getattr(candidate, "model_description", None)
        if description is not None and getattr(description, "working_mpp", None):
            return float(description.working_mpp)
    return None


def detect_on_raster(detector: Any, tile: Tile) -> list[Detection]:
    """Run a model-backed ``detector`` on the tile as ``slide`` runs it on a slide: on the working raster reached
    from the image by an integer up- or down-sampling factor (:func:`spindledx.slide.tiling.make_raster`, e.g. a
    0.5 µm/px scan upsampled 2x to 0.25), with the detections mapped back to the image's pixels. The same image
    then gives the same detections through ``score`` and ``slide``. A detector without a model description, or an
    image already near the working resolution, is run on the image as it is."""
    work = _working_mpp(detector)
    if work is None:
        return list(detector(tile.rgb, tile.mpp))
    from spindledx.slide.area import array_slide
    from spindledx.slide.tiling import make_raster, read_raster

    slide = array_slide(tile.rgb, tile.mpp)
    raster = make_raster(slide.info, work)
    if raster.upsample == 1 and raster.downsample == 1:
        return list(detector(tile.rgb, tile.mpp))
    rgb = read_raster(slide, raster, 0, 0, raster.width, raster.height)
    found = []
    for d in detector(rgb, raster.mpp):
        x0, y0 = raster.to_level0(d.x, d.y)
        found.append(replace(d, x=round(float(x0), 2), y=round(float(y0), 2)))  # as `slide` stores them
    return found


def tile_area(tile: Tile, roi: Region | None = None) -> CountedArea:
    """The counted area of a tile (image ∩ tissue ∩ ``roi``), or BadInputError when it is empty."""
    from spindledx.slide.area import require_area, tile_counted_area

    name = Path(tile.path).name if tile.path else "the image"
    return require_area(tile_counted_area(tile.rgb, tile.mpp, region=roi, image=name), image=tile.path or name)


def summarize(tile: Tile, mitoses: list[Detection] | tuple[Detection, ...], *,
              hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, model_threads: int = 2,
              area: CountedArea | None = None) -> TileScore:
    """Turn detections on a tile into counts with :mod:`spindledx.counting` over the counted area ``area``
    (default: the tile's, :func:`tile_area`; figures outside it are not counted), label each figure
    normal/atypical (:func:`spindledx.detection.atypical.classify_atypical`, the head run with ``model_threads``
    onnxruntime threads) and attach the guard flags (:func:`spindledx.detection.guard.judge`) and the specificity
    check (:func:`spindledx.slide.checks.interphase_check`, on the tile as ``slide`` runs it on a slide)."""
    import numpy as np

    from spindledx.detection import guard
    from spindledx.detection.atypical import atypical_fraction, classify_atypical, load_atypical_model

    area = tile_area(tile) if area is None else area
    n_found = len(mitoses)
    if n_found:
        inside = area.contains(np.array([d.x for d in mitoses], float), np.array([d.y for d in mitoses], float))
        mitoses = [d for d, k in zip(mitoses, inside, strict=True) if k]
    value = counting.MitoticDensity.of(len(mitoses), area.area_mm2, hpf_area_mm2)
    mitoses = sorted(mitoses, key=lambda d: -d.score)
    labels = classify_atypical(tile.rgb, tile.mpp, mitoses, model=load_atypical_model(model_threads))
    n_atypical = None
    if labels is not None:
        mitoses = [replace(d, atypical=a, atypical_score=s)
                   for d, a, s in zip(mitoses, labels.atypical, labels.scores, strict=True)]
        n_atypical = labels.count
    judged = guard.judge(value.count, value.area_mm2, guard.ood_score(tile.rgb, tile.mpp))
    from spindledx.slide.area import array_slide
    from spindledx.slide.checks import interphase_check

    interphase = interphase_check(array_slide(tile.rgb, tile.mpp),
                                  np.array([[d.x, d.y] for d in mitoses], float).reshape(-1, 2))
    return TileScore(image=tile.path, width=tile.width, height=tile.height, mpp=tile.mpp,
                     mpp_source=tile.mpp_source, area_mm2=value.area_mm2,
                     mitoses=tuple(mitoses), count=value.count,
                     mitoses_per_mm2=value.per_mm2, mitoses_per_10hpf=value.per_10hpf, hpf_area_mm2=hpf_area_mm2,
                     fnclcc_mitotic_score=value.fnclcc_score, warnings=tile.warnings,
                     flags=judged.flags + interphase.flags, flag_messages=judged.messages + interphase.messages,
                     interphase_check=interphase.to_dict(), ood_score=judged.ood_score,
                     ood_threshold=judged.ood_threshold,
                     atypical_count=n_atypical,
                     atypical_fraction=None if n_atypical is None else atypical_fraction(n_atypical, value.count),
                     counted_area=area.to_json(), n_outside_counted_area=n_found - value.count,
                     region=area.region)
