"""The synthetic H&E generator draws the figures it claims, where it claims, deterministically."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spindledx.mitosis.synthetic import EOSIN_OD, GLASS_OD, HEMATOXYLIN_OD, compose_rgb, make_tile


def _hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Colour deconvolution with the generator's own Ruifrok vectors (least squares)."""
    od = -np.log(np.maximum(rgb, 1) / 255.0) - GLASS_OD
    conc = od.reshape(-1, 3) @ np.linalg.pinv(np.stack([HEMATOXYLIN_OD, EOSIN_OD]))
    return conc[:, 0].reshape(rgb.shape[:2])


def test_beer_lambert_composition_is_invertible():
    hema = np.array([[0.0, 0.5], [1.0, 2.0]], np.float32)
    eosin = np.array([[0.0, 0.3], [0.1, 0.4]], np.float32)
    rgb = compose_rgb(hema, eosin)
    assert rgb[0, 0].tolist() == np.rint(255 * np.exp(-GLASS_OD)).astype(int).tolist()
    assert np.allclose(_hematoxylin(rgb), hema, atol=0.03)
    assert rgb[1, 1, 2] > rgb[1, 1, 0]  # hematoxylin is blue-purple: less red than blue


@pytest.mark.parametrize(("seed", "strength"), [(0, 1.0), (3, 1.0), (1, 0.55)])
def test_figures_are_dense_chromatin_at_the_claimed_places(seed, strength):
    mpp = 0.25
    rgb, figures = make_tile(size_px=512, n_mitoses=4, seed=seed, mpp=mpp, stain_strength=strength)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert len(figures) == 4
    hema = _hematoxylin(rgb)
    dense = (hema > 1.5 * strength).astype(np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (49, 49)).astype(np.float32)  # 6 µm radius
    dense_near = cv2.filter2D(dense, -1, disc, borderType=cv2.BORDER_CONSTANT)
    yy, xx = np.mgrid[:512, :512]
    elsewhere = np.ones((512, 512), bool)
    for fig in figures:
        assert 0 <= fig.x < 512 and 0 <= fig.y < 512
        assert fig.kind in {"metaphase", "anaphase", "prometaphase"}
        assert 6.0 <= fig.size_um <= 13.0
        assert dense_near[int(fig.y), int(fig.x)] >= 200, fig
        elsewhere &= np.hypot(xx - fig.x, yy - fig.y) > 12 / mpp
    # nowhere else is there a comparable mass of dense chromatin
    assert dense_near[elsewhere].max() < 200
    for a in figures:
        for b in figures:
            if a is not b:
                assert np.hypot(a.x - b.x, a.y - b.y) * mpp >= 30.0


def test_deterministic_and_seed_dependent():
    a, fa = make_tile(size_px=128, n_mitoses=1, seed=7)
    b, fb = make_tile(size_px=128, n_mitoses=1, seed=7)
    c, _ = make_tile(size_px=128, n_mitoses=1, seed=8)
    assert np.array_equal(a, b) and fa == fb
    assert not np.array_equal(a, c)


def test_looks_like_h_and_e():
    rgb, _ = make_tile(size_px=256, n_mitoses=0, seed=2)
    mean = rgb.reshape(-1, 3).mean(axis=0)
    assert mean[1] < mean[0] and mean[1] < mean[2]  # pink-purple: green absorbed most (eosin)
    pale, _ = make_tile(size_px=256, n_mitoses=0, seed=2, stain_strength=0.55)
    assert pale.mean() > rgb.mean() + 10


def test_shipped_sample_slides_match_the_generator():
    import csv
    from pathlib import Path

    from spindledx.imaging.reader import read_image

    root = Path(__file__).resolve().parents[1] / "sample_slides"
    with open(root / "ground_truth.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"] == "tile_01_low.tif"]
    _, figures = make_tile(size_px=1024, n_mitoses=2, seed=101, mpp=0.25)
    assert [(float(r["cx"]), float(r["cy"])) for r in rows] == [(round(f.x, 1), round(f.y, 1)) for f in figures]
    tile = read_image(root / "tile_01_low.tif")
    assert (tile.width, tile.height, tile.mpp, tile.mpp_source) == (1024, 1024, 0.25, "metadata")


def test_shipped_model_finds_most_sample_slide_figures():
    """The demo must show something: the committed detector finds most drawn figures (MIDOG rule)."""
    import csv
    from pathlib import Path

    from spindledx.detection.model import DEFAULT_DESCRIPTION

    root = Path(__file__).resolve().parents[1]
    if not DEFAULT_DESCRIPTION.is_file():
        pytest.skip("no trained model committed")
    from spindledx.mitosis.evaluate import match_points
    from spindledx.mitosis.score import default_detector, score_image

    detector = default_detector()
    with open(root / "sample_slides" / "ground_truth.csv", newline="") as fh:
        truth_rows = list(csv.DictReader(fh))
    tp = fp = fn = 0
    for name in sorted({r["image"] for r in truth_rows}):
        result = score_image(root / "sample_slides" / name, detector=detector)
        truth = np.array([[float(r["cx"]), float(r["cy"])] for r in truth_rows if r["image"] == name])
        pred = np.array([[d.x, d.y] for d in result.mitoses]).reshape(-1, 2)
        match = match_points(pred, truth, 7.5 / result.mpp)
        tp, fp, fn = tp + match.tp, fp + match.fp, fn + match.fn
    assert tp / (tp + fn) >= 0.6, (tp, fp, fn)
    assert tp / (tp + fp) >= 0.4, (tp, fp, fn)
