"""Shared building blocks for the self-contained HTML pages spindledx writes (case, review, batch report, teaching).

Every page is one file: CSS inline, images as base64 PNG ``data:`` URIs, no external script or font, so it opens
from a ``file://`` URL offline, can be mailed or archived, and prints on A4 (:data:`CSS` carries an ``@media
print`` sheet). Helpers return HTML fragments as strings; every value that comes from data goes through
:func:`esc`.
"""

from __future__ import annotations

from spindledx.pages.components import (
    CSS,
    document,
    esc,
    figure,
    kv_table,
    notice,
    png_data_uri,
    png_img,
    provenance_block,
    section,
    table,
)

__all__ = ["CSS", "document", "esc", "figure", "kv_table", "notice", "png_data_uri", "png_img",
           "provenance_block", "section", "table"]
