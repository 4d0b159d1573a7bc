"""Working-resolution raster and overlapping tiles with a core rule that counts every figure exactly once.

Working raster
    The detector's resolution (0.25 µm/px by default) is reached from the pyramid level closest to it
    (:meth:`SlideInfo.best_level`) by an *integer* factor only: the level is used as is when it is within the
    tolerance of the target, upsampled by an integer ``u`` (e.g. a 0.5 µm/px scan to 0.25) or block-averaged by
    an integer ``d``. Integer factors make every tile an exact crop of one global working image: a pixel's
    value depends on its global position only, never on which tile it was read in. (Exception: a reduced level
    with a non-integer downsample read through OpenSlide, which interpolates by < 0.5 / downsample pixel; the
    working raster comes from level 0 for usual 20x/40x scans, where this does not arise.)

Tiles and the core rule
    The cores (``core_px`` squares, clipped at the slide edge) partition the working raster into half-open
    cells ``[x0, x1) x [y0, y1)``. Each tile is its core grown by ``margin_px`` on every side (neighbours
    therefore overlap by ``2 * margin_px``). A detection found in a tile is kept only when its centre lies in
    that tile's core. Since the cores partition the plane, a point lies in exactly one core, so a figure
    reported at the same centre by two overlapping tiles is kept once; and since a kept centre is at least
    ``margin_px`` from the tile's read edge (except at the slide edge, where there is nothing more to read), a
    figure smaller than the margin is seen whole by the tile that keeps it. The margin must exceed the
    figure radius plus the detector's context radius: the default, 16 µm per side (32 µm of overlap), is more
    than twice the 7.5 µm MIDOG hit radius plus a margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from spindledx.errors import BadInputError
from spindledx.imaging.slide import SlideInfo, WholeSlide
from spindledx.slide.defaults import DEFAULT_MARGIN_UM, DEFAULT_TILE_UM, DEFAULT_WORK_MPP  # noqa: F401 (re-exported)

MPP_TOLERANCE = 0.15


@dataclass(frozen=True)
class Raster:
    """A pixel grid over the slide: pyramid ``level`` read and resampled by integer factors.

    One raster pixel is ``downsample / upsample`` pixels of ``level``; ``level0_per_px`` level-0 pixels.
    """

    level: int
    upsample: int
    downsample: int
    mpp: float
    width: int
    height: int
    level0_per_px: float

    def to_level0(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres of this raster to level-0 pixel coordinates (pixel centres at integer + 0.5 edges)."""
        s = self.level0_per_px
        return (np.asarray(x, float) + 0.5) * s - 0.5, (np.asarray(y, float) + 0.5) * s - 0.5

    def from_level0(self, x0: np.ndarray | float, y0: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Level-0 pixel coordinates to this raster's pixel coordinates (inverse of :meth:`to_level0`)."""
        s = self.level0_per_px
        return (np.asarray(x0, float) + 0.5) / s - 0.5, (np.asarray(y0, float) + 0.5) / s - 0.5

    def to_json(self) -> dict[str, float | int]:
        """JSON-ready dict."""
        return {"level": self.level, "upsample": self.upsample, "downsample": self.downsample, "mpp": self.mpp,
                "width": self.width, "height": self.height, "level0_per_px": self.level0_per_px}


def make_raster(info: SlideInfo, target_mpp: float, *, tolerance: float = MPP_TOLERANCE) -> Raster:
    """Raster at about ``target_mpp`` µm/px from the closest pyramid level by an integer up/down factor.

    The level is used as is when its resolution is within ``tolerance`` (relative) of the target; otherwise it
    is upsampled by ``u = round(level_mpp / target)`` or block-averaged by ``d = round(target / level_mpp)``.
    """
    if target_mpp <= 0:
        raise BadInputError("the working resolution must be positive")
    level = info.best_level(target_mpp, tolerance=tolerance)
    level_mpp = info.level_mpp(level)
    ratio = target_mpp / level_mpp
    up = down = 1
    if ratio > 1.0 + tolerance:
        down = max(1, round(ratio))
    elif ratio < 1.0 / (1.0 + tolerance):
        up = max(1, round(1.0 / ratio))
    lw, lh = info.level_dimensions[level]
    width = lw * up // down
    height = lh * up // down
    if width < 1 or height < 1:
        raise BadInputError(f"the slide is too small for a {target_mpp:g} µm/px raster")
    return Raster(level=level, upsample=up, downsample=down, mpp=level_mpp * down / up, width=width,
                  height=height, level0_per_px=info.level_downsamples[level] * down / up)


def read_raster(slide: WholeSlide, raster: Raster, x: int, y: int, width: int, height: int) -> np.ndarray:
    """RGB window ``[x, x + width) x [y, y + height)`` of ``raster``; white beyond the slide.

    Block-averaging by ``d`` uses whole ``d x d`` blocks of the level (``cv2.INTER_AREA`` with an integer
    factor); upsampling by ``u`` reads one extra level pixel on each side, resizes bilinearly and crops, so the
    value of a raster pixel never depends on the window it is read in.
    """
    u, d = raster.upsample, raster.downsample
    if u == 1 and d == 1:
        return slide.read_level(raster.level, x, y, width, height)
    if d > 1:
        block = slide.read_level(raster.level, x * d, y * d, width * d, height * d)
        return cv2.resize(block, (width, height), interpolation=cv2.INTER_AREA)
    lx0, ly0 = x // u - 1, y // u - 1
    lx1, ly1 = -(-(x + width) // u) + 1, -(-(y + height) // u) + 1
    block = slide.read_level(raster.level, lx0, ly0, lx1 - lx0, ly1 - ly0)
    big = cv2.resize(block, ((lx1 - lx0) * u, (ly1 - ly0) * u), interpolation=cv2.INTER_LINEAR)
    ox, oy = x - lx0 * u, y - ly0 * u
    return big[oy:oy + height, ox:ox + width]


@dataclass(frozen=True)
class Tile:
    """One tile of the working raster: a core cell and the window read around it (raster pixels).

    ``core_*`` bounds are half-open: a point belongs to the core when ``core_x0 <= x < core_x1`` and
    ``core_y0 <= y < core_y1``.
    """

    row: int
    col: int
    x: int
    y: int
    width: int
    height: int
    core_x0: int
    core_y0: int
    core_x1: int
    core_y1: int

    @property
    def key(self) -> str:
        """Stable name used for the tile's detection file."""
        return f"r{self.row:04d}_c{self.col:04d}"

    @property
    def core_area_px(self) -> int:
        """Core area in raster pixels (the cores partition the slide)."""
        return (self.core_x1 - self.core_x0) * (self.core_y1 - self.core_y0)

    def in_core(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """True where a raster point ``(x, y)`` lies in this tile's core (the keep rule)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        return (x >= self.core_x0) & (x < self.core_x1) & (y >= self.core_y0) & (y < self.core_y1)


def plan_tiles(width: int, height: int, *, core_px: int, margin_px: int,
               keep: np.ndarray | None = None) -> list[Tile]:
    """Cores of ``core_px`` covering a ``width x height`` raster, each read with ``margin_px`` around it.

    Parameters
    ----------
    width, height
        Raster size in pixels.
    core_px
        Side of a core cell (the last row/column is clipped to the raster).
    margin_px
        Overlap added on each side of the core when reading.
    keep
        Optional boolean array ``(n_rows, n_cols)``: only cells marked True are returned (tissue tiles).

    Returns
    -------
    list of Tile
        Row-major order.
    """
    if core_px < 1 or margin_px < 0:
        raise BadInputError("tile core must be at least one pixel and the margin non-negative")
    n_rows, n_cols = math.ceil(height / core_px), math.ceil(width / core_px)
    if keep is not None and keep.shape != (n_rows, n_cols):
        raise ValueError(f"keep has shape {keep.shape}, expected {(n_rows, n_cols)}")
    tiles = []
    for row in range(n_rows):
        for col in range(n_cols):
            if keep is not None and not keep[row, col]:
                continue
            cx0, cy0 = col * core_px, row * core_px
            cx1, cy1 = min(cx0 + core_px, width), min(cy0 + core_px, height)
            tiles.append(Tile(row=row, col=col, x=cx0 - margin_px, y=cy0 - margin_px,
                              width=cx1 - cx0 + 2 * margin_px, height=cy1 - cy0 + 2 * margin_px,
                              core_x0=cx0, core_y0=cy0, core_x1=cx1, core_y1=cy1))
    return tiles


def tissue_cells(mask: np.ndarray, mask_raster: Raster, work: Raster, *, core_px: int,
                 min_fraction: float = 0.0) -> np.ndarray:
    """Which core cells of the working raster hold tissue: fraction of mask pixels in the cell > ``min_fraction``.

    With the default ``0.0`` a cell is tiled as soon as one tissue pixel of the low-resolution mask falls in it,
    so that no tissue edge is skipped.
    """
    n_rows, n_cols = math.ceil(work.height / core_px), math.ceil(work.width / core_px)
    scale = work.level0_per_px / mask_raster.level0_per_px  # working px -> mask px
    keep = np.zeros((n_rows, n_cols), bool)
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    mh, mw = mask.shape
    for row in range(n_rows):
        my0 = min(mh, int(math.floor(row * core_px * scale)))
        my1 = min(mh, max(my0 + 1, int(math.ceil(min((row + 1) * core_px, work.height) * scale))))
        for col in range(n_cols):
            mx0 = min(mw, int(math.floor(col * core_px * scale)))
            mx1 = min(mw, max(mx0 + 1, int(math.ceil(min((col + 1) * core_px, work.width) * scale))))
            area = (my1 - my0) * (mx1 - mx0)
            if area <= 0:
                continue
            n = integral[my1, mx1] - integral[my0, mx1] - integral[my1, mx0] + integral[my0, mx0]
            keep[row, col] = n > 0 and n / area > min_fraction
    return keep
