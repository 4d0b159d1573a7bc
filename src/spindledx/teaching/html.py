"""Small HTML helpers for the static site: escaping, source links, slugs, the page frame, embedded JSON.

Every string that comes from the knowledge base passes through :func:`spindledx.pages.esc` (``html.escape``
with quotes) or is
rendered by the page script with ``textContent``; links are made only for ``http(s)`` URLs, DOIs and PMIDs found
in source fields (:func:`source_links`), and their ``href`` is escaped too.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from spindledx.pages import esc  # the pages' one escaping helper (quotes included; None -> an en dash)

_URL = re.compile(r"https?://[^\s<>\"']+")
_DOI = re.compile(r"\bdoi(?::\s*|\s+)(10\.\d{4,9}/[^\s\"']+)", re.IGNORECASE)
_PMID = re.compile(r"\bpmid(?::\s*|\s+)(\d{5,9})\b", re.IGNORECASE)
_PMC = re.compile(r"(?<![/\w])(PMC\d{5,9})\b")
_TRAILING = ".,;:)]"




def _trim(url: str) -> str:
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def source_links(text: str) -> list[tuple[int, int, str, str]]:
    """Links found in a source field: (start, end, label, href) for URLs, DOIs, PMIDs and bare PMC ids.

    DOIs become ``https://doi.org/<doi>``, PMIDs ``https://pubmed.ncbi.nlm.nih.gov/<pmid>/`` and ``PMC123456``
    ``https://pmc.ncbi.nlm.nih.gov/articles/PMC123456/``; only http(s)
    targets are produced.  Overlapping matches keep the first (URLs win over a DOI inside a URL).
    """
    found: list[tuple[int, int, str, str]] = []
    for m in _URL.finditer(text):
        url = _trim(m.group(0))
        found.append((m.start(), m.start() + len(url), url, url))
    for m in _DOI.finditer(text):
        doi = _trim(m.group(1))
        found.append((m.start(), m.start(1) + len(doi), f"doi:{doi}", "https://doi.org/" + quote(doi, safe="/:;()-._")))
    for m in _PMID.finditer(text):
        found.append((m.start(), m.end(), f"pmid:{m.group(1)}", f"https://pubmed.ncbi.nlm.nih.gov/{m.group(1)}/"))
    for m in _PMC.finditer(text):
        found.append((m.start(), m.end(), m.group(1), f"https://pmc.ncbi.nlm.nih.gov/articles/{m.group(1)}/"))
    found.sort()
    kept: list[tuple[int, int, str, str]] = []
    for item in found:
        if not kept or item[0] >= kept[-1][1]:
            kept.append(item)
    return kept


def short_url(url: str, limit: int = 48) -> str:
    """A URL for display: scheme dropped, cut to ``limit`` characters with an ellipsis (the link keeps it all)."""
    text = re.sub(r"^https?://(www\.)?", "", url)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def linkify(text: str) -> str:
    """Escaped ``text`` with its URLs, DOIs and PMIDs turned into links (opened in a new tab); long URLs are
    shown shortened (:func:`short_url`) with the full address as the link and its title."""
    out: list[str] = []
    pos = 0
    for start, end, _label, href in source_links(text):
        shown = text[start:end]
        if shown.startswith(("http://", "https://")):
            shown = short_url(shown)
        out.append(esc(text[pos:start]))
        out.append(f'<a href="{esc(href)}" title="{esc(href)}" target="_blank" rel="noopener">{esc(shown)}</a>')
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def source_segments(text: str) -> list[dict[str, str]]:
    """A source field cut into ``[{"text"}, {"text", "href"}, ...]`` pieces, for the page script to render with
    ``textContent`` (the same links as :func:`linkify`)."""
    out: list[dict[str, str]] = []
    pos = 0
    for start, end, _label, href in source_links(text):
        if start > pos:
            out.append({"text": text[pos:start]})
        out.append({"text": text[start:end], "href": href})
        pos = end
    if pos < len(text):
        out.append({"text": text[pos:]})
    return out


def slugify(name: str) -> str:
    """File-name slug: lower case ASCII letters, digits and single dashes (``"CK5/6"`` -> ``"ck5-6"``)."""
    text = name.replace("α", "alpha").replace("β", "beta").replace("γ", "gamma").replace("δ", "delta")
    text = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return text or "x"


def json_for_script(payload: object) -> str:
    """JSON safe to embed in a ``<script>`` element (``<``, ``>`` and ``&`` as unicode escapes)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pct(value: float | None, digits: int = 0) -> str:
    """``0.79`` -> ``"79%"``; None -> ``"–"``."""
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def page(title: str, body: str, *, root: str, footer: str, scripts: tuple[str, ...] = ()) -> str:
    """A complete page: header with navigation and the search box, ``body`` (already HTML), footer.

    ``root`` is the relative path back to the site root (``""`` or ``"../"``); only local scripts and styles are
    referenced, so the page works from ``file://`` without a network.
    """
    extra = "".join(f'<script src="{esc(root + s)}"></script>' for s in scripts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · spindledx knowledge base</title>
<link rel="stylesheet" href="{esc(root)}assets/site.css">
</head>
<body data-root="{esc(root)}">
<header class="top">
<a class="brand" href="{esc(root)}index.html">spindledx KB</a>
<nav><a href="{esc(root)}index.html#entities">Entities</a><a href="{esc(root)}index.html#markers">Markers</a>\
<a href="{esc(root)}matrix.html">Matrix</a><a href="{esc(root)}index.html#compare">A vs B</a>\
<a href="{esc(root)}panel.html">Panel form</a><a href="{esc(root)}quiz.html">Quiz</a></nav>
<div class="search"><input id="search" type="search" placeholder="Search entity, marker, synonym…" \
autocomplete="off" aria-label="Search the knowledge base"><ul id="search-results" hidden></ul></div>
</header>
<main>
{body}
</main>
<footer>{footer}</footer>
<script src="{esc(root)}assets/search-index.js"></script>
{extra}<script src="{esc(root)}assets/site.js"></script>
</body>
</html>
"""
