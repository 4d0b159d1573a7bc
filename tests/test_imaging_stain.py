"""Stain stage: optical density, Macenko estimation with its swap/degenerate guard, normaliser."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from spindledx.imaging.stain import (
    REFERENCE_STAIN_MATRIX,
    MacenkoNormalizer,
    concentrations,
    estimate_stain_matrix,
    hematoxylin_channel,
    od_to_rgb,
    order_stain_vectors,
    rgb_to_od,
)


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def synthetic_he(h_vec, e_vec, *, size=128, seed=0, h_scale=1.0, e_scale=1.0):
    """H&E-like image from two stain vectors: eosin everywhere, hematoxylin in round nuclei."""
    rng = np.random.default_rng(seed)
    ch = np.zeros((size, size))
    for _ in range(25):
        rr, cc = disk(tuple(rng.integers(8, size - 8, 2)), int(rng.integers(4, 8)), shape=(size, size))
        ch[rr, cc] = rng.uniform(0.6, 1.6)
    ce = rng.uniform(0.2, 0.8, (size, size)) * (ch < 0.1) + 0.15
    ch = ch * h_scale + rng.uniform(0, 0.05, ch.shape)
    od = ch[..., None] * _unit(h_vec) + ce[..., None] * e_scale * _unit(e_vec)
    return od_to_rgb(od), ch


def test_od_round_trip():
    rgb = np.random.default_rng(1).integers(1, 256, (16, 16, 3)).astype(np.uint8)
    assert np.array_equal(od_to_rgb(rgb_to_od(rgb)), rgb)
    assert rgb_to_od(np.full((1, 1, 3), 255, np.uint8)).max() == pytest.approx(0.0)


def test_macenko_recovers_reference_vectors():
    rgb, _ = synthetic_he(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1])
    est = estimate_stain_matrix(rgb)
    assert not est.degenerate and not est.swapped and not est.odd
    assert est.matrix[0] @ REFERENCE_STAIN_MATRIX[0] > 0.97
    assert est.matrix[1] @ REFERENCE_STAIN_MATRIX[1] > 0.97


def test_guard_orders_vectors_hematoxylin_first():
    h, e = REFERENCE_STAIN_MATRIX
    h_out, e_out, reordered = order_stain_vectors(e, h)
    assert reordered
    assert np.allclose(h_out, h) and np.allclose(e_out, e)
    assert order_stain_vectors(h, e)[2] is False


def test_swapped_stain_is_flagged():
    # the stain that absorbs more red looks like eosin, the other absorbs blue: colours unlike H&E
    eosin_like_red = _unit([0.30, 0.94, 0.15])
    blue_absorbing = _unit([0.05, 0.30, 0.95])
    rgb, _ = synthetic_he(blue_absorbing, eosin_like_red)
    est = estimate_stain_matrix(rgb)
    assert est.swapped and est.odd


def test_degenerate_input_falls_back_to_reference():
    blank = np.full((64, 64, 3), 250, np.uint8)
    est = estimate_stain_matrix(blank)
    assert est.degenerate and est.odd
    assert np.allclose(est.matrix, REFERENCE_STAIN_MATRIX)
    grey = np.full((64, 64, 3), 90, np.uint8)  # one OD direction only
    assert estimate_stain_matrix(grey).degenerate


def test_hematoxylin_channel_high_in_nuclei():
    rgb, ch = synthetic_he(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1])
    h = hematoxylin_channel(rgb)
    assert h[ch > 0.6].mean() > 3 * h[ch < 0.1].mean()


def test_normaliser_maps_recoloured_image_near_target():
    target, _ = synthetic_he(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1], seed=3)
    # same tissue, paler and with shifted stain colours
    h2 = _unit(REFERENCE_STAIN_MATRIX[0] + [0.10, -0.10, 0.15])
    e2 = _unit(REFERENCE_STAIN_MATRIX[1] + [0.15, -0.05, 0.10])
    source, _ = synthetic_he(h2, e2, seed=3, h_scale=0.55, e_scale=0.6)
    norm = MacenkoNormalizer().fit(target)
    out = norm.transform(source)
    assert out.shape == source.shape and out.dtype == np.uint8
    before = np.abs(source.astype(float) - target).mean()
    after = np.abs(out.astype(float) - target).mean()
    assert after < 0.5 * before
    assert after < 12


def test_scale_stain_concentrations_equalises_pale_and_dark():
    from spindledx.imaging.stain import concentrations, scale_stain_concentrations

    dark, ch = synthetic_he(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1], seed=5, h_scale=1.4)
    pale, _ = synthetic_he(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1], seed=5, h_scale=0.5)
    nuclei = ch > 0.6
    h_dark = concentrations(scale_stain_concentrations(dark), REFERENCE_STAIN_MATRIX)[..., 0][nuclei].mean()
    h_pale = concentrations(scale_stain_concentrations(pale), REFERENCE_STAIN_MATRIX)[..., 0][nuclei].mean()
    raw_ratio = 1.4 / 0.5
    assert h_dark / h_pale < 0.5 * raw_ratio


def test_concentrations_uint8_fast_path_matches_float_path():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    matrix = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]], dtype=np.float32)
    fast = concentrations(rgb, matrix)
    slow = concentrations(rgb.astype(np.float32), matrix)
    assert fast.shape == (40, 30, 2) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-5)
