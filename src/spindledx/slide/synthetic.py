"""Synthetic pyramidal slides with known figures, for tests and the benchmark (no real data needed).

:func:`make_slide_rgb` paints a glass background, an eosin-pink tissue region with pale purple nuclei, and
dark round "figures" at given centres; :func:`write_pyramidal_tiff` stores an RGB image as a tiled pyramidal
TIFF with resolution tags (so the reader finds the µm/px), levels as SubIFDs (as bfconvert/QuPath write them) or
as separate pages (as OpenSlide's generic-TIFF reader expects), optionally with OME metadata.
:func:`dark_disk_detector` finds those dark disks; it stands in for the trained model when testing the
whole-slide machinery and is not a mitosis detector.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage.draw import disk, ellipse
from skimage.measure import label, regionprops

from spindledx.detection.types import Detection

GLASS_RGB = (242, 240, 244)
TISSUE_RGB = (226, 160, 196)
NUCLEUS_RGB = (165, 120, 185)
FIGURE_RGB = (52, 30, 82)


def make_slide_rgb(width: int, height: int, *, tissue_boxes: list[tuple[int, int, int, int]],
                   figures: np.ndarray, figure_radius_px: float = 20.0, nuclei_per_mpx: float = 400.0,
                   seed: int = 0) -> np.ndarray:
    """Synthetic H&E-like RGB image.

    Parameters
    ----------
    width, height
        Image size in pixels.
    tissue_boxes
        Tissue rectangles ``(x0, y0, x1, y1)``.
    figures
        ``(N, 2)`` centres ``(x, y)`` of dark round figures (drawn with :func:`skimage.draw.disk`).
    figure_radius_px
        Figure radius.
    nuclei_per_mpx
        Density of pale non-mitotic nuclei (ellipses) in tissue, per megapixel.
    seed
        Random seed.
    """
    rng = np.random.default_rng(seed)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = GLASS_RGB
    for x0, y0, x1, y1 in tissue_boxes:
        rgb[y0:y1, x0:x1] = TISSUE_RGB
        n = int(nuclei_per_mpx * (x1 - x0) * (y1 - y0) / 1e6)
        for cx, cy in zip(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), strict=True):
            rr, cc = ellipse(cy, cx, rng.uniform(6, 10), rng.uniform(14, 24), shape=rgb.shape[:2],
                             rotation=rng.uniform(0, np.pi))
            rgb[rr, cc] = NUCLEUS_RGB
    noise = rng.normal(0.0, 4.0, size=(height, width, 1))
    rgb = np.clip(rgb.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    for x, y in np.asarray(figures, float).reshape(-1, 2):
        rr, cc = disk((y, x), figure_radius_px, shape=rgb.shape[:2])
        rgb[rr, cc] = FIGURE_RGB
    return rgb


def write_pyramidal_tiff(path: str | Path, rgb: np.ndarray, *, mpp: float | None, n_levels: int = 3,
                         factor: int = 4, tile: int = 256, layout: str = "subifds", compression: str = "zlib",
                         ome: bool = False) -> Path:
    """Write ``rgb`` as a tiled pyramidal TIFF.

    Parameters
    ----------
    path
        Output file.
    rgb
        Level-0 image.
    mpp
        Level-0 µm/px stored in the resolution tags (centimetre unit) or OME ``PhysicalSizeX``; None writes
        no scale at all.
    n_levels, factor
        Number of levels and downsample between consecutive levels.
    tile
        TIFF tile side.
    layout
        ``"subifds"`` (reduced levels as SubIFDs of the first page) or ``"pages"`` (one page per level).
    compression
        TIFF compression (``"zlib"``, ``"jpeg"``, ``None``).
    ome
        Write OME-XML metadata (the scale then goes in ``PhysicalSizeX``, not in the resolution tags).
    """
    import tifffile

    path = Path(path)
    levels = [rgb]
    for _ in range(1, n_levels):
        prev = levels[-1]
        h, w = max(1, prev.shape[0] // factor), max(1, prev.shape[1] // factor)
        levels.append(cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA))
    opts = {"tile": (tile, tile), "photometric": "rgb", "compression": compression}
    metadata: dict | None = None
    if ome:
        metadata = {"axes": "YXS"}
        if mpp is not None:
            metadata.update({"PhysicalSizeX": mpp, "PhysicalSizeY": mpp, "PhysicalSizeXUnit": "µm",
                             "PhysicalSizeYUnit": "µm"})

    def resolution(k: int) -> dict:
        if mpp is None or ome:
            return {}
        ppcm = 1e4 / (mpp * levels[0].shape[1] / levels[k].shape[1])
        return {"resolution": (ppcm, ppcm), "resolutionunit": "CENTIMETER"}

    with tifffile.TiffWriter(path, bigtiff=rgb.nbytes > 2**31, ome=ome) as tw:
        if layout == "subifds":
            tw.write(levels[0], subifds=n_levels - 1, metadata=metadata, **resolution(0), **opts)
            for k in range(1, n_levels):
                tw.write(levels[k], subfiletype=1, metadata=None, **resolution(k), **opts)
        elif layout == "pages":
            for k in range(n_levels):
                tw.write(levels[k], subfiletype=1 if k else 0, metadata=metadata if k == 0 else None,
                         **resolution(k), **opts)
        else:
            raise ValueError(f"unknown layout {layout!r}")
    return path


def dark_disk_detector(rgb: np.ndarray, mpp: float, *, max_gray: float = 100.0,
                       min_radius_um: float = 2.0) -> list[Detection]:
    """Centroids of dark connected blobs at least ``min_radius_um`` in equivalent radius (synthetic slides only).

    A stand-in for the trained detector in tests and benchmarks of the whole-slide machinery: it is local
    (its output near a point depends only on nearby pixels), like the real detector.
    """
    gray = rgb.astype(np.float32).mean(axis=2)
    labels = label(gray < max_gray)
    min_area = np.pi * (min_radius_um / mpp) ** 2
    return [Detection(x=float(p.centroid[1]), y=float(p.centroid[0]), score=1.0)
            for p in regionprops(labels) if p.area >= min_area]
