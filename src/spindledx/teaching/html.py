"""Small HTML helpers for the static site: escaping, source links, slugs, the page frame, embedded JSON.

Every string that comes from the knowledge base passes through :func:`spindledx.pages.esc` (``html.escape``
with quotes) or is
rendered by the page script with ``textContent``; links are made only for ``http(s)`` URLs, DOIs and PMIDs found
in source fields (:func:`spindledx.pages.links.source_links`), and their ``href`` is escaped too.
"""

from __future__ import annotations

import json
import re

from spindledx.pages import esc  # the pages' one escaping helper (quotes included; None -> an en dash)
from spindledx.pages.links import linkify, short_url, source_links

__all__ = ["esc", "json_for_script", "linkify", "page", "pct", "short_url", "slugify", "source_links",
           "source_segments"]



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
