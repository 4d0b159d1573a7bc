"""Batch throughput: tiles/s of `spindledx batch` with --jobs 1 and --jobs 2 in the same run, and their ratio.

Usage::

    .venv/bin/python bench/bench_batch.py [--tiles 8] [--size 1024] [--detector model|none]

Tiles are synthetic 0.25 µm/px H&E tiles (``spindledx.mitosis.synthetic.make_tile``) written as PNG to a temporary
folder. ``--detector none`` (or a missing model) times everything except the classifier: reading, QA flags,
matching, output writing. The ratio jobs2/jobs1 is the figure to watch; on a 2-core machine shared with other
work it cannot exceed 2.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2


def _no_detections(rgb, mpp):
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--detector", choices=("model", "none"), default="model")
    args = parser.parse_args()

    from spindledx.mitosis.synthetic import make_tile
    from spindledx.qa.manifest import tiles_from_folder
    from spindledx.qa.runner import run_and_write, run_batch

    detector = None
    if args.detector == "none":
        detector = _no_detections
    else:
        try:
            from spindledx.detection.model import load_model

            load_model()
        except Exception as exc:  # no trained model yet: time the rest of the pipeline
            print(f"note: shipped detector unavailable ({exc}); using --detector none")
            detector = _no_detections
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tiles"
        folder.mkdir()
        for i in range(args.tiles):
            rgb, _ = make_tile(size_px=args.size, n_mitoses=3, seed=100 + i, mpp=0.25)
            cv2.imwrite(str(folder / f"tile{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        specs = tiles_from_folder(folder, mpp=0.25)
        rates = {}
        for jobs in (1, 2):
            start = time.perf_counter()
            outcome = run_batch(specs, Path(tmp) / f"out{jobs}", jobs=jobs, detector=detector, progress=False)
            elapsed = time.perf_counter() - start
            assert not outcome.failed, outcome.failed
            rates[jobs] = len(specs) / elapsed
            print(f"--jobs {jobs}: {len(specs)} tiles of {args.size}x{args.size} px in {elapsed:.2f} s = "
                  f"{rates[jobs]:.2f} tiles/s (read + score + QA + jsonl; pool start-up included)")
        start = time.perf_counter()
        run_and_write(specs, Path(tmp) / "out1", detector=detector, progress=False)  # all done: outputs only
        print(f"writing tables, summary and report.html from the finished batch: {time.perf_counter() - start:.2f} s")
    print(f"ratio jobs2/jobs1 = {rates[2] / rates[1]:.2f} (CPUs: {os.cpu_count()}, detector: "
          f"{'none' if detector is _no_detections else 'model'})")


if __name__ == "__main__":
    main()
