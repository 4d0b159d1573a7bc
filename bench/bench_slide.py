"""Whole-slide throughput in megapixels of tissue per second, as a ratio to a floor measured in the same run.

Usage::

    python bench/bench_slide.py [--width 8192] [--height 6144] [--content he|disks]
                                [--detector auto|real|synthetic] [--jobs 1] [SLIDE]

Slide: the given file, else a synthetic pyramidal TIFF (0.25 µm/px, JPEG tiles, three levels) written to a
temporary folder, made of 1024 px cells with tissue on an L-shaped region (the bottom-right part is glass): by
default four H&E-like tiles of :func:`spindledx.mitosis.synthetic.make_tile` repeated, or dark disks
(``--content disks``). Timed on the
tissue tiles that :func:`spindledx.slide.pipeline.analyze_slide` plans (cores at 0.25 µm/px plus the overlap):

* floor: read every tissue tile at the working resolution (:func:`spindledx.slide.tiling.read_raster`) and
  convert it to optical density, ``-log((I + 1) / 256)`` in float32 — the least any H&E pipeline does per tile;
* slide: the tile loop of ``analyze_slide`` (read, detector, core rule, jsonl streaming), first run (no resume).

Megapixels are counted at the working resolution over the tile cores (each pixel once), and also over the tissue
mask only (tissue megapixels per second = tissue-mask area at 0.25 µm/px / tile-loop seconds). ``--detector
real`` uses :func:`spindledx.detection.detect.detect_mitoses` (the default when it is importable); ``synthetic``
the dark-disk stand-in, which measures the whole-slide machinery alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from spindledx.slide.tiling import DEFAULT_MARGIN_UM, DEFAULT_TILE_UM


def _synthetic_slide(folder: Path, width: int, height: int, content: str) -> tuple[Path, int]:
    """Synthetic pyramidal TIFF with tissue on an L-shaped region; returns (path, number of drawn figures)."""
    from spindledx.slide.synthetic import GLASS_RGB, make_slide_rgb, write_pyramidal_tiff

    cell = 1024
    n_cols, n_rows = width // cell, height // cell
    in_tissue = [(r, c) for r in range(n_rows) for c in range(n_cols)
                 if not (r >= n_rows // 2 and c >= (2 * n_cols) // 3)]  # the bottom-right part is glass
    if content == "disks":
        rng = np.random.default_rng(0)
        boxes = [(c * cell, r * cell, (c + 1) * cell, (r + 1) * cell) for r, c in in_tissue]
        figures = np.vstack([np.c_[rng.uniform(x0 + 40, x1 - 40, 2), rng.uniform(y0 + 40, y1 - 40, 2)]
                             for x0, y0, x1, y1 in boxes])
        rgb = make_slide_rgb(n_cols * cell, n_rows * cell, tissue_boxes=boxes, figures=figures, seed=0)
        n_figures = len(figures)
    else:  # realistic synthetic H&E tiles (spindledx.mitosis.synthetic), four distinct ones repeated
        from spindledx.mitosis.synthetic import make_tile

        tiles = [make_tile(size_px=cell, n_mitoses=3, seed=seed) for seed in range(4)]
        rgb = np.empty((n_rows * cell, n_cols * cell, 3), np.uint8)
        rgb[:] = GLASS_RGB
        n_figures = 0
        for k, (r, c) in enumerate(in_tissue):
            tile_rgb, figs = tiles[k % len(tiles)]
            rgb[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = tile_rgb
            n_figures += len(figs)
    return write_pyramidal_tiff(folder / "bench_slide.tif", rgb, mpp=0.25, compression="jpeg"), n_figures


def _detector(kind: str):
    if kind == "synthetic":
        from spindledx.slide.synthetic import dark_disk_detector

        return dark_disk_detector, "synthetic dark-disk stand-in"
    from spindledx.errors import BadInputError
    from spindledx.slide.pipeline import default_detector

    detector = default_detector()
    try:
        detector.prepare()
    except (ImportError, BadInputError) as exc:
        if kind == "real":
            raise
        from spindledx.slide.synthetic import dark_disk_detector

        return dark_disk_detector, f"synthetic dark-disk stand-in (shipped detector unavailable: {exc})"
    return detector, "spindledx.detection.detect.detect_mitoses (shipped model)"


class TimedDetector:
    """Wraps a detector and adds up the time spent inside it (in this process, so only with --jobs 1)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    @property
    def name(self) -> str:
        from spindledx.slide.pipeline import detector_name

        return detector_name(self.inner)

    def prepare(self) -> None:
        if callable(getattr(self.inner, "prepare", None)):
            self.inner.prepare()

    def __call__(self, rgb, mpp):
        start = time.perf_counter()
        try:
            return self.inner(rgb, mpp)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def floor_pass(path: Path, tile_um: float, margin_um: float) -> tuple[float, float]:
    """Read all tissue tiles and convert them to optical density; returns (seconds, core megapixels)."""
    import math

    from spindledx.imaging.slide import open_slide
    from spindledx.slide.tiling import make_raster, plan_tiles, read_raster, tissue_cells
    from spindledx.slide.tissue import detect_tissue

    with open_slide(path) as slide:
        tissue = detect_tissue(slide)
        raster = make_raster(slide.info, 0.25)
        core_px = int(round(tile_um / raster.mpp))
        margin_px = int(math.ceil(margin_um / raster.mpp))
        keep = tissue_cells(tissue.mask, tissue.raster, raster, core_px=core_px)
        tiles = plan_tiles(raster.width, raster.height, core_px=core_px, margin_px=margin_px, keep=keep)
        start = time.perf_counter()
        checksum = 0.0
        for t in tiles:
            rgb = read_raster(slide, raster, t.x, t.y, t.width, t.height)
            od = -np.log((rgb.astype(np.float32) + 1.0) / 256.0)
            checksum += float(od[0, 0, 0])
        seconds = time.perf_counter() - start
    return seconds, sum(t.core_area_px for t in tiles) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slide", nargs="?", type=Path)
    parser.add_argument("--width", type=int, default=8192, help="synthetic slide width in px (default 8192)")
    parser.add_argument("--height", type=int, default=6144, help="synthetic slide height in px (default 6144)")
    parser.add_argument("--detector", choices=("auto", "real", "synthetic"), default="auto")
    parser.add_argument("--content", choices=("he", "disks"), default="he",
                        help="synthetic slide content: H&E-like tiles of spindledx.mitosis.synthetic (default) or "
                             "plain dark disks")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--tile-um", type=float, default=DEFAULT_TILE_UM, help="tile core side in µm (512)")
    parser.add_argument("--margin-um", type=float, default=DEFAULT_MARGIN_UM, help="overlap per side in µm (16)")
    args = parser.parse_args(argv)

    from spindledx.slide.pipeline import analyze_slide

    detector, detector_label = _detector(args.detector)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.slide:
            path, n_figures = args.slide, None
        else:
            path, n_figures = _synthetic_slide(folder, args.width, args.height, args.content)
        floor_s, floor_mp = floor_pass(path, args.tile_um, args.margin_um)
        timed = TimedDetector(detector) if args.jobs == 1 else None
        start = time.perf_counter()
        result = analyze_slide(path, detector=timed or detector, out_dir=folder / "run", tile_um=args.tile_um,
                               margin_um=args.margin_um, jobs=args.jobs, area_mm2=0.5)
        total_s = time.perf_counter() - start
    tissue_mp = result.tissue.area_mm2 * 1e6 / result.raster.mpp**2 / 1e6
    floor_rate = floor_mp / floor_s
    slide_rate = result.tiled_megapixels / result.detect_seconds
    tissue_rate = tissue_mp / result.detect_seconds
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    name = path.name if args.slide else f"synthetic ({args.content}) {args.width}x{args.height} px at 0.25 um/px"
    print(f"slide: {name}, {result.n_tiles} tissue tiles, {result.tiled_megapixels:.1f} MP tiled (tissue mask "
          f"{tissue_mp:.1f} MP, {result.tissue.area_mm2:.2f} mm2), {len(result.detections)} detections"
          + (f" ({n_figures} figures drawn)" if n_figures is not None else ""))
    print(f"detector: {detector_label}; jobs={args.jobs}")
    print(f"floor (read tiles + optical density): {floor_rate:8.2f} MP/s  ({floor_s:.2f} s)")
    print(f"slide (tile loop of analyze_slide):   {slide_rate:8.2f} MP/s  ({result.detect_seconds:.2f} s; "
          f"whole call incl. tissue mask, hotspot: {total_s:.2f} s)")
    print(f"slide throughput in tissue-mask megapixels: {tissue_rate:.2f} MP/s of tissue "
          f"({result.tissue.area_mm2 / result.detect_seconds:.3f} mm2/s)")
    print(f"ratio slide/floor time per MP: {floor_rate / slide_rate:.1f}x")
    if timed is not None:
        other = result.detect_seconds - timed.seconds
        print(f"of the tile loop: detector {timed.seconds:.2f} s in {timed.calls} calls "
              f"({100 * timed.seconds / result.detect_seconds:.0f}%), reading/core rule/writing {other:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
