"""Imaging core: the one reader of tiles and slides with the one µm/px parser, the one resampler, stain OD.

``read_image`` and ``open_slide`` are imported lazily so that ``import spindledx.imaging`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Tile": "spindledx.imaging.reader",
    "read_image": "spindledx.imaging.reader",
    "tile_from_array": "spindledx.imaging.reader",
    "IMAGE_SUFFIXES": "spindledx.imaging.reader",
    "open_slide": "spindledx.imaging.slide",
    "WholeSlide": "spindledx.imaging.slide",
    "SlideInfo": "spindledx.imaging.slide",
    "resample": "spindledx.imaging.resample",
    "resample_to": "spindledx.imaging.resample",
    "Resolution": "spindledx.imaging.resolution",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spindledx.imaging' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
