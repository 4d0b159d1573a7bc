"""``case.html``: the case report a pathologist reads top to bottom, printable on A4.

Order: the answer (leading entity, probability, what would change it), the evidence, the next markers, the
mitotic count with overlay thumbnails (linking to the review page), the grade, the caveats, the review record
(after ``review --import``), the provenance and the sign-off. One file, no script, rendered from the template
``case/case.html.j2`` of :mod:`spindledx.pages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spindledx.case.paper import entity_name, evidence_rows, paper_text, percent
from spindledx.pages import render

SECTION_IDS = ("answer", "differential", "evidence", "next-markers", "count", "grade", "caveats", "provenance")
N_DIFFERENTIAL = 8


def _count_figures(c: Mapping[str, Any]) -> dict[str, Any]:
    """The count's figures as the page prints them (units and rounding of the report), with its table of pairs."""
    per10 = (f"{c['mitoses_per_10hpf']:.1f}" + (" (extrapolated)" if c["extrapolated"] else "")
             + (f"; 95 % interval {c['mitoses_per_10hpf_ci95'][0]:.1f}-"
                f"{c['mitoses_per_10hpf_ci95'][1]:.1f} (Poisson sampling of the counted area)"
                if c.get("mitoses_per_10hpf_ci95") else ""))
    pairs = [("figures counted", c["count"]), ("counted by", c["method"]),
             ("area counted", f"{c['area_mm2']:.3f} mm² ({c['n_hpf']:.2f} HPF)"),
             ("HPF area", f"{c['hpf_area_mm2']:.4f} mm² (10 HPF = {10 * c['hpf_area_mm2']:.2f} mm²)"),
             ("mitoses per mm²", f"{c['mitoses_per_mm2']:.2f}"), ("mitoses per 10 HPF", per10),
             ("images", c["n_images"])]
    if c.get("atypical_count") is not None:
        pairs.append(("atypical figures (atypical head)", f"{c['atypical_count']} of {c['count']}"))
    return {"method": c["method"], "count": c["count"], "area_mm2": f"{c['area_mm2']:.3f}",
            "per_mm2_1": f"{c['mitoses_per_mm2']:.1f}", "per_10hpf_text": f"{c['mitoses_per_10hpf']:.1f} per 10 HPF",
            "hpf_area_mm2": f"{c['hpf_area_mm2']:.4f}", "n_hpf": f"{c['n_hpf']:.2f}",
            "extrapolated": bool(c["extrapolated"]), "flags": list(c.get("flags") or []), "pairs": pairs}


def _answer(doc: Mapping[str, Any]) -> dict[str, Any]:
    diff = doc["differential"]
    lead, second = diff[0], diff[1] if len(diff) > 1 else None
    nxt = []
    for m in (doc.get("next_markers") or [])[:3]:
        pos = m.get("expected_positive") or {}
        nxt.append((m["marker"], ", ".join(f"{k.replace('_', ' ')} {percent(v)}" for k, v in list(pos.items())[:3])))
    return {"lead": entity_name(lead), "lead_pct": percent(lead["probability"]),
            "second": entity_name(second) if second else None,
            "second_pct": percent(second["probability"]) if second else None, "next": nxt}


def _worded(text: Any) -> dict[str, str]:
    """A text of ``case.json`` on screen and on paper (:func:`spindledx.case.paper.paper_text`: no command-line
    option in print)."""
    return {"screen": str(text), "paper": paper_text(str(text))}


def _grade(g: Mapping[str, Any]) -> dict[str, Any]:
    """The grade document with what the grade section shows: whether a grade (or its extrapolation) was computed,
    its score table, and its reason and assumptions on screen and on paper."""
    graded = g.get("status") in ("graded", "extrapolated", "flagged")
    out = {**g, "graded": graded, "pairs": [], "reason_worded": _worded(g.get("reason") or "not graded"),
           "assumptions_worded": [_worded(a) for a in g.get("assumptions") or []]}
    if graded:
        label = {"graded": "grade", "extrapolated": "extrapolated grade (not an FNCLCC grade)",
                 "flagged": "grade of the flagged count (not given)"}[g["status"]]
        value = {"graded": g.get("grade"), "extrapolated": g.get("extrapolated_grade"),
                 "flagged": g.get("flagged_grade")}[g["status"]]
        out["pairs"] = [("entity graded", str(g["entity"]).replace("_", " ")),
                        ("differentiation score", g["differentiation_score"]), ("mitotic score", g["mitotic_score"]),
                        ("necrosis score", g["necrosis_score"]), ("total", g["total"]), (label, value)]
    return out


def review_headline(r: Mapping[str, Any]) -> dict[str, str]:
    """The notice (``kind``, ``text``) that says exactly what the review covered: how many candidates were decided,
    how many detections were confirmed, and how many figures keep the detector's call unreviewed."""
    who = f"{r.get('reviewer') or 'an unnamed reviewer'} on {r.get('date') or 'an unknown date'}"
    n_reviewed, n_candidates = int(r.get("n_reviewed") or 0), int(r.get("n_candidates") or 0)
    agreement = r.get("agreement") or {}
    decisions = r.get("decisions") or {}
    if n_reviewed == 0:
        return {"kind": "bad", "text": f"Not reviewed: the decisions of {who} cover none of the {n_candidates} "
                                       f"candidates; the count is the detector's ({r['detector_count']})."}
    text = (f"Reviewed by {who}: {n_reviewed} of {n_candidates} candidates decided "
            f"({decisions.get('mitosis', 0)} mitosis, {decisions.get('not_mitosis', 0)} not, "
            f"{decisions.get('unsure', 0)} unsure); {agreement.get('detections_confirmed', 0)} of "
            f"{agreement.get('detections_reviewed', 0)} reviewed detections confirmed, "
            f"{agreement.get('added_below_threshold', 0)} added from below the threshold. Count "
            f"{r['confirmed_count']} (detector: {r['detector_count']}).")
    if r.get("partial"):
        text += f" Partial review: {r.get('partial_note') or ''}."
    return {"kind": "warn" if r.get("partial") else "ok", "text": text}


def render_case_html(doc: Mapping[str, Any], *, thumbnails: Mapping[str, bytes] | None = None,
                     review_href: str | None = "review.html") -> str:
    """The case page for a ``case.json`` document (``thumbnails``: overlay PNG bytes by image stem), rendered from
    the template ``case/case.html.j2`` (print sheet ``case/case.css``)."""
    thumbnails = thumbnails or {}
    inputs = doc["inputs"]
    report = doc.get("report") or {}
    lead = doc["differential"][0]
    diff_rows = [{"rank": i + 1, "name": entity_name(e),
                  "p": {"width_px": max(1, round(120 * float(e["probability"]))),
                        "pct": percent(float(e["probability"]))},
                  "fit": e.get("fit")} for i, e in enumerate(doc["differential"][:N_DIFFERENTIAL])]
    flagged_used = doc.get("morphology_used_flagged") or []
    inputs_pairs = [("IHC panel", inputs["panel"]), ("site", inputs.get("site") or "not given"),
                    ("age", inputs.get("age")), ("sex", inputs.get("sex")), ("necrosis", inputs.get("necrosis")),
                    ("atypia", inputs.get("atypia")), ("pattern", inputs.get("pattern") or None),
                    ("evidence used besides stains",
                     ", ".join(m + (" (flagged count, used as asked)" if m in flagged_used else "")
                               for m in doc.get("morphology_used") or []) or "none")]
    nm_rows = [{"marker": m["marker"], "kind": m.get("kind"), "gain": m.get("expected_information_gain"),
                "pos": "; ".join(f"{k.replace('_', ' ')} {percent(v)}"
                                 for k, v in (m.get("expected_positive") or {}).items())}
               for m in (doc.get("next_markers") or [])[:8]]
    review = doc.get("review")
    head = [("Case", report.get("case_id")), ("Specimen", report.get("specimen")),
            ("Pathologist", report.get("pathologist")), ("Date", doc["provenance"].get("date", "")[:10])]
    running = " · ".join(v for v in (report.get("case_id"), report.get("specimen")) if v) or "spindledx case report"
    messages = [m for t in doc.get("tiles") or [] for m in t.get("flag_messages") or []]
    messages += list(doc["count"].get("flag_messages") or [])
    caveats = list(doc.get("warnings") or []) + list(doc["grade"].get("caveats") or [])
    return render("case/case.html.j2", title=f"Case report: {entity_name(lead)}",
                  subtitle=f"spindledx case · {doc['provenance'].get('date', '')}", running=running,
                  head=[(k, v) for k, v in head if v], review=review_headline(review) if review else None,
                  answer=_answer(doc), count=_count_figures(doc["count"]), grade=_grade(doc["grade"]),
                  differential=diff_rows, inputs=inputs_pairs, lead_name=entity_name(lead),
                  evidence=evidence_rows(lead), pitfalls=list(lead.get("pitfalls") or []), next_markers=nm_rows,
                  tiles=_tile_table(doc),
                  flag_messages=[_worded(m) for m in messages],
                  figures=_figures(doc, thumbnails, review_href), review_href=review_href,
                  caveats=[_worded(w) for w in caveats],
                  review_pairs=_review_pairs(review) if review else None,
                  review_partial_note=review.get("partial_note") if review and review.get("partial") else None,
                  provenance=doc["provenance"], pathologist=report.get("pathologist") or "")


def _tile_table(doc: Mapping[str, Any]) -> dict[str, Any]:
    rows = []
    for t in doc.get("tiles") or []:
        rows.append({"image": t.get("stem") or t["image"], "size": f"{t['width']} × {t['height']} px",
                     "mpp": f"{t['mpp']:g}" + (" (assumed)" if t.get("mpp_source") == "assumed" else ""),
                     "area": t["area_mm2"], "count": t["count"], "below": t.get("n_candidates_below_threshold"),
                     "density": t["mitoses_per_mm2"], "atypical": t.get("atypical_count"),
                     "flags": ", ".join(f.replace("_", " ") for f in t.get("flags") or []) or None})
    columns = ([("image", "image"), ("size", "size"), ("mpp", "µm per pixel", "num"), ("area", "area (mm²)", "num"),
                ("count", "figures", "num"), ("below", "candidates just below threshold", "num"),
                ("density", "per mm²", "num")]
               + ([("atypical", "atypical figures", "num")] if any(r["atypical"] is not None for r in rows) else [])
               + [("flags", "flags")])
    return {"rows": rows, "columns": columns}


def _figures(doc: Mapping[str, Any], thumbnails: Mapping[str, bytes], review_href: str | None) -> list[dict]:
    """Overlay thumbnails with their caption, each linking to its image's cards on the review page."""
    figs = []
    for t in doc.get("tiles") or []:
        png = thumbnails.get(t.get("stem", ""))
        if png is None:
            continue
        figs.append({"png": png, "caption": f"{t['stem']}: {t['count']} figures (amber circles, detector score)",
                     "href": f"{review_href}#img-{t['stem']}" if review_href else None})
    return figs


def _review_pairs(r: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [("reviewer", r.get("reviewer")), ("date", r.get("date")),
            ("detector count", r["detector_count"]), ("confirmed count", r["confirmed_count"]),
            ("candidates reviewed", f"{r['n_reviewed']} of {r['n_candidates']}"),
            ("detections confirmed", f"{r['agreement']['detections_confirmed']} of "
                                     f"{r['agreement']['detections_reviewed']} reviewed"),
            ("figures added below threshold", r["agreement"]["added_below_threshold"]),
            ("Cohen's kappa (reviewed, yes/no)", r["agreement"].get("kappa"))]
