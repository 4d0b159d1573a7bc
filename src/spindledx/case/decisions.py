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
from spindledx.case.candidates import load_candidate_files, run_id
from spindledx.case.review import DECISIONS_FORMAT
from spindledx.errors import BadInputError

CONFIRMED_CLASS = "Mitosis (confirmed)"
REJECTED_CLASS = "Not mitosis"
UNSURE_CLASS = "Mitosis (unsure)"
DETECTOR_CLASS = "Mitosis"
CLASS_COLORS = {CONFIRMED_CLASS: [0, 170, 0], REJECTED_CLASS: [200, 0, 0], UNSURE_CLASS: [230, 160, 0],
                DETECTOR_CLASS: [255, 200, 0]}


def load_decisions(path: str | Path) -> dict[str, Any]:
    """Read and check a decisions file (format, run id, decisions list); BadInputError with one line otherwise."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not a readable JSON decisions file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != DECISIONS_FORMAT:
        raise BadInputError(f"{path}: not a {DECISIONS_FORMAT} file (export it from review.html)")
    decisions = doc.get("decisions")
    if not isinstance(decisions, list) or not all(isinstance(d, dict) and "id" in d for d in decisions):
        raise BadInputError(f"{path}: 'decisions' must be a list of {{id, decision}} objects")
    bad = [d for d in decisions if d.get("decision") not in ("y", "n", "u", None)]
    if bad:
        raise BadInputError(f"{path}: decision '{bad[0].get('decision')}' for {bad[0]['id']} is not y, n or u")
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


def import_decisions(out_dir: str | Path, decisions_path: str | Path) -> dict[str, Any]:
    """Apply a decisions file to an output folder and write the reviewed outputs.

    Writes ``review_result.json``, ``<stem>_reviewed.geojson`` per image and, when the folder holds a
    ``case.json``, ``case_reviewed.json`` and ``case_reviewed.html`` (differential and grade re-derived from
    the confirmed count). Returns ``{"review": ..., "paths": {...}, "case": case_doc_or_None}``.
    """
    from spindledx.case.workup import pooled_count
    from spindledx.files import atomic_write_text as write_text_atomic

    out_dir = Path(out_dir)
    docs = load_candidate_files(out_dir)
    decisions = load_decisions(decisions_path)
    case_path = out_dir / "case.json"
    case_doc = json.loads(case_path.read_text(encoding="utf-8")) if case_path.is_file() else None
    hpf = float(case_doc["count"]["hpf_area_mm2"]) if case_doc else counting.DEFAULT_HPF_AREA_MM2
    review = apply_decisions(docs, decisions, hpf_area_mm2=hpf)
    by_id = {d["id"]: d.get("decision") for d in decisions["decisions"]}
    paths: dict[str, Path] = {}
    for doc in docs:
        paths[f"geojson:{doc['stem']}"] = write_text_atomic(out_dir / f"{doc['stem']}_reviewed.geojson",
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
    from spindledx.pages import provenance

    base = provenance(include_model=False)
    model = docs[0].get("model") or {} if docs else {}
    review["provenance"] = {"spindledx_version": base["spindledx_version"],
                            "model_version": model.get("model_version"), "model_sha256": model.get("model_sha256"),
                            "threshold": docs[0]["threshold"] if docs else None, "kb_version": base["kb_version"],
                            "date": base["date"], "decisions_file": str(Path(decisions_path).resolve())}
    paths["review"] = write_text_atomic(out_dir / "review_result.json",
                                        json.dumps(review, indent=2, ensure_ascii=False))
    reviewed_case = None
    if case_doc is not None:
        from spindledx.case.page import render_case_html
        from spindledx.case.workup import recompute_case
        from spindledx.pages import provenance

        prov = {**case_doc["provenance"], "reviewed": provenance(include_model=False)["date"]}
        summary = {k: v for k, v in review.items() if k not in ("images",)}
        reviewed_case = recompute_case(case_doc, confirmed, review=summary, provenance=prov)
        reviewed_case["detector_count"] = case_doc["count"]
        reviewed_case["detector_differential_top"] = case_doc["differential"][0]
        paths["case_json"] = write_text_atomic(out_dir / "case_reviewed.json",
                                               json.dumps(reviewed_case, indent=2, ensure_ascii=False))
        paths["case_html"] = write_text_atomic(out_dir / "case_reviewed.html", render_case_html(reviewed_case))
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
