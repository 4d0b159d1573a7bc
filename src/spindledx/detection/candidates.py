"""High-recall mitosis candidates: peaks of the smoothed hematoxylin channel at the working resolution.

Mitotic figures are the darkest, most hematoxylin-dense objects in an H&E field. Candidates are local maxima
of a Gaussian-smoothed hematoxylin concentration map (colour deconvolution with the Ruifrok & Johnston 2001
reference vectors, which on the midesec fields gave higher candidate recall than a per-image Macenko matrix:
100% vs 93% at similar counts), kept when above an image-relative percentile, at least ``min_distance_um``
apart (the rule of skimage ``peak_local_max``, with OpenCV's maximum filter; see :func:`local_peaks`). All sizes
are in micrometres and converted with ``mpp``.
"""

from __future__ import annotations

import cv2
import numpy as np

from spindledx.imaging.stain import REFERENCE_STAIN_MATRIX, concentration_channel, concentrations

#: Internal working resolution of the detector (µm/px).
WORKING_MPP = 0.25


def candidate_channel(rgb: np.ndarray, *, stain_matrix: np.ndarray | None = None) -> np.ndarray:
    """Hematoxylin concentration ``(H, W)`` float32 used for candidate search (reference H&E vectors)."""
    matrix = REFERENCE_STAIN_MATRIX if stain_matrix is None else stain_matrix
    h = concentration_channel(rgb, matrix, 0) if rgb.dtype == np.uint8 else concentrations(rgb, matrix)[..., 0]
    return np.maximum(h, 0.0).astype(np.float32)


def local_peaks(image: np.ndarray, *, min_distance: int, threshold_abs: float) -> np.ndarray:
    """Local maxima of a 2-D float image: skimage ``peak_local_max(image, min_distance=min_distance,
    threshold_abs=threshold_abs, exclude_border=False)``, the same points in the same order, 10x faster.

    A pixel is a peak when it equals the maximum of its ``(2 min_distance + 1)``² neighbourhood and exceeds
    ``threshold_abs``; peaks are taken by decreasing value (stable order) and any within ``min_distance``
    (Chebyshev, strictly) of a kept one is dropped. The neighbourhood maximum is OpenCV's ``dilate`` (exact for
    floats; pixels outside the image are ignored, as with ``scipy.ndimage.maximum_filter(mode='nearest')``, which
    skimage uses and which took 90% of the time). Two peaks closer than ``min_distance`` lie in each other's
    neighbourhood, so each is at least the other: they have equal values. Without equal values, or with equal
    values all at least ``min_distance`` apart, the spacing rule therefore drops nothing; otherwise it is applied to
    the peaks alone (:func:`_spaced`). A constant image has no peak, as in skimage.

    Returns
    -------
    numpy.ndarray
        int ``(N, 2)`` (row, column), highest peak first.
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    size = 2 * int(min_distance) + 1
    is_max = image == cv2.dilate(image, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    if is_max.all() and image.size > 1:  # constant image: no peak (skimage's "trivial image" rule)
        return np.zeros((0, 2), dtype=np.intp)
    peak = is_max & (image > threshold_abs)
    rows, cols = np.nonzero(peak)
    values = image[rows, cols]
    coords = np.transpose((rows, cols))[np.argsort(-values, kind="stable")]
    if min_distance <= 1 or np.unique(values).size == values.size:
        return coords
    return _spaced(coords, min_distance)


def _spaced(coords: np.ndarray, min_distance: int) -> np.ndarray:
    """skimage's spacing rule (``skimage._shared.coord.ensure_spacing`` with the Chebyshev distance) on points
    already in decreasing order: each point not yet dropped is kept and drops every later point less than
    ``min_distance`` from it. Run on the peaks alone, not on a masked copy of the whole image."""
    from scipy.spatial import cKDTree

    # integer points: a distance below min_distance is at most min_distance - 1
    near = cKDTree(coords).query_ball_point(coords, r=min_distance - 1, p=np.inf)
    dropped = np.zeros(len(coords), dtype=bool)
    for i, neighbours in enumerate(near):
        if not dropped[i]:
            for j in neighbours:
                if j != i:
                    dropped[j] = True
    return coords[~dropped]


def find_candidates(
    rgb: np.ndarray,
    mpp: float = WORKING_MPP,
    *,
    sigma_um: float = 0.75,
    min_distance_um: float = 4.0,
    percentile: float = 80.0,
    min_concentration: float = 0.1,
    stain_matrix: np.ndarray | None = None,
) -> np.ndarray:
    """Locate candidate mitotic figures as hematoxylin peaks.

    Parameters
    ----------
    rgb
        uint8 RGB image ``(H, W, 3)``.
    mpp
        Resolution of ``rgb`` in µm/px (the detector calls this at 0.25 µm/px).
    sigma_um
        Gaussian smoothing of the hematoxylin map (µm).
    min_distance_um
        Minimum distance between two candidates (µm).
    percentile
        A peak must exceed this percentile of the smoothed map of the same image (image-relative threshold).
    min_concentration
        Absolute floor on the smoothed hematoxylin concentration, so blank background yields no candidates.
    stain_matrix
        Optional ``(2, 3)`` stain matrix; default the Ruifrok & Johnston reference.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, 2)`` array of ``(x, y)`` = (column, row) pixel positions; ``(0, 2)`` when none.

    Notes
    -----
    Measured on the 35 midesec-train fields (0.25 µm/px assumed): every annotated figure had a candidate within
    7.5 µm (115/115) with about 365 candidates per 1024×1024 field (``scripts/train_mitosis.py --candidates-only``).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("find_candidates expects an RGB image (H, W, 3)")
    h = candidate_channel(rgb, stain_matrix=stain_matrix)
    sigma_px = max(sigma_um / mpp, 0.5)
    smooth = cv2.GaussianBlur(h, (0, 0), sigma_px)
    threshold = max(float(np.percentile(smooth[::2, ::2], percentile)), min_concentration)
    min_distance_px = max(int(round(min_distance_um / mpp)), 1)
    peaks = local_peaks(smooth, min_distance=min_distance_px, threshold_abs=threshold)
    if len(peaks) == 0:
        return np.zeros((0, 2), dtype=np.float64)
    return peaks[:, ::-1].astype(np.float64)
