"""Mitotic hotspot: the window of a given area with the most detections, found from the count density.

Pathologists count "10 successive HPF in the most mitotically active area" (FNCLCC; Coindre 2006) or a fixed
area such as 2 mm² (Cree et al., Mod Pathol 2021;34:1651, who ask to report the method and the area counted).
Here the window has a fixed area (default 10 HPF of :data:`spindledx.counting.DEFAULT_HPF_AREA_MM2`) and is a
circle, a square, or ``fields``: ten contiguous square fields of one tenth of the area each, in a 2 x 5 block
(either orientation), a digital stand-in for "10 consecutive HPF":

1. detections are binned on the tissue-mask grid (cell = mask pixel, e.g. 8 µm);
2. the count in every window position is the convolution of that grid with the window: a disk kernel through
   :func:`scipy.signal.fftconvolve` for the circle, box sums from an integral image
   (:func:`skimage.transform.integral_image`) for the square. The tissue fraction of every window is computed
   the same way from the mask (for ``fields``, box sums of the 2 x 5 block), and only windows at least
   ``min_tissue_fraction`` inside tissue compete;
3. the best grid positions are recounted exactly from the detection coordinates and the highest exact count
   wins (ties: more tissue). Cost is O(N log N) in the number of grid cells, not one count per position and
   detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree
from skimage.transform import integral_image

from spindledx.counting import DEFAULT_HPF_AREA_MM2, MitoticDensity
from spindledx.errors import BadInputError
from spindledx.slide.defaults import DEFAULT_MIN_TISSUE_FRACTION

SHAPES = ("circle", "square", "fields")
FIELDS_BLOCK = (2, 5)  # rows x columns of HPF-sized squares for shape "fields"

N_EXACT_CANDIDATES = 256


@dataclass(frozen=True)
class Hotspot:
    """The window with the highest mitotic count.

    Coordinates are in µm from the slide's top-left corner (level-0 pixel ``x`` covers ``[x, x + 1) * mpp``).

    Attributes
    ----------
    shape
        ``"circle"``, ``"square"`` or ``"fields"`` (2 x 5 block of square fields).
    centre_x_um, centre_y_um
        Window centre.
    width_um, height_um
        Window extent (the diameter twice for a circle).
    area_mm2
        Window area (the area counted).
    tissue_fraction
        Fraction of the window on the tissue mask.
    count
        Detections in the window (exact recount from coordinates).
    mitoses_per_mm2, mitoses_per_10hpf, hpf_area_mm2, mitotic_score
        ``count / area_mm2``, its 10-HPF equivalent for fields of ``hpf_area_mm2`` and the FNCLCC mitotic score.
    warnings
        E.g. when no window is mostly inside tissue.
    """

    shape: str
    centre_x_um: float
    centre_y_um: float
    width_um: float
    height_um: float
    area_mm2: float
    tissue_fraction: float
    count: int
    mitoses_per_mm2: float
    mitoses_per_10hpf: float
    hpf_area_mm2: float
    mitotic_score: int
    warnings: tuple[str, ...] = ()

    @property
    def radius_um(self) -> float:
        """Radius of a circular window (half its width)."""
        return self.width_um / 2.0

    def outline_um(self, n_vertices: int = 72) -> np.ndarray:
        """Closed polygon ``(n, 2)`` of ``(x, y)`` in µm around the window."""
        cx, cy = self.centre_x_um, self.centre_y_um
        if self.shape == "circle":
            t = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
            poly = np.stack([cx + self.radius_um * np.cos(t), cy + self.radius_um * np.sin(t)], axis=1)
        else:
            w, h = self.width_um / 2.0, self.height_um / 2.0
            poly = np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
        return np.vstack([poly, poly[:1]])

    def field_outlines_um(self) -> list[np.ndarray]:
        """The ten square fields of a ``fields`` window (row by row), each a closed ``(5, 2)`` polygon in µm;
        for a circle or square, the one outline (:meth:`outline_um`)."""
        if self.shape != "fields":
            return [self.outline_um()]
        rows, cols = FIELDS_BLOCK if self.width_um >= self.height_um else FIELDS_BLOCK[::-1]
        side_x, side_y = self.width_um / cols, self.height_um / rows
        x0, y0 = self.centre_x_um - self.width_um / 2.0, self.centre_y_um - self.height_um / 2.0
        outlines = []
        for r in range(rows):
            for c in range(cols):
                left, top = x0 + c * side_x, y0 + r * side_y
                square = np.array([[left, top], [left + side_x, top], [left + side_x, top + side_y],
                                   [left, top + side_y]])
                outlines.append(np.vstack([square, square[:1]]))
        return outlines

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        size = ({"radius_um": self.radius_um} if self.shape == "circle"
                else {"width_um": self.width_um, "height_um": self.height_um})
        return {"shape": self.shape, "centre_x_um": self.centre_x_um, "centre_y_um": self.centre_y_um, **size,
                "area_mm2": self.area_mm2, "tissue_fraction": self.tissue_fraction, "count": self.count,
                "mitoses_per_mm2": self.mitoses_per_mm2, "mitoses_per_10hpf": self.mitoses_per_10hpf,
                "hpf_area_mm2": self.hpf_area_mm2, "fnclcc_mitotic_score": self.mitotic_score,
                "warnings": list(self.warnings)}


def count_grid(points_um: np.ndarray, shape: tuple[int, int], cell_um: float) -> np.ndarray:
    """Number of points in each ``cell_um`` square cell of a ``shape`` grid (points outside are dropped)."""
    grid = np.zeros(shape, np.float64)
    if len(points_um) == 0:
        return grid
    ix = np.floor(points_um[:, 0] / cell_um).astype(np.int64)
    iy = np.floor(points_um[:, 1] / cell_um).astype(np.int64)
    ok = (ix >= 0) & (iy >= 0) & (ix < shape[1]) & (iy < shape[0])
    np.add.at(grid, (iy[ok], ix[ok]), 1.0)
    return grid


def disk_kernel(radius_cells: float) -> np.ndarray:
    """Odd-sized 0/1 kernel: cells whose centre is within ``radius_cells`` of the central cell's centre."""
    c = int(math.ceil(radius_cells))
    yy, xx = np.mgrid[-c:c + 1, -c:c + 1]
    return (xx * xx + yy * yy <= radius_cells * radius_cells).astype(np.float64)


def _box_sums(grid: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Sum over the ``kh x kw`` box whose cell ``(kh // 2, kw // 2)`` is at each grid cell; zero outside."""
    h, w = grid.shape
    padded = np.pad(grid, ((kh, kh), (kw, kw)))
    ii = np.pad(integral_image(padded), ((1, 0), (1, 0)))
    t = (np.arange(h) + kh - kh // 2)[:, None]
    lft = (np.arange(w) + kw - kw // 2)[None, :]
    b, r = t + kh, lft + kw
    return ii[b, r] - ii[t, r] - ii[b, lft] + ii[t, lft]


def density_map(points_um: np.ndarray, shape: tuple[int, int], cell_um: float, *,
                radius_um: float) -> np.ndarray:
    """Mitoses per mm² in a disk of ``radius_um`` around every cell (for the heat map)."""
    kernel = disk_kernel(radius_um / cell_um)
    counts = fftconvolve(count_grid(points_um, shape, cell_um), kernel, mode="same")
    area_mm2 = kernel.sum() * cell_um * cell_um / 1e6
    return np.clip(counts, 0.0, None) / area_mm2


def find_hotspot(points_um: np.ndarray, tissue: np.ndarray, cell_um: float, *, area_mm2: float | None = None,
                 shape: str = "circle", hpf_area: float = DEFAULT_HPF_AREA_MM2,
                 min_tissue_fraction: float = DEFAULT_MIN_TISSUE_FRACTION,
                 n_candidates: int = N_EXACT_CANDIDATES) -> Hotspot:
    """Window of ``area_mm2`` with the most detections among windows mostly inside tissue.

    Parameters
    ----------
    points_um
        ``(N, 2)`` detection centres ``(x, y)`` in µm.
    tissue
        Boolean tissue mask whose pixel ``(row, col)`` covers ``[col, col + 1) * cell_um`` in x (same for y), or
        the share of every cell that is counted (:attr:`spindledx.slide.area.CountedArea.coverage`).
    cell_um
        Mask pixel size in µm.
    area_mm2
        Window area; default 10 HPF of ``hpf_area``.
    shape
        ``"circle"`` (disk kernel, FFT convolution), ``"square"`` or ``"fields"`` (2 x 5 block of square fields of
        ``area_mm2 / 10`` each, both orientations; integral image).
    hpf_area
        Area of one high-power field in mm² for the per-10-HPF figure.
    min_tissue_fraction
        Windows with a smaller fraction of tissue are not considered (if none qualifies, the windows with the
        most tissue are used and a warning says so).
    n_candidates
        Best grid positions recounted exactly.

    Returns
    -------
    Hotspot
    """
    if shape not in SHAPES:
        raise BadInputError(f"unknown hotspot shape '{shape}'; choose one of {', '.join(SHAPES)}")
    if area_mm2 is None:
        area_mm2 = 10.0 * hpf_area
    if area_mm2 <= 0 or cell_um <= 0:
        raise BadInputError("the hotspot area must be positive")
    points_um = np.asarray(points_um, float).reshape(-1, 2)
    maskf = np.clip(np.asarray(tissue, np.float64), 0.0, 1.0)  # a mask, or the counted share of every cell
    counts = count_grid(points_um, maskf.shape, cell_um)
    area_um2 = area_mm2 * 1e6
    # each variant: (grid counts, tissue fraction, centre offset x and y in cells, width_um, height_um)
    variants = []
    if shape == "circle":
        radius_um = math.sqrt(area_um2 / math.pi)
        kernel = disk_kernel(radius_um / cell_um)
        variants.append((fftconvolve(counts, kernel, mode="same"),
                         fftconvolve(maskf, kernel, mode="same") / kernel.sum(), 0.5, 0.5, 2 * radius_um,
                         2 * radius_um))
    else:
        if shape == "square":
            sizes = [(math.sqrt(area_um2), math.sqrt(area_um2))]
        else:
            rows, cols = FIELDS_BLOCK
            side = math.sqrt(area_um2 / (rows * cols))
            sizes = [(cols * side, rows * side), (rows * side, cols * side)]
        for width_um, height_um in sizes:
            kw = max(1, int(round(width_um / cell_um)))
            kh = max(1, int(round(height_um / cell_um)))
            variants.append((_box_sums(counts, kh, kw), _box_sums(maskf, kh, kw) / (kh * kw),
                             kw / 2.0 - kw // 2, kh / 2.0 - kh // 2, width_um, height_um))

    warnings: list[str] = []
    best_fraction = max(float(v[1].max()) if v[1].size else 0.0 for v in variants)
    floor = min_tissue_fraction
    if best_fraction < min_tissue_fraction:
        floor = best_fraction * 0.95
        warnings.append(f"no {area_mm2:g} mm² {shape} window is {min_tissue_fraction:.0%} inside tissue (best "
                        f"{best_fraction:.0%}): the hotspot is the busiest of the windows with the most tissue")
    best: tuple | None = None
    for grid_counts, tissue_frac, off_x, off_y, width_um, height_um in variants:
        frac = np.clip(tissue_frac, 0.0, 1.0)
        score = np.where(frac >= floor - 1e-9, np.rint(grid_counts) + 1e-3 * frac, -np.inf).ravel()
        n = min(n_candidates, int(np.isfinite(score).sum()))
        if n == 0:
            continue
        top = np.argpartition(-score, n - 1)[:n]
        rows_i, cols_i = np.unravel_index(top, frac.shape)
        cx, cy = (cols_i + off_x) * cell_um, (rows_i + off_y) * cell_um
        exact = _exact_counts(points_um, cx, cy, width_um, height_um, shape == "circle")
        k = np.lexsort((-frac[rows_i, cols_i], -exact))[0]
        candidate = (int(exact[k]), float(frac[rows_i[k], cols_i[k]]), float(cx[k]), float(cy[k]), width_um,
                     height_um)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        raise BadInputError("no tissue to search for a hotspot")
    count, fraction, cx_best, cy_best, width_um, height_um = best
    value = MitoticDensity.of(count, area_mm2, hpf_area)
    return Hotspot(shape=shape, centre_x_um=cx_best, centre_y_um=cy_best, width_um=width_um, height_um=height_um,
                   area_mm2=area_mm2, tissue_fraction=fraction, count=count, mitoses_per_mm2=value.per_mm2,
                   mitoses_per_10hpf=value.per_10hpf, hpf_area_mm2=hpf_area, mitotic_score=value.fnclcc_score,
                   warnings=tuple(warnings))


def _exact_counts(points_um: np.ndarray, cx: np.ndarray, cy: np.ndarray, width_um: float, height_um: float,
                  circle: bool) -> np.ndarray:
    """Points within each window (boundary included): a k-d tree query, Euclidean for circles, Chebyshev on
    coordinates scaled by the window size for rectangles."""
    if len(points_um) == 0:
        return np.zeros(len(cx), np.int64)
    centres = np.stack([cx, cy], axis=1)
    if circle:
        tree = cKDTree(points_um)
        return np.asarray(tree.query_ball_point(centres, r=width_um / 2.0, return_length=True), np.int64)
    scale = np.array([width_um, height_um])
    tree = cKDTree(points_um / scale)
    return np.asarray(tree.query_ball_point(centres / scale, r=0.5, p=np.inf, return_length=True), np.int64)


def clip_polygon(polygon: np.ndarray, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
    """Part of a convex polygon inside an axis-aligned rectangle (Sutherland-Hodgman clipping; Sutherland IE,
    Hodgman GW, Commun ACM 1974;17:32).

    Parameters
    ----------
    polygon
        ``(n, 2)`` vertices ``(x, y)``; closed or not.
    xmin, ymin, xmax, ymax
        The rectangle.

    Returns
    -------
    numpy.ndarray
        Closed ``(m, 2)`` polygon (first vertex repeated), or ``(0, 2)`` when nothing lies inside.
    """
    pts = [tuple(p) for p in np.asarray(polygon, float).reshape(-1, 2)]
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts = pts[:-1]
    edges = ((0, xmin, True), (0, xmax, False), (1, ymin, True), (1, ymax, False))
    for axis, bound, keep_greater in edges:
        if not pts:
            break

        def inside(p: tuple[float, float], axis: int = axis, bound: float = bound,
                   keep_greater: bool = keep_greater) -> bool:
            return p[axis] >= bound if keep_greater else p[axis] <= bound

        def cross(p: tuple[float, float], q: tuple[float, float], axis: int = axis,
                  bound: float = bound) -> tuple[float, float]:
            t = (bound - p[axis]) / (q[axis] - p[axis])
            point = [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
            point[axis] = bound
            return point[0], point[1]

        out: list[tuple[float, float]] = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        pts = out
    if len(pts) < 3:
        return np.zeros((0, 2))
    arr = np.array(pts, float)
    return np.vstack([arr, arr[:1]])


def polygon_area(polygon: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula), in the squared units of its coordinates."""
    p = np.asarray(polygon, float).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def hotspot_regions_level0(hotspot: Hotspot, *, mpp: float, width_px: int, height_px: int,
                           points_level0: np.ndarray | None = None) -> list[dict[str, object]]:
    """The hotspot as polygons in level-0 pixels, clipped to the image, ready for GeoJSON and drawing.

    A ``fields`` hotspot gives its ten fields, a circle or square one polygon. Each region has ``polygon``
    (closed, inside ``[-0.5, width - 0.5] x [-0.5, height - 0.5]``, the pixel edges), ``area_mm2`` of the window
    part inside the image, ``clipped`` (the window reached past the image edge) and, when ``points_level0`` is
    given, ``count`` of the points inside (boundary included; a point on an edge shared by two fields counts in
    the first).
    """
    regions = []
    remaining = None if points_level0 is None else np.asarray(points_level0, float).reshape(-1, 2)
    for outline_um in hotspot.field_outlines_um():
        poly_px = outline_um / mpp - 0.5
        clipped = clip_polygon(poly_px, -0.5, -0.5, width_px - 0.5, height_px - 0.5)
        full_area = polygon_area(poly_px)
        area_px = polygon_area(clipped)
        region: dict[str, object] = {"polygon": clipped, "area_mm2": area_px * mpp * mpp / 1e6,
                                     "clipped": bool(area_px < full_area * (1 - 1e-6))}
        if remaining is not None:  # a point on a shared field edge counts in the first field only
            inside = _points_in_convex(remaining, clipped)
            region["count"] = int(inside.sum())
            remaining = remaining[~inside]
        regions.append(region)
    return regions


def _points_in_convex(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask of the points inside or on a convex polygon (either orientation)."""
    if len(points) == 0 or len(polygon) < 4:
        return np.zeros(len(points), bool)
    p = polygon[:-1]
    q = np.roll(p, -1, axis=0)
    crossz = ((q[:, 0] - p[:, 0])[None, :] * (points[:, 1:2] - p[:, 1][None, :])
              - (q[:, 1] - p[:, 1])[None, :] * (points[:, 0:1] - p[:, 0][None, :]))
    tol = 1e-9
    return np.all(crossz >= -tol, axis=1) | np.all(crossz <= tol, axis=1)
