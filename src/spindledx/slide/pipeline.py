"""Whole-slide mitotic count: tissue -> tiles -> detector -> hotspot and whole-tissue average.

:func:`analyze_slide` runs the stages of this package in order:

1. :func:`spindledx.imaging.slide.open_slide` (scale from metadata or ``mpp``);
2. :func:`spindledx.slide.tissue.detect_tissue` on a ~8 µm/px thumbnail;
3. :func:`spindledx.slide.tiling.plan_tiles` over the tissue at the working resolution (0.25 µm/px), with the
   core rule of :mod:`spindledx.slide.tiling`;
4. the detector on every tissue tile, in this process, in local worker processes (``jobs``) or on a Dask
   cluster (``dask``); each tile's detections are streamed to ``out_dir/tiles/<tile>.jsonl`` (written
   atomically), so a rerun with the same settings skips finished tiles;
5. :func:`spindledx.slide.hotspot.find_hotspot` and the whole-tissue average density (Cree et al. 2021 ask for
   both the method and the area).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.counting import DEFAULT_HPF_AREA_MM2, MitoticDensity, check_hpf_area_mm2, count_record
from spindledx.detection.suppress import MIDOG_RADIUS_UM, suppress_nearby
from spindledx.detection.types import Detection, Detector, as_detector
from spindledx.engine.progress import ProgressBar
from spindledx.engine.store import RunLock, check_run_file, file_identity
from spindledx.engine.workers import run_dask, run_local
from spindledx.errors import BadInputError
from spindledx.files import atomic_write_text
from spindledx.imaging.roi import Region
from spindledx.imaging.slide import SlideInfo, WholeSlide, open_slide
from spindledx.slide.area import CountedArea, counted_area, require_area
from spindledx.slide.checks import SlideChecks, slide_checks
from spindledx.slide.hotspot import DEFAULT_MIN_TISSUE_FRACTION, SHAPES, Hotspot, find_hotspot
from spindledx.slide.tiling import (
    DEFAULT_MARGIN_UM,
    DEFAULT_TILE_UM,
    DEFAULT_WORK_MPP,
    Raster,
    Tile,
    make_raster,
    plan_tiles,
    read_raster,
    tissue_cells,
)
from spindledx.slide.tissue import DEFAULT_TISSUE_MPP, TissueMask, detect_tissue

MIN_TILE_UM = 64.0
"""Smallest tile core side (µm): below this the overlap and the per-tile overhead dominate."""
MAX_TILE_UM = 8192.0
"""Largest tile core side (µm): a 32768 px tile at 0.25 µm/px already needs 3 GB of RGB."""

MANIFEST = "run.json"
TILES_DIR = "tiles"


@dataclass(frozen=True)
class AverageDensity:
    """Whole-tissue average: all detections over the whole tissue-mask area ("average" method, Cree 2021)."""

    count: int
    area_mm2: float
    mitoses_per_mm2: float
    mitoses_per_10hpf: float
    hpf_area_mm2: float
    mitotic_score: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"method": "average over the whole tissue mask", "count": self.count, "area_mm2": self.area_mm2,
                "mitoses_per_mm2": self.mitoses_per_mm2, "mitoses_per_10hpf": self.mitoses_per_10hpf,
                "hpf_area_mm2": self.hpf_area_mm2, "fnclcc_mitotic_score": self.mitotic_score}


@dataclass(frozen=True)
class SlideResult:
    """Everything :func:`analyze_slide` found.

    Attributes
    ----------
    info, tissue, raster
        Slide metadata, tissue mask (thumbnail raster) and working raster.
    detections
        ``(N, 3)`` float array of ``x, y, score`` in level-0 (full-resolution) pixels.
    hotspots
        One :class:`Hotspot` per requested shape.
    average
        Whole-tissue average density.
    n_tiles, n_tiles_run, n_tiles_resumed
        Tissue tiles, tiles run now, tiles whose results were already on disk.
    tiled_megapixels
        Core area of the tissue tiles at the working resolution.
    detect_seconds
        Wall time of the tile loop (reading + detection + writing), this run only.
    detector_name
        Detector used.
    out_dir
        Folder of the per-tile detection files.
    n_cross_tile_duplicates
        Detections dropped by the final slide-wide non-maximum suppression (see :func:`analyze_slide`).
    checks
        Guard flags of the whole-tissue count and atypical label of each detection
        (:func:`spindledx.slide.checks.slide_checks`).
    area
        The counted area (image ∩ tissue ∩ region of interest, :mod:`spindledx.slide.area`); ``detections`` are
        those inside it (``n_outside_counted_area`` others were dropped).
    answer
        The slide's count (:func:`slide_answer`): the hotspot's, or the whole counted area's when that is no larger
        than the hotspot window; the record of :func:`spindledx.counting.count_record`.
    """

    info: SlideInfo
    tissue: TissueMask
    raster: Raster
    detections: np.ndarray
    hotspots: tuple[Hotspot, ...]
    average: AverageDensity
    n_tiles: int
    n_tiles_run: int
    n_tiles_resumed: int
    tiled_megapixels: float
    detect_seconds: float
    detector_name: str
    out_dir: str
    n_cross_tile_duplicates: int = 0
    checks: SlideChecks | None = None
    area: CountedArea | None = None
    answer: dict[str, Any] | None = None
    n_outside_counted_area: int = 0

    @property
    def megapixels_per_second(self) -> float | None:
        """Tissue-tile megapixels processed per second in this run (None when every tile was resumed)."""
        if self.n_tiles_run == 0 or self.detect_seconds <= 0:
            return None
        return self.tiled_megapixels * self.n_tiles_run / max(self.n_tiles, 1) / self.detect_seconds

    def to_json(self) -> dict[str, Any]:
        """Summary dict (the ``--format json`` output and ``summary.json``)."""
        mpp = self.info.mpp
        return {
            "slide": self.info.path,
            "width": self.info.width,
            "height": self.info.height,
            "mpp": mpp,
            "mpp_source": self.info.mpp_source,
            "objective_power": self.info.objective_power,
            "backend": self.info.backend,
            "vendor": self.info.vendor,
            "working_mpp": self.raster.mpp,
            "tissue_area_mm2": self.tissue.area_mm2,
            "tissue_mask_mpp": self.tissue.raster.mpp,
            "count": int(len(self.detections)),
            "hotspots": [h.to_json() for h in self.hotspots],
            "average": self.average.to_json(),
            "detector": self.detector_name,
            "tiles": {"n": self.n_tiles, "run": self.n_tiles_run, "resumed": self.n_tiles_resumed,
                      "tiled_megapixels": self.tiled_megapixels, "seconds": self.detect_seconds,
                      "cross_tile_duplicates_removed": self.n_cross_tile_duplicates,
                      "megapixels_per_second": self.megapixels_per_second},
            "coordinates": f"level-0 pixels (x right, y down; 1 px = {mpp:g} µm); hotspot centres in µm",
            "out_dir": self.out_dir,
            "answer": self.answer,
            "counted_area": None if self.area is None else self.area.to_json(),
            "n_outside_counted_area": self.n_outside_counted_area,
        } | (self.checks.to_json(int(len(self.detections))) if self.checks is not None else {})


def detector_name(detector: Detector) -> str:
    """Readable, stable name of a detector (recorded to refuse resuming with another detector)."""
    return as_detector(detector).name


def default_detector(*, threshold: float | None = None, threads: int = 2) -> Detector:
    """The shipped mitosis detector (:func:`spindledx.detection.shipped.shipped_detector`)."""
    from spindledx.detection import shipped

    return shipped.shipped_detector(threshold, threads=threads)


def detect_tile(rgb: np.ndarray, mpp: float, tile: Tile, detector: Detector) -> list[tuple[float, float, float]]:
    """Run ``detector`` on one tile image and keep the detections whose centre lies in the tile's core.

    Returns ``(x, y, score)`` in working-raster pixels.
    """
    found: list[Detection] = detector(rgb, mpp)
    if not found:
        return []
    xs = np.array([d.x for d in found], float) + tile.x
    ys = np.array([d.y for d in found], float) + tile.y
    keep = tile.in_core(xs, ys)
    return [(float(x), float(y), float(d.score)) for x, y, d, k in zip(xs, ys, found, keep, strict=True) if k]


def _manifest(info: SlideInfo, raster: Raster, core_px: int, margin_px: int, name: str) -> dict[str, Any]:
    """Everything the saved tiles depend on: the slide file (path, identity and content), its geometry and scale,
    the raster, the tiling and the detector (with its model's sha256)."""
    return {"slide": os.path.abspath(info.path), "file": file_identity(info.path), "width": info.width,
            "height": info.height, "mpp": info.mpp, "raster": raster.to_json(), "core_px": core_px,
            "margin_px": margin_px, "detector": name}


def _check_tiles_dir(tiles_dir: Path) -> None:
    """Refuse a ``tiles`` entry that is a link or not a folder (the tile files would be written through it)."""
    if tiles_dir.is_symlink():
        raise BadInputError(f"{tiles_dir}: is a symbolic link; spindledx does not write through links (remove it "
                            "or choose another out_dir)", parameters="out_dir")
    if tiles_dir.exists() and not tiles_dir.is_dir():
        raise BadInputError(f"{tiles_dir}: exists and is not a folder (remove it or choose another out_dir)",
                            parameters="out_dir")


def _prepare_out_dir(out_dir: Path, manifest: dict[str, Any], *, restart: bool) -> Path:
    tiles_dir = out_dir / TILES_DIR
    _check_tiles_dir(tiles_dir)
    if restart and tiles_dir.exists():
        shutil.rmtree(tiles_dir)
        (out_dir / MANIFEST).unlink(missing_ok=True)
    elif not tiles_dir.exists():
        (out_dir / MANIFEST).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        check_run_file(out_dir / MANIFEST, manifest, what="detections of another slide or other settings")
    except BadInputError as exc:
        raise BadInputError(f"{exc}; or use restart=True to discard them",
                            parameters=("restart", *exc.parameters)) from None
    tiles_dir.mkdir(parents=True, exist_ok=True)
    return tiles_dir


def _write_tile(tiles_dir: Path, tile: Tile, rows: list[tuple[float, float, float]], raster: Raster) -> None:
    lines = []
    for x, y, score in rows:
        x0, y0 = raster.to_level0(x, y)
        lines.append(json.dumps({"x": round(float(x0), 2), "y": round(float(y0), 2), "score": round(score, 5)}))
    atomic_write_text(tiles_dir / f"{tile.key}.jsonl", "".join(line + "\n" for line in lines))


def _load_tile(path: Path) -> list[tuple[float, float, float]] | None:
    """Detections saved for one tile, or None when the file is missing or damaged (the tile is then run again)."""
    try:
        rows = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    row = (float(rec["x"]), float(rec["y"]), float(rec["score"]))
                    if not all(math.isfinite(v) for v in row):
                        return None
                    rows.append(row)
        return rows
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _read_tiles(tiles_dir: Path, tiles: list[Tile]) -> np.ndarray:
    rows = []
    for tile in tiles:
        saved = _load_tile(tiles_dir / f"{tile.key}.jsonl")
        if saved is None:
            raise BadInputError(f"{tiles_dir}: the detections of tile {tile.key} are missing or damaged; "
                                "run the same command again to redo that tile")
        rows.extend(saved)
    return np.array(rows, float).reshape(-1, 3)


def _tile_results(slide: WholeSlide, raster: Raster, tiles: list[Tile], detector: Detector, jobs: int,
                  dask: str | None) -> Iterator[tuple[Tile, list[tuple[float, float, float]]]]:
    """Detections of every tile, read here and detected here, in local workers or on Dask (engine.workers)."""

    def args(tile: Tile) -> tuple:
        return read_raster(slide, raster, tile.x, tile.y, tile.width, tile.height), raster.mpp, tile, detector

    if dask:
        return run_dask(detect_tile, tiles, address=dask, jobs=jobs, args=args)
    return run_local(detect_tile, tiles, jobs=jobs, args=args)


def analyze_slide(path: str | Path, *, mpp: float | None = None, detector: Detector | None = None,
                  out_dir: str | Path | None = None, work_mpp: float = DEFAULT_WORK_MPP,
                  tile_um: float = DEFAULT_TILE_UM, margin_um: float = DEFAULT_MARGIN_UM,
                  tissue_mpp: float = DEFAULT_TISSUE_MPP, area_mm2: float | None = None,
                  hpf_area: float = DEFAULT_HPF_AREA_MM2, shapes: tuple[str, ...] = ("circle",),
                  min_tissue_fraction: float = DEFAULT_MIN_TISSUE_FRACTION, jobs: int = 1,
                  dask: str | None = None, restart: bool = False, progress: bool = False,
                  backend: str = "auto", dedupe_um: float = MIDOG_RADIUS_UM,
                  on_tile: Callable[[Tile], None] | None = None, roi: Region | None = None) -> SlideResult:
    """Detect mitoses over the tissue of a whole-slide image and find the hotspot.

    Parameters
    ----------
    path
        Slide file (see :func:`spindledx.imaging.slide.open_slide`).
    mpp
        Level-0 µm/px, overriding the metadata; required when the metadata has none.
    detector
        ``(rgb, mpp) -> list[Detection]``; default :func:`spindledx.detection.detect.detect_mitoses`.
    out_dir
        Where per-tile detections are streamed (``tiles/*.jsonl``) and resumed from; default
        ``<slide stem>_slide`` in the current folder.
    work_mpp
        Detector working resolution in µm/px (reached from the closest pyramid level by integer factors).
    tile_um, margin_um
        Core side and per-side overlap of the tiles in µm (see :mod:`spindledx.slide.tiling`).
    tissue_mpp
        Resolution of the tissue-mask thumbnail in µm/px.
    area_mm2, hpf_area, shapes, min_tissue_fraction
        Hotspot window area (default 10 HPF), HPF area in mm², window shapes (``"circle"``, ``"square"``,
        ``"fields"``) and
        the minimum tissue fraction of a window (see :func:`spindledx.slide.hotspot.find_hotspot`).
    jobs
        Worker processes (local) or Dask workers for ``dask="local"``.
    dask
        ``None`` (local), ``"local"`` (a local Dask cluster) or a scheduler address (``tcp://host:8786``).
    restart
        Discard detections already on disk instead of resuming.
    progress
        Show a rich progress bar on stderr.
    backend
        Slide reader (``"auto"``, ``"openslide"``, ``"tiffslide"``, ``"tifffile"``).
    dedupe_um
        Slide-wide greedy non-maximum suppression radius (7.5 µm, the MIDOG hit radius; 0 disables), the same
        rule the detector applies within a tile. The core rule already keeps each reported centre once; this
        only matters when a detector whose candidate threshold depends on the whole tile (e.g. a percentile)
        reports two peaks of one figure on either side of a core border, one from each tile.
    on_tile
        Called after each tile is written (tests use it to interrupt a run).
    roi
        Region of interest (:func:`spindledx.imaging.roi.load_roi`): tiles, detections, the hotspot search and the
        areas are restricted to it (refused when it lies outside the slide).

    Returns
    -------
    SlideResult
    """
    for shape in shapes:
        if shape not in SHAPES:
            raise BadInputError(f"unknown hotspot shape '{shape}'; choose from {', '.join(SHAPES)}")
    if jobs < 1:
        raise BadInputError(f"jobs must be at least 1 (got {jobs})")
    if not (math.isfinite(tile_um) and MIN_TILE_UM <= tile_um <= MAX_TILE_UM):
        raise BadInputError(f"tile_um must be between {MIN_TILE_UM:g} and {MAX_TILE_UM:g} µm (got {tile_um!r})")
    if not (math.isfinite(margin_um) and 0 <= margin_um <= tile_um / 2):
        raise BadInputError(f"margin_um must be between 0 and half the tile ({tile_um / 2:g} µm), got {margin_um!r}")
    if area_mm2 is not None and not (math.isfinite(area_mm2) and area_mm2 > 0):
        raise BadInputError(f"area_mm2 must be a positive number of mm² (got {area_mm2!r})")
    check_hpf_area_mm2(hpf_area)
    detector = default_detector(threads=1 if (jobs > 1 or dask) else 2) if detector is None else as_detector(detector)
    detector.prepare()
    name = detector.name
    with open_slide(path, mpp=mpp, backend=backend) as slide:
        info = slide.info
        slide_mm2 = info.width * info.height * info.mpp ** 2 / 1e6
        if area_mm2 is not None and area_mm2 > slide_mm2:
            raise BadInputError(f"the hotspot area ({area_mm2:g} mm²) is larger than the whole slide "
                                f"({slide_mm2:.3g} mm²)")
        tissue = detect_tissue(slide, mpp=tissue_mpp)
        if not tissue.mask.any():
            raise BadInputError(f"no tissue found on {Path(path).name} (the thumbnail looks like empty glass)")
        area = counted_area(tissue.mask, tissue.raster.level0_per_px, mpp=info.mpp, width=info.width,
                            height=info.height, region=roi, image=Path(path).name)
        require_area(area, image=Path(path).name)
        raster = make_raster(info, work_mpp)
        core_px = max(16, int(round(tile_um / raster.mpp)))
        margin_px = int(math.ceil(margin_um / raster.mpp))
        keep = tissue_cells(area.mask, tissue.raster, raster, core_px=core_px)
        tiles = plan_tiles(raster.width, raster.height, core_px=core_px, margin_px=margin_px, keep=keep)
        out = Path(out_dir) if out_dir is not None else Path.cwd() / f"{Path(path).stem}_slide"
        with RunLock(out):
            tiles_dir = _prepare_out_dir(out, _manifest(info, raster, core_px, margin_px, name), restart=restart)
            todo = [t for t in tiles if _load_tile(tiles_dir / f"{t.key}.jsonl") is None]
            tiled_mp = sum(t.core_area_px for t in tiles) / 1e6
            start = time.perf_counter()
            with ProgressBar(progress, len(tiles), done=len(tiles) - len(todo), unit="tiles") as advance:
                for tile, rows in _tile_results(slide, raster, todo, detector, jobs, dask):
                    _write_tile(tiles_dir, tile, rows, raster)
                    advance()
                    if on_tile is not None:
                        on_tile(tile)
            seconds = time.perf_counter() - start
            detections = _read_tiles(tiles_dir, tiles)
    n_found = len(detections)
    if dedupe_um > 0 and n_found > 1:
        keep = suppress_nearby(detections[:, :2], detections[:, 2], radius_um=dedupe_um, mpp=info.mpp)
        detections = detections[np.sort(keep)]
    n_kept = len(detections)
    detections = detections[area.contains(detections[:, 0], detections[:, 1])] if n_kept else detections
    points_um = (detections[:, :2] + 0.5) * info.mpp
    hotspots = tuple(find_hotspot(points_um, area.coverage, area.cell_um, area_mm2=area_mm2, shape=shape,
                                  hpf_area=hpf_area, min_tissue_fraction=min_tissue_fraction)
                     for shape in shapes)
    average = whole_tissue_average(len(detections), area.area_mm2, hpf_area)
    with open_slide(path, mpp=mpp, backend=backend) as slide:
        checks = slide_checks(slide, raster, tiles, detections, area.area_mm2)
    answer = slide_answer(area, hotspots[0], detections, hpf_area, flags=checks.flags,
                          flag_messages=checks.flag_messages)
    return SlideResult(info=info, tissue=tissue, raster=raster, detections=detections, hotspots=hotspots,
                       average=average, n_tiles=len(tiles), n_tiles_run=len(todo),
                       n_tiles_resumed=len(tiles) - len(todo), tiled_megapixels=tiled_mp, detect_seconds=seconds,
                       detector_name=name, out_dir=str(out), n_cross_tile_duplicates=n_found - n_kept,
                       checks=checks, area=area, answer=answer, n_outside_counted_area=n_kept - len(detections))


def in_hotspot(hotspot: Hotspot, x_level0: np.ndarray, y_level0: np.ndarray, mpp: float) -> np.ndarray:
    """True for level-0 points inside the hotspot window (boundary included), as the hotspot counts them."""
    dx = (np.asarray(x_level0, float) + 0.5) * mpp - hotspot.centre_x_um
    dy = (np.asarray(y_level0, float) + 0.5) * mpp - hotspot.centre_y_um
    if hotspot.shape == "circle":
        return np.hypot(dx, dy) <= hotspot.radius_um
    return (np.abs(dx) <= hotspot.width_um / 2) & (np.abs(dy) <= hotspot.height_um / 2)


def window_counted_mm2(area: CountedArea, hotspot: Hotspot, *, supersample: int = 8) -> float:
    """Counted area (mm²) inside the hotspot window: each cell's counted share times the share of the cell inside
    the window (``supersample`` x ``supersample`` points per cell, over the window's bounding box only)."""
    s = supersample
    half_w, half_h = hotspot.width_um / 2, hotspot.height_um / 2
    c0 = max(0, int((hotspot.centre_x_um - half_w) // area.cell_um) - 1)
    c1 = min(area.coverage.shape[1], int((hotspot.centre_x_um + half_w) // area.cell_um) + 2)
    r0 = max(0, int((hotspot.centre_y_um - half_h) // area.cell_um) - 1)
    r1 = min(area.coverage.shape[0], int((hotspot.centre_y_um + half_h) // area.cell_um) + 2)
    if c1 <= c0 or r1 <= r0:
        return 0.0
    sub = (np.arange(s) + 0.5) / s
    xs_um = ((np.arange(c0, c1)[:, None] + sub[None, :]).ravel()) * area.cell_um
    ys_um = ((np.arange(r0, r1)[:, None] + sub[None, :]).ravel()) * area.cell_um
    gx, gy = np.meshgrid(xs_um, ys_um)
    dx, dy = gx - hotspot.centre_x_um, gy - hotspot.centre_y_um
    if hotspot.shape == "circle":
        inside = np.hypot(dx, dy) <= hotspot.radius_um
    else:
        inside = (np.abs(dx) <= half_w) & (np.abs(dy) <= half_h)
    share = inside.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
    return float((share * area.coverage[r0:r1, c0:c1]).sum()) * area.cell_um ** 2 / 1e6


def slide_answer(area: CountedArea, hotspot: Hotspot, detections: np.ndarray, hpf_area: float, *,
                 flags: tuple[str, ...] | list[str] = (), flag_messages: tuple[str, ...] | list[str] = ()
                 ) -> dict[str, Any]:
    """The count of a slide, over the counted area (image ∩ tissue ∩ region of interest).

    When the counted area is no larger than the hotspot window, the whole of it is counted (``method`` "whole
    counted area"): every detection in it over its area, as ``score`` counts an image. Otherwise the hotspot's
    detections over the counted area inside the window (``method`` "hotspot <shape>").
    """
    if area.area_mm2 <= hotspot.area_mm2 * (1 + 1e-9):
        record = count_record(len(detections), area.area_mm2, hpf_area, method="whole counted area",
                              flags=flags, flag_messages=flag_messages)
        record["inside"] = None
        return record
    window_mm2 = window_counted_mm2(area, hotspot)
    n = int(in_hotspot(hotspot, detections[:, 0], detections[:, 1], area.mpp).sum()) if len(detections) else 0
    record = count_record(n, window_mm2, hpf_area, method=f"hotspot {hotspot.shape}", flags=flags,
                          flag_messages=flag_messages)
    record["window_area_mm2"] = round(hotspot.area_mm2, 6)
    return record


def whole_tissue_average(count: int, tissue_area_mm2: float, hpf_area: float) -> AverageDensity:
    """Average density over the whole tissue mask (Cree 2021 "average" method)."""
    if tissue_area_mm2 <= 0:
        raise BadInputError("no tissue found on the slide (tissue mask is empty)")
    value = MitoticDensity.of(count, tissue_area_mm2, hpf_area)
    return AverageDensity(count=value.count, area_mm2=tissue_area_mm2, mitoses_per_mm2=value.per_mm2,
                          mitoses_per_10hpf=value.per_10hpf, hpf_area_mm2=hpf_area, mitotic_score=value.fnclcc_score)
