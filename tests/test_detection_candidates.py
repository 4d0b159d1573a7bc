"""Candidate stage: hematoxylin peaks at known places, µm-based parameters, empty result on blank input."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from skimage.draw import disk

from spindledx.detection.candidates import find_candidates
from spindledx.detection.patches import extract_patches, to_model_input
from spindledx.imaging.stain import REFERENCE_STAIN_MATRIX, od_to_rgb


def blob_image(centres, *, size=256, radius=10, seed=0):
    """Pale eosin background with dark hematoxylin disks at ``centres`` (row, col)."""
    rng = np.random.default_rng(seed)
    od = np.zeros((size, size, 3)) + 0.25 * REFERENCE_STAIN_MATRIX[1]
    od += rng.uniform(0, 0.02, od.shape)
    for rc in centres:
        rr, cc = disk(rc, radius, shape=(size, size))
        od[rr, cc] += 1.5 * REFERENCE_STAIN_MATRIX[0]
    return od_to_rgb(od)


def test_blobs_found_at_known_places():
    centres = [(40, 50), (128, 200), (210, 90), (5, 250)]  # the last touches the border
    xy = find_candidates(blob_image(centres), 0.25)
    assert xy.shape[1] == 2
    d, _ = cKDTree(xy).query(np.array(centres)[:, ::-1])
    assert np.all(d[:3] <= 2.0), d
    assert d[3] <= 8.0, d  # a disk cut by the border peaks slightly inside the image
    assert len(xy) <= 2 * len(centres)


def test_min_distance_is_in_micrometres():
    centres = [(100, 100), (100, 118)]  # 18 px apart
    img = blob_image(centres, radius=5)
    close = find_candidates(img, 0.25, min_distance_um=2.0)  # 8 px: both kept
    far = find_candidates(img, 0.25, min_distance_um=8.0)  # 32 px: merged
    assert len(close) == 2 and len(far) == 1


def test_blank_image_has_no_candidates():
    assert find_candidates(np.full((64, 64, 3), 245, np.uint8), 0.25).shape == (0, 2)


def test_patches_are_centred_and_reflect_padded():
    img = np.zeros((20, 30, 3), np.uint8)
    img[5, 7] = 255
    p = extract_patches(img, np.array([[7.0, 5.0], [0.0, 0.0]]), size=8)
    assert p.shape == (2, 8, 8, 3)
    assert p[0, 4, 4, 0] == 255 and p[0].sum() == 3 * 255
    x = to_model_input(p)
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32 and x.max() == 1.0
