"""The specificity check (``interphase_like``): darkness ranks on tiny synthetic fields and the binomial rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.draw import disk

from spindledx.detection import specificity as sp

MPP = sp.CHECK_MPP


def field(n_side: int = 12, *, dark: list[tuple[int, int]] = (), size: int = 1024, seed: int = 0) -> np.ndarray:
    """Pink stroma with a grid of pale-blue nuclei (radius 3 µm), and near-black "figures" at ``dark``."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = (235, 200, 215)
    step = size // n_side
    for i in range(n_side):
        for j in range(n_side):
            y, x = step // 2 + i * step, step // 2 + j * step
            tone = rng.integers(-12, 12)
            rr, cc = disk((y, x), 3.0 / MPP, shape=rgb.shape[:2])
            rgb[rr, cc] = (150 + tone, 120 + tone, 190 + tone)
    for x, y in dark:
        rr, cc = disk((y, x), 2.5 / MPP, shape=rgb.shape[:2])
        rgb[rr, cc] = (40, 20, 90)
    return rgb


def nucleus_centres(n_side: int = 12, size: int = 1024) -> np.ndarray:
    step = size // n_side
    return np.array([[step // 2 + j * step, step // 2 + i * step] for i in range(n_side) for j in range(n_side)],
                    float)


REF = sp.SpecificityReference(p_ref=0.11)


def test_a_dark_figure_ranks_above_its_neighbours_and_an_ordinary_nucleus_does_not():
    centres = nucleus_centres()
    figure = (centres[40] + centres[41]) / 2
    rgb = field(dark=[tuple(figure.astype(int))])
    read = sp.array_reader(rgb)
    size = sp.window_px()
    x0, y0 = int(figure[0]) - size // 2, int(figure[1]) - size // 2
    rank, n = sp.darkness_rank(read(x0, y0, size), (figure[0] - x0, figure[1] - y0))
    assert n >= sp.MIN_NEIGHBOURS and rank == pytest.approx(1.0)
    ranks = [sp.darkness_rank(read(int(x) - size // 2, int(y) - size // 2, size), (size // 2, size // 2))[0]
             for x, y in centres[60:80]]
    ranks = np.array([r for r in ranks if r is not None])
    assert len(ranks) >= 15 and 0.25 < float(np.mean(ranks)) < 0.75  # ordinary nuclei: spread around the middle


def test_detections_on_ordinary_nuclei_are_flagged_and_true_figures_are_not():
    centres = nucleus_centres()
    figures = [tuple(((centres[i] + centres[i + 1]) / 2).astype(int)) for i in range(0, 140, 11)]
    rgb = field(dark=figures)
    read = sp.array_reader(rgb)
    on_nuclei = sp.check_points(read, centres[::3], reference=REF)
    assert on_nuclei.flagged and on_nuclei.flags == (sp.INTERPHASE_LIKE,)
    assert on_nuclei.n_ranked >= sp.MIN_RANKED and "no darker than the median nucleus" in on_nuclei.messages[0]
    on_figures = sp.check_points(read, np.array(figures, float), reference=REF)
    assert not on_figures.flagged and on_figures.n_not_darker == 0 and on_figures.flags == ()


def test_the_rule_needs_a_sample():
    assert not sp.judge_ranks([0.1] * (sp.MIN_RANKED - 1), reference=REF).flagged  # every one dim, but too few
    few = sp.judge_ranks([0.1] * sp.MIN_RANKED, reference=REF)
    assert few.flagged and few.p_value < sp.FALSE_ALARM
    assert sp.check_points(lambda *a: pytest.fail("no window is read"), np.zeros((3, 2)), reference=REF).n_ranked == 0


def test_the_binomial_bound():
    # at p_ref 0.11, 4 of 10 not darker has P(K >= 4) = 0.018: allowed; 6 of 10 (0.00025) is flagged
    assert not sp.judge_ranks([0.2] * 4 + [0.9] * 6, reference=REF).flagged
    assert sp.judge_ranks([0.2] * 6 + [0.9] * 4, reference=REF).flagged
    # a set like true figures (5 % not darker) is not flagged at any size; one like interphase nuclei (50 %) is
    for n in (10, 40, 64):
        assert not sp.judge_ranks([0.3] * round(0.05 * n) + [0.95] * (n - round(0.05 * n)), reference=REF).flagged
    assert sp.judge_ranks([0.3] * 20 + [0.7] * 20, reference=REF).flagged


def test_picks_depend_on_the_points_not_their_order():
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 5000, (200, 2))
    a = pts[sp.pick_judged(pts)]
    b = pts[::-1][sp.pick_judged(pts[::-1])]
    assert len(a) == sp.MAX_JUDGED and np.array_equal(np.sort(a, axis=0), np.sort(b, axis=0))


def test_the_shipped_reference_says_where_it_comes_from():
    ref = sp.load_reference()
    assert 0 < ref.p_ref < 0.5
    assert ref.meta["built_by"] == "scripts/build_specificity_reference.py" and ref.meta["figures"]["n"] > 0
    lo, hi = ref.meta["figures"]["share_ci95"]
    assert lo <= ref.meta["figures"]["share_not_darker"] <= hi == ref.p_ref
    json.dumps(sp.NOT_JUDGED.to_dict(), allow_nan=False)
