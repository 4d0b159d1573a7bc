"""``score`` and ``evaluate``: options over :func:`spindledx.mitosis.run.score_images` and
:func:`spindledx.mitosis.evaluate.evaluate_images`, rendered as a rich table, JSON or CSV."""

from __future__ import annotations

import csv
import io as _stdio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from spindledx import counting
from spindledx.cli import options as opts
from spindledx.errors import BadInputError

if TYPE_CHECKING:
    from spindledx.mitosis.score import TileScore


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
    from spindledx.detection.detect import detector_caveat
    from spindledx.mitosis.run import score_images

    fmt = fmt.value
    if mpp is not None:
        counting.check_mpp(mpp)
    opts.check_out_dir(out)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    run = score_images(paths, out_dir=out, mpp=mpp, threshold=threshold, hpf_area_mm2=hpf_area, roi=roi,
                       roi_class=roi_class, model=model, overwrite=overwrite, progress=opts.resolve_progress(progress),
                       on_error=lambda message: typer.echo(f"error: {message}", err=True))
    results = run.results
    _print_warnings(run.warnings)
    _render(results, fmt, hpf_area)
    caveat = detector_caveat(run.detector)
    if fmt == "table" and results and caveat:
        typer.echo(caveat)
    if out is not None and fmt == "table":
        Console(stderr=True).print(f"outputs written to {out}/ (per image: *_mitoses.csv, *_mitoses.geojson, "
                                   "*_overlay.png, *_candidates.json; summary.json, mitoses.csv; "
                                   "review with `spindledx review`)")
    if run.failures:
        raise BadInputError(f"{len(run.failures)} of {run.n_images} images could not be scored"
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
    from spindledx.mitosis.evaluate import detection_scores
    from spindledx.mitosis.run import evaluate_images

    fmt = fmt.value
    evaluation = evaluate_images(truth, paths, pred=pred, mpp=mpp, threshold=threshold, radius_um=radius_um,
                                 on_error=lambda message: typer.echo(f"error: {message}", err=True))
    summary, failures = evaluation.document, evaluation.failures
    rows, notes = summary["images"], summary["warnings"]
    tp, fp, fn = summary["tp"], summary["fp"], summary["fn"]
    precision, recall, f1 = detection_scores(tp, fp, fn)
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


def count_points(
    points: Path = typer.Argument(..., metavar="POINTS", help="QuPath GeoJSON (points, detections) or CSV x,y[,class]"
                                                           " in pixels of the image."),
    image: Path | None = typer.Option(None, "--image", help="The image the points were marked on (for µm/px and "
                                                           "tissue)."),
    slide: Path | None = typer.Option(None, "--slide", help="Or the whole-slide image they were marked on: the count "
                                                           "is then the hotspot's, as in `slide`."),
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
    from spindledx.mitosis.run import count_points as count

    fmt = fmt.value
    if mpp is not None:
        counting.check_mpp(mpp)
    opts.check_out_dir(out)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    if (image is None) == (slide is None):
        raise BadInputError("give the image the points belong to with --image, or a whole slide with --slide")
    if slide is not None:
        from spindledx.mitosis.run import count_points_slide

        _render_slide_points(count_points_slide(points, slide, point_class=point_class, mpp=mpp, out_dir=out,
                                                hpf_area_mm2=hpf_area, roi=roi, roi_class=roi_class,
                                                overwrite=overwrite), slide, fmt)
        return
    counted = count(points, image, point_class=point_class, mpp=mpp, out_dir=out, hpf_area_mm2=hpf_area, roi=roi,
                    roi_class=roi_class, overwrite=overwrite)
    _print_warnings(counted.warnings)
    _render([counted.result], fmt, hpf_area)


def _render_slide_points(doc: dict, slide: Path, fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    c = doc["answer"]
    typer.echo(f"{slide.name}: {doc['n_points']} points, {c['count']} counted ({c['method']}) in "
               f"{c['area_mm2']:.3f} mm² = {c['mitoses_per_mm2']:.2f}/mm² = {c['mitoses_per_10hpf']:.1f}/10 HPF "
               f"(95 % {c['mitoses_per_10hpf_ci95'][0]:.1f}-{c['mitoses_per_10hpf_ci95'][1]:.1f}; {c['n_hpf']:.2f} "
               f"HPF{', extrapolated' if c['extrapolated'] else ''})"
               + (f"; flagged: {', '.join(c['flags'])}" if c["flags"] else ""))
    for message in c["flag_messages"]:
        typer.echo(f"flag: {message}")


def register(app: typer.Typer) -> None:
    """Add ``score``, ``evaluate`` and ``count-points`` to the spindledx app."""
    app.command("score")(score)
    app.command("evaluate")(evaluate)
    app.command("count-points")(count_points)
