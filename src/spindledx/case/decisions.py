"""Import a reviewer's ``decisions.json``: the confirmed count, its densities, agreement with the detector, the
reviewed GeoJSON and, for a case, the re-derived differential and grade.

Rules:

* decisions made on another run (another candidate set or model: the run id differs) are refused;
* a candidate marked ``y`` counts, ``n`` does not; ``u`` (unsure) and unreviewed candidates keep the detector's
  call (counted when at or above the threshold), and the result says how many were left to the detector;
* agreement: detections confirmed among those reviewed (positive predictive value of the detector on this case),
  figures added from below the threshold, and Cohen's kappa between the detector's call and the reviewer's on
  candidates decided ``y`` or ``n`` (Cohen J, Educ Psychol Meas 1960;20:37).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spindledx import counting
from spindledx.errors import BadInputError
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT

CONFIRMED_CLASS = "Mitosis (confirmed)"
REJECTED_CLASS = "Not mitosis"
UNSURE_CLASS = "Mitosis (unsure)"
DETECTOR_CLASS = "Mitosis"
CLASS_COLORS = {CONFIRMED_CLASS: [0, 170, 0], REJECTED_CLASS: [200, 0, 0], UNSURE_CLASS: [230, 160, 0],
                DETECTOR_CLASS: [255, 200, 0]}


MAX_DECISIONS_BYTES = 32 << 20
"""Largest decisions file read (a review of 100 000 candidates is about 5 MB)."""


def load_decisions(path: str | Path) -> dict[str, Any]:
    """Read and check a decisions file (format, run id, decisions list, reviewer, date); BadInputError with one
    line otherwise. The read is bounded (:data:`MAX_DECISIONS_BYTES`, regular files only) and ``NaN`` is refused."""
    from spindledx.files import read_json

    path = Path(path)
    doc = read_json(path, what="a JSON decisions file", max_bytes=MAX_DECISIONS_BYTES)
    if not isinstance(doc, dict) or doc.get("format") != DECISIONS_FORMAT:
        raise BadInputError(f"{path}: not a {DECISIONS_FORMAT} file (export it from review.html)")
    decisions = doc.get("decisions")
    if not isinstance(decisions, list) or not all(isinstance(d, dict) and isinstance(d.get("id"), str)
                                                  for d in decisions):
        raise BadInputError(f"{path}: 'decisions' must be a list of {{id, decision}} objects with text ids")
    bad = [d for d in decisions if d.get("decision") not in ("y", "n", "u", None)]
    if bad:
        shown = str(bad[0].get("decision"))[:40]
        raise BadInputError(f"{path}: decision '{shown}' for {bad[0]['id'][:80]} is not y, n or u")
    seen: dict[str, Any] = {}
    for d in decisions:
        if d["id"] in seen and seen[d["id"]] != d.get("decision"):
            raise BadInputError(f"{path}: candidate {d['id'][:80]} has two different decisions")
        seen[d["id"]] = d.get("decision")
    for key in ("run_id", "reviewer", "date", "model_sha256"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise BadInputError(f"{path}: '{key}' must be text (got {type(doc[key]).__name__})")
    return doc


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two binary raters; None when undefined (no pairs, or chance agreement is 1)."""
    n = len(pairs)
    if n == 0:
        return None
    po = sum(1 for a, b in pairs if a == b) / n
    pa = sum(1 for a, _ in pairs if a) / n
    pb = sum(1 for _, b in pairs if b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def apply_decisions(docs: Sequence[dict[str, Any]], decisions: dict[str, Any], *,
                    hpf_area_mm2: float) -> dict[str, Any]:
    """Per-image and pooled counts after review; refuses decisions for another run."""
    expected = run_id(docs)
    if decisions.get("run_id") != expected:
        model = (docs[0].get("model") or {}).get("model_sha256") if docs else None
        why = ("another detector model" if decisions.get("model_sha256") not in (None, model)
               else "another set of candidates")
        raise BadInputError(f"these decisions are for run {decisions.get('run_id')}, not this folder's run {expected} "
                            f"({why}): review this folder's review.html instead")
    by_id = {d["id"]: d.get("decision") for d in decisions["decisions"] if d.get("decision")}
    known = {c["id"] for doc in docs for c in doc["candidates"]}
    unknown = sorted(set(by_id) - known)
    if unknown:
        raise BadInputError(f"decisions name candidates that are not in this run ({unknown[0]}, ...)")
    images, pairs = [], []
    totals = {"y": 0, "n": 0, "u": 0, "unreviewed": 0, "unreviewed_counted": 0, "detections_reviewed": 0,
              "detections_confirmed": 0, "added_below_threshold": 0}
    for doc in docs:
        det_count = conf_count = 0
        for c in doc["candidates"]:
            d = by_id.get(c["id"])
            det_count += c["detected"]
            if d == "y":
                conf_count += 1
            elif d in ("u", None):
                conf_count += c["detected"]
                totals["u" if d == "u" else "unreviewed"] += 1
                if d is None and c["detected"]:
                    totals["unreviewed_counted"] += 1
            if d in ("y", "n"):
                totals[d] += 1
                pairs.append((bool(c["detected"]), d == "y"))
                if c["detected"]:
                    totals["detections_reviewed"] += 1
                    totals["detections_confirmed"] += d == "y"
                elif d == "y":
                    totals["added_below_threshold"] += 1
        area = float(doc.get("area_mm2") or counting.image_area_mm2(doc["width"], doc["height"], doc["mpp"]))
        images.append({"stem": doc["stem"], "image": doc["image"], "area_mm2": area, "detector_count": det_count,
                       "count": conf_count, "mitoses_per_mm2": counting.density_per_mm2(conf_count, area)})
    n_candidates = sum(len(doc["candidates"]) for doc in docs)
    n_reviewed = totals["y"] + totals["n"] + totals["u"]
    kappa = cohen_kappa(pairs)
    n_det = totals["detections_reviewed"]
    ppv = round(totals["detections_confirmed"] / n_det, 4) if n_det else None
    partial = totals["unreviewed"] > 0
    review = {
        "reviewer": str(decisions.get("reviewer") or "").strip() or None, "date": decisions.get("date"),
        "run_id": expected, "n_candidates": n_candidates, "n_reviewed": n_reviewed,
        "decisions": {"mitosis": totals["y"], "not_mitosis": totals["n"], "unsure": totals["u"]},
        "detector_count": sum(i["detector_count"] for i in images),
        "confirmed_count": sum(i["count"] for i in images),
        "partial": partial,
        "agreement": {"detections_reviewed": totals["detections_reviewed"],
                      "detections_confirmed": totals["detections_confirmed"],
                      "positive_predictive_value": ppv,
                      "added_below_threshold": totals["added_below_threshold"],
                      "kappa": None if kappa is None else round(kappa, 4), "n_pairs": len(pairs)},
        "images": images,
    }
    notes = []
    if partial:
        notes.append(f"partial review: {totals['unreviewed']} of {n_candidates} candidates were not reviewed and "
                     f"keep the detector's call ({totals['unreviewed_counted']} of them counted)")
    if totals["u"]:
        notes.append(f"{totals['u']} candidates marked unsure keep the detector's call")
    review["partial_note"] = "; ".join(notes) if notes else None
    review["notes"] = notes
    return review


def reviewed_geojson(doc: dict[str, Any], by_id: dict[str, str | None]) -> dict[str, Any]:
    """QuPath GeoJSON of one image's candidates with their review class (unreviewed detections stay
    ``Mitosis``; unreviewed candidates below threshold are left out)."""
    import uuid

    namespace = uuid.UUID("0d6a3c1e-55b4-4f9e-8f3a-1f6e2b7c9d40")
    features = []
    for c in doc["candidates"]:
        d = by_id.get(c["id"])
        cls = {"y": CONFIRMED_CLASS, "n": REJECTED_CLASS, "u": UNSURE_CLASS}.get(d or "", DETECTOR_CLASS)
        if d is None and not c["detected"]:
            continue
        features.append({"type": "Feature", "id": str(uuid.uuid5(namespace, f"{doc['stem']}#{c['id']}")),
                         "geometry": {"type": "Point", "coordinates": [c["x"], c["y"]]},
                         "properties": {"objectType": "detection", "name": c["id"],
                                        "classification": {"name": cls, "color": CLASS_COLORS[cls]},
                                        "measurements": {"score": c["score"], "detected": int(c["detected"])},
                                        "isLocked": False}})
    return {"type": "FeatureCollection", "features": features}


def read_case(out_dir: Path) -> dict[str, Any] | None:
    """The folder's ``case.json`` (checked: an object with a count, inputs, a differential and provenance), or
    None when the folder holds no case."""
    from spindledx.files import read_json

    case_path = out_dir / "case.json"
    if not case_path.exists() and not case_path.is_symlink():
        return None
    doc = read_json(case_path, what="a case.json written by `spindledx case`", max_bytes=MAX_DECISIONS_BYTES)
    ok = (isinstance(doc, dict) and isinstance(doc.get("count"), dict) and isinstance(doc.get("inputs"), dict)
          and isinstance(doc.get("differential"), list) and doc["differential"]
          and isinstance(doc.get("provenance"), dict) and isinstance(doc.get("tiles", []), list))
    if ok:
        try:
            ok = float(doc["count"]["hpf_area_mm2"]) > 0 and isinstance(doc["inputs"].get("panel"), str)
        except (KeyError, TypeError, ValueError):
            ok = False
    if not ok:
        raise BadInputError(f"{case_path}: not a case.json written by `spindledx case` (damaged or edited); run the "
                            "case again")
    return doc


def _check_targets(out_dir: Path, targets: Any) -> None:
    """Refuse, before anything is written, a target outside ``out_dir`` or one that is a link or not a file."""
    from spindledx.files import check_output_target

    for target in targets:
        if target.parent.resolve() != out_dir.resolve() or target.name in ("", ".", ".."):
            raise BadInputError(f"{target}: would be written outside {out_dir}")
        check_output_target(target)


def import_decisions(out_dir: str | Path, decisions_path: str | Path, *, replace: bool = False,
                     pdf: bool | None = None) -> dict[str, Any]:
    """Apply a decisions file to an output folder and write the reviewed outputs (holding the folder's lock).

    Writes ``review_result.json``, ``<stem>_reviewed.geojson`` per image and, when the folder holds a
    ``case.json``, ``case_reviewed.json`` and ``case_reviewed.html`` (differential and grade re-derived from
    the confirmed count), and ``case_reviewed.pdf`` when the case was made with a PDF (``report_pdf`` in
    ``case.json``) or ``pdf`` is True (False: no PDF). Returns ``{"review": ..., "paths": {...}, "case":
    case_doc_or_None}``.

    Only the images of the folder's run are reviewed (:func:`spindledx.review.candidates.load_run_candidates`).
    A decisions file without any decision is refused, and so is one that would replace an earlier review with
    fewer decisions or another reviewer's, unless ``replace`` is True. This is ``spindledx review OUT --import``.

    Example: ``result = import_decisions("case_1", "decisions.json"); print(result["review"]["confirmed_count"])``
    """
    from spindledx.engine.folder import guest_lock

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: no such folder")
    with guest_lock(out_dir):
        return _import_decisions(out_dir, decisions_path, replace=replace, pdf=pdf)


def _previous_review(out_dir: Path) -> dict[str, Any] | None:
    from spindledx.files import read_json

    path = out_dir / "review_result.json"
    if not path.is_file():
        return None
    try:
        doc = read_json(path, what="a review result", max_bytes=MAX_DECISIONS_BYTES)
    except BadInputError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("n_reviewed"), int) else None


def _import_decisions(out_dir: Path, decisions_path: str | Path, *, replace: bool,
                      pdf: bool | None = None) -> dict[str, Any]:
    from spindledx.case.workup import pooled_count
    from spindledx.files import atomic_write_text as write_text_atomic
    from spindledx.review.candidates import load_run_candidates

    docs, ignored = load_run_candidates(out_dir)
    decisions = load_decisions(decisions_path)
    if not any(d.get("decision") for d in decisions["decisions"]):
        raise BadInputError(f"{decisions_path}: holds no decisions (nothing was marked mitosis, not mitosis or "
                            "unsure); nothing to import")
    case_doc = read_case(out_dir)
    if pdf and case_doc is None:
        raise BadInputError(f"{out_dir}: holds no case.json; the PDF report is written for a case folder",
                            parameters="pdf")
    with_pdf = case_doc is not None and (bool(case_doc.get("report_pdf")) if pdf is None else bool(pdf))
    hpf = float(case_doc["count"]["hpf_area_mm2"]) if case_doc else counting.DEFAULT_HPF_AREA_MM2
    review = apply_decisions(docs, decisions, hpf_area_mm2=hpf)
    previous = _previous_review(out_dir)
    if previous is not None and not replace and (
            review["n_reviewed"] < previous["n_reviewed"] or review["reviewer"] != previous.get("reviewer")):
        raise BadInputError(f"{out_dir} already holds a review by {previous.get('reviewer') or 'an unnamed reviewer'} "
                            f"with {previous['n_reviewed']} decisions; these decisions ({review['n_reviewed']}, by "
                            f"{review['reviewer'] or 'an unnamed reviewer'}) would replace it: use replace=True "
                            "to do so", parameters="replace")
    if ignored:
        review["notes"].append(f"{len(ignored)} candidates files in the folder are not from its run and were not "
                               f"reviewed: {', '.join(ignored[:3])}{' ...' if len(ignored) > 3 else ''}")
    by_id = {d["id"]: d.get("decision") for d in decisions["decisions"]}
    targets = {doc["stem"]: out_dir / f"{doc['stem']}_reviewed.geojson" for doc in docs}
    for name in ("review_result.json", "case_reviewed.json", "case_reviewed.html", "review_summary.json",
                 *(("case_reviewed.pdf",) if with_pdf else ())):
        targets[name] = out_dir / name
    _check_targets(out_dir, targets.values())  # every file checked before the first is written
    paths: dict[str, Path] = {}
    for doc in docs:
        paths[f"geojson:{doc['stem']}"] = write_text_atomic(targets[doc["stem"]],
                                                            json.dumps(reviewed_geojson(doc, by_id), indent=1))
    # the stain/texture flag stays with the images; the density flag is judged again on each count
    from spindledx.detection.guard import IMPLAUSIBLE_DENSITY

    flags = [f for f in (case_doc["count"].get("flags") or []) if f != IMPLAUSIBLE_DENSITY] if case_doc else []
    records = [{"count": i["count"], "area_mm2": i["area_mm2"]} for i in review["images"]]
    confirmed = pooled_count(records, hpf_area_mm2=hpf, method="review (confirmed by the pathologist)", flags=flags)
    detector = pooled_count([{"count": i["detector_count"], "area_mm2": i["area_mm2"]} for i in review["images"]],
                            hpf_area_mm2=hpf, method="detector", flags=flags)
    review["count"] = confirmed
    review["detector"] = detector
    from spindledx.provenance import provenance

    base = provenance(include_model=False)
    model = docs[0].get("model") or {} if docs else {}
    review["provenance"] = {"spindledx_version": base["spindledx_version"], "model_name": model.get("model_name"),
                            "model_version": model.get("model_version"), "model_sha256": model.get("model_sha256"),
                            **({"adapted_from": model["adapted_from"]} if model.get("adapted_from") else {}),
                            "threshold": docs[0]["threshold"] if docs else None, "kb_version": base["kb_version"],
                            "date": base["date"], "decisions_file": str(Path(decisions_path).resolve())}
    paths["review"] = write_text_atomic(out_dir / "review_result.json",
                                        json.dumps(review, indent=2, ensure_ascii=False, allow_nan=False))
    reviewed_case = None
    if case_doc is not None:
        from spindledx.case.page import render_case_html
        from spindledx.case.workup import recompute_case
        from spindledx.provenance import provenance

        prov = {**case_doc["provenance"], "reviewed": provenance(include_model=False)["date"]}
        summary = {k: v for k, v in review.items() if k not in ("images",)}
        reviewed_case = recompute_case(case_doc, confirmed, review=summary, provenance=prov)
        reviewed_case["detector_count"] = case_doc["count"]
        reviewed_case["detector_differential_top"] = case_doc["differential"][0]
        for key in ("report", "report_pdf"):
            if case_doc.get(key):
                reviewed_case[key] = case_doc[key]
        paths["case_json"] = write_text_atomic(out_dir / "case_reviewed.json",
                                               json.dumps(reviewed_case, indent=2, ensure_ascii=False, allow_nan=False))
        paths["case_html"] = write_text_atomic(out_dir / "case_reviewed.html", render_case_html(reviewed_case))
        if with_pdf:
            from spindledx.case.pdf import folder_thumbnails, write_case_pdf

            paths["case_pdf"] = write_case_pdf(out_dir / "case_reviewed.pdf", reviewed_case,
                                               thumbnails=folder_thumbnails(out_dir, reviewed_case))
    paths["summary"] = _write_review_summary(out_dir, review, paths, decisions_path)
    return {"review": review, "paths": paths, "case": reviewed_case}


def _write_review_summary(out_dir: Path, review: dict[str, Any], paths: dict[str, Path],
                          decisions_path: str | Path) -> Path:
    """``review_summary.json`` in the one summary shape (:mod:`spindledx.summary`; not ``summary.json``, which
    belongs to the command that made the folder): both counts and the agreement as ``results``."""
    from spindledx.files import printable
    from spindledx.summary import REVIEW_SUMMARY_NAME, write_summary

    counts = {"candidates": review["n_candidates"], "reviewed": review["n_reviewed"],
              "detector_count": review["detector_count"], "confirmed_count": review["confirmed_count"],
              "area_mm2": review["count"]["area_mm2"]}
    results = {k: review[k] for k in ("reviewer", "date", "run_id", "partial", "decisions", "agreement", "count",
                                      "detector")}
    return write_summary(out_dir, "review --import", name=REVIEW_SUMMARY_NAME, provenance=review["provenance"],
                         inputs=[printable(decisions_path)], options={}, outputs=list(paths.values()),
                         counts=counts, results=results, flags=review["count"].get("flags") or [],
                         warnings=review.get("notes") or [])
