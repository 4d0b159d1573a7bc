"""The tile commands as library calls: :func:`score_images` (``score``: images or folders -> counts, optionally an
output folder with per-image CSV, GeoJSON, overlay, review candidates and ``summary.json``),
:func:`count_points` (``count-points``: figures marked elsewhere, counted as ``score`` counts) and
:func:`evaluate_images` (``evaluate``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spindledx import counting
from spindledx.engine.progress import ProgressBar
from spindledx.errors import BadInputError
from spindledx.files import output_stems, printable
from spindledx.mitosis.score import TileScore


@dataclass(frozen=True)
class ScoreRun:
    """What :func:`score_images` did.

    Attributes
    ----------
    results
        One :class:`~spindledx.mitosis.score.TileScore` per image scored, in input order.
    failures
        ``(image, message)`` of each image that could not be scored.
    warnings
        Repeated inputs dropped, then each image's warnings.
    outputs
        Files written into ``out_dir`` (empty without one).
    n_images
        Images given (after dropping repeats).
    hpf_area_mm2
        Area of one HPF the per-10-HPF figures use.
    detector
        The detector that ran (for its caveat and provenance).
    """

    results: list[TileScore]
    failures: list[tuple[str, str]]
    warnings: list[str]
    outputs: list[Path]
    n_images: int
    hpf_area_mm2: float
    detector: Any = field(repr=False, default=None)

    def to_json(self) -> list[dict[str, Any]]:
        """The ``score --format json`` document: one object per image scored."""
        return [r.to_dict() for r in self.results]


def score_images(paths: Iterable[str | Path], *, out_dir: str | Path | None = None, mpp: float | None = None,
                 threshold: float | None = None, hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2,
                 roi: str | Path | None = None, roi_class: str | None = None, model: str | Path | None = None,
                 detector: Any | None = None, overwrite: bool = False, progress: bool = False,
                 on_error: Callable[[str], None] | None = None) -> ScoreRun:
    """Detect mitotic figures in images (files or folders of png/jpg/tif) and count them per mm² and per 10 HPF:
    what ``spindledx score`` does.

    Parameters
    ----------
    paths
        Images or folders (recursively; the same file given twice is scored once).
    out_dir
        Folder for per-image CSV, GeoJSON, overlay PNG and review candidates, ``mitoses.csv`` and
        ``summary.json`` (claimed as :func:`spindledx.engine.folder.output_folder` does); None writes nothing.
    mpp
        Resolution in µm/px, overriding the images' metadata.
    threshold
        Minimum detection score (default: the model's).
    hpf_area_mm2
        Area of one HPF in mm².
    roi, roi_class
        Region(s) of interest of a single image (GeoJSON as QuPath exports annotations), and the class of the
        annotations to use; the counted area is the image's tissue within the region.
    model
        A model card (JSON beside its ONNX file, the model contract) to use instead of the shipped model.
    detector
        A :class:`spindledx.detection.Detector` or ``(rgb, mpp) -> detections`` callable (default: the shipped
        model, :func:`spindledx.detection.shipped.shipped_detector`).
    overwrite
        Write into an ``out_dir`` that holds other files or another run.
    progress
        Progress bar on stderr.
    on_error
        Called with ``"image: message"`` for each image that cannot be scored, as it happens.

    Returns
    -------
    ScoreRun
        Results, failures and outputs; ``to_json()`` is the ``score --format json`` document.

    Example: ``run = score_images(["sample_slides"], mpp=0.25); print(run.results[0].count)``
    """
    if mpp is not None:
        counting.check_mpp(mpp)
    out = None if out_dir is None else Path(out_dir)
    if out is not None and out.exists() and not out.is_dir():
        raise BadInputError(f"{printable(out)}: exists and is not a folder", parameters="out_dir")
    from spindledx.engine.folder import collect_images

    images, repeats = collect_images(paths)
    from spindledx.slide.area import load_region

    region = load_region(roi, roi_class, n_images=len(images))
    from spindledx.detection import shipped

    def load(t: float | None) -> Any:
        return shipped.shipped_detector(t, prepare=True, model=model)

    if detector is None:
        detector = load(threshold)
    if out is None:
        return _score(images, detector, None, mpp=mpp, threshold=threshold, hpf_area=hpf_area_mm2,
                      progress=progress, repeats=repeats, on_error=on_error, roi=region, load=load)
    from spindledx.engine.folder import output_folder

    settings = {"inputs": [os.path.realpath(i) for i in images], "mpp": mpp, "threshold": threshold,
                "hpf_area_mm2": hpf_area_mm2, "roi": None if roi is None else os.path.realpath(roi),
                "roi_class": roi_class, "model": None if model is None else os.path.realpath(model)}
    with output_folder(out, "score", settings, overwrite=overwrite):
        return _score(images, detector, out, mpp=mpp, threshold=threshold, hpf_area=hpf_area_mm2,
                      progress=progress, repeats=repeats, on_error=on_error, roi=region, load=load)


def _score(images: list[Path], detector: Any, out: Path | None, *, mpp: float | None, threshold: float | None,
           hpf_area: float, progress: bool, repeats: list[str], on_error: Callable[[str], None] | None,
           roi: Any, load: Callable[[float | None], Any]) -> ScoreRun:
    """The body of :func:`score_images` (with ``out``, the caller holds the output folder)."""
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.score import score_image, tile_area

    recorder = None
    if out is not None:  # candidates down to just below the threshold, for `spindledx review OUT`
        from spindledx.review.candidates import CandidateRecorder

        recorder = CandidateRecorder.around(detector, load, threshold=threshold)
    stems = output_stems(images)
    results: list[TileScore] = []
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    with ProgressBar(progress and len(images) > 1, len(images), unit="images") as advance:
        for image, stem in zip(images, stems, strict=True):
            try:
                tile = read_image(image, mpp=mpp)
                area = tile_area(tile, roi)
                if recorder is not None:
                    result = score_image(tile, detector=recorder, hpf_area_mm2=hpf_area,
                                         threshold=recorder.threshold, roi=roi, area=area)
                else:
                    result = score_image(tile, detector=detector, hpf_area_mm2=hpf_area, roi=roi, area=area)
            except BadInputError as exc:
                if on_error is not None:
                    on_error(str(exc))
                failures.append((printable(image), str(exc)))
                advance()
                continue
            results.append(result)
            if out is not None:
                from spindledx.mitosis.outputs import write_tile_outputs

                written.extend(write_tile_outputs(tile.rgb, result, out, stem=stem).values())
                if recorder is not None:
                    from spindledx.review.candidates import write_candidates

                    doc = recorder.document(image=image, stem=stem, width=tile.width, height=tile.height,
                                            mpp=tile.mpp, area=area)
                    doc["flags"] = list(getattr(result, "flags", ()) or ())
                    written.append(write_candidates(doc, out))
            advance()
    warnings = repeats + [w for r in results for w in r.warnings]
    if out is not None:
        from spindledx.mitosis.outputs import write_detections_csv, write_summary_json
        from spindledx.provenance import detector_provenance

        written.append(write_detections_csv(results, out / "mitoses.csv"))
        write_summary_json(results, out, provenance=detector_provenance(detector, threshold=threshold),
                           inputs=[printable(i) for i in images], outputs=written, failed=failures,
                           options={"mpp": mpp, "threshold": threshold, "hpf_area_mm2": hpf_area,
                                    "roi": None if roi is None else roi.source},
                           warnings=warnings)
    return ScoreRun(results=results, failures=failures, warnings=warnings, outputs=written, n_images=len(images),
                    hpf_area_mm2=hpf_area, detector=detector)


@dataclass(frozen=True)
class PointsCount:
    """What :func:`count_points` counted: the image's :class:`~spindledx.mitosis.score.TileScore` (``to_dict()``
    is the ``count-points --format json`` object), notes for the user and the files written."""

    result: TileScore
    warnings: list[str]
    outputs: list[Path]


def count_points(points: str | Path, image: str | Path, *, point_class: str | None = None, mpp: float | None = None,
                 out_dir: str | Path | None = None, hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2,
                 roi: str | Path | None = None, roi_class: str | None = None,
                 overwrite: bool = False) -> PointsCount:
    """Count figures marked elsewhere (QuPath points or detections, a CSV of x,y[,class], another detector) on
    their image, exactly as :func:`score_images` counts (what ``spindledx count-points`` does, with its notes and
    output folder; the count alone is :func:`spindledx.mitosis.points.count_points`).

    Parameters
    ----------
    points
        QuPath GeoJSON (points, detections) or CSV x,y[,class] in level-0 pixels of ``image``.
    image
        The image the points were marked on (for µm/px and tissue).
    point_class
        Count only points of this class (e.g. Mitosis).
    mpp, hpf_area_mm2, roi, roi_class
        As for :func:`score_images`.
    out_dir
        Folder for the CSV, GeoJSON, overlay PNG and ``summary.json``, as ``score`` writes them.
    overwrite
        Write into an ``out_dir`` that holds other files or another run.

    Example: ``count_points("corrected.geojson", "tile.png", point_class="Mitosis").result.count``
    """
    from spindledx.mitosis.points import PointsDetector, load_points

    if mpp is not None:
        counting.check_mpp(mpp)
    image = Path(image)
    out = None if out_dir is None else Path(out_dir)
    if out is not None and out.exists() and not out.is_dir():
        raise BadInputError(f"{printable(out)}: exists and is not a folder", parameters="out_dir")
    if not image.is_file():
        raise BadInputError(f"{image}: no such file")
    from spindledx.slide.area import load_region

    region = load_region(roi, roi_class)
    point_set = load_points(points, point_class=point_class)
    detector = PointsDetector(point_set)
    if out is None:
        return _count_points(image, detector, None, mpp=mpp, hpf_area=hpf_area_mm2, roi=region)
    from spindledx.engine.folder import output_folder

    settings = {"points": os.path.realpath(points), "image": os.path.realpath(image), "class": point_class,
                "mpp": mpp, "hpf_area_mm2": hpf_area_mm2, "roi": None if roi is None else os.path.realpath(roi),
                "roi_class": roi_class}
    with output_folder(out, "count-points", settings, overwrite=overwrite):
        return _count_points(image, detector, out, mpp=mpp, hpf_area=hpf_area_mm2, roi=region)


def _count_points(image: Path, detector: Any, out: Path | None, *, mpp: float | None, hpf_area: float,
                  roi: Any) -> PointsCount:
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.score import score_image

    tile = read_image(image, mpp=mpp)
    result = score_image(tile, detector=detector, hpf_area_mm2=hpf_area, roi=roi)
    notes = list(result.warnings)
    point_set = detector.points
    n_given = len(point_set.points)
    if n_given != result.count:
        notes.append(f"{n_given} points given, {result.count} counted: {result.n_outside_counted_area} outside the "
                     "counted area (image ∩ tissue ∩ region of interest), the others within 7.5 µm of another "
                     "point (one figure)")
    if point_set.skipped:
        notes.append(f"{point_set.skipped} features of {Path(point_set.source).name} are not points of the class "
                     "asked for and were not counted")
    written: list[Path] = []
    if out is not None:
        from spindledx.mitosis.outputs import write_detections_csv, write_summary_json, write_tile_outputs
        from spindledx.provenance import detector_provenance

        stem = output_stems([image])[0]
        written = list(write_tile_outputs(tile.rgb, result, out, stem=stem).values())
        written.append(write_detections_csv([result], out / "mitoses.csv"))
        write_summary_json([result], out, provenance=detector_provenance(detector), inputs=[printable(image)],
                           outputs=written, failed=[], options={"mpp": mpp, "hpf_area_mm2": hpf_area,
                                                                "points": point_set.source},
                           warnings=notes)
    return PointsCount(result=result, warnings=notes, outputs=written)


def count_points_slide(points: str | Path, slide: str | Path, *, point_class: str | None = None,
                       mpp: float | None = None, out_dir: str | Path | None = None,
                       hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, roi: str | Path | None = None,
                       roi_class: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Count points marked on a whole slide as ``slide`` counts detections (what ``spindledx count-points
    --slide`` does): :func:`spindledx.mitosis.points.count_points_on_slide`, and with ``out_dir`` its
    ``summary.json``. Returns the ``count-points --slide --format json`` object.

    Example: ``count_points_slide("slide_points.geojson", "tumour.svs")["answer"]["count"]``
    """
    from spindledx.mitosis.points import PointsDetector, count_points_on_slide, load_points

    if mpp is not None:
        counting.check_mpp(mpp)
    slide = Path(slide)
    out = None if out_dir is None else Path(out_dir)
    if out is not None and out.exists() and not out.is_dir():
        raise BadInputError(f"{printable(out)}: exists and is not a folder", parameters="out_dir")
    if not slide.is_file():
        raise BadInputError(f"{slide}: no such file")
    from spindledx.slide.area import load_region

    region = load_region(roi, roi_class)
    point_set = load_points(points, point_class=point_class)
    doc = count_points_on_slide(point_set, slide, mpp=mpp, roi=region, hpf_area_mm2=hpf_area_mm2)
    if out is not None:
        from spindledx.engine.folder import output_folder
        from spindledx.provenance import detector_provenance
        from spindledx.summary import write_summary

        settings = {"points": os.path.realpath(points), "slide": os.path.realpath(slide), "class": point_class,
                    "mpp": mpp, "hpf_area_mm2": hpf_area_mm2, "roi": None if roi is None else os.path.realpath(roi),
                    "roi_class": roi_class}
        with output_folder(out, "count-points", settings, overwrite=overwrite):
            write_summary(out, "count-points", provenance=detector_provenance(PointsDetector(point_set)),
                          inputs=[printable(slide), point_set.source], outputs=[],
                          options={"mpp": mpp, "hpf_area_mm2": hpf_area_mm2, "roi": None if roi is None else str(roi)},
                          counts={"points": doc["n_points"], "mitoses": doc["answer"]["count"]}, results=doc,
                          flags=doc["answer"]["flags"], warnings=doc["answer"]["flag_messages"])
    return doc


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_images` found: ``document`` is the ``evaluate --format json`` object (per-image rows,
    TP/FP/FN summed over images, precision, recall, F1, warnings); ``failures`` the images that could not be
    scored."""

    document: dict[str, Any]
    failures: list[str]


def evaluate_images(truth: str | Path, paths: Iterable[str | Path] | None = None, *, pred: str | Path | None = None,
                    mpp: float | None = None, threshold: float | None = None, radius_um: float = 7.5,
                    detector: Any | None = None, on_error: Callable[[str], None] | None = None) -> Evaluation:
    """MIDOG-rule evaluation (one-to-one hits within ``radius_um``, TP/FP/FN summed over images): what
    ``spindledx evaluate`` does.

    Parameters
    ----------
    truth
        Ground-truth points CSV: image,cx,cy (or image,x,y).
    paths
        Images or folders to run the detector on; with ``pred``, the image names to evaluate (default: every name
        in either CSV).
    pred
        Detections CSV (image,x,y[,score]) instead of running the detector.
    mpp, threshold
        Resolution override, and the detection threshold (default: the model's; not with ``pred``).
    radius_um
        Hit radius in µm (MIDOG rule: 7.5).
    detector
        A detector instead of the shipped model.
    on_error
        Called with each image's error message as it happens.

    Example: ``evaluate_images("sample_slides/ground_truth.csv", ["sample_slides"]).document["f1"]``
    """
    import math

    import numpy as np

    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.evaluate import detection_scores, load_points_csv, match_points
    from spindledx.mitosis.score import score_image

    if not (math.isfinite(radius_um) and radius_um > 0):
        raise BadInputError(f"radius_um must be a positive number of µm (got {radius_um!r})", parameters="radius_um")
    if mpp is not None:
        counting.check_mpp(mpp)
    paths = list(paths or [])
    truth_points = _by_name(load_points_csv(truth))
    notes: list[str] = []
    failures: list[str] = []
    if pred is not None:
        if threshold is not None:
            raise BadInputError("threshold applies when the detector runs on images; with pred, filter the CSV",
                                parameters=("threshold", "pred"))
        pred_points = _by_name(load_points_csv(pred))
        names = [Path(p).name for p in paths] if paths else sorted(set(truth_points) | set(pred_points))
        if mpp is None:
            notes.append("--pred without --mpp: assuming 0.25 µm/px for the 7.5 µm hit radius")
        evaluated = [(name, pred_points.get(name, np.zeros((0, 2))), mpp or 0.25) for name in names]
    else:
        if not paths:
            raise BadInputError("give IMAGES to run the detector on, or pred with a detections CSV",
                                parameters="pred")
        from spindledx.engine.folder import collect_images

        images, repeats = collect_images(paths)
        notes.extend(repeats)
        if detector is None:
            from spindledx.detection import shipped

            detector = shipped.shipped_detector(threshold, prepare=True)
        evaluated = []
        for image in images:
            try:
                result = score_image(read_image(image, mpp=mpp), detector=detector)
            except BadInputError as exc:
                if on_error is not None:
                    on_error(str(exc))
                failures.append(printable(image))
                continue
            notes.extend(result.warnings)
            xy = np.array([[d.x, d.y] for d in result.mitoses], dtype=float).reshape(-1, 2)
            evaluated.append((image.name, xy, result.mpp))
        if not evaluated:
            raise BadInputError("no image could be scored")
        unused = sorted(set(truth_points) - {name for name, _, _ in evaluated})
        if unused:
            notes.append(f"{len(unused)} images in {truth} were not given and are not evaluated")
    missing = [name for name, _, _ in evaluated if name not in truth_points]
    if missing:
        notes.append(f"no ground truth rows for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}: "
                     "counted as having no mitoses (check the image names)")
    rows = []
    tp = fp = fn = 0
    for name, xy, image_mpp in evaluated:
        gt = truth_points.get(name, np.zeros((0, 2)))
        match = match_points(xy, gt, radius_um / image_mpp)
        tp, fp, fn = tp + match.tp, fp + match.fp, fn + match.fn
        rows.append({"image": name, "mpp": image_mpp, "n_truth": len(gt), "n_pred": len(xy), "tp": match.tp,
                     "fp": match.fp, "fn": match.fn, "count_error": len(xy) - len(gt)})
    precision, recall, f1 = detection_scores(tp, fp, fn)
    if tp + fn == 0:
        notes.append("no ground-truth figures in the evaluated images: recall and F1 are undefined")
    if tp + fp == 0:
        notes.append("no detections in the evaluated images: precision is undefined")
    document = {"images": rows, "n_images": len(rows), "tp": tp, "fp": fp, "fn": fn,
                "precision": _rounded(precision), "recall": _rounded(recall), "f1": _rounded(f1),
                "mean_abs_count_error": _rounded(float(np.mean([abs(r["count_error"]) for r in rows]))
                                                 if rows else None),
                "radius_um": radius_um, "threshold": threshold, "warnings": notes}
    return Evaluation(document=document, failures=failures)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _by_name(points: dict[str, Any]) -> dict[str, Any]:
    """Key points by file name (``dir/P0_00.png`` -> ``P0_00.png``), merging rows of the same name."""
    import numpy as np

    merged: dict[str, Any] = {}
    for key, xy in points.items():
        name = Path(key).name
        merged[name] = np.vstack([merged[name], xy]) if name in merged else np.asarray(xy, dtype=float)
    return merged
