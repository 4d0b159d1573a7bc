"""Speed of ``score`` per field, as a ratio to a floor measured in the same run.

Usage::

    python bench/bench_score.py [--images N] [--repeats R] [--threads T] [--stages] [IMAGE ...]

Images: the given files, else the real fields in ``../shared/data/midesec-train`` (1024x1024 PNG) when present,
else ``sample_slides/``. For each image it times, best of ``R`` runs (after one warm-up call that loads the
models), floor and score alternately:

* floor: decode the file (:func:`spindledx.imaging.reader.read_image`) and convert it to optical density,
  ``-log((I + 1) / 256)`` in float32 — the least any H&E pipeline has to do;
* score: :func:`spindledx.mitosis.score.score_image` with the shipped detector, exactly what ``spindledx score``
  runs per image: decode, candidates, detector with gated test-time averaging, the atypical head on every
  detection (8 views), the guard (stain/texture out-of-distribution score and density test), counting.

Prints seconds per megapixel and per 1024x1024 field for both and their ratio, the load average before and after
(other work on the machine slows both timings, the multi-threaded score more than the one-thread floor), and with
``--stages`` the median time of each stage. ``--threads`` sets the onnxruntime threads of both heads (default 2,
as ``spindledx score``). Targets: at most 0.25 s per 1024x1024 field and at most 6x the floor, with both
heads.
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
TARGET_FIELD_S = 0.25
TARGET_RATIO = 6.0


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


def stage_times(path: Path, detector, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of each stage of ``score_image`` on one image (for ``--stages``)."""
    from spindledx.detection import guard
    from spindledx.detection.atypical import classify_atypical, load_atypical_model
    from spindledx.detection.suppress import suppress_detections
    from spindledx.imaging.reader import read_image

    tile = read_image(path, mpp=0.25)
    found = suppress_detections(detector(tile.rgb, tile.mpp), mpp=tile.mpp)
    head = load_atypical_model(detector.threads)
    return {
        "decode": best_time(lambda p: read_image(p, mpp=0.25), path, repeats),
        "detector (candidates + CNN)": best_time(lambda p: detector(tile.rgb, tile.mpp), path, repeats),
        "atypical head": best_time(lambda p: classify_atypical(tile.rgb, tile.mpp, found, model=head), path, repeats),
        "guard (OOD score)": best_time(lambda p: guard.ood_score(tile.rgb, tile.mpp), path, repeats),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--images", type=int, default=8, help="number of images to time (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per image, best kept (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads of both heads (default 2)")
    parser.add_argument("--stages", action="store_true", help="also time each stage (decode, detector, ...)")
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
    from spindledx.detection.atypical import load_atypical_model
    from spindledx.detection.detect import ModelDetector

    start = time.perf_counter()
    detector = ModelDetector(threads=args.threads)
    detector.prepare()  # loads the ONNX model and verifies its checksum, once per run
    head = load_atypical_model(args.threads)
    load_s = time.perf_counter() - start
    score = make_score(detector)
    score(images[0])  # warm-up

    load_before = os.getloadavg()[0]
    floor_s_per_mp, score_s_per_mp = [], []
    for path, mp in zip(images, megapixels, strict=True):
        floor_s_per_mp.append(best_time(floor, path, args.repeats) / mp)
        score_s_per_mp.append(best_time(score, path, args.repeats) / mp)
    load_after = os.getloadavg()[0]

    floor_mp = statistics.median(floor_s_per_mp)
    score_mp = statistics.median(score_s_per_mp)
    ratio = score_mp / floor_mp
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs "
          f"({len(os.sched_getaffinity(0))} usable by this process), python {platform.python_version()}, "
          f"load average {load_before:.1f} before / {load_after:.1f} after (other work slows both timings)")
    heads = "detector + atypical head " + ("(" + head.description.version + ")" if head is not None else "NOT SHIPPED")
    print(f"models: {heads} + guard, onnxruntime threads {args.threads}; "
          f"load (once per run, not in the figures below): {load_s:.2f} s")
    print(f"images: {len(images)} from {source}; best of {args.repeats} runs each, median over images")
    print(f"floor (decode + optical density): {floor_mp:.4f} s/MP = {floor_mp * FIELD_MP:.4f} s per 1024x1024 field")
    print(f"score (both heads + guard):       {score_mp:.4f} s/MP = {score_mp * FIELD_MP:.4f} s per 1024x1024 field")
    print(f"ratio score / floor: {ratio:.1f}  (targets: <= {TARGET_FIELD_S} s per field "
          f"{'met' if score_mp * FIELD_MP <= TARGET_FIELD_S else 'NOT met'}, ratio <= {TARGET_RATIO:g} "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    if args.stages:
        per_image = [stage_times(path, detector, args.repeats) for path in images]
        print("stages (median over images, best of runs; s per image): " + ", ".join(
            f"{name} {statistics.median(t[name] for t in per_image):.4f}" for name in per_image[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
