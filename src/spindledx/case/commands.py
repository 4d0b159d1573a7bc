"""CLI commands of the `case` stage (registered by :mod:`spindledx.cli`): ``case`` and ``review``."""

from __future__ import annotations

import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from spindledx import counting
from spindledx.cli_options import (
    AllowUnusualHpf,
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
from spindledx.cli_options import Model as ModelCard
from spindledx.errors import BadInputError

if TYPE_CHECKING:
    from spindledx.case.workup import CaseOptions


class CaseShape(StrEnum):
    """``case --shape``: the hotspot windows of ``slide`` that give one count."""

    circle = "circle"
    square = "square"
    fields = "fields"


def _load_detector(threshold: float | None, review_margin: float):
    """(detector returning candidates down to the review floor, threshold, review floor, model provenance).

    A seam for tests, which replace it with a fake detector.
    """
    from spindledx.detection.model import load_shipped_model
    from spindledx.mitosis.score import default_detector
    from spindledx.pages.provenance import model_provenance

    model = load_shipped_model()
    thr = model.threshold if threshold is None else float(threshold)
    floor = max(0.0, thr - review_margin)
    return default_detector(threshold=floor), thr, floor, model_provenance(model.description)


def _load_card_detector(model: Path, threshold: float | None, review_margin: float):
    """As :func:`_load_detector`, for a ``--model`` card (the model contract) instead of the shipped model."""
    from spindledx.detection.detect import ModelDetector
    from spindledx.detection.model import load_model_file
    from spindledx.pages.provenance import model_provenance

    loaded = load_model_file(model)
    thr = loaded.threshold if threshold is None else float(threshold)
    floor = max(0.0, thr - review_margin)
    detector = ModelDetector(threshold=floor, model_path=str(model))
    return detector, thr, floor, {**model_provenance(loaded.description), "model_card": str(model)}


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
) -> None:
    """Case workup: count mitoses on the H&E evidence, rank the IHC differential with that count, grade, report.

    Example: spindledx case "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung --tiles sample_slides --out case_1
    """
    from spindledx.case.workup import CaseOptions, check_options
    from spindledx.mitosis.commands import collect_images

    extra = list(ctx.args)
    if extra and not tiles:
        raise BadInputError(f"unexpected argument '{extra[0]}' (tiles go after --tiles)")
    tile_paths = [*(tiles or []), *(Path(a) for a in extra)]
    if slide is not None and tile_paths:
        raise BadInputError("give the H&E evidence as --tiles or as --slide, not both")
    if slide is None and not tile_paths:
        raise BadInputError("give the H&E evidence with --tiles PATH... or --slide PATH")
    if slide is not None and not slide.is_file():
        raise BadInputError(f"{slide}: no such file")
    from spindledx.ihc.findings import parse_age, parse_atypia, parse_sex

    age, sex, atypia = parse_age(age), parse_sex(sex), parse_atypia(atypia)  # the words `panel` takes
    shape = CaseShape(shape).value
    patterns = tuple(p.strip() for raw in (pattern or []) for p in re.split(r"[,;]", raw) if p.strip())
    if mpp is not None:
        counting.check_mpp(mpp)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BadInputError(f"--threshold must be between 0 and 1 (got {threshold})")
    if not 0.0 <= review_margin <= 1.0:
        raise BadInputError("--review-margin must be between 0 and 1")
    hpf = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective, allow_unusual_hpf=allow_unusual_hpf)
    opts = CaseOptions(panel=panel, site=site, age=age, sex=sex, necrosis=necrosis,
                       atypia=atypia, pattern=patterns, differentiation=differentiation,
                       ignore_unknown=ignore_unknown, hpf_area_mm2=hpf, use_flagged_count=use_flagged_count)
    check_options(opts)
    from spindledx.case.workup import differential

    differential(opts, None)  # a bad panel or site fails here, before any image is scored
    images = collect_images([str(p) for p in tile_paths])[0] if slide is None else [slide]  # repeats scored once
    from spindledx.mitosis.commands import load_region

    region = load_region(roi, roi_class, n_images=len(images))
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out}: exists and is not a folder")
    from spindledx.engine.folder import output_folder

    settings = {"panel": panel, "site": site, "age": age, "sex": opts.sex, "necrosis": necrosis, "atypia": atypia,
                "pattern": list(patterns), "differentiation": differentiation, "ignore_unknown": ignore_unknown,
                "mpp": mpp, "threshold": threshold, "review_margin": review_margin, "hpf_area_mm2": hpf,
                "evidence": [os.path.realpath(p) for p in images], "slide": slide is not None, "shape": shape,
                "area_mm2": area_mm2, "use_flagged_count": use_flagged_count,
                "roi": None if roi is None else os.path.realpath(roi), "roi_class": roi_class,
                "model": None if model is None else os.path.realpath(model)}
    if (out / "case.json").exists() and not overwrite:
        raise BadInputError(f"--out {out}: already holds a case (case.json); choose another folder, or --overwrite "
                            "to replace it")
    with output_folder(out, "case", settings, overwrite=overwrite, state=("slide_run",)):
        if (out / "case.json").exists() and not overwrite:  # written by a run that finished while we waited
            raise BadInputError(f"--out {out}: already holds a case (case.json); choose another folder, or "
                                "--overwrite to replace it")
        _run_case(opts, images, out, slide=slide, shape=shape, area_mm2=area_mm2, mpp=mpp, threshold=threshold,
                  review_margin=review_margin, hpf=hpf, panel=panel, site=site, age=age, necrosis=necrosis,
                  atypia=atypia, patterns=patterns, differentiation=differentiation, roi=region, model=model)


def _run_case(opts: CaseOptions, images: list[Path], out: Path, *, slide: Path | None, shape: str,
              area_mm2: float | None, mpp: float | None, threshold: float | None, review_margin: float, hpf: float,
              panel: str, site: str | None, age: float | None, necrosis: str | None, atypia: str | None,
              patterns: tuple[str, ...], differentiation: int | None, roi: object = None,
              model: Path | None = None) -> None:
    """Score the evidence, build the case and write its files (the caller holds the output folder)."""
    from spindledx.case.evidence import score_tiles
    from spindledx.case.page import render_case_html
    from spindledx.case.review import write_review_page
    from spindledx.case.workup import build_case
    from spindledx.files import atomic_write_text as write_text_atomic
    from spindledx.files import output_stems, printable
    from spindledx.pages import provenance

    if model is None:
        detector, thr, floor, model_prov = _load_detector(threshold, review_margin)
    else:
        detector, thr, floor, model_prov = _load_card_detector(model, threshold, review_margin)
    if slide is None:
        scored = score_tiles(images, stems=output_stems(images), detector=detector, threshold=thr,
                             review_floor=floor, out_dir=out, model=model_prov, mpp=mpp, hpf_area_mm2=hpf, roi=roi)
    else:
        from spindledx.case.evidence import score_slide

        scored = score_slide(slide, detector=detector, threshold=thr, review_floor=floor, out_dir=out, model=model_prov,
                             mpp=mpp, hpf_area_mm2=hpf, shape=shape, area_mm2=area_mm2, roi=roi)
    from spindledx.case.workup import pooled_count

    count = pooled_count(scored.records, hpf_area_mm2=hpf, flags=scored.flags,
                         method="detector" if slide is None else f"detector, {scored.records[0]['method']}")
    count["counted_area"] = [r.get("counted_area") for r in scored.records]
    base = provenance(include_model=False)
    prov = {"spindledx_version": base["spindledx_version"], **model_prov, "threshold": thr, "review_floor": floor,
            "kb_version": base["kb_version"], "date": base["date"]}
    doc = build_case(opts, scored.records, count, provenance=prov,
                     evidence_source=({"kind": "tiles", "paths": [str(p) for p in images]} if slide is None else
                                      {"kind": "slide", "path": str(slide), "shape": shape,
                                       "method": scored.records[0]["method"],
                                       "hotspot": scored.records[0]["hotspot"]}),
                     warnings=scored.warnings)
    written = [*scored.outputs, write_text_atomic(out / "case.json", json.dumps(doc, indent=2, ensure_ascii=False)),
               write_review_page(out, scored.candidates),
               write_text_atomic(out / "case.html", render_case_html(doc, thumbnails=scored.thumbnails))]
    from spindledx.summary import write_summary

    write_summary(out, "case", provenance=prov, inputs=[printable(p) for p in images], outputs=written,
                  options={"panel": panel, "site": site, "age": age, "sex": opts.sex, "necrosis": necrosis,
                           "atypia": atypia, "pattern": list(patterns), "differentiation": differentiation,
                           "mpp": mpp, "threshold": thr, "review_margin": review_margin, "hpf_area_mm2": hpf,
                           "roi": None if roi is None else roi.source,
                           **({"shape": shape, "area_mm2": area_mm2} if slide is not None else {})},
                  counts={"images": len(scored.records), "mitoses": count["count"], "area_mm2": count["area_mm2"],
                          "candidates_below_threshold": sum(r["n_candidates_below_threshold"]
                                                            for r in scored.records)},
                  results={"differential": [{k: e[k] for k in ("id", "name", "probability")}
                                            for e in doc["differential"][:3]],
                           "count": count, "grade": doc["grade"]},
                  flags=[*scored.flags, *(count.get("flags") or [])], warnings=doc.get("warnings") or [])
    for w in scored.warnings:
        typer.echo(f"warning: {w}", err=True)
    lead = doc["differential"][0]
    g = doc["grade"]
    grade_text = (f"grade {g['grade']}" if g["status"] == "graded" else
                  f"no FNCLCC grade ({g['status'].replace('_', ' ')})")
    typer.echo(f"{lead['name']} {100 * lead['probability']:.0f}%; {count['count']} mitoses in "
               f"{count['area_mm2']:.3f} mm² = {count['mitoses_per_mm2']:.1f}/mm² = {count['mitoses_per_10hpf']:.1f}"
               f"/10 HPF ({count['n_hpf']:.2f} HPF counted{', extrapolated' if count['extrapolated'] else ''}); "
               f"{grade_text}")
    typer.echo(f"report: {out / 'case.html'}  (review the figures: {out / 'review.html'})")


def review(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Output folder of `case` (or `score --out`)."),
    import_path: Path | None = typer.Option(None, "--import", help="decisions.json exported from review.html."),
    replace: bool = typer.Option(False, "--replace", help="With --import: replace an earlier review that has more "
                                                          "decisions or another reviewer."),
) -> None:
    """Write review.html for an output folder, or import the reviewer's decisions and recompute the counts.

    Example: spindledx review case_1 --import decisions.json
    """
    if import_path is None:
        if replace:
            raise BadInputError("--replace applies to --import")
        from spindledx.case.review import write_review_page
        from spindledx.engine.folder import guest_lock

        if not out_dir.is_dir():
            raise BadInputError(f"{out_dir}: no such folder")
        with guest_lock(out_dir):
            path = write_review_page(out_dir)
        typer.echo(f"review page: {path}")
        return
    from spindledx.case.decisions import import_decisions

    result = import_decisions(out_dir, import_path, replace=replace)
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
    typer.echo(f"written: {result['paths']['review']}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the spindledx app."""
    app.command("case", context_settings={"allow_extra_args": True})(case)
    app.command("review")(review)
