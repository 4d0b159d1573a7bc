"""``score_images``: the ``score`` command as a library call (images or folders -> counts, optionally an output
folder with per-image CSV, GeoJSON, overlay, review candidates and ``summary.json``)."""

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
    if detector is None:
        from spindledx.detection import shipped

        detector = shipped.shipped_detector(threshold, prepare=True)
    if out is None:
        return _score(images, detector, None, mpp=mpp, threshold=threshold, hpf_area=hpf_area_mm2,
                      progress=progress, repeats=repeats, on_error=on_error)
    from spindledx.engine.folder import output_folder

    settings = {"inputs": [os.path.realpath(i) for i in images], "mpp": mpp, "threshold": threshold,
                "hpf_area_mm2": hpf_area_mm2}
    with output_folder(out, "score", settings, overwrite=overwrite):
        return _score(images, detector, out, mpp=mpp, threshold=threshold, hpf_area=hpf_area_mm2,
                      progress=progress, repeats=repeats, on_error=on_error)


def _score(images: list[Path], detector: Any, out: Path | None, *, mpp: float | None, threshold: float | None,
           hpf_area: float, progress: bool, repeats: list[str],
           on_error: Callable[[str], None] | None) -> ScoreRun:
    """The body of :func:`score_images` (with ``out``, the caller holds the output folder)."""
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.score import score_image

    recorder = None
    if out is not None:  # candidates down to just below the threshold, for `spindledx review OUT`
        from spindledx.detection import shipped
        from spindledx.review.candidates import CandidateRecorder

        recorder = CandidateRecorder.around(detector, lambda t: shipped.shipped_detector(t, prepare=True),
                                            threshold=threshold)
    stems = output_stems(images)
    results: list[TileScore] = []
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    with ProgressBar(progress and len(images) > 1, len(images), unit="images") as advance:
        for image, stem in zip(images, stems, strict=True):
            try:
                tile = read_image(image, mpp=mpp)
                if recorder is not None:
                    result = score_image(tile, detector=recorder, hpf_area_mm2=hpf_area,
                                         threshold=recorder.threshold)
                else:
                    result = score_image(tile, detector=detector, hpf_area_mm2=hpf_area)
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
                                            mpp=tile.mpp)
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
                           options={"mpp": mpp, "threshold": threshold, "hpf_area_mm2": hpf_area},
                           warnings=warnings)
    return ScoreRun(results=results, failures=failures, warnings=warnings, outputs=written, n_images=len(images),
                    hpf_area_mm2=hpf_area, detector=detector)


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
