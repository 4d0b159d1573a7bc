"""HTML fragments for the self-contained pages: escaping, tables, sections, embedded PNG, notices, provenance.

Nothing here loads anything from the network: the CSS uses system font stacks, images are ``data:`` URIs.
The print sheet (``@media print``) sets an A4 page with 14 mm margins, drops interactive controls
(``.no-print``), keeps tables and figures from splitting across pages and prints link targets as plain text.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CSS = """
:root{--ink:#1d1d1f;--muted:#666;--line:#d8d8d8;--head:#f2f2f4;--accent:#1f5fa8;--warn:#9a3b00;--warnbg:#fff4e5;
--okbg:#eef7ee;--badbg:#fdecec}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0 auto;
max-width:1100px;padding:1.2em 1.2em 3em;color:var(--ink);line-height:1.45;font-size:15px}
h1{font-size:1.55em;margin:.2em 0 .1em}h2{font-size:1.2em;border-bottom:2px solid var(--line);padding-bottom:.2em;
margin-top:1.8em}h3{font-size:1.02em;margin:1.2em 0 .3em}
p{margin:.45em 0}.muted{color:var(--muted)}.small{font-size:.85em}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0 .8em;max-width:100%}
td,th{border:1px solid var(--line);padding:3px 8px;vertical-align:top;text-align:left}
th{background:var(--head);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.src{overflow-wrap:anywhere;word-break:break-word;min-width:14em;font-size:.92em}td{overflow-wrap:break-word}
table.kv td:first-child{font-weight:600;white-space:nowrap;background:#fafafa}
.notice{border-left:4px solid var(--warn);background:var(--warnbg);padding:.45em .8em;margin:.6em 0}
.notice.info{border-color:var(--accent);background:#eef4fb}.notice.ok{border-color:#2c7a2c;background:var(--okbg)}
.notice.bad{border-color:#b00020;background:var(--badbg)}
.answer{font-size:1.15em;border:2px solid var(--accent);border-radius:6px;padding:.7em 1em;margin:.8em 0}
.answer .big{font-size:1.35em;font-weight:700}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:.82em;color:var(--muted);
max-width:380px}img{max-width:100%}img.thumb{border:1px solid var(--line)}
table.sortable img.thumb{max-width:none}table.sortable th{cursor:pointer}th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}
.prov{font-size:.82em;color:var(--muted)}.prov table{font-size:1em}
.bar{display:inline-block;height:.7em;background:var(--accent);vertical-align:middle;margin-right:.4em}
code{background:#f4f4f4;padding:0 .25em;border-radius:3px}
a{color:var(--accent)}
@page{size:A4;margin:14mm}
@media print{
body{max-width:none;padding:0;font-size:10.5pt}.no-print{display:none!important}
h2{break-after:avoid;page-break-after:avoid}table,figure,.answer,.notice{break-inside:avoid;page-break-inside:avoid}
a{color:inherit;text-decoration:none}img{max-width:100%!important}
}
"""


def esc(value: Any, *, digits: int = 3) -> str:
    """HTML-escaped text of ``value``: ``None`` -> an en dash, floats to ``digits`` significant figures,
    booleans as yes/no, lists joined with commas."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return html.escape(f"{value:.{digits}g}")
    if isinstance(value, list | tuple):
        return ", ".join(esc(v, digits=digits) for v in value)
    return html.escape(str(value))


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` URI of PNG bytes (``image/jpeg`` when the bytes are a JPEG)."""
    mime = "image/jpeg" if png[:3] == b"\xff\xd8\xff" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(png).decode("ascii")


def png_img(png: bytes, alt: str, *, css_class: str = "", width_px: int | None = None) -> str:
    """An ``<img>`` carrying the PNG inline."""
    size = f" width='{int(width_px)}'" if width_px else ""
    cls = f" class='{html.escape(css_class)}'" if css_class else ""
    return f"<img src='{png_data_uri(png)}' alt='{html.escape(alt)}'{cls}{size}>"


def figure(png: bytes, caption: str, *, alt: str | None = None, href: str | None = None,
           width_px: int | None = None) -> str:
    """A figure with an inline PNG and an escaped caption; ``href`` makes the image a link."""
    img = png_img(png, alt or caption, css_class="thumb", width_px=width_px)
    if href:
        img = f"<a href='{html.escape(href)}'>{img}</a>"
    return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"


def section(section_id: str, title: str, *parts: str) -> str:
    """``<section id=...><h2>title</h2>parts</section>`` (parts are HTML already)."""
    return (f"<section id='{html.escape(section_id)}'><h2>{html.escape(title)}</h2>" + "".join(parts)
            + "</section>")


def notice(text: str, *, kind: str = "warn", html_text: bool = False) -> str:
    """A boxed message: ``kind`` is warn, info, ok or bad. ``text`` is escaped unless ``html_text``."""
    body = text if html_text else html.escape(text)
    return f"<div class='notice {html.escape(kind)}'>{body}</div>"


Column = tuple[str, str] | tuple[str, str, str]


SORTABLE_SCRIPT = """<script>
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.tabIndex = 0; th.title = 'sort by this column';
    function sort() {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var up = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
      function key(r) { var c = r.cells[col]; var v = c.getAttribute('data-sort') || c.textContent.trim();
                        var n = parseFloat(v); return isNaN(n) ? v.toLowerCase() : n; }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
  });
});
</script>"""
"""Sorts every ``table.sortable`` by the clicked column (numbers numerically); add it once to a page."""


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str = "none",
          raw: Iterable[str] = (), css_class: str = "") -> str:
    """A table with human column labels.

    Parameters
    ----------
    rows
        Records.
    columns
        ``(key, label)`` or ``(key, label, kind)`` with kind ``"num"`` (right-aligned numbers) or ``"src"``
        (long citations and URLs, wrapped anywhere).
    empty
        Text shown instead of an empty table.
    raw
        Keys whose values are HTML already (e.g. a thumbnail) and are not escaped.
    css_class
        Class of the ``<table>``.
    """
    if not rows:
        return f"<p class='muted'>{html.escape(empty)}</p>"
    raw_keys = set(raw)
    head = "".join(f"<th class='{c[2] if len(c) > 2 else ''}'>{html.escape(c[1])}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            value = r.get(c[0])
            text = str(value) if c[0] in raw_keys and value is not None else esc(value)
            cells.append(f"<td class='{c[2] if len(c) > 2 else ''}'>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = f" class='{html.escape(css_class)}'" if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    """Two-column label/value table (values escaped with :func:`esc`)."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f"<table class='kv'><tbody>{rows}</tbody></table>"


def provenance_block(prov: Mapping[str, Any]) -> str:
    """The provenance section body: software, model and knowledge-base versions, checksum, date, and any extra
    keys of ``prov`` in words."""
    labels = {"spindledx_version": "spindledx version", "model_name": "detector model",
              "model_version": "detector model version", "model_sha256": "detector model sha256",
              "threshold": "detection threshold", "kb_version": "IHC knowledge-base version", "date": "date (UTC)",
              "command": "command"}
    pairs = [(labels.get(k, k.replace("_", " ")), v) for k, v in prov.items() if not isinstance(v, dict | list)]
    adapted = prov.get("adapted_from")
    if isinstance(adapted, dict):
        pairs.append(("detector adapted from", f"{adapted.get('name')} {adapted.get('version')} (sha256 "
                                               f"{str(adapted.get('sha256') or '')[:12]}…)"))
    return f"<div class='prov'>{kv_table(pairs)}</div>"


def document(title: str, body: str, *, subtitle: str | None = None, script: str | None = None,
             extra_css: str = "") -> str:
    """A complete HTML5 page: inline CSS (+ ``extra_css``), optional inline ``script`` at the end of the body."""
    sub = f"<p class='muted'>{html.escape(subtitle)}</p>" if subtitle else ""
    js = f"<script>{script}</script>" if script else ""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}{extra_css}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{sub}{body}{js}</body></html>")
