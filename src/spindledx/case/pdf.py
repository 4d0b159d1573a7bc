"""``case.pdf``: the case report as a PDF to file, built from the ``case.json`` document with ReportLab.

The same report as ``case.html`` in the same order (answer, differential, evidence, next markers, count with the
overlay thumbnails, grade, caveats, review, provenance, sign-off), laid out for A4 paper: a header on every page
with the case ID, specimen, pathologist and "page n of m", and nothing that only works on a screen or on the
command line (texts go through :func:`spindledx.case.paper.paper_text`). The sample case fits two pages.

Fonts: DejaVu Sans (shipped with matplotlib, a dependency) embedded as a subset, so that every character of the
report (µ, ², ≥, ∩, −) prints; Helvetica with those characters spelled out when it is missing.
"""

from __future__ import annotations

import html
import importlib.util
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spindledx.case.paper import entity_name, evidence_rows, paper_text, percent

PAGE_MARGIN_MM = 12.0
N_DIFFERENTIAL = 6
N_NEXT_MARKERS = 4
THUMBNAIL_WIDTH_MM = 42.5
MAX_OVERLAY_BYTES = 64 << 20
"""Largest overlay PNG read from a case folder for the reviewed report."""

_FALLBACK_CHARS = {"≥": ">=", "≤": "<=", "−": "-", "∩": "and", "→": "->", "≈": "~", "…": "..."}


def _fonts() -> tuple[str, str, str]:
    """(regular, bold, italic) font names: DejaVu Sans from matplotlib's data, registered with ReportLab once, or
    the built-in Helvetica."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    names = ("SdxSans", "SdxSans-Bold", "SdxSans-Oblique")
    if names[0] in pdfmetrics.getRegisteredFontNames():
        return names
    spec = importlib.util.find_spec("matplotlib")
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" if spec and spec.origin else None
    files = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf")
    if folder is None or not all((folder / f).is_file() for f in files):
        return "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
    for name, file in zip(names, files, strict=True):
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(names[0], normal=names[0], bold=names[1], italic=names[2], boldItalic=names[1])
    return names


class _Report:
    """Styles and text helpers of one PDF (fonts chosen once)."""

    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        self.font, self.bold, self.italic = _fonts()
        self.unicode = self.font != "Helvetica"
        ink, muted = colors.HexColor("#1a1a1a"), colors.HexColor("#555555")
        base = ParagraphStyle("body", fontName=self.font, fontSize=8, leading=10, textColor=ink)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7, leading=8.6)
        self.tiny = ParagraphStyle("tiny", parent=base, fontSize=6, leading=7.2, textColor=muted)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=7, leading=8.4)
        self.head = ParagraphStyle("head", parent=self.cell, fontName=self.bold)
        self.title = ParagraphStyle("title", parent=base, fontName=self.bold, fontSize=13, leading=16,
                                    spaceAfter=2)
        self.h2 = ParagraphStyle("h2", parent=base, fontName=self.bold, fontSize=10, leading=12, spaceBefore=6,
                                 spaceAfter=2, keepWithNext=1)
        self.h3 = ParagraphStyle("h3", parent=base, fontName=self.bold, fontSize=8.5, leading=10, spaceBefore=3,
                                 spaceAfter=1, keepWithNext=1)
        self.lead = ParagraphStyle("lead", parent=base, fontSize=8.5, leading=14)
        self.bullet = ParagraphStyle("bullet", parent=self.small, leftIndent=9, bulletIndent=2,
                                     bulletFontName=self.font, bulletFontSize=7)
        self.colors = colors

    def text(self, value: Any) -> str:
        """Paragraph markup of ``value``: paper wording, XML-escaped, characters the font lacks spelled out."""
        if value is None:
            return "–" if self.unicode else "-"
        out = paper_text(str(value))
        if not self.unicode:
            for char, words in _FALLBACK_CHARS.items():
                out = out.replace(char, words)
        return html.escape(out, quote=False)

    def para(self, markup: str, style: Any = None) -> Any:
        from reportlab.platypus import Paragraph

        return Paragraph(markup, style or self.body)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], widths_mm: Sequence[float], *,
              numeric: Sequence[int] = (), style: Any = None) -> Any:
        """A ruled table with a shaded header row; cells are markup strings (wrapped) or flowables."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        cell = style or self.cell
        data = [[self.para(f"<b>{self.text(h)}</b>", self.head) for h in header]]
        for row in rows:
            data.append([c if not isinstance(c, str) else self.para(c, cell) for c in row])
        t = Table(data, colWidths=[w * mm for w in widths_mm], repeatRows=1)
        commands = [("GRID", (0, 0), (-1, -1), 0.4, self.colors.HexColor("#c8c8c8")),
                    ("BACKGROUND", (0, 0), (-1, 0), self.colors.HexColor("#eef1f5")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1.2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.2), ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2.5)]
        commands += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i in numeric]
        t.setStyle(TableStyle(commands))
        return t

    def pairs(self, items: Sequence[tuple[str, Any]], widths_mm: tuple[float, float] = (42.0, 144.0),
              style: Any = None) -> Any:
        """A two-column table of label and value, without a header."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        cell = style or self.cell
        data = [[self.para(f"<b>{self.text(k)}</b>", cell), self.para(self.text(v), cell)] for k, v in items]
        t = Table(data, colWidths=[w * mm for w in widths_mm])
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, self.colors.HexColor("#c8c8c8")),
                               ("BACKGROUND", (0, 0), (0, -1), self.colors.HexColor("#f4f6f8")),
                               ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 1), ("LEFTPADDING", (0, 0), (-1, -1), 2.5)]))
        return t

    def grid(self, items: Sequence[tuple[str, Any]], *, wide: Sequence[str] = (), style: Any = None) -> Any:
        """Label-value pairs two to a row (labels shaded); the labels in ``wide`` come last, a row each."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        cell = style or self.cell
        narrow = [(k, v) for k, v in items if k not in wide]
        cells = [[self.para(f"<b>{self.text(k)}</b>", cell), self.para(self.text(v), cell)] for k, v in narrow]
        data = [cells[i] + (cells[i + 1] if i + 1 < len(cells) else ["", ""]) for i in range(0, len(cells), 2)]
        spans = [len(data) - 1] if len(cells) % 2 else []
        for k, v in items:
            if k in wide:
                spans.append(len(data))
                data.append([self.para(f"<b>{self.text(k)}</b>", cell), self.para(self.text(v), cell), "", ""])
        t = Table(data, colWidths=[w * mm for w in (33, 60, 33, 60)])
        commands = [("GRID", (0, 0), (-1, -1), 0.4, self.colors.HexColor("#c8c8c8")),
                    ("BACKGROUND", (0, 0), (0, -1), self.colors.HexColor("#f4f6f8")),
                    ("BACKGROUND", (2, 0), (2, -1), self.colors.HexColor("#f4f6f8")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1), ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
                    ("FONTSIZE", (0, 0), (-1, -1), 5), ("LEADING", (0, 0), (-1, -1), 6)]  # empty cells stay low
        for row in spans:
            commands += [("SPAN", (1, row), (3, row)), ("BACKGROUND", (1, row), (3, row), self.colors.white)]
        t.setStyle(TableStyle(commands))
        return t

    def box(self, flowables: Sequence[Any], *, border: str = "#2b6cb0", fill: str | None = None) -> Any:
        """Flowables in a framed box the width of the page."""
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        width = 210 - 2 * PAGE_MARGIN_MM
        t = Table([[list(flowables)]], colWidths=[width * mm])
        commands = [("BOX", (0, 0), (-1, -1), 1.0, self.colors.HexColor(border)),
                    ("LEFTPADDING", (0, 0), (-1, -1), 5), ("RIGHTPADDING", (0, 0), (-1, -1), 5),
                    ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
        if fill:
            commands.append(("BACKGROUND", (0, 0), (-1, -1), self.colors.HexColor(fill)))
        t.setStyle(TableStyle(commands))
        return t

    def bullets(self, lines: Sequence[Any], style: Any = None) -> list[Any]:
        """One paragraph per line, with a bullet and a hanging indent."""
        from reportlab.platypus import Paragraph

        return [Paragraph(self.text(line), style or self.bullet, bulletText="•") for line in lines]


def _num(value: Any, fmt: str = "{:.3g}") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return fmt.format(value)
    return str(value)


def grade_text(g: Mapping[str, Any]) -> str:
    """The FNCLCC grade, or why there is none, in one plain sentence (the paper wording)."""
    status = g.get("status")
    flags = f" (flagged count: {', '.join(str(f).replace('_', ' ') for f in g['flags'])})" if g.get("flags") else ""
    if status == "graded":
        return (f"grade {g['grade']} (differentiation {g['differentiation_score']} + mitoses {g['mitotic_score']} + "
                f"necrosis {g['necrosis_score']} = {g['total']})" + flags)
    if status == "extrapolated":
        return (f"not an FNCLCC grade: less than 10 HPF counted (the extrapolation would give grade "
                f"{g['extrapolated_grade']}, mitotic score {g['mitotic_score']})" + flags)
    if status == "flagged":
        return (f"not graded: the count is flagged (it would give grade {g['flagged_grade']}, mitotic score "
                f"{g['mitotic_score']})" + flags)
    return paper_text(str(g.get("reason") or "not graded")) + flags


def review_text(r: Mapping[str, Any]) -> str:
    """What the review covered, in one paragraph (as the page's review notice says it)."""
    who = f"{r.get('reviewer') or 'an unnamed reviewer'} on {r.get('date') or 'an unknown date'}"
    n_reviewed, n_candidates = int(r.get("n_reviewed") or 0), int(r.get("n_candidates") or 0)
    agreement = r.get("agreement") or {}
    decisions = r.get("decisions") or {}
    if n_reviewed == 0:
        return (f"Not reviewed: the decisions of {who} cover none of the {n_candidates} candidates; the count is the "
                f"detector's ({r.get('detector_count')}).")
    text = (f"Reviewed by {who}: {n_reviewed} of {n_candidates} candidates decided ({decisions.get('mitosis', 0)} "
            f"mitosis, {decisions.get('not_mitosis', 0)} not, {decisions.get('unsure', 0)} unsure); "
            f"{agreement.get('detections_confirmed', 0)} of {agreement.get('detections_reviewed', 0)} reviewed "
            f"detections confirmed, {agreement.get('added_below_threshold', 0)} added from below the threshold. "
            f"Count {r.get('confirmed_count')} (detector: {r.get('detector_count')}).")
    if r.get("partial") and r.get("partial_note"):
        text += f" Partial review: {r['partial_note']}."
    return text


def _header_footer(rep: _Report, report: Mapping[str, Any], date: str, version: str):
    """The function that draws the running header and footer of page ``number`` of ``total``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    fields = [("Case", report.get("case_id")), ("Specimen", report.get("specimen")),
              ("Pathologist", report.get("pathologist")), ("Date", date[:10])]
    shown = "   ".join(f"{k}: {v}" for k, v in fields if v)
    if not rep.unicode:
        for char, words in _FALLBACK_CHARS.items():
            shown = shown.replace(char, words)

    def draw(canvas: Any, number: int, total: int) -> None:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        width, height = A4
        left, right = PAGE_MARGIN_MM * mm, width - PAGE_MARGIN_MM * mm
        top = height - 8 * mm
        page = f"page {number} of {total}"
        room = right - left - stringWidth(page, rep.bold, 8) - 6 * mm
        size = 8.0
        while size > 5 and stringWidth(shown, rep.font, size) > room:  # long fields: a smaller font, never overlap
            size -= 0.5
        canvas.saveState()
        canvas.setFont(rep.font, size)
        canvas.drawString(left, top, shown or "spindledx case report")
        canvas.setFont(rep.bold, 8)
        canvas.drawRightString(right, top, page)
        canvas.setStrokeColor(rep.colors.HexColor("#999999"))
        canvas.setLineWidth(0.5)
        canvas.line(left, top - 1.8 * mm, right, top - 1.8 * mm)
        canvas.setFont(rep.font, 6.5)
        canvas.setFillColor(rep.colors.HexColor("#555555"))
        canvas.drawString(left, 6 * mm, f"spindledx {version} case report, {date[:10]}: a decision aid for "
                                        "trained pathologists, not a diagnosis")
        canvas.restoreState()

    return draw


def _numbered_canvas(draw: Any) -> type:
    """A ReportLab canvas that keeps its pages until the end, so that each can say "page n of m"."""
    from reportlab.pdfgen import canvas as pdf_canvas

    class NumberedCanvas(pdf_canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                draw(self, number, total)
                super().showPage()
            super().save()

    return NumberedCanvas


def _answer(rep: _Report, doc: Mapping[str, Any]) -> list[Any]:
    diff = doc["differential"]
    lead, second = diff[0], diff[1] if len(diff) > 1 else None
    c = doc["count"]
    lines = [rep.para(f"Leading diagnosis: <font size='11'><b>{rep.text(entity_name(lead))}</b></font> "
                      f"<b>{percent(lead['probability'])}</b>"
                      + (f"   ·   next: {rep.text(entity_name(second))} {percent(second['probability'])}"
                         if second else ""),
                      rep.lead)]
    lines.append(rep.para(
        f"Mitotic count ({rep.text(c['method'])}): <b>{c['count']}</b> figures in {c['area_mm2']:.3f} mm² = "
        f"{c['mitoses_per_mm2']:.1f} per mm² = {c['mitoses_per_10hpf']:.1f} per 10 HPF (HPF "
        f"{c['hpf_area_mm2']:.4f} mm²; {c['n_hpf']:.2f} HPF counted"
        + (", <b>extrapolated</b>" if c["extrapolated"] else "") + ")"))
    lines.append(rep.para(f"FNCLCC grade: {rep.text(grade_text(doc['grade']))}"))
    nxt = doc.get("next_markers") or []
    if nxt:
        parts = []
        for m in nxt[:3]:
            pos = m.get("expected_positive") or {}
            shown = ", ".join(f"{k.replace('_', ' ')} {percent(v)}" for k, v in list(pos.items())[:3])
            parts.append(f"<b>{rep.text(m['marker'])}</b>" + (f" (P(+): {rep.text(shown)})" if shown else ""))
        lines.append(rep.para("What would change it: " + "; ".join(parts) + "."))
    return [rep.box(lines, fill="#f5f9fd")]


def _given(doc: Mapping[str, Any]) -> list[tuple[str, Any]]:
    inputs = doc["inputs"]
    used = [m + (" (flagged count, used as asked)" if m in (doc.get("morphology_used_flagged") or []) else "")
            for m in doc.get("morphology_used") or []]
    return [("IHC panel", inputs["panel"]), ("site", inputs.get("site") or "not given"),
            ("age", inputs.get("age") if inputs.get("age") is not None else "not given"),
            ("sex", inputs.get("sex") or "not given"), ("necrosis", inputs.get("necrosis") or "not given"),
            ("atypia", inputs.get("atypia") or "not given"),
            ("pattern", ", ".join(inputs.get("pattern") or []) or "not given"),
            ("evidence used besides stains", ", ".join(used) or "none")]


def _differential(rep: _Report, doc: Mapping[str, Any]) -> list[Any]:
    rows = [[str(i + 1), rep.text(entity_name(e)), percent(float(e["probability"])), _num(e.get("fit"), "{:.2f}")]
            for i, e in enumerate(doc["differential"][:N_DIFFERENTIAL])]
    given = [(k, v) for k, v in _given(doc)]
    left = rep.table(["#", "entity", "probability", "fit of the stains"], rows, (6, 58, 17, 17), numeric=(0, 2, 3))
    right = rep.pairs(given, (30, 56), style=rep.small)
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    t = Table([[[rep.para("<b>Ranked entities</b>", rep.small), left],
                [rep.para("<b>What the case was given</b>", rep.small), right]]],
              colWidths=[100 * mm, 86 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                           ("RIGHTPADDING", (0, 0), (0, -1), 2 * mm), ("RIGHTPADDING", (1, 0), (1, -1), 0)]))
    return [rep.para("Differential", rep.h2), t]


def _evidence(rep: _Report, doc: Mapping[str, Any]) -> list[Any]:
    lead = doc["differential"][0]
    rows = []
    for r in evidence_rows(lead):
        rows.append([rep.text(r["kind"]), rep.text(r["what"]), rep.text(r["observed"]), _num(r["likelihood"]),
                     _num(r["lr"]), rep.text(r["effect"]), rep.text(r["basis"]),
                     rep.para(rep.text(r["source"] or "–"), rep.tiny)])
    out = [rep.para(f"Evidence for {rep.text(entity_name(lead))}", rep.h2)]
    if not rows:
        return [*out, rep.para("No evidence recorded.", rep.small)]
    out.append(rep.table(["kind", "evidence", "observed", "P(observed | leading entity)", "likelihood ratio vs "
                          "the rest", "effect", "basis", "source"], rows, (17, 23, 22, 18, 16, 13, 29, 48),
                         numeric=(3, 4)))
    pitfalls = lead.get("pitfalls") or []
    if pitfalls:
        out += [rep.para("Pitfalls", rep.h3), *rep.bullets(list(pitfalls))]
    return out


def _next_markers(rep: _Report, doc: Mapping[str, Any]) -> list[Any]:
    rows = []
    for m in (doc.get("next_markers") or [])[:N_NEXT_MARKERS]:
        pos = m.get("expected_positive") or {}
        rows.append([rep.text(m["marker"]), rep.text(m.get("kind")), _num(m.get("expected_information_gain")),
                     rep.text("; ".join(f"{k.replace('_', ' ')} {percent(v)}" for k, v in pos.items()))])
    out = [rep.para("Next markers", rep.h2),
           rep.para("Untested markers ranked by expected information gain over the current differential, with the "
                    "chance each leading entity stains positive.", rep.small)]
    if not rows:
        return [*out, rep.para("None.", rep.small)]
    return [*out, rep.table(["marker", "kind", "expected information gain (bits)", "P(positive) for the leading "
                             "entities"], rows, (22, 14, 26, 124), numeric=(2,))]


def _jpeg(png: bytes, quality: int = 88) -> bytes:
    """JPEG bytes of a PNG thumbnail: the PDF embeds JPEG as it is (a PNG would be stored decoded, 10 times the
    size for a stained tile)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _thumbnail_grid(rep: _Report, doc: Mapping[str, Any], thumbnails: Mapping[str, bytes], caption: str) -> list:
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Table, TableStyle

    cells = []
    for t in doc.get("tiles") or []:
        png = thumbnails.get(t.get("stem", ""))
        if png is None:
            continue
        img = Image(io.BytesIO(_jpeg(png)))
        scale = THUMBNAIL_WIDTH_MM * mm / img.imageWidth
        img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
        cells.append([img, rep.para(rep.text(f"{t['stem']}: {t['count']} figures"), rep.tiny)])
    if not cells:
        return []
    per_row = int((210 - 2 * PAGE_MARGIN_MM) // (THUMBNAIL_WIDTH_MM + 4))
    rows = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
    rows[-1] += [""] * (per_row - len(rows[-1]))
    grid = Table(rows, colWidths=[(THUMBNAIL_WIDTH_MM + 4) * mm] * per_row, hAlign="LEFT")
    grid.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                              ("RIGHTPADDING", (0, 0), (-1, -1), 4), ("TOPPADDING", (0, 0), (-1, -1), 1),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    from reportlab.platypus import Spacer

    return [Spacer(1, 1.5 * mm), grid, rep.para(rep.text(caption), rep.tiny)]


def _count(rep: _Report, doc: Mapping[str, Any], thumbnails: Mapping[str, bytes]) -> list[Any]:
    c = doc["count"]
    out = [rep.para("Mitotic count", rep.h2)]
    if c["extrapolated"]:
        out.append(rep.box([rep.para(rep.text(
            f"Only {c['n_hpf']:.2f} HPF ({c['area_mm2']:.3f} mm²) were counted. The per-10-HPF figure is an "
            "extrapolation from a smaller area and is not an FNCLCC mitotic score; count 10 HPF (2.4 mm² with "
            "0.238 mm² fields) in the most active area."), rep.small)], border="#b7791f", fill="#fffaf0"))
    if c.get("flags"):
        out.append(rep.box([rep.para(rep.text(
            f"Detector flags: {', '.join(str(f).replace('_', ' ') for f in c['flags'])}. Treat the count as "
            "unreliable until it is reviewed."), rep.small)], border="#c53030", fill="#fff5f5"))
    ci = c.get("mitoses_per_10hpf_ci95")
    per10 = (f"{c['mitoses_per_10hpf']:.1f}" + (" (extrapolated)" if c["extrapolated"] else "")
             + (f"; 95 % interval {ci[0]:.1f}–{ci[1]:.1f} (Poisson sampling of the counted area)" if ci else ""))
    score = c.get("fnclcc_mitotic_score")
    scores = c.get("mitotic_scores_ci95") or []
    score_text = ("–" if score is None else f"{score}" + (" (extrapolated)" if c["extrapolated"] else "")
                  + (f"; scores within the 95 % interval: {', '.join(str(s) for s in scores)}" if scores else ""))
    pairs = [("figures counted", c["count"]), ("counted by", c["method"]),
             ("area counted", f"{c['area_mm2']:.3f} mm² ({c['n_hpf']:.2f} HPF)"),
             ("HPF area", f"{c['hpf_area_mm2']:.4f} mm² (10 HPF = {10 * c['hpf_area_mm2']:.2f} mm²)"),
             ("mitoses per mm²", f"{c['mitoses_per_mm2']:.2f}"), ("mitoses per 10 HPF", per10),
             ("FNCLCC mitotic score", score_text),
             ("grade status", str(doc["grade"].get("status", "")).replace("_", " ")),
             ("flags", ", ".join(str(f).replace("_", " ") for f in c.get("flags") or []) or "none"),
             ("images", c["n_images"])]
    if c.get("atypical_count") is not None:
        pairs.append(("atypical figures (atypical head)", f"{c['atypical_count']} of {c['count']}"))
    out.append(rep.grid(pairs, wide=("mitoses per 10 HPF", "FNCLCC mitotic score")))
    rows = []
    tiles = doc.get("tiles") or []
    has_atypical = any(t.get("atypical_count") is not None for t in tiles)
    for t in tiles:
        row = [rep.text(t.get("stem") or t["image"]), f"{t['width']} × {t['height']} px",
               f"{t['mpp']:g}" + (" (assumed)" if t.get("mpp_source") == "assumed" else ""),
               f"{t['area_mm2']:.4f}", str(t["count"]), _num(t.get("n_candidates_below_threshold")),
               f"{t['mitoses_per_mm2']:.1f}"]
        if has_atypical:
            row.append(_num(t.get("atypical_count")))
        row.append(rep.text(", ".join(str(f).replace("_", " ") for f in t.get("flags") or []) or "none"))
        rows.append(row)
    if rows:
        who = "detector " if doc.get("review") else ""  # the review's counts are the pooled count above
        header = ["image", "size", "µm per pixel", "area (mm²)", f"{who}figures", "candidates just below threshold",
                  f"{who}per mm²", *(["atypical figures"] if has_atypical else []), "flags"]
        widths = (38, 26, 18, 17, 14, 27, 15, *((14,) if has_atypical else ()), 31 - (14 if has_atypical else 0))
        out.append(rep.table(header, rows, widths, numeric=(2, 3, 4, 5, 6, *((7,) if has_atypical else ()))))
    messages = [m for t in tiles for m in t.get("flag_messages") or []] + list(c.get("flag_messages") or [])
    out += rep.bullets(list(messages))
    caption = ("Overlays: a circle around each figure the detector counted (amber; magenta when called atypical)."
               + (" The review's decisions are in the count above." if doc.get("review") else ""))
    out += _thumbnail_grid(rep, doc, thumbnails, caption)
    return out


def _grade(rep: _Report, g: Mapping[str, Any]) -> list[Any]:
    out = [rep.para("FNCLCC grade", rep.h2), rep.para(rep.text(grade_text(g)), rep.small)]
    if g.get("status") in ("graded", "extrapolated", "flagged"):
        label = {"graded": "grade", "extrapolated": "extrapolated grade (not an FNCLCC grade)",
                 "flagged": "grade of the flagged count (not given)"}[g["status"]]
        value = {"graded": g.get("grade"), "extrapolated": g.get("extrapolated_grade"),
                 "flagged": g.get("flagged_grade")}[g["status"]]
        out.append(rep.pairs([("entity graded", str(g["entity"]).replace("_", " ")),
                              ("differentiation score", g["differentiation_score"]),
                              ("mitotic score", g["mitotic_score"]), ("necrosis score", g["necrosis_score"]),
                              ("total", g["total"]), (label, value)]))
        if g.get("reason"):
            out.append(rep.para(rep.text(g["reason"]), rep.small))
    if g.get("assumptions"):
        out += [rep.para("Assumptions", rep.h3), *rep.bullets(list(g["assumptions"]))]
    return out


def _review(rep: _Report, r: Mapping[str, Any]) -> list[Any]:
    a = r.get("agreement") or {}
    kappa = a.get("kappa")
    pairs = [("reviewer", r.get("reviewer") or "not named"), ("date", r.get("date") or "not given"),
             ("detector count", r.get("detector_count")), ("confirmed count", r.get("confirmed_count")),
             ("candidates reviewed", f"{r.get('n_reviewed')} of {r.get('n_candidates')}"),
             ("detections confirmed", f"{a.get('detections_confirmed')} of {a.get('detections_reviewed')} reviewed"),
             ("figures added below threshold", a.get("added_below_threshold")),
             ("Cohen's kappa (reviewed, yes/no)", "–" if kappa is None else f"{kappa:.2f}")]
    out = [rep.para("Review", rep.h2), rep.grid(pairs)]
    if r.get("partial") and r.get("partial_note"):
        out.append(rep.para(rep.text(r["partial_note"]), rep.small))
    return out


def _provenance(rep: _Report, prov: Mapping[str, Any]) -> list[Any]:
    order = ("spindledx_version", "model_name", "model_version", "model_sha256", "model_card", "threshold",
             "review_floor", "kb_version", "date", "reviewed")
    keys = [k for k in order if prov.get(k) is not None] + [k for k in prov if k not in order]
    pairs = [(k.replace("_", " "), _num(prov[k], "{:.4g}")) for k in keys]
    return [rep.para("Provenance", rep.h2), rep.grid(pairs, wide=("model sha256",), style=rep.tiny)]


def _sign_off(rep: _Report, report: Mapping[str, Any]) -> list[Any]:
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    name = rep.text(report.get("pathologist") or "")
    line = rep.colors.HexColor("#333333")
    t = Table([[rep.para("Pathologist:"), rep.para(name), rep.para("Signature:"), "", rep.para("Date:"), ""]],
              colWidths=[20 * mm, 50 * mm, 19 * mm, 50 * mm, 11 * mm, 36 * mm], rowHeights=[9 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM"), ("LINEBELOW", (1, 0), (1, 0), 0.6, line),
                           ("LINEBELOW", (3, 0), (3, 0), 0.6, line), ("LINEBELOW", (5, 0), (5, 0), 0.6, line),
                           ("LEFTPADDING", (0, 0), (-1, -1), 1)]))
    return [KeepTogether([rep.para("Sign-off", rep.h2),
                          rep.para("I have reviewed the differential, the mitotic figures and the grade above."),
                          Spacer(1, 1 * mm), t])]


def render_case_pdf(doc: Mapping[str, Any], *, thumbnails: Mapping[str, bytes] | None = None) -> bytes:
    """The PDF bytes of the case report for a ``case.json`` (or ``case_reviewed.json``) document.

    Parameters
    ----------
    doc
        The case document (differential, count, tiles, grade, warnings, provenance; ``report`` for the header,
        ``review`` after ``review --import``).
    thumbnails
        Overlay PNG bytes by image stem (the images the case writes), shown under the count.

    Returns
    -------
    bytes
        An A4 PDF: a header on every page (case ID, specimen, pathologist, date, page n of m), then the answer,
        differential, evidence, next markers, count, grade, caveats, review, provenance and sign-off.

    Example: ``pdf = render_case_pdf(json.loads(Path("case_1/case.json").read_text()))``
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate

    rep = _Report()
    report = doc.get("report") or {}
    prov = doc.get("provenance") or {}
    lead = doc["differential"][0]
    title = f"Case report: {entity_name(lead)}"
    story: list[Any] = [rep.para(rep.text(title), rep.title)]
    story.append(rep.para(rep.text("Decision aid for trained pathologists and for teaching; not a diagnosis. The "
                                   "mitotic detector is a screening aid: its figures are confirmed by a pathologist "
                                   "before a count is reported."), rep.small))
    if doc.get("review"):
        story.append(rep.box([rep.para(rep.text(review_text(doc["review"])), rep.small)],
                             border="#b7791f" if doc["review"].get("partial") else "#2f855a"))
    story += _answer(rep, doc)
    story += _differential(rep, doc)
    story += _evidence(rep, doc)
    story += _next_markers(rep, doc)
    story += _count(rep, doc, thumbnails or {})
    story += _grade(rep, doc["grade"])
    caveats = list(doc.get("warnings") or []) + list(doc["grade"].get("caveats") or [])
    story += [rep.para("Caveats", rep.h2), *rep.bullets(list(caveats) or ["none"])]
    if doc.get("review"):
        story += _review(rep, doc["review"])
    story += _provenance(rep, prov)
    story += _sign_off(rep, report)

    buffer = io.BytesIO()
    template = BaseDocTemplate(buffer, pagesize=A4, leftMargin=PAGE_MARGIN_MM * mm,
                                 rightMargin=PAGE_MARGIN_MM * mm, topMargin=14 * mm, bottomMargin=10 * mm,
                                 title=title, author=str(report.get("pathologist") or ""),
                                 subject=" · ".join(str(v) for v in (report.get("case_id"), report.get("specimen"))
                                                    if v) or "spindledx case report",
                                 creator=f"spindledx {prov.get('spindledx_version', '')}".strip())
    frame = Frame(template.leftMargin, template.bottomMargin, template.width, template.height, leftPadding=0,
                  rightPadding=0, topPadding=0, bottomPadding=0)  # tables span the text width exactly
    template.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    draw = _header_footer(rep, report, str(prov.get("date") or ""), str(prov.get("spindledx_version") or ""))
    template.build(story, canvasmaker=_numbered_canvas(draw))
    return buffer.getvalue()


def folder_thumbnails(out_dir: str | Path, doc: Mapping[str, Any]) -> dict[str, bytes]:
    """Overlay thumbnails of a case folder by stem, read from the images the case wrote (``<stem>_overlay.png``
    for tiles, ``<stem>_thumbnail.png`` for a slide), downscaled as on the case page; missing ones are left out."""
    import cv2
    import numpy as np

    from spindledx.case.evidence import thumbnail_png
    from spindledx.errors import BadInputError
    from spindledx.files import read_bounded

    out: dict[str, bytes] = {}
    folder = Path(out_dir)
    for t in doc.get("tiles") or []:
        stem = str(t.get("stem") or "")
        for name in (f"{stem}_overlay.png", f"{stem}_thumbnail.png"):
            path = folder / name
            if not stem or path.is_symlink() or not path.is_file():
                continue
            try:
                data = read_bounded(path, max_bytes=MAX_OVERLAY_BYTES, what="an overlay image")
            except BadInputError:
                continue
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is not None:
                out[stem] = thumbnail_png(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                break
    return out


def write_case_pdf(path: str | Path, doc: Mapping[str, Any], *,
                   thumbnails: Mapping[str, bytes] | None = None) -> Path:
    """Render :func:`render_case_pdf` and write it atomically to ``path``; returns the path."""
    from spindledx.files import atomic_write_bytes

    return atomic_write_bytes(path, render_case_pdf(doc, thumbnails=thumbnails))
