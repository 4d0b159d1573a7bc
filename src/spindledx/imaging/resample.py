"""The one resampler between resolutions (µm/px) used by every stage.

``cv2.INTER_AREA`` when shrinking (pixel-area averaging, no aliasing) and ``cv2.INTER_LINEAR`` when enlarging
(OpenCV ``resize``). The output size is ``round(size * mpp_from / mpp_to)``.
"""

from __future__ import annotations

import numpy as np

from spindledx.counting import check_mpp
from spindledx.errors import BadInputError

MAX_RESAMPLED_PIXELS = 100_000_000
"""Largest resampled image (pixels): the tile limit of :data:`spindledx.imaging.reader.MAX_TILE_PIXELS`."""


def scale_factor(mpp_from: float, mpp_to: float) -> float:
    """Pixel-coordinate scale from an image at ``mpp_from`` to the same field at ``mpp_to`` (µm/px)."""
    return check_mpp(mpp_from) / check_mpp(mpp_to)


def resample_to(rgb: np.ndarray, mpp_from: float, mpp_to: float, *, tolerance: float = 1e-3,
                max_pixels: int = MAX_RESAMPLED_PIXELS) -> tuple[np.ndarray, float, float]:
    """Resample ``rgb`` from ``mpp_from`` to ``mpp_to`` µm/px, with the coordinate scales of the result.

    Parameters
    ----------
    rgb
        Image ``(H, W[, C])``.
    mpp_from, mpp_to
        Resolutions of the input and of the output in µm/px.
    tolerance
        Relative difference of the two resolutions below which the input is returned unchanged.
    max_pixels
        Largest output (pixels); a larger one is refused before it is allocated (BadInputError naming ``mpp``):
        a 2000 px tile said to be at 5 µm/px is 40000 px wide at 0.25 µm/px.

    Returns
    -------
    image, scale_x, scale_y
        The resampled image and the input pixels per output pixel along x and y (exact, after rounding the
        size): output pixel centre ``i`` lies at input coordinate ``(i + 0.5) * scale - 0.5``.
    """
    import cv2

    factor = scale_factor(mpp_from, mpp_to)
    if abs(factor - 1.0) < tolerance:
        return rgb, 1.0, 1.0
    height, width = rgb.shape[:2]
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    if new_w * new_h > max_pixels:
        raise BadInputError(f"a {width} x {height} px image at {mpp_from:g} µm/px is {new_w} x {new_h} px "
                            f"({new_w * new_h / 1e6:.0f} MP) at {mpp_to:g} µm/px, above the {max_pixels / 1e6:.0f} MP "
                            "limit of one tile: check the resolution (mpp), or use `spindledx slide` for whole "
                            "slides", parameters="mpp")
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, (new_w, new_h), interpolation=interpolation), width / new_w, height / new_h


def resample(rgb: np.ndarray, mpp_from: float, mpp_to: float, *, tolerance: float = 1e-3) -> np.ndarray:
    """:func:`resample_to` without the scales: the image at ``mpp_to`` µm/px (the input itself within
    ``tolerance``)."""
    return resample_to(rgb, mpp_from, mpp_to, tolerance=tolerance)[0]
