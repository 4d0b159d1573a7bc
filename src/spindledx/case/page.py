"""``case.html``: the case report a pathologist reads top to bottom, printable on A4.

Order: the answer (leading entity, probability, what would change it), the evidence, the next markers, the
mitotic count with overlay thumbnails (linking to the review page), the grade, the caveats, the review record
(after ``review --import``) and the provenance. One file, no script, built from :mod:`spindledx.pages`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from spindledx.case.paper import screen_and_paper_html as worded
from spindledx.pages import document, esc, figure, kv_table, notice, provenance_block, section, table

SECTION_IDS = ("answer", "differential", "evidence", "next-markers", "count", "grade", "caveats", "provenance")
N_DIFFERENTIAL = 8


def _pct(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 1 %" if 0 < p < 0.005 else f"{100 * p:.0f} %"


def _bar(p: float) -> str:
    return f"<span class='bar' style='width:{max(1, round(120 * p))}px'></span>{_pct(p)}"


def _entity_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("name") or entry.get("id", "")).strip()


def _evidence_basis(e: Mapping[str, Any]) -> str:
    """The figure behind one piece of evidence, in words (stain: % positive and n; morphology: probability of the
    band; prior: relative weight), then its evidence level."""
    kind = e.get("kind", "stain")
    fraction = e.get("fraction_positive")
    parts: list[str] = []
    if kind == "stain" and fraction is not None:
        parts.append(f"{100 * float(fraction):.0f} % positive")
    elif kind in ("morphology", "clinical") and fraction is not None:
        parts.append(f"P({e.get('event') or e.get('value')}) = {float(fraction):.2f}")
    elif kind == "prior" and fraction is not None:
        parts.append(f"relative weight {float(fraction):g} ({e.get('basis') or 'prior'})")
    if e.get("n_cases"):
        parts.append(f"n = {e['n_cases']}")
    if e.get("evidence_level"):
        parts.append(str(e["evidence_level"]))
    return "; ".join(parts)


def _evidence_rows(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for e in entry.get("evidence") or []:
        kind = e.get("kind", "stain")
        what = e.get("feature") if kind != "stain" and e.get("feature") else e.get("marker") or kind
        observed = e.get("result") if e.get("result") is not None else e.get("value")
        if kind == "prior":
            observed = f"{e.get('result') or 'prior'}: {e.get('event') or e.get('value') or ''}".strip(": ")
        lr = e.get("likelihood_ratio")
        effect = e.get("effect") or ("supports" if lr is not None and lr >= 2 else
                                     "against" if lr is not None and lr <= 0.5 else "neutral")
        rows.append({"kind": kind, "what": what, "observed": observed, "likelihood": e.get("likelihood"), "lr": lr,
                     "effect": effect, "basis": _evidence_basis(e), "source": e.get("source")})
    return rows


def _answer(doc: Mapping[str, Any]) -> str:
    diff = doc["differential"]
    lead, second = diff[0], diff[1] if len(diff) > 1 else None
    count = doc["count"]
    g = doc["grade"]
    lines = [f"<div class='answer'><div>Leading diagnosis: <span class='big'>{esc(_entity_name(lead))}</span> "
             f"<strong>{_pct(lead['probability'])}</strong>"
             + (f" &nbsp;·&nbsp; next: {esc(_entity_name(second))} {_pct(second['probability'])}" if second else "")
             + "</div>"]
    per10 = f"{count['mitoses_per_10hpf']:.1f} per 10 HPF" if count else "–"
    count_text = (f"Mitotic count ({esc(count['method'])}): <strong>{count['count']}</strong> figures in "
                  f"{count['area_mm2']:.3f} mm² = {count['mitoses_per_mm2']:.1f} per mm² = {per10} "
                  f"(HPF {count['hpf_area_mm2']:.4f} mm²; {count['n_hpf']:.2f} HPF counted"
                  + (", <strong>extrapolated</strong>" if count["extrapolated"] else "") + ")")
    lines.append(f"<div>{count_text}</div>")
    lines.append(f"<div>FNCLCC grade: {_grade_phrase(g)}</div>")
    if count.get("flags"):
        lines.append(f"<div class='notice bad'>Detector flags on this count: {esc(count['flags'])}</div>")
    nxt = doc.get("next_markers") or []
    if nxt:
        parts = []
        for m in nxt[:3]:
            pos = m.get("expected_positive") or {}
            shown = ", ".join(f"{html.escape(k.replace('_', ' '))} {_pct(v)}" for k, v in list(pos.items())[:3])
            parts.append(f"<strong>{esc(m['marker'])}</strong> (P(+): {shown})" if shown else esc(m["marker"]))
        lines.append("<div>What would change it: " + "; ".join(parts) + ".</div>")
    lines.append("</div>")
    return "".join(lines)


def _grade_phrase(g: Mapping[str, Any]) -> str:
    status = g.get("status")
    flag = (f" <strong class='warn'>(flagged count: {esc(g['flags'])})</strong>" if g.get("flags") else "")
    if status == "graded":
        return (f"<strong>grade {g['grade']}</strong> (differentiation {g['differentiation_score']} + mitoses "
                f"{g['mitotic_score']} + necrosis {g['necrosis_score']} = {g['total']})" + flag)
    if status == "extrapolated":
        return (f"not an FNCLCC grade: less than 10 HPF counted (the extrapolation would give grade "
                f"{g['extrapolated_grade']}, mitotic score {g['mitotic_score']})" + flag)
    if status == "flagged":
        return (f"not graded: the count is flagged (it would give grade {g['flagged_grade']}, mitotic score "
                f"{g['mitotic_score']})" + flag)
    return worded(str(g.get("reason") or "not graded")) + flag


def review_headline(r: Mapping[str, Any]) -> str:
    """The notice that says exactly what the review covered: how many candidates were decided, how many
    detections were confirmed, and how many figures keep the detector's call unreviewed."""
    who = f"{r.get('reviewer') or 'an unnamed reviewer'} on {r.get('date') or 'an unknown date'}"
    n_reviewed, n_candidates = int(r.get("n_reviewed") or 0), int(r.get("n_candidates") or 0)
    agreement = r.get("agreement") or {}
    decisions = r.get("decisions") or {}
    if n_reviewed == 0:
        return notice(f"Not reviewed: the decisions of {who} cover none of the {n_candidates} candidates; the "
                      f"count is the detector's ({r['detector_count']}).", kind="bad")
    text = (f"Reviewed by {who}: {n_reviewed} of {n_candidates} candidates decided "
            f"({decisions.get('mitosis', 0)} mitosis, {decisions.get('not_mitosis', 0)} not, "
            f"{decisions.get('unsure', 0)} unsure); {agreement.get('detections_confirmed', 0)} of "
            f"{agreement.get('detections_reviewed', 0)} reviewed detections confirmed, "
            f"{agreement.get('added_below_threshold', 0)} added from below the threshold. Count "
            f"{r['confirmed_count']} (detector: {r['detector_count']}).")
    if r.get("partial"):
        text += f" Partial review: {r.get('partial_note') or ''}."
    return notice(text, kind="warn" if r.get("partial") else "ok")


def render_case_html(doc: Mapping[str, Any], *, thumbnails: Mapping[str, bytes] | None = None,
                     review_href: str | None = "review.html") -> str:
    """The case page for a ``case.json`` document (``thumbnails``: overlay PNG bytes by image stem)."""
    thumbnails = thumbnails or {}
    inputs = doc["inputs"]
    report = doc.get("report") or {}
    parts = [_report_header(report, doc),
             notice("Decision aid for trained pathologists and for teaching; not a diagnosis. The mitotic detector is "
                    "a screening aid: confirm its figures on the review page before reporting a count.", kind="info")]
    if doc.get("review"):
        r = doc["review"]
        parts.append(review_headline(r))
    parts.append(section("answer", "Answer", _answer(doc)))

    diff_rows = [{"rank": i + 1, "name": _entity_name(e), "p": _bar(float(e["probability"])),
                  "fit": e.get("fit")} for i, e in enumerate(doc["differential"][:N_DIFFERENTIAL])]
    inputs_pairs = [("IHC panel", inputs["panel"]), ("site", inputs.get("site") or "not given"),
                    ("age", inputs.get("age")), ("sex", inputs.get("sex")), ("necrosis", inputs.get("necrosis")),
                    ("atypia", inputs.get("atypia")), ("pattern", inputs.get("pattern") or None),
                    ("evidence used besides stains",
                     ", ".join(m + (" (flagged count, used as asked)" if m in (doc.get("morphology_used_flagged") or [])
                                    else "") for m in doc.get("morphology_used") or []) or "none")]
    parts.append(section("differential", "Differential",
                         table(diff_rows, [("rank", "#", "num"), ("name", "entity"), ("p", "probability"),
                                           ("fit", "fit of the stains", "num")], raw=("p",)),
                         "<h3>What the case was given</h3>", kv_table(inputs_pairs)))

    lead = doc["differential"][0]
    ev_cols = [("kind", "kind"), ("what", "evidence"), ("observed", "observed"),
               ("likelihood", f"P(observed | {_entity_name(lead)})", "num"),
               ("lr", "likelihood ratio vs the rest", "num"), ("effect", "effect"), ("basis", "basis"),
               ("source", "source", "src")]
    pitfalls = lead.get("pitfalls") or []
    parts.append(section("evidence", f"Evidence for {_entity_name(lead)}",
                         table(_evidence_rows(lead), ev_cols, empty="no evidence recorded"),
                         ("<h3>Pitfalls</h3><ul>" + "".join(f"<li>{esc(p)}</li>" for p in pitfalls) + "</ul>")
                         if pitfalls else ""))

    nm_rows = []
    for m in (doc.get("next_markers") or [])[:8]:
        pos = m.get("expected_positive") or {}
        nm_rows.append({"marker": m["marker"], "kind": m.get("kind"), "gain": m.get("expected_information_gain"),
                        "pos": "; ".join(f"{k.replace('_', ' ')} {_pct(v)}" for k, v in pos.items())})
    parts.append(section("next-markers", "Next markers",
                         "<p class='muted'>Untested markers ranked by expected information gain over the current "
                         "differential, with the chance each leading entity stains positive.</p>",
                         table(nm_rows, [("marker", "marker"), ("kind", "kind"),
                                         ("gain", "expected information gain (bits)", "num"),
                                         ("pos", "P(positive) for the leading entities")], empty="none")))
    parts.append(section("count", "Mitotic count", _count_section(doc, thumbnails, review_href)))
    parts.append(section("grade", "FNCLCC grade", _grade_section(doc["grade"])))
    caveats = list(doc.get("warnings") or []) + list(doc["grade"].get("caveats") or [])
    parts.append(section("caveats", "Caveats",
                         "<ul>" + "".join(f"<li>{worded(str(w))}</li>" for w in caveats) + "</ul>"))
    if doc.get("review"):
        parts.append(section("review", "Review", _review_section(doc["review"])))
    parts.append(section("provenance", "Provenance", provenance_block(doc["provenance"])))
    parts.append(_sign_off(report))
    title = f"Case report: {_entity_name(lead)}"
    running = " · ".join(v for v in (report.get("case_id"), report.get("specimen")) if v) or "spindledx case report"
    return document(title, "".join(parts), subtitle=f"spindledx case · {doc['provenance'].get('date', '')}",
                    extra_css=_print_css(running))


def _report_header(report: Mapping[str, Any], doc: Mapping[str, Any]) -> str:
    """Case, specimen and pathologist (when given) above the report; repeated on every printed page."""
    pairs = [("Case", report.get("case_id")), ("Specimen", report.get("specimen")),
             ("Pathologist", report.get("pathologist")), ("Date", doc["provenance"].get("date", "")[:10])]
    cells = "".join(f"<span><b>{esc(k)}:</b> {esc(v)}</span>" for k, v in pairs if v)
    return f"<div class='report-head'>{cells}</div>"


def _sign_off(report: Mapping[str, Any]) -> str:
    """The block a pathologist signs when the report is filed."""
    name = esc(report.get("pathologist") or "")
    return ("<section id='sign-off' class='sign-off'><h2>Sign-off</h2>"
            "<p>I have reviewed the differential, the mitotic figures and the grade above.</p>"
            f"<p>Pathologist: <span class='line'>{name}</span> Signature: <span class='line'></span> "
            "Date: <span class='line'></span></p></section>")


def _print_css(running: str) -> str:
    """A4 pages with the case in a running header and page numbers; interactive hints are left off paper."""
    text = running.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ")  # a CSS string in <style>
    return ("@page{size:A4;margin:11mm 12mm 11mm 12mm;"
            f"@top-left{{content:\"{text}\";font-size:8pt;color:#555}}"
            "@bottom-right{content:\"page \" counter(page) \" of \" counter(pages);font-size:8pt;color:#555}}"
            ".report-head{display:flex;flex-wrap:wrap;gap:.4em 1.6em;font-size:.92em;margin:.2em 0 .6em}"
            ".sign-off .line{display:inline-block;min-width:11em;border-bottom:1px solid #333;margin:0 1.2em 0 .3em}"
            ".print-only{display:none}@media print{.print-only{display:inline}"
            "body{max-width:none;font-size:8pt;line-height:1.15;margin:0}.screen-only{display:none}"
            "h1{font-size:13pt;margin:0 0 .2em}h2{font-size:10pt;margin:.7em 0 .25em;break-after:avoid}"
            "h3{font-size:9pt;margin:.5em 0 .2em}td,th{padding:1px 4px}td.src{font-size:6pt;line-height:1.1;"
            "min-width:0;max-width:none;width:38%}.answer{font-size:9pt;padding:.4em .6em;margin:.4em 0}"
            ".answer .big{font-size:11pt}.notice{padding:.25em .6em;margin:.3em 0}"
            "table{break-inside:auto;margin:.2em 0 .4em}tr{break-inside:avoid}.grid{gap:4px}"
            "img.thumb{width:26mm;max-width:26mm}figcaption{font-size:6pt;max-width:26mm}ul{margin:.2em 0}"
            ".sign-off{break-inside:avoid}a{color:inherit;text-decoration:none}"
            "#next-markers tbody tr:nth-child(n+4),#differential table:not(.kv) tbody tr:nth-child(n+5){display:none}"
            "#evidence table,#next-markers table{width:100%}"
            "#differential table.kv{font-size:7pt}#evidence li,#caveats li{font-size:7.5pt}"
            ".prov,.prov table{font-size:6.5pt}#next-markers p.muted{display:none}}")


def _count_section(doc: Mapping[str, Any], thumbnails: Mapping[str, bytes], review_href: str | None) -> str:
    c = doc["count"]
    parts = []
    if c["extrapolated"]:
        parts.append(notice(f"Only {c['n_hpf']:.2f} HPF ({c['area_mm2']:.3f} mm²) were counted. The per-10-HPF "
                            "figure is an extrapolation from a smaller area and is not an FNCLCC mitotic score; "
                            "count 10 HPF (2.4 mm² with 0.238 mm² fields) in the most active area."))
    if c.get("flags"):
        parts.append(notice(f"Detector flags: {', '.join(c['flags'])}. Treat the count as unreliable until it is "
                            "reviewed.", kind="bad"))
    parts.append(kv_table([("figures counted", c["count"]), ("counted by", c["method"]),
                           ("area counted", f"{c['area_mm2']:.3f} mm² ({c['n_hpf']:.2f} HPF)"),
                           ("HPF area", f"{c['hpf_area_mm2']:.4f} mm² (10 HPF = {10 * c['hpf_area_mm2']:.2f} mm²)"),
                           ("mitoses per mm²", f"{c['mitoses_per_mm2']:.2f}"),
                           ("mitoses per 10 HPF", f"{c['mitoses_per_10hpf']:.1f}"
                            + (" (extrapolated)" if c["extrapolated"] else "")
                            + (f"; 95 % interval {c['mitoses_per_10hpf_ci95'][0]:.1f}-"
                               f"{c['mitoses_per_10hpf_ci95'][1]:.1f} (Poisson sampling of the counted area)"
                               if c.get("mitoses_per_10hpf_ci95") else "")),
                           ("images", c["n_images"])]
                          + ([("atypical figures (atypical head)", f"{c['atypical_count']} of {c['count']}")]
                             if c.get("atypical_count") is not None else [])))
    rows = []
    for t in doc.get("tiles") or []:
        rows.append({"image": t.get("stem") or t["image"], "size": f"{t['width']} × {t['height']} px",
                     "mpp": f"{t['mpp']:g}" + (" (assumed)" if t.get("mpp_source") == "assumed" else ""),
                     "area": t["area_mm2"], "count": t["count"], "below": t.get("n_candidates_below_threshold"),
                     "density": t["mitoses_per_mm2"], "atypical": t.get("atypical_count"),
                     "flags": ", ".join(f.replace("_", " ") for f in t.get("flags") or []) or None})
    parts.append(table(rows, [("image", "image"), ("size", "size"), ("mpp", "µm per pixel", "num"),
                              ("area", "area (mm²)", "num"), ("count", "figures", "num"),
                              ("below", "candidates just below threshold", "num"),
                              ("density", "per mm²", "num")]
                 + ([("atypical", "atypical figures", "num")] if any(r["atypical"] is not None for r in rows) else [])
                 + [("flags", "flags")]))
    messages = [m for t in doc.get("tiles") or [] for m in t.get("flag_messages") or []]
    messages += list(c.get("flag_messages") or [])
    if messages:
        parts.append("<ul class='small'>" + "".join(f"<li>{worded(str(m))}</li>" for m in messages) + "</ul>")
    figs = []
    for t in doc.get("tiles") or []:
        png = thumbnails.get(t.get("stem", ""))
        if png is None:
            continue
        href = f"{review_href}#img-{t['stem']}" if review_href else None
        figs.append(figure(png, f"{t['stem']}: {t['count']} figures (amber circles, detector score)", href=href,
                           width_px=260))
    if figs:
        parts.append("<div class='grid'>" + "".join(figs) + "</div>")
        if review_href:
            parts.append(f"<p class='small screen-only'>Click a thumbnail to review its candidates "
                         f"(<a href='{html.escape(review_href)}'>review page</a>).</p>")
    return "".join(parts)


def _grade_section(g: Mapping[str, Any]) -> str:
    graded = g.get("status") in ("graded", "extrapolated", "flagged")
    parts = [f"<p>{_grade_phrase(g)}</p>"] if graded or g.get("flags") else []
    if graded:
        label = {"graded": "grade", "extrapolated": "extrapolated grade (not an FNCLCC grade)",
                 "flagged": "grade of the flagged count (not given)"}[g["status"]]
        value = {"graded": g.get("grade"), "extrapolated": g.get("extrapolated_grade"),
                 "flagged": g.get("flagged_grade")}[g["status"]]
        parts.append(kv_table([("entity graded", str(g["entity"]).replace("_", " ")),
                               ("differentiation score", g["differentiation_score"]),
                               ("mitotic score", g["mitotic_score"]), ("necrosis score", g["necrosis_score"]),
                               ("total", g["total"]), (label, value)]))
    if g.get("reason") and g.get("status") != "graded":
        parts.append(notice(worded(str(g["reason"])), html_text=True))
    if g.get("assumptions"):
        parts.append("<h3>Assumptions</h3><ul>" + "".join(f"<li>{worded(str(a))}</li>"
                                                       for a in g["assumptions"]) + "</ul>")
    return "".join(parts)


def _review_section(r: Mapping[str, Any]) -> str:
    pairs = [("reviewer", r.get("reviewer")), ("date", r.get("date")),
             ("detector count", r["detector_count"]), ("confirmed count", r["confirmed_count"]),
             ("candidates reviewed", f"{r['n_reviewed']} of {r['n_candidates']}"),
             ("detections confirmed", f"{r['agreement']['detections_confirmed']} of "
                                      f"{r['agreement']['detections_reviewed']} reviewed"),
             ("figures added below threshold", r["agreement"]["added_below_threshold"]),
             ("Cohen's kappa (reviewed, yes/no)", r["agreement"].get("kappa"))]
    parts = [kv_table(pairs)]
    if r.get("partial"):
        parts.append(notice(r["partial_note"]))
    return "".join(parts)
