"""``run_case``: the ``case`` command as a library call. Scores the H&E evidence (tiles or a slide's hotspot),
ranks the IHC differential with that count, grades, and writes ``case.json``, ``case.html``, ``review.html`` and
``summary.json`` into an output folder."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spindledx import counting
from spindledx.errors import BadInputError

CASE_SHAPES = ("circle", "square", "fields")
"""Hotspot windows of a slide that give one count."""


@dataclass(frozen=True)
class CaseRun:
    """What :func:`run_case` wrote.

    Attributes
    ----------
    case
        The ``case.json`` document (differential, count, grade, provenance, ...).
    count
        The pooled count of the evidence.
    out_dir
        The output folder.
    outputs
        Files written.
    warnings
        Warnings of the evidence (one line each).
    """

    case: dict[str, Any]
    count: dict[str, Any]
    out_dir: Path
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def case_detector(threshold: float | None, review_margin: float) -> tuple[Any, float, float, dict[str, Any]]:
    """(the shipped detector returning candidates down to the review floor, threshold, review floor, model
    provenance)."""
    from spindledx.detection.model import load_shipped_model

    return _with_floor(load_shipped_model(), None, threshold, review_margin)


def card_detector(model: str | Path, threshold: float | None,
                  review_margin: float) -> tuple[Any, float, float, dict[str, Any]]:
    """As :func:`case_detector`, for a model card (the model contract) instead of the shipped model."""
    from spindledx.detection.model import load_model_file

    return _with_floor(load_model_file(model), model, threshold, review_margin)


def _with_floor(loaded: Any, model: str | Path | None, threshold: float | None,
                review_margin: float) -> tuple[Any, float, float, dict[str, Any]]:
    from spindledx.detection import shipped
    from spindledx.provenance import model_provenance

    thr = loaded.threshold if threshold is None else float(threshold)
    floor = max(0.0, thr - review_margin)
    detector = shipped.shipped_detector(floor, prepare=True, model=model)
    card = {} if model is None else {"model_card": str(model)}
    return detector, thr, floor, {**model_provenance(loaded.description), **card}


REPORT_FIELD_MAX_CHARS = 120


def report_fields(**fields: str | None) -> dict[str, str]:
    """The report header fields that were given (case id, specimen, pathologist), checked: one printable line of at
    most :data:`REPORT_FIELD_MAX_CHARS` characters each."""
    out = {}
    for name, value in fields.items():
        if value is None or not str(value).strip():
            continue
        text = str(value).strip()
        if len(text) > REPORT_FIELD_MAX_CHARS or not text.isprintable():
            raise BadInputError(f"{name}: one printable line of at most {REPORT_FIELD_MAX_CHARS} characters",
                                parameters=name)
        out[name] = text
    return out


def run_case(panel: str, *, out_dir: str | Path, tiles: Iterable[str | Path] = (), slide: str | Path | None = None,
             shape: str = "circle", area_mm2: float | None = None, site: str | None = None,
             age: str | float | None = None, sex: str | None = None, necrosis: str | None = None,
             atypia: str | None = None, pattern: str | Sequence[str] = (), differentiation: int | None = None,
             mpp: float | None = None, threshold: float | None = None, review_margin: float = 0.2,
             hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, ignore_unknown: bool = False,
             use_flagged_count: bool = False, roi: str | Path | None = None, roi_class: str | None = None,
             model: str | Path | None = None, overwrite: bool = False,
             detector: tuple[Any, float, float, dict[str, Any]] | None = None, case_id: str | None = None,
             specimen: str | None = None, pathologist: str | None = None, pdf: bool = False) -> CaseRun:
    """Case workup: count mitoses on the H&E evidence, rank the IHC differential with that count, grade, report
    (what ``spindledx case`` does).

    Parameters
    ----------
    panel
        IHC panel, e.g. ``"actin+ desmin+ CK-pan- CD34-"`` (the grammar of ``interpret_panel``).
    out_dir
        Output folder (``case.json``, ``case.html``, ``review.html``, per-image files, ``summary.json``).
    tiles, slide
        The H&E evidence: tiles or folders of tiles, or one whole-slide image whose hotspot gives the count.
    shape, area_mm2
        With ``slide``: hotspot window (circle, square or fields) and its area in mm² (default 10 HPF).
    site, age, sex, necrosis, atypia, pattern
        Clinical and H&E findings, in the words ``interpret_panel`` takes (patterns comma-separated or a list).
    differentiation
        FNCLCC differentiation score 1-3 (default: from the leading entity).
    mpp, threshold, review_margin
        Resolution override, detection threshold (default: the model's) and how far below it candidates go to
        the review page.
    hpf_area_mm2
        Area of one HPF.
    ignore_unknown
        Skip unknown markers with a warning.
    use_flagged_count
        Use a flagged count (implausible density, out of distribution) for the differential and the grade.
    roi, roi_class
        Region(s) of interest of the one tile or slide (GeoJSON as QuPath exports annotations) and the class of
        the annotations to use.
    model
        A model card (the model contract) instead of the shipped model.
    overwrite
        Replace a case already in ``out_dir``.
    detector
        ``(detector, threshold, review floor, model provenance)`` instead of the shipped model
        (:func:`case_detector`), e.g. a test double.
    case_id, specimen, pathologist
        Shown in the header of every page of the case report and kept in ``case.json`` (``report``).
    pdf
        Also write ``case.pdf``, the report to file (:func:`spindledx.case.pdf.render_case_pdf`); ``case.json``
        then says so (``report_pdf``), and ``review --import`` writes ``case_reviewed.pdf`` as well.

    Example: ``run = run_case("actin+ desmin+ CK-pan- CD34-", site="lung", tiles=["sample_slides"],
    out_dir="case_1"); print(run.case["differential"][0]["name"])``
    """
    from spindledx.case.workup import CaseOptions, check_options, differential
    from spindledx.ihc.findings import parse_age, parse_atypia, parse_sex

    out = Path(out_dir)
    report = report_fields(case_id=case_id, specimen=specimen, pathologist=pathologist)
    tile_paths = [Path(p) for p in tiles]
    slide_path = None if slide is None else Path(slide)
    if slide_path is not None and tile_paths:
        raise BadInputError("give the H&E evidence as tiles or as slide, not both", parameters=("tiles", "slide"))
    if slide_path is None and not tile_paths:
        raise BadInputError("give the H&E evidence with tiles PATH... or slide PATH", parameters=("tiles", "slide"))
    if slide_path is not None and not slide_path.is_file():
        raise BadInputError(f"{slide_path}: no such file")
    age, sex, atypia = parse_age(age), parse_sex(sex), parse_atypia(atypia)  # the words `panel` takes
    if shape not in CASE_SHAPES:
        raise BadInputError(f"shape {shape!r}: use {', '.join(CASE_SHAPES)}", parameters="shape")
    raw_patterns = [pattern] if isinstance(pattern, str) else list(pattern or [])
    patterns = tuple(p.strip() for raw in raw_patterns for p in re.split(r"[,;]", raw) if p.strip())
    if mpp is not None:
        counting.check_mpp(mpp)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise BadInputError(f"threshold must be between 0 and 1 (got {threshold})", parameters="threshold")
    if not 0.0 <= review_margin <= 1.0:
        raise BadInputError("review_margin must be between 0 and 1", parameters="review_margin")
    hpf = hpf_area_mm2
    opts = CaseOptions(panel=panel, site=site, age=age, sex=sex, necrosis=necrosis,
                       atypia=atypia, pattern=patterns, differentiation=differentiation,
                       ignore_unknown=ignore_unknown, hpf_area_mm2=hpf, use_flagged_count=use_flagged_count)
    check_options(opts)
    differential(opts, None)  # a bad panel or site fails here, before any image is scored
    if slide_path is None:
        from spindledx.engine.folder import collect_images

        images = collect_images(tile_paths)[0]  # repeats scored once
    else:
        images = [slide_path]
    from spindledx.slide.area import load_region

    region = load_region(roi, roi_class, n_images=len(images))
    if out.exists() and not out.is_dir():
        raise BadInputError(f"out_dir {out}: exists and is not a folder", parameters="out_dir")
    from spindledx.engine.folder import output_folder

    settings = {"panel": panel, "site": site, "age": age, "sex": opts.sex, "necrosis": necrosis, "atypia": atypia,
                "pattern": list(patterns), "differentiation": differentiation, "ignore_unknown": ignore_unknown,
                "mpp": mpp, "threshold": threshold, "review_margin": review_margin, "hpf_area_mm2": hpf,
                "evidence": [os.path.realpath(p) for p in images], "slide": slide_path is not None, "shape": shape,
                "area_mm2": area_mm2, "use_flagged_count": use_flagged_count,
                "roi": None if roi is None else os.path.realpath(roi), "roi_class": roi_class,
                "model": None if model is None else os.path.realpath(model), "report": report, "pdf": bool(pdf)}
    taken = (f"out_dir {out}: already holds a case (case.json); choose another folder, or overwrite=True to "
             "replace it")
    if (out / "case.json").exists() and not overwrite:
        raise BadInputError(taken, parameters=("out_dir", "overwrite"))
    with output_folder(out, "case", settings, overwrite=overwrite, state=("slide_run",)):
        if (out / "case.json").exists() and not overwrite:  # written by a run that finished while we waited
            raise BadInputError(taken, parameters=("out_dir", "overwrite"))
        return _run_case(opts, images, out, slide=slide_path, shape=shape, area_mm2=area_mm2, mpp=mpp,
                         threshold=threshold, review_margin=review_margin, hpf=hpf, panel=panel, site=site, age=age,
                         necrosis=necrosis, atypia=atypia, patterns=patterns, differentiation=differentiation,
                         detector=detector, roi=region, model=model, report=report, pdf=bool(pdf))


def _run_case(opts: Any, images: list[Path], out: Path, *, slide: Path | None, shape: str,
              area_mm2: float | None, mpp: float | None, threshold: float | None, review_margin: float, hpf: float,
              panel: str, site: str | None, age: float | None, necrosis: str | None, atypia: str | None,
              patterns: tuple[str, ...], differentiation: int | None,
              detector: tuple[Any, float, float, dict[str, Any]] | None, roi: Any = None,
              model: str | Path | None = None, report: dict[str, str] | None = None, pdf: bool = False) -> CaseRun:
    """Score the evidence, build the case and write its files (the caller holds the output folder)."""
    from spindledx.case.evidence import score_tiles
    from spindledx.case.page import render_case_html
    from spindledx.case.workup import build_case, pooled_count
    from spindledx.files import atomic_write_text, output_stems, printable
    from spindledx.provenance import provenance
    from spindledx.review.page import write_review_page
    from spindledx.summary import write_summary

    if detector is None:
        detector = case_detector(threshold, review_margin) if model is None else \
            card_detector(model, threshold, review_margin)
    run_detector, thr, floor, model_prov = detector
    if slide is None:
        scored = score_tiles(images, stems=output_stems(images), detector=run_detector, threshold=thr,
                             review_floor=floor, out_dir=out, model=model_prov, mpp=mpp, hpf_area_mm2=hpf, roi=roi)
    else:
        from spindledx.case.evidence import score_slide

        scored = score_slide(slide, detector=run_detector, threshold=thr, review_floor=floor, out_dir=out,
                             model=model_prov, mpp=mpp, hpf_area_mm2=hpf, shape=shape, area_mm2=area_mm2, roi=roi)
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
    if report:
        doc["report"] = report
    if pdf:
        doc["report_pdf"] = True
    written = [*scored.outputs, atomic_write_text(out / "case.json", json.dumps(doc, indent=2, ensure_ascii=False)),
               write_review_page(out, scored.candidates),
               atomic_write_text(out / "case.html", render_case_html(doc, thumbnails=scored.thumbnails))]
    if pdf:
        from spindledx.case.pdf import write_case_pdf

        written.append(write_case_pdf(out / "case.pdf", doc, thumbnails=scored.thumbnails))
    summary = write_summary(
        out, "case", provenance=prov, inputs=[printable(p) for p in images], outputs=written,
        options={"panel": panel, "site": site, "age": age, "sex": opts.sex, "necrosis": necrosis,
                 "atypia": atypia, "pattern": list(patterns), "differentiation": differentiation,
                 "mpp": mpp, "threshold": thr, "review_margin": review_margin, "hpf_area_mm2": hpf,
                 "roi": None if roi is None else roi.source,
                 **({"shape": shape, "area_mm2": area_mm2} if slide is not None else {})},
        counts={"images": len(scored.records), "mitoses": count["count"], "area_mm2": count["area_mm2"],
                "candidates_below_threshold": sum(r["n_candidates_below_threshold"] for r in scored.records)},
        results={"differential": [{k: e[k] for k in ("id", "name", "probability")}
                                  for e in doc["differential"][:3]],
                 "count": count, "grade": doc["grade"]},
        flags=[*scored.flags, *(count.get("flags") or [])], warnings=doc.get("warnings") or [])
    return CaseRun(case=doc, count=count, out_dir=out, outputs=[*written, Path(summary)],
                   warnings=list(scored.warnings))
