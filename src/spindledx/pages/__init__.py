"""The self-contained HTML pages spindledx writes (case, review, batch report, teaching site), from templates.

Every page is rendered by :func:`render` with the one Jinja2 environment of :mod:`spindledx.pages.environment`
from a template in ``spindledx/pages/templates/`` (package data): autoescape on, missing values an error. Pages
are one file each: CSS inline, images as base64 ``data:`` URIs, no external script or font, so they open from a
``file://`` URL offline, can be mailed or archived, and print on A4 (``page.css`` carries an ``@media print``
sheet).
"""

from __future__ import annotations

from spindledx.pages.environment import data_uri, environment, fmt, render
from spindledx.pages.links import linkify, short_url, source_links

__all__ = ["data_uri", "environment", "fmt", "linkify", "render", "short_url", "source_links"]
