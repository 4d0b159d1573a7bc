"""QA flags on tiles built to trigger each one, and a normal synthetic tile that raises none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spindledx.mitosis.synthetic import make_tile
from spindledx.qa.quality import CHECKS_BY_FLAG, QUALITY_CHECKS, assess_quality, estimate_blur_sigma_px

MPP = 0.25


@pytest.fixture(scope="module")
def tile() -> np.ndarray:
    rgb, _ = make_tile(size_px=512, n_mitoses=2, seed=1, mpp=MPP)
    return rgb


def test_normal_synthetic_tile_is_not_flagged(tile: np.ndarray) -> None:
    q = assess_quality(tile, MPP)
    assert q.flags == ()
    assert q.tissue_fraction > 0.5 and q.blur_sigma_um is not None and q.blur_sigma_um < 0.5
    assert q.stain_swapped is False and q.stain_min_similarity > 0.9


def test_blurred_tile_is_out_of_focus(tile: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(tile, (0, 0), 2.0 / MPP)  # sigma 2 µm
    q = assess_quality(blurred, MPP)
    assert "out_of_focus" in q.flags
    assert q.blur_sigma_um == pytest.approx(2.0, rel=0.35)
    assert q.laplacian_var < assess_quality(tile, MPP).laplacian_var / 10


def test_blur_estimate_recovers_known_sigma() -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((384, 384), np.float32)
    for _ in range(40):
        r, c = rng.integers(20, 364, 2)
        cv2.circle(img, (int(c), int(r)), int(rng.integers(6, 18)), float(rng.uniform(0.5, 1.0)), -1)
    for sigma in (3.0, 6.0):
        est = estimate_blur_sigma_px(cv2.GaussianBlur(img, (0, 0), sigma))
        assert est == pytest.approx(sigma, rel=0.15)


def test_blank_glass_is_low_tissue_only() -> None:
    q = assess_quality(np.full((256, 256, 3), 242, np.uint8), MPP)
    assert q.flags == ("low_tissue",)
    assert q.tissue_fraction == 0.0 and q.blur_sigma_um is None and q.stain_swapped is None


def test_swapped_stain_colours(tile: np.ndarray) -> None:
    # re-render the tile's hematoxylin and eosin amounts with exchanged colours: the red-absorbing stain is
    # eosin-like (magenta-red) and the other one is hematoxylin-like (blue-purple), with a clear red gap
    from spindledx.imaging.stain import REFERENCE_STAIN_MATRIX, concentrations, od_to_rgb

    amounts = np.maximum(concentrations(tile, REFERENCE_STAIN_MATRIX), 0.0)
    red_eosin_like = np.array([0.45, 0.88, 0.05]) / np.linalg.norm([0.45, 0.88, 0.05])
    blue_hema_like = np.array([0.2, 0.5, 0.85]) / np.linalg.norm([0.2, 0.5, 0.85])
    swapped = od_to_rgb(amounts[..., :1] * red_eosin_like + amounts[..., 1:] * blue_hema_like)
    q = assess_quality(swapped, MPP)
    assert q.stain_swapped is True and "stain_swapped" in q.flags
    assert "stain_swapped" not in assess_quality(od_to_rgb(amounts[..., :1] * REFERENCE_STAIN_MATRIX[0]
                                                           + amounts[..., 1:] * REFERENCE_STAIN_MATRIX[1]),
                                                 MPP).flags


def test_foreign_stain_is_atypical(tile: np.ndarray) -> None:
    # channels rotated (B, R, G): neither vector resembles H or E any more
    q = assess_quality(np.ascontiguousarray(tile[..., [2, 0, 1]]), MPP)
    assert "stain_atypical" in q.flags and q.stain_min_similarity < 0.8


def test_pen_marks(tile: np.ndarray) -> None:
    inked = tile.copy()
    cv2.line(inked, (0, 100), (511, 140), (30, 150, 60), 14)   # green marker
    cv2.line(inked, (0, 300), (511, 260), (20, 50, 200), 10)   # blue marker
    q = assess_quality(inked, MPP)
    assert "pen_marks" in q.flags and q.ink_fraction > 0.03
    black = tile.copy()
    cv2.line(black, (0, 200), (511, 220), (10, 10, 10), 12)
    assert "pen_marks" in assess_quality(black, MPP).flags


def test_over_and_under_exposure(tile: np.ndarray) -> None:
    over = np.clip(tile.astype(np.float32) * 1.6, 0, 255).astype(np.uint8)
    q_over = assess_quality(over, MPP)
    assert "overexposed" in q_over.flags and q_over.partial_clip_fraction > 0.25
    under = (tile.astype(np.float32) * 0.2).astype(np.uint8)
    q_under = assess_quality(under, MPP)
    assert "underexposed" in q_under.flags and q_under.mean_luminance < 0.25
    assert "overexposed" not in q_under.flags and "underexposed" not in q_over.flags


def test_every_check_is_documented() -> None:
    assert len(CHECKS_BY_FLAG) == len(QUALITY_CHECKS) == 7
    for check in QUALITY_CHECKS:
        assert check.basis and check.unit and check.comparison in "<>="
