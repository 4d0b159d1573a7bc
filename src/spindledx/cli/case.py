"""``case`` and ``review``: options over :func:`spindledx.case.run.run_case` and
:func:`spindledx.case.decisions.import_decisions` / :func:`spindledx.review.page.write_review_page`."""

from __future__ import annotations

from pathlib import Path

import typer

from spindledx import counting
from spindledx.cli.options import (
    AllowUnusualHpf,
    CaseShape,
    FieldNumber,
    HpfArea,
    Mpp,
    Objective,
    Overwrite,
    Roi,
    RoiClass,
    Threshold,
    UseFlaggedCount,
)
from spindledx.cli.options import Model as ModelCard
from spindledx.errors import BadInputError


def case(
    ctx: typer.Context,
    panel: str = typer.Argument(..., metavar="TEXT", help="IHC panel, e.g. \"actin+ desmin+ CK-pan- CD34-\"."),
    tiles: list[Path] = typer.Option(None, "--tiles", help="H&E tiles or folders of tiles (as `score`); "
                                                           "several paths may follow one --tiles."),
    slide: Path | None = typer.Option(None, "--slide", help="A whole-slide image: the count is its hotspot's "
                                                            "(as `slide`)."),
    shape: CaseShape = typer.Option(CaseShape.circle, "--shape", case_sensitive=False,
                                    help="With --slide: hotspot window circle, square or fields (2 x 5 block of "
                                         "HPF-sized squares), as in `slide`."),
    area_mm2: float | None = typer.Option(None, "--area-mm2", help="With --slide: hotspot area in mm² (default "
                                                                   "10 HPF)."),
    out: Path = typer.Option(..., "--out", help="Output folder (case.json, case.html, review.html, per-image files)."),
    site: str | None = typer.Option(None, "--site", help="Tumour site (lung, uterus, ...)."),
    age: str | None = typer.Option(None, "--age", help="Age in years (0-120), as in `panel`."),
    sex: str | None = typer.Option(None, "--sex", help="F or M, as in `panel`."),
    necrosis: str | None = typer.Option(None, "--necrosis", help="Tumour cell necrosis: none (or no), <50 or >=50 "
                                                                  "(% of the tumour; the grade needs it), or yes."),
    atypia: str | None = typer.Option(None, "--atypia", help="none, mild, moderate or marked, as in `panel`."),
    pattern: list[str] = typer.Option(None, "--pattern", help="Pattern(s) as in `panel` (fascicular, storiform, "
                                                              "...), repeatable or comma-separated."),
    differentiation: int | None = typer.Option(None, "--differentiation", help="FNCLCC differentiation score "
                                                                               "1-3 (default: from the entity)."),
    mpp: Mpp = None,
    threshold: Threshold = None,
    review_margin: float = typer.Option(0.2, "--review-margin", help="Candidates down to threshold minus this go "
                                                                     "to the review page."),
    hpf_area_mm2: HpfArea = None,
    field_number: FieldNumber = None,
    objective: Objective = None,
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown", help="Skip unknown markers with a warning."),
    allow_unusual_hpf: AllowUnusualHpf = False,
    use_flagged_count: UseFlaggedCount = False,
    roi: Roi = None,
    roi_class: RoiClass = None,
    model: ModelCard = None,
    overwrite: Overwrite = False,
    case_id: str | None = typer.Option(None, "--case-id", help="Case or accession number, in the report header."),
    specimen: str | None = typer.Option(None, "--specimen", help="Specimen (e.g. 'lung, wedge resection'), in the "
                                                                 "report header."),
    pathologist: str | None = typer.Option(None, "--pathologist", help="Reporting pathologist, in the report header "
                                                                       "and the sign-off."),
    pdf: bool = typer.Option(False, "--pdf", help="Also write case.pdf, the report to file (A4, a header on every "
                                                  "page); `review --import` then writes case_reviewed.pdf."),
) -> None:
    """Case workup: count mitoses on the H&E evidence, rank the IHC differential with that count, grade, report.

    Example: spindledx case "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung --tiles sample_slides --out case_1

    Example: spindledx case "actin+ desmin+ CK-pan-" --site lung --tiles sample_slides --out case_2 --case-id S1 --pdf
    """
    from spindledx.case.run import run_case

    extra = list(ctx.args)
    if extra and not tiles:
        raise BadInputError(f"unexpected argument '{extra[0]}' (tiles go after --tiles)")
    hpf = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective, allow_unusual_hpf=allow_unusual_hpf)
    run = run_case(panel, out_dir=out, tiles=[*(tiles or []), *(Path(a) for a in extra)], slide=slide,
                   shape=CaseShape(shape).value, area_mm2=area_mm2, site=site, age=age, sex=sex, necrosis=necrosis,
                   atypia=atypia, pattern=pattern or [], differentiation=differentiation, mpp=mpp,
                   threshold=threshold, review_margin=review_margin, hpf_area_mm2=hpf,
                   ignore_unknown=ignore_unknown, use_flagged_count=use_flagged_count, roi=roi, roi_class=roi_class,
                   case_id=case_id, specimen=specimen, pathologist=pathologist, pdf=pdf,
                   model=model, overwrite=overwrite)
    for w in run.warnings:
        typer.echo(f"warning: {w}", err=True)
    doc, count = run.case, run.count
    lead = doc["differential"][0]
    g = doc["grade"]
    grade_text = (f"grade {g['grade']}" if g["status"] == "graded" else
                  f"no FNCLCC grade ({g['status'].replace('_', ' ')})")
    typer.echo(f"{lead['name']} {100 * lead['probability']:.0f}%; {count['count']} mitoses in "
               f"{count['area_mm2']:.3f} mm² = {count['mitoses_per_mm2']:.1f}/mm² = {count['mitoses_per_10hpf']:.1f}"
               f"/10 HPF ({count['n_hpf']:.2f} HPF counted{', extrapolated' if count['extrapolated'] else ''}); "
               f"{grade_text}")
    typer.echo(f"report: {out / 'case.html'}  (review the figures: {out / 'review.html'})")
    if pdf:
        typer.echo(f"report to file: {out / 'case.pdf'}")


def review(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Output folder of `case` (or `score --out`)."),
    import_path: Path | None = typer.Option(None, "--import", help="decisions.json exported from review.html."),
    replace: bool = typer.Option(False, "--replace", help="With --import: replace an earlier review that has more "
                                                          "decisions or another reviewer."),
    pdf: bool | None = typer.Option(None, "--pdf/--no-pdf", help="With --import on a case: write case_reviewed.pdf "
                                                                 "(default: when the case was made with --pdf)."),
) -> None:
    """Write review.html for an output folder, or import the reviewer's decisions and recompute the counts.

    Example: spindledx review case_1 --import decisions.json
    """
    if import_path is None:
        if replace or pdf is not None:
            raise BadInputError(f"{'--replace' if replace else '--pdf'} applies to --import")
        from spindledx.engine.folder import guest_lock
        from spindledx.review.page import write_review_page

        if not out_dir.is_dir():
            raise BadInputError(f"{out_dir}: no such folder")
        with guest_lock(out_dir):
            path = write_review_page(out_dir)
        typer.echo(f"review page: {path}")
        return
    from spindledx.case.decisions import import_decisions

    result = import_decisions(out_dir, import_path, replace=replace, pdf=pdf)
    r = result["review"]
    c = r["count"]
    typer.echo(f"reviewed by {r['reviewer'] or 'an unnamed reviewer'} ({r['date'] or 'undated'}): {r['n_reviewed']} "
               f"of {r['n_candidates']} candidates; detector count {r['detector_count']}, confirmed count "
               f"{r['confirmed_count']} in {c['area_mm2']:.3f} mm² = {c['mitoses_per_mm2']:.1f}/mm² = "
               f"{c['mitoses_per_10hpf']:.1f}/10 HPF ({c['n_hpf']:.2f} HPF counted"
               f"{', extrapolated' if c['extrapolated'] else ''})")
    a = r["agreement"]
    kappa = "–" if a["kappa"] is None else f"{a['kappa']:.2f}"
    typer.echo(f"agreement: {a['detections_confirmed']} of {a['detections_reviewed']} reviewed detections confirmed, "
               f"{a['added_below_threshold']} figures added from below the threshold, Cohen's kappa {kappa}")
    for note in r["notes"]:
        typer.echo(f"note: {note}")
    if result["case"] is not None:
        case_doc = result["case"]
        lead = case_doc["differential"][0]
        g = case_doc["grade"]
        typer.echo(f"case: {lead['name']} {100 * lead['probability']:.0f}%; grade: "
                   + (str(g["grade"]) if g["status"] == "graded" else g["status"].replace("_", " ")))
        typer.echo(f"report: {result['paths']['case_html']}")
        if "case_pdf" in result["paths"]:
            typer.echo(f"report to file: {result['paths']['case_pdf']}")
    typer.echo(f"written: {result['paths']['review']}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the spindledx app."""
    app.command("case", context_settings={"allow_extra_args": True})(case)
    app.command("review")(review)
