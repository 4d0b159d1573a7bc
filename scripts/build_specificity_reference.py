"""Build the reference of :mod:`spindledx.detection.specificity` from the MiDeSeC annotations.

Reads ../shared/data/midesec-train (never copied): the 35 breast-carcinoma fields (1024 × 1024, 0.25 µm/px assumed)
and their 115 annotated mitotic figures. Each figure is placed on its nearest hematoxylin candidate within 7.5 µm
(where the detector would report it; every figure has one) and ranked among the candidate nuclei of the 100-µm
window around it (:func:`spindledx.detection.specificity.darkness_rank`). For comparison, up to 20 other candidates
per field (farther than 7.5 µm from any figure, picked evenly by position) are ranked the same way.

Stored (``src/spindledx/detection/data/specificity_reference.json``): the share of figures ranked below 0.5 (not
darker than the median neighbouring nucleus), its Clopper-Pearson 95 % interval, and ``p_ref``, the upper end of
that interval, which the rule uses; the quartiles of the figures' and the other candidates' ranks. The rule
(binomial test at 0.1 %, at least 10 ranked detections) was fixed before any image outside MiDeSeC was looked at.

Usage::

    .venv/bin/python scripts/build_specificity_reference.py [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import beta

from spindledx.detection.candidates import find_candidates
from spindledx.detection.specificity import (
    CHECK_MPP,
    NOT_DARKER_RANK,
    array_reader,
    darkness_rank,
    pick_judged,
    window_px,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "midesec-train"
OUT = REPO / "src" / "spindledx" / "detection" / "data" / "specificity_reference.json"
MATCH_UM = 7.5
OTHERS_PER_FIELD = 20


def rank_at(rgb: np.ndarray, x: float, y: float) -> float | None:
    size = window_px(CHECK_MPP)
    x0, y0 = int(np.floor(x)) - size // 2, int(np.floor(y)) - size // 2
    rank, _ = darkness_rank(array_reader(rgb)(x0, y0, size), (x - x0, y - y0), mpp=CHECK_MPP)
    return rank


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} is absent: nothing to build from", file=sys.stderr)
        return 2
    figures: dict[str, list[tuple[float, float]]] = {}
    with open(DATA / "mitoses.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            figures.setdefault(row["image"], []).append((float(row["cx"]), float(row["cy"])))
    fig_ranks, other_ranks, unmatched, unranked = [], [], 0, 0
    fields = sorted(DATA.glob("P0_*.png"))
    for path in fields:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        cand = find_candidates(rgb, CHECK_MPP)
        figs = np.array(figures.get(path.name, figures.get(path.stem, [])), float).reshape(-1, 2)
        near_fig = np.zeros(len(cand), bool)
        for fx, fy in figs:
            d = np.hypot(cand[:, 0] - fx, cand[:, 1] - fy)
            near_fig |= d <= MATCH_UM / CHECK_MPP
            if not len(d) or d.min() > MATCH_UM / CHECK_MPP:
                unmatched += 1
                continue
            x, y = cand[int(np.argmin(d))]
            rank = rank_at(rgb, x, y)
            if rank is None:
                unranked += 1
            else:
                fig_ranks.append(rank)
        others = cand[~near_fig]
        for i in pick_judged(others, OTHERS_PER_FIELD):
            rank = rank_at(rgb, *others[i])
            if rank is not None:
                other_ranks.append(rank)
        print(f"{path.name}: {len(figs)} figures, {len(cand)} candidates", file=sys.stderr)
    f, o = np.array(fig_ranks), np.array(other_ranks)
    k, n = int(np.sum(f < NOT_DARKER_RANK)), len(f)
    low, high = clopper_pearson(k, n)
    doc = {
        "p_ref": round(high, 4),
        "statistic": f"share of detections whose darkness rank is below {NOT_DARKER_RANK} (not darker than the "
                     "median neighbouring candidate nucleus)",
        "figures": {"n": n, "n_not_darker": k, "share_not_darker": round(k / n, 4),
                    "share_ci95": [round(low, 4), round(high, 4)],
                    "rank_quartiles": [round(float(q), 4) for q in np.quantile(f, [0.25, 0.5, 0.75])],
                    "unmatched": unmatched, "unranked": unranked},
        "other_candidates": {"n": int(len(o)), "share_not_darker": round(float(np.mean(o < NOT_DARKER_RANK)), 4),
                             "rank_quartiles": [round(float(q), 4) for q in np.quantile(o, [0.25, 0.5, 0.75])]},
        "data": f"midesec-train: {len(fields)} breast-carcinoma fields, 1024x1024, 0.25 um/px assumed",
        "built_by": "scripts/build_specificity_reference.py",
        "method": "each annotated figure placed on its nearest candidate within 7.5 um, ranked among the "
                  "candidates of the 100-um window around it; p_ref is the Clopper-Pearson upper 95% bound",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
