"""Imaging core: the one reader of tiles and slides with the one µm/px parser, the one resampler, stain OD.

``read_image`` and ``open_slide`` are imported lazily so that ``import spindledx.imaging`` stays cheap.
"""

from __future__ import annotations

from spindledx.lazy import lazy_getattr

_MODULES = {
    "spindledx.imaging.reader": ("Tile", "read_image", "tile_from_array", "IMAGE_SUFFIXES"),
    "spindledx.imaging.slide": ("open_slide", "WholeSlide", "SlideInfo"),
    "spindledx.imaging.resample": ("resample", "resample_to"),
    "spindledx.imaging.resolution": ("Resolution",),
}
__all__ = sorted(name for names in _MODULES.values() for name in names)
__getattr__ = lazy_getattr(__name__, _MODULES)
