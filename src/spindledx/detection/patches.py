"""Fixed-size patches around candidate points, reflect-padded at the image border, as classifier input.

The classifier sees raw RGB at the working resolution, scaled to ``[0, 1]`` in NCHW float32 order. Stain
robustness comes from strong HED-space augmentation in training (see ``scripts/train_mitosis.py``) rather than
from per-image normalisation at inference, which keeps inference independent of a Macenko fit.
"""

from __future__ import annotations

import cv2
import numpy as np


def extract_patches(rgb: np.ndarray, xy: np.ndarray, *, size: int = 64) -> np.ndarray:
    """Crop ``size``×``size`` patches centred on the points ``xy``.

    Parameters
    ----------
    rgb
        uint8 image ``(H, W, 3)``.
    xy
        ``(N, 2)`` (x, y) pixel positions (rounded to the nearest pixel).
    size
        Patch edge in pixels (even); the point lands at ``(size // 2, size // 2)``.

    Returns
    -------
    numpy.ndarray
        uint8 ``(N, size, size, 3)``; regions outside the image are mirrored (``cv2.BORDER_REFLECT_101``).
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    half = size // 2
    padded = cv2.copyMakeBorder(rgb, half, half, half, half, cv2.BORDER_REFLECT_101)
    out = np.empty((len(xy), size, size, 3), dtype=np.uint8)
    cols = np.clip(np.rint(xy[:, 0]).astype(int), 0, rgb.shape[1] - 1)
    rows = np.clip(np.rint(xy[:, 1]).astype(int), 0, rgb.shape[0] - 1)
    for i, (c, r) in enumerate(zip(cols, rows, strict=True)):
        out[i] = padded[r : r + size, c : c + size]
    return out


def to_model_input(patches: np.ndarray) -> np.ndarray:
    """uint8 ``(N, S, S, 3)`` patches to float32 ``(N, 3, S, S)`` in ``[0, 1]`` (the ONNX model's input).

    ``float32(value) / float32(255)`` in one pass into a C-ordered array (no intermediate float copy).
    """
    n, height, width, channels = patches.shape
    out = np.empty((n, channels, height, width), dtype=np.float32)
    np.divide(patches.transpose(0, 3, 1, 2), np.float32(255.0), out=out, dtype=np.float32)
    return out


def dihedral_views(x: np.ndarray, ways: int, *, contiguous: bool = True) -> list[np.ndarray]:
    """The first ``ways`` of the 8 dihedral transforms (rotations by 90° and mirror images) of an NCHW batch.

    Order: identity, horizontal flip, rot90, rot270, vertical flip, rot180, and the two transposes. Mitotic
    figures have no preferred orientation, so the classifier's probability is averaged over these views
    (test-time augmentation). ``contiguous=False`` returns strided views of ``x`` (no copy), for a caller that
    concatenates them anyway.
    """
    if ways not in (1, 2, 4, 8):
        raise ValueError(f"ways must be 1, 2, 4 or 8, got {ways}")
    views = [x, x[..., ::-1], np.rot90(x, 1, axes=(2, 3)), np.rot90(x, 3, axes=(2, 3))]
    transpose = x.transpose(0, 1, 3, 2)
    views += [x[..., ::-1, :], np.rot90(x, 2, axes=(2, 3)), transpose, transpose[..., ::-1, ::-1]]
    return [np.ascontiguousarray(v) for v in views[:ways]] if contiguous else views[:ways]
