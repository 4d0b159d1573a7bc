"""Speed of ``score`` per field, as a ratio to a floor measured in the same run.

Usage::

    python bench/bench_score.py [--images N] [--repeats R] [IMAGE ...]

Images: the given files, else the real fields in ``../shared/data/midesec-train`` (1024x1024 PNG) when present,
else ``sample_slides/``. For each image it times, best of ``R`` runs (after one warm-up call that loads the
model):

* floor: decode the file (:func:`spindledx.imaging.reader.read_image`) and convert it to optical density,
  ``-log((I + 1) / 256)`` in float32 — the least any H&E pipeline has to do;
* score: :func:`spindledx.mitosis.score.score_image` with the shipped detector (decode, stain, candidates,
  classifier, counting).

Prints seconds per megapixel and per 1024x1024 field for both and their ratio. Targets (issue 3): at most 0.5 s per
1024x1024 field and a ratio of at most 10 on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MIDESEC = REPO_ROOT.parent / "shared" / "data" / "midesec-train"
FIELD_MP = 1024 * 1024 / 1e6
TARGET_FIELD_S = 0.5
TARGET_RATIO = 10.0


def floor(path: Path) -> float:
    """Decode + optical density; returns a checksum so the work cannot be skipped."""
    from spindledx.imaging.reader import read_image

    tile = read_image(path, mpp=0.25)
    od = -np.log((tile.rgb.astype(np.float32) + 1.0) / 256.0)
    return float(od[0, 0, 0])


def make_score(detector):
    from spindledx.mitosis.score import score_image

    def score(path: Path) -> int:
        return score_image(path, mpp=0.25, detector=detector).count

    return score


def best_time(fn, path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--images", type=int, default=8, help="number of images to time (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per image, best kept (default 3)")
    args = parser.parse_args(argv)

    if args.paths:
        images, source = list(args.paths), "given files"
    elif MIDESEC.is_dir():
        images, source = sorted(MIDESEC.glob("*.png")), "../shared/data/midesec-train (real 1024x1024 fields)"
    else:
        images, source = sorted((REPO_ROOT / "sample_slides").glob("*.tif")), "sample_slides (synthetic)"
    images = images[: args.images]
    if not images:
        raise SystemExit("no images to benchmark")

    from spindledx.imaging.reader import read_image

    megapixels = []
    for path in images:
        tile = read_image(path, mpp=0.25)
        megapixels.append(tile.width * tile.height / 1e6)
    from spindledx.mitosis.score import default_detector

    start = time.perf_counter()
    detector = default_detector()  # loads the ONNX model and verifies its checksum, once per run
    load_s = time.perf_counter() - start
    score = make_score(detector)
    score(images[0])  # warm-up

    floor_s_per_mp, score_s_per_mp = [], []
    for path, mp in zip(images, megapixels, strict=True):
        floor_s_per_mp.append(best_time(floor, path, args.repeats) / mp)
        score_s_per_mp.append(best_time(score, path, args.repeats) / mp)

    floor_mp = statistics.median(floor_s_per_mp)
    score_mp = statistics.median(score_s_per_mp)
    ratio = score_mp / floor_mp
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} (other work slows both timings)")
    print(f"model load (once per run, not in the figures below): {load_s:.2f} s")
    print(f"images: {len(images)} from {source}; best of {args.repeats} runs each, median over images")
    print(f"floor (decode + optical density): {floor_mp:.4f} s/MP = {floor_mp * FIELD_MP:.4f} s per 1024x1024 field")
    print(f"score (detect + count):           {score_mp:.4f} s/MP = {score_mp * FIELD_MP:.4f} s per 1024x1024 field")
    print(f"ratio score / floor: {ratio:.1f}  (targets: <= {TARGET_FIELD_S} s per field "
          f"{'met' if score_mp * FIELD_MP <= TARGET_FIELD_S else 'NOT met'}, ratio <= {TARGET_RATIO:g} "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
