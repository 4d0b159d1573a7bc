"""Tissue detection on a low-resolution thumbnail: Otsu on saturation, pen marks and specks removed.

Stained tissue is coloured and glass is grey-white, so the HSV saturation separates them; the Otsu (1979)
threshold is computed on the thumbnail's saturation and clipped to ``[MIN_SATURATION, MAX_SATURATION]`` so that
a slide covered edge to edge by tissue (where Otsu would split the tissue itself) or an empty one still gets a
sensible cut. Marker-pen ink is removed before that: H&E has no green, pen blue is a purer and brighter blue
than haematoxylin's purple, and black ink is dark and grey where dense haematoxylin is dark but saturated. Only
ink regions larger than ``min_pen_um2`` count (a stroke is long; a few dark-blue nuclei are not a stroke).
Objects and holes smaller than the given areas are removed/filled with
:func:`skimage.morphology.remove_small_objects` / ``remove_small_holes``. Common WSI tools do the same (e.g.
histolab's ``TissueMask``, HistomicsTK's saturation-based ``get_tissue_mask``). The colour bounds are generic
colour facts; the grey/bright/size conditions on ink were added after the first version cut holes in dense
haematoxylin of the CMU-1 region (the only real slide seen), with no other tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu
from skimage.morphology import disk, remove_small_holes, remove_small_objects

from spindledx.imaging.slide import WholeSlide
from spindledx.slide.tiling import Raster, make_raster, read_raster

DEFAULT_TISSUE_MPP = 8.0
MIN_SATURATION = 0.04
MAX_SATURATION = 0.15
DARK_VALUE = 0.2          # max(R, G, B) / 255 below this and grey (saturation < PEN_SATURATION): black ink, dust
GREEN_HUE = (0.17, 0.45)  # yellow-green to cyan-green
BLUE_HUE = (0.50, 0.66)   # cyan-blue to pure blue; haematoxylin purple sits at about 0.70-0.80
PEN_SATURATION = 0.35


@dataclass(frozen=True)
class TissueMask:
    """Tissue mask on a thumbnail raster.

    Attributes
    ----------
    mask
        Boolean ``(height, width)`` array, True on tissue.
    thumbnail
        RGB uint8 thumbnail the mask was computed from.
    raster
        Geometry of the thumbnail (``raster.mpp`` µm/px, level-0 scale).
    saturation_threshold
        Saturation cut used (Otsu, clipped).
    pen_fraction
        Fraction of thumbnail pixels removed as pen ink or dark marks.
    area_mm2
        Tissue area.
    """

    mask: np.ndarray
    thumbnail: np.ndarray
    raster: Raster
    saturation_threshold: float
    pen_fraction: float
    area_mm2: float


def pen_mask(rgb: np.ndarray, mpp: float, *, min_pen_um2: float = 20_000.0) -> np.ndarray:
    """True on green or blue marker-pen ink and on dark grey (black ink, dust) regions of an RGB thumbnail.

    Regions smaller than ``min_pen_um2`` are ignored.
    """
    hsv = rgb2hsv(rgb)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    green = (hue >= GREEN_HUE[0]) & (hue < GREEN_HUE[1]) & (sat > PEN_SATURATION)
    blue = (hue >= BLUE_HUE[0]) & (hue < BLUE_HUE[1]) & (sat > PEN_SATURATION) & (val > 0.3)
    dark = (val < DARK_VALUE) & (sat < PEN_SATURATION)
    return remove_small_objects(green | blue | dark, max_size=int(min_pen_um2 / (mpp * mpp)), connectivity=2)


def tissue_mask(rgb: np.ndarray, mpp: float, *, min_object_um2: float = 20_000.0,
                min_hole_um2: float = 20_000.0, min_pen_um2: float = 20_000.0,
                pen_dilation_um: float = 16.0) -> tuple[np.ndarray, float, float]:
    """Tissue mask of a low-resolution RGB image.

    Parameters
    ----------
    rgb
        RGB uint8 thumbnail ``(H, W, 3)``.
    mpp
        Its resolution in µm/px (e.g. 8).
    min_object_um2
        Tissue fragments smaller than this are dropped (specks, dust).
    min_hole_um2
        Holes smaller than this inside tissue are filled (lumina, fat cells).
    min_pen_um2
        Ink regions smaller than this are not treated as pen marks.
    pen_dilation_um
        Pen strokes are grown by this much before removal, to drop their anti-aliased rim.

    Returns
    -------
    mask, saturation_threshold, pen_fraction
    """
    saturation = rgb2hsv(rgb)[..., 1]
    pen = pen_mask(rgb, mpp, min_pen_um2=min_pen_um2)
    radius = int(round(pen_dilation_um / mpp))
    if radius > 0 and pen.any():
        pen = binary_dilation(pen, structure=disk(radius))
    candidates = saturation[~pen]
    threshold = float(threshold_otsu(candidates)) if candidates.size and np.ptp(candidates) > 0 else MAX_SATURATION
    threshold = float(np.clip(threshold, MIN_SATURATION, MAX_SATURATION))
    mask = (saturation > threshold) & ~pen
    px_area_um2 = mpp * mpp
    mask = remove_small_objects(mask, max_size=int(min_object_um2 / px_area_um2))
    mask = remove_small_holes(mask, max_size=int(min_hole_um2 / px_area_um2))
    mask &= ~pen
    return mask, threshold, float(pen.mean())


def read_thumbnail(slide: WholeSlide, *, mpp: float = DEFAULT_TISSUE_MPP,
                   max_strip_bytes: int = 1 << 27) -> tuple[np.ndarray, Raster]:
    """The whole slide at about ``mpp`` µm/px (from the closest pyramid level), read in strips to bound memory."""
    raster = make_raster(slide.info, mpp, tolerance=0.5)
    level_w = slide.info.level_dimensions[raster.level][0]
    row_bytes = max(1, level_w * 3 * raster.downsample * raster.downsample)
    strip = max(1, min(raster.height, max_strip_bytes // row_bytes))
    out = np.empty((raster.height, raster.width, 3), np.uint8)
    for y in range(0, raster.height, strip):
        h = min(strip, raster.height - y)
        out[y:y + h] = read_raster(slide, raster, 0, y, raster.width, h)
    return out, raster


def detect_tissue(slide: WholeSlide, *, mpp: float = DEFAULT_TISSUE_MPP, min_object_um2: float = 20_000.0,
                  min_hole_um2: float = 20_000.0) -> TissueMask:
    """Read a thumbnail of ``slide`` and compute its tissue mask (see :func:`tissue_mask`).

    On an image smaller than four times ``min_object_um2`` (a tile), objects and holes down to a quarter of the
    image are kept, so that a tile wholly on tissue is not dropped as a speck.
    """
    thumb, raster = read_thumbnail(slide, mpp=mpp)
    image_um2 = slide.info.width * slide.info.height * slide.info.mpp ** 2
    min_object_um2 = min(min_object_um2, image_um2 / 4.0)
    min_hole_um2 = min(min_hole_um2, image_um2 / 4.0)
    mask, threshold, pen_fraction = tissue_mask(thumb, raster.mpp, min_object_um2=min_object_um2,
                                                min_hole_um2=min_hole_um2)
    area_mm2 = float(mask.sum()) * raster.mpp * raster.mpp / 1e6
    return TissueMask(mask=mask, thumbnail=thumb, raster=raster, saturation_threshold=threshold,
                      pen_fraction=pen_fraction, area_mm2=area_mm2)
