"""MIDOG-rule matching on hand-made cases, F1 arithmetic, points CSV loader."""

from __future__ import annotations

import numpy as np
import pytest

from spindledx.errors import BadInputError
from spindledx.mitosis.evaluate import best_threshold, f1_scores, load_points_csv, match_points

R = 30.0  # 7.5 µm at 0.25 µm/px


def test_one_to_one_two_detections_one_truth():
    m = match_points([[0, 0], [5, 0]], [[2, 0]], R)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert m.pairs == ((0, 0),)  # the closer detection is the match


def test_radius_boundary_inclusive():
    assert match_points([[30, 0]], [[0, 0]], R).tp == 1
    assert match_points([[30.01, 0]], [[0, 0]], R).tp == 0


def test_maximum_matching_not_greedy():
    # greedy nearest pairing would pair pred 0 with gt 1 and leave gt 0 unmatched
    pred = [[10, 0], [40, 0]]
    gt = [[-15, 0], [20, 0]]
    m = match_points(pred, gt, R)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)


def test_empty_inputs():
    assert match_points(np.zeros((0, 2)), [[1, 1]], R) == match_points([], [[1, 1]], R)
    m = match_points([[1, 1]], np.zeros((0, 2)), R)
    assert (m.tp, m.fp, m.fn) == (0, 1, 0)


def test_f1_scores():
    assert f1_scores(3, 1, 2) == pytest.approx((0.75, 0.6, 2 * 3 / (6 + 3)))
    assert f1_scores(0, 0, 0) == (0.0, 0.0, 0.0)


def test_best_threshold_picks_separating_score():
    gt = [np.array([[0.0, 0.0]])]
    xy = [np.array([[0.0, 0.0], [100.0, 100.0]])]
    s = [np.array([0.9, 0.4])]
    thr, f1 = best_threshold(s, xy, gt, R)
    assert f1 == 1.0 and 0.4 < thr <= 0.9


def test_load_points_csv(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("image,figure,cx,cy\nA.png,0,1.5,2\nA.png,1,3,4\nB.png,0,5,6\n")
    pts = load_points_csv(a)
    assert set(pts) == {"A.png", "B.png"} and pts["A.png"].tolist() == [[1.5, 2.0], [3.0, 4.0]]
    b = tmp_path / "b.csv"
    b.write_text("image,x,y\nC.png,7,8\n")
    assert load_points_csv(b)["C.png"].tolist() == [[7.0, 8.0]]
    bad = tmp_path / "bad.csv"
    bad.write_text("image,u,v\nC.png,7,8\n")
    with pytest.raises(BadInputError):
        load_points_csv(bad)
    with pytest.raises(BadInputError):
        load_points_csv(tmp_path / "missing.csv")


def test_load_real_points_csv(shared_data):
    pts = load_points_csv(shared_data / "midesec-train" / "mitoses.csv")
    assert len(pts) == 35 and sum(len(v) for v in pts.values()) == 115
