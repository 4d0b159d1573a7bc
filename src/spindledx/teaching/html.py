"""Helpers of the static site: the page frame (templates ``site/*.html.j2``), source links, slugs, embedded JSON.

Pages are rendered by :func:`spindledx.pages.render` (autoescape on): every string that comes from the knowledge
base is escaped by the template or rendered by the page script with ``textContent``; links are made only for
``http(s)`` URLs, DOIs and PMIDs found in source fields (:func:`spindledx.pages.links.linkify`), and their ``href``
is escaped too. JSON for the site's script files goes through :func:`json_for_script`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from spindledx.pages import render
from spindledx.pages.environment import percent
from spindledx.pages.links import linkify, short_url, source_links

__all__ = ["Frame", "json_for_script", "linkify", "pct", "render_page", "short_url", "slugify", "source_links",
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
    return percent(value, digits)


@dataclass(frozen=True)
class Frame:
    """The frame of a site page: its title, the relative path back to the site root (``""`` or ``"../"``), the
    footer's (label, value) pairs and the local scripts it loads besides the search index and ``site.js``."""

    title: str
    root: str
    footer: tuple[tuple[str, str], ...]
    scripts: tuple[str, ...] = ()


def render_page(template: str, frame: Frame | None, **context: object) -> str:
    """Render the site template ``template`` (``site/*.html.j2``) in the page ``frame`` (header with navigation and
    search box, footer), or its main part alone when ``frame`` is None."""
    if frame is None:
        return render(template, layout="site/bare.html.j2", **context)
    return render(template, layout="site/frame.html.j2", title=frame.title, root=frame.root,
                  footer=frame.footer, scripts=frame.scripts, **context)
