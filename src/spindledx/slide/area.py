"""The counted area, one definition for every route: image ∩ tissue ∩ region(s) of interest.

``score`` (a tile), ``slide`` (a whole slide) and ``case`` (either) all count the detections that lie in this
area and divide by its size, so the same image gives the same count, area and density on every route:

* **tissue**: :func:`spindledx.slide.tissue.detect_tissue` on an 8 µm/px thumbnail, for a tile exactly as for a
  slide (a tile is read through :func:`array_slide`, a one-level slide held in memory);
* **region of interest**: the polygons of :func:`spindledx.imaging.roi.load_roi`, when given;
* **image**: cells of the thumbnail grid are clipped to the image, so an image whose size is not a multiple of
  the cell contributes its exact area.

A cell of the grid counts with the fraction of it inside the image and the region (``coverage``), when it is
tissue. A detection counts when its cell is tissue and the point itself lies in the image and the region.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.errors import BadInputError
from spindledx.imaging.roi import Region, image_cells
from spindledx.imaging.slide import SlideInfo, WholeSlide

DEFINITION = "image ∩ tissue ∩ region of interest"


@dataclass(frozen=True)
class CountedArea:
    """Where figures are counted, on the tissue-mask grid.

    Attributes
    ----------
    tissue
        Boolean tissue mask (thumbnail grid).
    coverage
        Fraction of every cell that is counted: 0 off tissue, else the share inside the image and the region.
    cell_px
        Level-0 pixels per grid cell.
    mpp
        Level-0 µm per pixel.
    width, height
        Image size in level-0 pixels.
    region
        The region of interest, or None (the whole image).
    """

    tissue: np.ndarray
    coverage: np.ndarray
    cell_px: float
    mpp: float
    width: int
    height: int
    region: Region | None = None

    @property
    def cell_um(self) -> float:
        """Grid cell side in µm."""
        return self.cell_px * self.mpp

    @property
    def area_mm2(self) -> float:
        """Counted area in mm²."""
        return float(self.coverage.sum()) * self.cell_um ** 2 / 1e6

    @property
    def mask(self) -> np.ndarray:
        """Cells that count at all (for the hotspot search: a window's share of counted area)."""
        return self.coverage > 0

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True for level-0 points that are counted: in the image, on a tissue cell and in the region."""
        x = np.asarray(x, float).ravel()
        y = np.asarray(y, float).ravel()
        ok = (x >= 0) & (y >= 0) & (x < self.width) & (y < self.height)
        cols = np.clip((x // self.cell_px).astype(int), 0, self.coverage.shape[1] - 1)
        rows = np.clip((y // self.cell_px).astype(int), 0, self.coverage.shape[0] - 1)
        ok &= self.mask[rows, cols]
        if self.region is not None and ok.any():
            ok[ok] = self.region.contains(x[ok], y[ok])
        return ok

    def window_area_mm2(self, inside: np.ndarray) -> float:
        """Counted area (mm²) of the cells selected by the boolean grid ``inside`` (e.g. a hotspot window)."""
        return float(self.coverage[inside].sum()) * self.cell_um ** 2 / 1e6

    def to_json(self) -> dict[str, Any]:
        """How the area was made (for every output that states a count)."""
        return {"definition": DEFINITION, "area_mm2": round(self.area_mm2, 6),
                "tissue_mask_um_per_px": round(self.cell_um, 4),
                "roi": None if self.region is None else self.region.source,
                "roi_classes": [] if self.region is None else list(self.region.classes)}


def counted_area(tissue_mask: np.ndarray, cell_px: float, *, mpp: float, width: int, height: int,
                 region: Region | None = None, image: str = "the image") -> CountedArea:
    """The counted area of an image of ``width`` x ``height`` level-0 pixels from its tissue mask (cells of
    ``cell_px`` level-0 pixels) and an optional region (refused when it lies outside the image)."""
    mask = np.asarray(tissue_mask, bool)
    need = (int(np.ceil(height / cell_px - 1e-9)), int(np.ceil(width / cell_px - 1e-9)))
    if mask.size and (need[0] > mask.shape[0] or need[1] > mask.shape[1]):
        # the thumbnail drops a partial last row or column of cells: it takes its neighbour's tissue status
        mask = np.pad(mask, ((0, max(0, need[0] - mask.shape[0])), (0, max(0, need[1] - mask.shape[1]))),
                      mode="edge")
    if region is not None:
        region.check_inside(width, height, image=image)
        cover = region.coverage(mask.shape, cell_px, width=width, height=height)
    else:
        cover = _image_coverage(mask.shape, cell_px, width, height)
    return CountedArea(tissue=mask, coverage=np.where(mask, cover, 0.0), cell_px=float(cell_px), mpp=float(mpp),
                       width=int(width), height=int(height), region=region)


def _image_coverage(shape: tuple[int, int], cell_px: float, width: int, height: int) -> np.ndarray:
    """Exact fraction of every cell inside the image (cells are clipped at the right and bottom edges)."""
    fx = np.clip(width - np.arange(shape[1]) * cell_px, 0.0, cell_px) / cell_px
    fy = np.clip(height - np.arange(shape[0]) * cell_px, 0.0, cell_px) / cell_px
    return fy[:, None] * fx[None, :]


def array_slide(rgb: np.ndarray, mpp: float, *, path: str = "", mpp_source: str = "override") -> WholeSlide:
    """An RGB image in memory as a one-level :class:`~spindledx.imaging.slide.WholeSlide`, so that a tile's
    tissue is found exactly as a slide's."""
    h, w = rgb.shape[:2]
    info = SlideInfo(path=path, backend="tifffile", vendor="array", width=w, height=h, mpp=float(mpp),
                     mpp_source=mpp_source, objective_power=None, level_dimensions=((w, h),),
                     level_downsamples=(1.0,))
    return WholeSlide(info, handle=None, levels=[np.ascontiguousarray(rgb[..., :3])])


def tile_counted_area(rgb: np.ndarray, mpp: float, *, region: Region | None = None,
                      image: str = "the image") -> CountedArea:
    """:func:`counted_area` of a tile in memory: its tissue as :func:`spindledx.slide.tissue.detect_tissue`
    finds a slide's."""
    from spindledx.slide.tissue import detect_tissue

    tissue = detect_tissue(array_slide(rgb, mpp))
    h, w = rgb.shape[:2]
    return counted_area(tissue.mask, tissue.raster.level0_per_px, mpp=mpp, width=w, height=h, region=region,
                        image=image)


def require_area(area: CountedArea, *, image: str) -> CountedArea:
    """The area, or BadInputError when nothing of the image is counted (no tissue in it, or in the region)."""
    if area.area_mm2 <= 0:
        where = "in the region of interest" if area.region is not None else "in the image"
        raise BadInputError(f"{image}: no tissue {where} (the counted area is image ∩ tissue ∩ region of interest)")
    return area


__all__ = ["DEFINITION", "CountedArea", "array_slide", "counted_area", "image_cells", "load_region", "require_area",
           "tile_counted_area"]


def load_region(roi: str | Path | None, roi_class: str | None = None, *, n_images: int = 1) -> Any:
    """The region of interest read from ``roi`` (:func:`spindledx.imaging.roi.load_roi`), or None without one; a
    region belongs to one image.

    Raises
    ------
    BadInputError
        ``roi_class`` without ``roi``, or a region given for several images.
    """
    if roi is None:
        if roi_class is not None:
            raise BadInputError("roi_class picks annotations of a roi file; give that file too",
                                parameters=("roi_class", "roi"))
        return None
    if n_images != 1:
        raise BadInputError(f"roi outlines a region of one image; {n_images} images were given", parameters="roi")
    from spindledx.imaging.roi import load_roi

    return load_roi(roi, roi_class)
