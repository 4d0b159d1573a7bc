"""CLI commands of the `mitosis` stage (registered by :mod:`spindledx.cli`): ``score`` and ``evaluate``.

Thin layer over :mod:`spindledx.mitosis.score`, :mod:`spindledx.mitosis.outputs` and
:mod:`spindledx.mitosis.evaluate`: collect images, call the library, render a rich table, JSON or CSV. The image
stack (numpy, the reader, the detector) is imported inside the commands, so ``spindledx --help`` does not load it.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from spindledx import cli_options as opts
from spindledx import counting
from spindledx.engine.progress import ProgressBar
from spindledx.errors import BadInputError
from spindledx.files import output_stems, printable

if TYPE_CHECKING:
    import numpy as np

    from spindledx.mitosis.score import TileScore


def _load_detector(threshold: float | None):
    """The detector used by the commands (a seam for tests, which inject a fake one)."""
    from spindledx.mitosis.score import default_detector

    return default_detector(threshold=threshold)


def model_loader(model: Path | None, fallback):
    """``load(threshold) -> detector``: the ``--model`` card's detector, or ``fallback`` without one."""
    if model is None:
        return fallback

    def load(threshold: float | None, **kw):
        from spindledx.detection.detect import ModelDetector

        detector = ModelDetector(threshold=threshold, model_path=str(model), threads=kw.get("threads", 2))
        detector.prepare()
        return detector

    return load


def collect_images(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Expand PATHs: files as given, folders recursively (png/jpg/jpeg/tif/tiff, sorted, hidden files skipped, and
    the images spindledx wrote into an output folder skipped: :func:`spindledx.engine.folder.is_own_output`).

    The same file given twice (``./t1.png`` and ``t1.png``, or a file and its folder) is kept once, so its area is
    not counted twice. Returns the images and one note per dropped repeat.

    Raises BadInputError for a missing path or a folder without images.
    """
    from spindledx.engine.folder import is_own_output
    from spindledx.imaging.reader import IMAGE_SUFFIXES

    images: list[Path] = []
    notes: list[str] = []
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts)
                           and not is_own_output(p, path))
            if not found:
                raise BadInputError(f"{path}: no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) in this folder")
        elif path.exists():
            found = [path]
        else:
            raise BadInputError(f"{path}: no such file or folder")
        for image in found:
            key = os.path.realpath(image)
            if key in seen:
                notes.append(f"{image}: the same file as {seen[key]}; scored once")
                continue
            seen[key] = image
            images.append(image)
    if not images:
        raise BadInputError("no images given")
    return images, notes


def score(
    paths: list[str] = typer.Argument(..., metavar="PATH...", help="Images (png/jpg/tif) or folders of images."),
    mpp: opts.Mpp = None,
    fmt: opts.Format = opts.OutputFormat.table,
    out: Path | None = opts.out_option("Folder for per-image CSV, GeoJSON, overlay PNG + summary."),
    threshold: opts.Threshold = None,
    hpf_area_mm2: opts.HpfArea = None,
    field_number: opts.FieldNumber = None,
    objective: opts.Objective = None,
    allow_unusual_hpf: opts.AllowUnusualHpf = False,
    progress: opts.Progress = None,
    roi: opts.Roi = None,
    roi_class: opts.RoiClass = None,
    model: opts.Model = None,
    overwrite: opts.Overwrite = False,
) -> None:
    """Detect mitotic figures and count them per mm² and per 10 HPF (HPF area stated).

    The counted area is the image's tissue, within the --roi region when one is given.

    Example: spindledx score sample_slides --out results
    """
    fmt = fmt.value
    if mpp is not None:
        counting.check_mpp(mpp)
    opts.check_out_dir(out)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    images, repeats = collect_images(paths)
    region = load_region(roi, roi_class, n_images=len(images))
    stems = output_stems(images)
    load = model_loader(model, _load_detector)
    detector = load(threshold)
    if out is None:
        _score(images, stems, detector, None, mpp=mpp, fmt=fmt, threshold=threshold, hpf_area=hpf_area,
               progress=progress, repeats=repeats, roi=region, load=load)
        return
    from spindledx.engine.folder import output_folder

    settings = {"inputs": [os.path.realpath(i) for i in images], "mpp": mpp, "threshold": threshold,
                "hpf_area_mm2": hpf_area, "roi": None if roi is None else os.path.realpath(roi),
                "roi_class": roi_class, "model": None if model is None else os.path.realpath(model)}
    with output_folder(out, "score", settings, overwrite=overwrite):
        _score(images, stems, detector, out, mpp=mpp, fmt=fmt, threshold=threshold, hpf_area=hpf_area,
               progress=progress, repeats=repeats, roi=region, load=load)


def load_region(roi: Path | None, roi_class: str | None, *, n_images: int = 1):
    """The ``--roi`` region (None without it); a region belongs to one image."""
    if roi is None:
        if roi_class is not None:
            raise BadInputError("--roi-class picks annotations of a --roi file; give --roi too")
        return None
    if n_images != 1:
        raise BadInputError(f"--roi outlines a region of one image; {n_images} images were given")
    from spindledx.imaging.roi import load_roi

    return load_roi(roi, roi_class)


def _score(images: list[Path], stems: list[str], detector: object, out: Path | None, *, mpp: float | None,
           fmt: str, threshold: float | None, hpf_area: float, progress: bool | None, repeats: list[str],
           roi: object = None, load: object = None) -> None:
    """The body of ``score`` (with ``out``, the caller holds the output folder)."""
    from spindledx.detection.detect import detector_caveat
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.score import score_image, tile_area

    recorder = None
    if out is not None:  # candidates down to just below the threshold, for `spindledx review OUT`
        from spindledx.case.candidates import CandidateRecorder

        recorder = CandidateRecorder.around(detector, load or _load_detector, threshold=threshold)
    results: list[TileScore] = []
    failures: list[tuple[str, str]] = []
    written: list[Path] = []
    show = opts.resolve_progress(progress) and len(images) > 1
    with ProgressBar(show, len(images), unit="images") as advance:
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
                typer.echo(f"error: {exc}", err=True)
                failures.append((printable(image), str(exc)))
                advance()
                continue
            results.append(result)
            if out is not None:
                from spindledx.mitosis.outputs import write_tile_outputs

                written.extend(write_tile_outputs(tile.rgb, result, out, stem=stem).values())
                if recorder is not None:
                    from spindledx.case.candidates import write_candidates

                    doc = recorder.document(image=image, stem=stem, width=tile.width, height=tile.height,
                                            mpp=tile.mpp, area=area)
                    doc["flags"] = list(getattr(result, "flags", ()) or ())
                    written.append(write_candidates(doc, out))
            advance()
    if out is not None:
        from spindledx.mitosis.outputs import write_detections_csv, write_summary_json
        from spindledx.pages.provenance import detector_provenance

        written.append(write_detections_csv(results, out / "mitoses.csv"))
        write_summary_json(results, out, provenance=detector_provenance(detector, threshold=threshold),
                           inputs=[printable(i) for i in images], outputs=written, failed=failures,
                           options={"mpp": mpp, "threshold": threshold, "hpf_area_mm2": hpf_area,
                                    "roi": None if roi is None else roi.source},
                           warnings=repeats + [w for r in results for w in r.warnings])
    _print_warnings(repeats + [w for r in results for w in r.warnings])
    _render(results, fmt, hpf_area)
    caveat = detector_caveat(detector)
    if fmt == "table" and results and caveat:
        typer.echo(caveat)
    if out is not None and fmt == "table":
        Console(stderr=True).print(f"outputs written to {out}/ (per image: *_mitoses.csv, *_mitoses.geojson, "
                                   "*_overlay.png, *_candidates.json; summary.json, mitoses.csv; "
                                   "review with `spindledx review`)")
    if failures:
        raise BadInputError(f"{len(failures)} of {len(images)} images could not be scored"
                            + (f" (the other {len(results)} were)" if results else ""))


def _print_warnings(warnings: list[str]) -> None:
    """Print warnings on stderr; the same message for several images is printed once with the image count."""
    from spindledx.imaging.reader import IMAGE_SUFFIXES

    groups: dict[str, list[str]] = {}
    for warning in warnings:
        image, sep, message = warning.partition(": ")
        key = message if sep and Path(image).suffix.lower() in IMAGE_SUFFIXES + (".svs",) else warning
        groups.setdefault(key, []).append(image if key != warning else "")
    for message, images in groups.items():
        named = [i for i in images if i]
        if len(named) > 1:
            shown = ", ".join(Path(i).name for i in named[:3]) + (" ..." if len(named) > 3 else "")
            typer.echo(f"warning: {len(named)} images ({shown}): {message}", err=True)
        elif named:
            typer.echo(f"warning: {named[0]}: {message}", err=True)
        else:
            typer.echo(f"warning: {message}", err=True)


def _render(results: list[TileScore], fmt: str, hpf_area: float) -> None:
    if fmt == "json":
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        from spindledx.mitosis.outputs import CSV_COLUMNS, detection_rows

        buffer = _stdio.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(detection_rows(results))
        typer.echo(buffer.getvalue(), nl=False)
        return
    if not results:
        return
    from spindledx.detection import guard

    table = Table(title="Mitotic figures", show_header=True)
    for column, justify in (("image", "left"), ("µm/px", "right"), ("area mm²", "right"), ("count", "right"),
                            ("atypical", "right"), ("per mm²", "right"), ("per 10 HPF", "right"),
                            ("FNCLCC score", "right"), ("flags", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    for r in results:
        table.add_row(r.image, f"{r.mpp:g}{'' if r.mpp_source != 'assumed' else ' (assumed)'}",
                      f"{r.area_mm2:.4f}", str(r.count), _atypical_cell(r.atypical_count, r.atypical_fraction),
                      f"{r.mitoses_per_mm2:.1f}", f"{r.mitoses_per_10hpf:.1f}",
                      _score_cell(r.fnclcc_mitotic_score, r.flags), ", ".join(r.flags) or "-")
    total_area = sum(r.area_mm2 for r in results)
    total_count = sum(r.count for r in results)
    if len(results) > 1:
        total = counting.MitoticDensity.of(total_count, total_area, hpf_area)
        pooled_flags = sorted({f for r in results for f in r.flags}
                              | ({guard.IMPLAUSIBLE_DENSITY} if guard.density_is_implausible(total_count, total_area)
                                 else set()))
        n_atyp = None if any(r.atypical_count is None for r in results) else sum(r.atypical_count for r in results)
        table.add_section()
        table.add_row(f"all {len(results)} images", "", f"{total_area:.4f}", str(total_count),
                      _atypical_cell(n_atyp, None if n_atyp is None or not total_count else n_atyp / total_count),
                      f"{total.per_mm2:.1f}", f"{total.per_10hpf:.1f}", _score_cell(total.fnclcc_score, pooled_flags),
                      ", ".join(pooled_flags) or "-")
    console = Console()
    needed = max(len(r.image) for r in results) + 120
    if console.width < needed and not console.is_terminal:
        console = Console(width=needed)
    console.print(table)
    console.print(f"HPF = {hpf_area:.4f} mm² each; per 10 HPF = per {10 * hpf_area:.2f} mm². "
                  f"Counted area {total_area:.3f} mm² = {total_area / hpf_area:.2f} HPF"
                  + ("; below 10 HPF the per-10-HPF figure and FNCLCC score are extrapolations."
                     if total_area < 10 * hpf_area else "."))
    for r in results:
        for message in r.flag_messages:
            console.print(f"[bold]flag[/bold] {r.image}: {message}", markup=True, highlight=False)


def _atypical_cell(n_atypical: int | None, fraction: float | None) -> str:
    if n_atypical is None:
        return "-"
    return f"{n_atypical}" + ("" if fraction is None else f" ({100 * fraction:.0f}%)")


def _score_cell(score: int, flags: list[str] | tuple[str, ...]) -> str:
    """FNCLCC score as printed: never without its flags (a flagged count must not feed a grade unseen)."""
    return f"{score} (flagged)" if flags else str(score)


def evaluate(
    paths: list[str] | None = typer.Argument(None, metavar="[IMAGE...]",
                                             help="Images or folders to run the detector on (or use --pred)."),
    truth: Path = typer.Option(..., "--truth", help="Ground-truth points CSV: image,cx,cy (or image,x,y)."),
    pred: Path | None = typer.Option(None, "--pred", help="Detections CSV (image,x,y[,score]) instead of IMAGES."),
    mpp: opts.Mpp = None,
    threshold: opts.Threshold = None,
    radius_um: float = typer.Option(7.5, "--radius-um", help="Hit radius in µm (MIDOG rule: 7.5)."),
    fmt: opts.Report = opts.ReportFormat.table,
) -> None:
    """MIDOG-rule evaluation: one-to-one hits within 7.5 µm, TP/FP/FN summed over images, precision/recall/F1.

    Example: spindledx evaluate sample_slides --truth sample_slides/ground_truth.csv
    """
    import numpy as np

    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.evaluate import detection_scores, load_points_csv, match_points
    from spindledx.mitosis.score import score_image

    fmt = fmt.value
    if not (math.isfinite(radius_um) and radius_um > 0):
        raise BadInputError(f"--radius-um must be a positive number of µm (got {radius_um!r})")
    if mpp is not None:
        counting.check_mpp(mpp)
    truth_points = _by_name(load_points_csv(truth))
    notes: list[str] = []
    failures: list[str] = []
    if pred is not None:
        if threshold is not None:
            raise BadInputError("--threshold applies when the detector runs on IMAGES; with --pred, filter the CSV")
        pred_points = _by_name(load_points_csv(pred))
        names = [Path(p).name for p in paths] if paths else sorted(set(truth_points) | set(pred_points))
        if mpp is None:
            notes.append("--pred without --mpp: assuming 0.25 µm/px for the 7.5 µm hit radius")
        evaluated = [(name, pred_points.get(name, np.zeros((0, 2))), mpp or 0.25) for name in names]
    else:
        if not paths:
            raise BadInputError("give IMAGES to run the detector on, or --pred with a detections CSV")
        images, repeats = collect_images(paths)
        notes.extend(repeats)
        detector = _load_detector(threshold)
        evaluated = []
        for image in images:
            try:
                result = score_image(read_image(image, mpp=mpp), detector=detector)
            except BadInputError as exc:
                typer.echo(f"error: {exc}", err=True)
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
    summary = {"images": rows, "n_images": len(rows), "tp": tp, "fp": fp, "fn": fn,
               "precision": _rounded(precision), "recall": _rounded(recall), "f1": _rounded(f1),
               "mean_abs_count_error": _rounded(float(np.mean([abs(r["count_error"]) for r in rows]))
                                                if rows else None),
               "radius_um": radius_um, "threshold": threshold, "warnings": notes}
    _print_warnings(notes)
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        table = Table(title=f"MIDOG-rule evaluation (hit within {radius_um:g} µm, one-to-one)")
        for column in ("image", "truth", "detected", "TP", "FP", "FN", "count error"):
            table.add_column(column, justify="left" if column == "image" else "right")
        for r in rows:
            table.add_row(r["image"], str(r["n_truth"]), str(r["n_pred"]), str(r["tp"]), str(r["fp"]), str(r["fn"]),
                          f"{r['count_error']:+d}")
        table.add_section()
        table.add_row(f"all {len(rows)}", str(sum(r["n_truth"] for r in rows)), str(sum(r["n_pred"] for r in rows)),
                      str(tp), str(fp), str(fn), "" if summary["mean_abs_count_error"] is None else
                      f"mean |err| {summary['mean_abs_count_error']:.2f}")
        console = Console()
        console.print(table)
        shown = ["undefined" if v is None else f"{v:.3f}" for v in (precision, recall, f1)]
        console.print(f"precision {shown[0]}  recall {shown[1]}  F1 {shown[2]}  (TP/FP/FN summed over images)")
    if failures:
        raise BadInputError(f"{len(failures)} images could not be scored (the other {len(rows)} were evaluated)")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _by_name(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Key points by file name (``dir/P0_00.png`` -> ``P0_00.png``), merging rows of the same name."""
    import numpy as np

    merged: dict[str, np.ndarray] = {}
    for key, xy in points.items():
        name = Path(key).name
        merged[name] = np.vstack([merged[name], xy]) if name in merged else np.asarray(xy, dtype=float)
    return merged


def count_points(
    points: Path = typer.Argument(..., metavar="POINTS", help="QuPath GeoJSON (points, detections) or CSV x,y[,class]"
                                                           " in pixels of the image."),
    image: Path = typer.Option(..., "--image", help="The image the points were marked on (for µm/px and tissue)."),
    point_class: str | None = typer.Option(None, "--class", help="Count only points of this class (e.g. Mitosis)."),
    mpp: opts.Mpp = None,
    fmt: opts.Format = opts.OutputFormat.table,
    out: Path | None = opts.out_option("Folder for the CSV, GeoJSON, overlay PNG + summary, as `score` writes."),
    hpf_area_mm2: opts.HpfArea = None,
    field_number: opts.FieldNumber = None,
    objective: opts.Objective = None,
    allow_unusual_hpf: opts.AllowUnusualHpf = False,
    roi: opts.Roi = None,
    roi_class: opts.RoiClass = None,
    overwrite: opts.Overwrite = False,
) -> None:
    """Count figures marked elsewhere (QuPath points, another detector) on their image, as `score` counts.

    Example: spindledx count-points corrected.geojson --image tile.png --class Mitosis
    """
    from spindledx.mitosis.points import PointsDetector, load_points

    fmt = fmt.value
    if mpp is not None:
        counting.check_mpp(mpp)
    opts.check_out_dir(out)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    if not image.is_file():
        raise BadInputError(f"{image}: no such file")
    region = load_region(roi, roi_class)
    point_set = load_points(points, point_class=point_class)
    detector = PointsDetector(point_set)
    if out is None:
        _count_points(image, detector, None, mpp=mpp, fmt=fmt, hpf_area=hpf_area, roi=region)
        return
    from spindledx.engine.folder import output_folder

    settings = {"points": os.path.realpath(points), "image": os.path.realpath(image), "class": point_class,
                "mpp": mpp, "hpf_area_mm2": hpf_area, "roi": None if roi is None else os.path.realpath(roi),
                "roi_class": roi_class}
    with output_folder(out, "count-points", settings, overwrite=overwrite):
        _count_points(image, detector, out, mpp=mpp, fmt=fmt, hpf_area=hpf_area, roi=region)


def _count_points(image: Path, detector: object, out: Path | None, *, mpp: float | None, fmt: str,
                  hpf_area: float, roi: object) -> None:
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
    if out is not None:
        from spindledx.mitosis.outputs import write_detections_csv, write_summary_json, write_tile_outputs
        from spindledx.pages.provenance import detector_provenance

        stem = output_stems([image])[0]
        written = list(write_tile_outputs(tile.rgb, result, out, stem=stem).values())
        written.append(write_detections_csv([result], out / "mitoses.csv"))
        write_summary_json([result], out, provenance=detector_provenance(detector), inputs=[printable(image)],
                           outputs=written, failed=[], options={"mpp": mpp, "hpf_area_mm2": hpf_area,
                                                                "points": point_set.source},
                           warnings=notes)
    _print_warnings(notes)
    _render([result], fmt, hpf_area)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the spindledx app."""
    app.command("score")(score)
    app.command("evaluate")(evaluate)
    app.command("count-points")(count_points)
