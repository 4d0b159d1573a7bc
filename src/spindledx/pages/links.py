"""Links in source fields (URLs, DOIs, PMIDs, PMC ids): found, shortened for display, rendered as escaped markup.

Only ``http(s)`` targets are produced, so a source field can never carry a ``javascript:`` link into a page.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from markupsafe import Markup, escape

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


_LINK = Markup('<a href="{0}" title="{0}" target="_blank" rel="noopener">{1}</a>')


def linkify(text: str | None) -> Markup:
    """``text`` escaped, with its URLs, DOIs and PMIDs turned into links (opened in a new tab); long URLs are
    shown shortened (:func:`short_url`) with the full address as the link and its title.

    The one piece of data-driven markup of the pages: every part of ``text`` and every ``href`` goes through
    :func:`markupsafe.escape` (``Markup.format`` escapes its arguments) before the result is marked safe.
    """
    if text is None:
        return Markup("–")
    text = str(text)
    out: list[Markup] = []
    pos = 0
    for start, end, _label, href in source_links(text):
        shown = text[start:end]
        if shown.startswith(("http://", "https://")):
            shown = short_url(shown)
        out.append(escape(text[pos:start]))
        out.append(_LINK.format(href, shown))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)
