"""Record, or compare against a record, everything ``score`` decides on a set of tiles (before/after check).

Usage::

    python scripts/compare_score_outputs.py --save before.json [IMAGE ...]   # with one build of spindledx
    python scripts/compare_score_outputs.py --against before.json [IMAGE ...] # with another build

Images: the given files, else ``sample_slides/*.tif`` (resolution from the files) and, when present, the 35 fields
of ``../shared/data/midesec-train`` (read there, never copied; 0.25 µm/px as in ``bench/bench_score.py``).

Per image it records, through :func:`spindledx.mitosis.score.score_image` with the shipped detector, the atypical
head and the guard: every detection (x, y in input pixels, detector probability, atypical label and probability),
the count, the atypical count and fraction, the density, the guard flags and the out-of-distribution score.
``--against`` fails (exit 1) unless coordinates, labels, counts and flags are identical and every probability and
the out-of-distribution score agree to ``--tol`` (default 1e-5); it prints the largest differences either way.
A speed change is meant to leave all of this unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MIDESEC = REPO_ROOT.parent / "shared" / "data" / "midesec-train"
MIDESEC_MPP = 0.25


def default_images() -> list[tuple[Path, float | None]]:
    """The sample slides (their own resolution) and, when present, the 35 MiDeSeC training fields (0.25 µm/px)."""
    images: list[tuple[Path, float | None]] = [(p, None) for p in sorted((REPO_ROOT / "sample_slides").glob("*.tif"))]
    if MIDESEC.is_dir():
        images += [(p, MIDESEC_MPP) for p in sorted(MIDESEC.glob("*.png"))]
    return images


def record(images: list[tuple[Path, float | None]]) -> dict[str, Any]:
    """What ``score`` decides on each image, at full float precision."""
    from spindledx.mitosis.score import default_detector, score_image

    detector = default_detector()
    out: dict[str, Any] = {}
    for path, mpp in images:
        s = score_image(path, mpp=mpp, detector=detector)
        out[path.name] = {
            "mitoses": [{"x": float(d.x), "y": float(d.y), "score": float(d.score), "atypical": d.atypical,
                         "atypical_score": None if d.atypical_score is None else float(d.atypical_score)}
                        for d in s.mitoses],
            "count": s.count,
            "atypical_count": s.atypical_count,
            "atypical_fraction": s.atypical_fraction,
            "mitoses_per_mm2": s.mitoses_per_mm2,
            "flags": list(s.flags),
            "ood_score": s.ood_score,
        }
    return out


def compare(before: dict[str, Any], after: dict[str, Any], *, tol: float) -> list[str]:
    """Differences between two records (empty when they agree); also prints the largest probability gaps."""
    problems: list[str] = []
    worst = {"score": 0.0, "atypical_score": 0.0, "ood_score": 0.0}
    if set(before) != set(after):
        problems.append(f"different images: {sorted(set(before) ^ set(after))}")
    for name in sorted(set(before) & set(after)):
        b, a = before[name], after[name]
        for key in ("count", "atypical_count", "atypical_fraction", "mitoses_per_mm2", "flags"):
            if b[key] != a[key]:
                problems.append(f"{name}: {key} {b[key]!r} -> {a[key]!r}")
        if (b["ood_score"] is None) != (a["ood_score"] is None):
            problems.append(f"{name}: ood_score {b['ood_score']!r} -> {a['ood_score']!r}")
        elif b["ood_score"] is not None:
            gap = abs(b["ood_score"] - a["ood_score"])
            worst["ood_score"] = max(worst["ood_score"], gap)
            if gap > tol * max(1.0, abs(b["ood_score"])):
                problems.append(f"{name}: ood_score {b['ood_score']!r} -> {a['ood_score']!r}")
        if len(b["mitoses"]) != len(a["mitoses"]):
            problems.append(f"{name}: {len(b['mitoses'])} detections -> {len(a['mitoses'])}")
            continue
        for i, (db, da) in enumerate(zip(b["mitoses"], a["mitoses"], strict=True)):
            if (db["x"], db["y"], db["atypical"]) != (da["x"], da["y"], da["atypical"]):
                problems.append(f"{name} #{i}: {db} -> {da}")
            for key in ("score", "atypical_score"):
                if (db[key] is None) != (da[key] is None):
                    problems.append(f"{name} #{i}: {key} {db[key]!r} -> {da[key]!r}")
                elif db[key] is not None:
                    gap = abs(db[key] - da[key])
                    worst[key] = max(worst[key], gap)
                    if gap > tol:
                        problems.append(f"{name} #{i}: {key} {db[key]!r} -> {da[key]!r}")
    n_det = sum(len(v["mitoses"]) for v in after.values())
    print(f"{len(after)} images, {n_det} detections; largest differences: "
          + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--mpp", type=float, default=None, help="resolution of the given files (default: theirs)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the record to this JSON file")
    group.add_argument("--against", type=Path, help="compare with a record written by --save")
    parser.add_argument("--tol", type=float, default=1e-5, help="tolerance on probabilities (default 1e-5)")
    args = parser.parse_args(argv)

    images = [(p, args.mpp) for p in args.paths] if args.paths else default_images()
    if not images:
        print("no images", file=sys.stderr)
        return 2
    now = record(images)
    if args.save is not None:
        args.save.write_text(json.dumps(now, indent=1), encoding="utf-8")
        print(f"recorded {len(now)} images, {sum(len(v['mitoses']) for v in now.values())} detections "
              f"-> {args.save}")
        return 0
    problems = compare(json.loads(args.against.read_text(encoding="utf-8")), now, tol=args.tol)
    for line in problems[:50]:
        print(line)
    print("IDENTICAL (within tolerance)" if not problems else f"{len(problems)} differences")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
