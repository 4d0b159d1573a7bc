"""Synthetic H&E tiles of a spindle-cell tumour with mitotic figures at known places.

The tiles are drawn as stain concentration maps and converted to RGB with the Beer–Lambert law,
``I = I0 exp(-(c_H h + c_E e + od_glass))``, with the hematoxylin and eosin optical-density vectors of Ruifrok &
Johnston ("Quantification of histochemical staining by color deconvolution", Anal Quant Cytol Histol
2001;23:291), so that colour deconvolution recovers the drawn concentrations.

What is drawn (sizes in µm, converted with ``mpp``):

* eosinophilic stroma with fibre texture running along a smoothly varying fascicle direction, with looser, paler
  areas;
* spindle nuclei (12-24 x 2.5-4.5 µm, cigar-shaped, aligned with the fascicles) and a few round nuclei
  (lymphocytes 6-8 µm, ovoid tumour nuclei 9-13 µm), with granular chromatin texture;
* mitotic figures: a rounded cell with paler cytoplasm holding very dense, irregular, "hairy" chromatin —
  metaphase plates (7-10 x 2-3 µm bands with projecting chromosome arms), anaphase pairs (two parallel
  6-8 µm bands 3.5-5 µm apart) and prometaphase clumps (6-8 µm spiky balls).

They are for demonstration and tests only: not a measure of accuracy on real tissue.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Ruifrok & Johnston (2001) optical-density vectors (RGB), normalised to unit length.
HEMATOXYLIN_OD = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
EOSIN_OD = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
GLASS_OD = np.array([0.035, 0.045, 0.030])
I0 = 255.0

FIGURE_KINDS = ("metaphase", "anaphase", "prometaphase")


@dataclass(frozen=True)
class SyntheticFigure:
    """A mitotic figure drawn in a synthetic tile.

    Attributes
    ----------
    x, y
        Centre in pixels (x = column, y = row).
    kind
        ``metaphase``, ``anaphase`` or ``prometaphase``.
    size_um
        Longest extent of the chromatin in µm.
    """

    x: float
    y: float
    kind: str
    size_um: float


def make_tile(*, size_px: int = 1024, n_mitoses: int = 5, seed: int = 0, mpp: float = 0.25,
              stain_strength: float = 1.0, cellularity: float = 1.0,
              kinds: tuple[str, ...] = FIGURE_KINDS) -> tuple[np.ndarray, list[SyntheticFigure]]:
    """Draw a synthetic H&E tile of spindle-cell tumour with ``n_mitoses`` mitotic figures.

    Parameters
    ----------
    size_px
        Width and height in pixels.
    n_mitoses
        Number of mitotic figures (placed at least 30 µm apart and 12 µm from the border).
    seed
        Seed of the random generator; the same arguments give the same tile.
    mpp
        Resolution in µm/px that the drawn sizes refer to.
    stain_strength
        Factor on both stain concentrations (``0.55`` gives a pale, under-stained slide).
    cellularity
        Factor on the number of non-mitotic nuclei.
    kinds
        Figure kinds to draw from (:data:`FIGURE_KINDS`).

    Returns
    -------
    rgb : numpy.ndarray
        ``uint8`` array (size_px, size_px, 3).
    figures : list of SyntheticFigure
        The mitotic figures drawn, in drawing order.
    """
    if size_px < 64:
        raise ValueError("size_px must be at least 64")
    if n_mitoses < 0:
        raise ValueError("n_mitoses must be non-negative")
    rng = np.random.default_rng(seed)
    px = 1.0 / mpp  # pixels per µm
    shape = (size_px, size_px)
    theta = _orientation_field(shape, rng, px)
    eosin = _stroma(shape, theta, rng, px)
    hema = np.zeros(shape, np.float32)

    figures = _place_figures(n_mitoses, size_px, rng, px, kinds)
    keep_out = np.zeros(shape, np.uint8)
    for fig, radius in figures:
        cv2.circle(keep_out, (round(fig.x), round(fig.y)), round(radius), 1, -1)

    _draw_nuclei(hema, theta, keep_out, rng, px, cellularity)
    chromatin = _smooth_noise(shape, rng, sigma=1.6)
    hema *= np.clip(1.0 + 0.2 * chromatin, 0.6, 1.4)
    # faint hematoxylin in cytoplasm and stroma gives H&E its purple cast
    hema += (0.13 + 0.02 * _smooth_noise(shape, rng, sigma=10 * px)) * np.clip(eosin / 0.4, 0, 1.2)

    for fig, radius in figures:
        _draw_mitotic_cell(hema, eosin, fig, radius, rng, px)

    hema = cv2.GaussianBlur(hema, (0, 0), 0.8)
    eosin = cv2.GaussianBlur(eosin, (0, 0), 0.8)
    rgb = compose_rgb(hema * stain_strength, eosin * stain_strength, rng=rng)
    return rgb, [fig for fig, _ in figures]


def compose_rgb(hema: np.ndarray, eosin: np.ndarray, *, rng: np.random.Generator | None = None,
                noise_sd: float = 1.2) -> np.ndarray:
    """Beer–Lambert composition of hematoxylin and eosin concentration maps into RGB ``uint8``.

    ``I = 255 exp(-(c_H h + c_E e + od_glass))`` per channel (Ruifrok & Johnston 2001), plus Gaussian sensor
    noise of ``noise_sd`` grey levels when ``rng`` is given.
    """
    od = (hema[..., None] * HEMATOXYLIN_OD.astype(np.float32) + eosin[..., None] * EOSIN_OD.astype(np.float32)
          + GLASS_OD.astype(np.float32))
    rgb = I0 * np.exp(-od)
    if rng is not None and noise_sd > 0:
        rgb += rng.normal(0.0, noise_sd, size=rgb.shape).astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- components


def _smooth_noise(shape: tuple[int, int], rng: np.random.Generator, *, sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation (float32)."""
    noise = rng.standard_normal(shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    return noise / max(float(noise.std()), 1e-6)


def _orientation_field(shape: tuple[int, int], rng: np.random.Generator, px: float) -> np.ndarray:
    """Fascicle direction (radians): a base angle plus a smooth random field (correlation ~40 µm)."""
    small = (max(4, shape[0] // 32), max(4, shape[1] // 32))
    field = cv2.GaussianBlur(rng.standard_normal(small).astype(np.float32), (0, 0), 40 * px / 32)
    field = field / max(float(np.abs(field).max()), 1e-6)
    field = cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return (rng.uniform(0, np.pi) + 0.9 * field).astype(np.float32)


def _stroma(shape: tuple[int, int], theta: np.ndarray, rng: np.random.Generator, px: float) -> np.ndarray:
    """Eosin concentration: fibres along ``theta`` (oriented filtering of noise) with looser, paler areas."""
    noise = rng.standard_normal(shape).astype(np.float32)
    n_orient = 8
    length, width = max(3.0, 6.0 * px), max(0.6, 0.35 * px)
    ksize = int(2 * round(2.5 * length) + 1)
    responses = []
    for k in range(n_orient):
        angle = k * np.pi / n_orient
        kernel = _oriented_gaussian(ksize, length, width, angle)
        responses.append(cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT))
    stack = np.stack(responses)
    # blend the two filter orientations nearest to theta (no seams between orientation bins)
    position = np.mod(theta / (np.pi / n_orient), n_orient)
    lower = np.floor(position).astype(np.intp)
    frac = (position - lower).astype(np.float32)
    upper = np.mod(lower + 1, n_orient)
    fibres = ((1 - frac) * np.take_along_axis(stack, lower[None], axis=0)[0]
              + frac * np.take_along_axis(stack, upper[None], axis=0)[0])
    fibres /= max(float(fibres.std()), 1e-6)
    loose = _smooth_noise(shape, rng, sigma=18 * px)
    density = np.clip(0.85 + 0.35 * loose, 0.25, 1.2)
    eosin = density * (0.48 + 0.08 * fibres) + 0.04 * _smooth_noise(shape, rng, sigma=3 * px)
    # a few clefts (retraction artefact / loose oedema) where the stroma thins out
    clefts = np.clip((loose + 1.6) / 0.6, 0.0, 1.0)
    return np.clip(eosin * clefts, 0.0, None).astype(np.float32)


def _oriented_gaussian(ksize: int, length: float, width: float, angle: float) -> np.ndarray:
    half = ksize // 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    across = -xx * np.sin(angle) + yy * np.cos(angle)
    kernel = np.exp(-0.5 * ((along / length) ** 2 + (across / width) ** 2))
    kernel -= kernel.mean()  # zero mean: texture, not brightness
    return (kernel / np.abs(kernel).sum()).astype(np.float32)


def _place_figures(n: int, size_px: int, rng: np.random.Generator, px: float,
                   kinds: tuple[str, ...]) -> list[tuple[SyntheticFigure, float]]:
    margin = 12.0 * px
    min_dist = 30.0 * px
    placed: list[tuple[SyntheticFigure, float]] = []
    attempts = 0
    while len(placed) < n:
        attempts += 1
        if attempts > 20000:
            raise ValueError(f"cannot place {n} figures 30 µm apart in a {size_px}-px tile")
        x, y = rng.uniform(margin, size_px - margin, size=2)
        if any((x - f.x) ** 2 + (y - f.y) ** 2 < min_dist ** 2 for f, _ in placed):
            continue
        kind = str(kinds[int(rng.integers(len(kinds)))])
        size_um = {"metaphase": rng.uniform(7, 10), "anaphase": rng.uniform(6.0, 8.0),
                   "prometaphase": rng.uniform(6, 8)}[kind]
        cell_radius = (size_um / 2 + rng.uniform(3.0, 4.5)) * px
        placed.append((SyntheticFigure(float(x), float(y), kind, float(round(size_um, 2))), cell_radius))
    return placed


def _draw_nuclei(hema: np.ndarray, theta: np.ndarray, keep_out: np.ndarray, rng: np.random.Generator,
                 px: float, cellularity: float) -> None:
    """Spindle and round nuclei (H concentration written into ``hema``), avoiding ``keep_out``."""
    height, width = hema.shape
    area_um2 = height * width / px ** 2
    n_spindle = int(area_um2 / 230.0 * cellularity)
    n_round = int(area_um2 / 2500.0 * cellularity)
    canvas = np.zeros_like(hema)
    for _ in range(n_spindle):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if keep_out[int(y), int(x)]:
            continue
        angle = float(np.degrees(theta[int(y), int(x)] + rng.normal(0, 0.12)))
        half_len = rng.uniform(6.0, 12.0) * px
        half_wid = rng.uniform(1.25, 2.25) * px
        value = float(rng.uniform(0.32, 0.6))
        _ellipse(canvas, x, y, half_len, half_wid, angle, value, keep_out)
    for _ in range(n_round):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if keep_out[int(y), int(x)]:
            continue
        if rng.random() < 0.5:  # lymphocyte: small, round, dark, homogeneous
            radius = rng.uniform(3.0, 4.0) * px
            _ellipse(canvas, x, y, radius, radius * rng.uniform(0.85, 1.0), rng.uniform(0, 180),
                     float(rng.uniform(0.75, 0.95)), keep_out)
        else:  # ovoid tumour nucleus: larger, vesicular, with a nucleolus
            radius = rng.uniform(4.5, 6.5) * px
            _ellipse(canvas, x, y, radius, radius * rng.uniform(0.6, 0.85), rng.uniform(0, 180),
                     float(rng.uniform(0.4, 0.6)), keep_out)
            cv2.circle(canvas, (round(x + rng.normal(0, px)), round(y + rng.normal(0, px))),
                       max(1, round(0.7 * px)), float(rng.uniform(0.9, 1.1)), -1, lineType=cv2.LINE_AA)
    # nuclear membrane: chromatin condensed at the rim
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    rim = canvas - cv2.erode(canvas, kernel, iterations=max(1, round(0.4 * px)))
    canvas += 0.3 * rim
    np.maximum(hema, canvas, out=hema)


def _ellipse(canvas: np.ndarray, x: float, y: float, half_len: float, half_wid: float, angle_deg: float,
             value: float, keep_out: np.ndarray) -> None:
    shift = 4
    scale = 1 << shift
    box = np.zeros_like(canvas)
    cv2.ellipse(box, (round(x * scale), round(y * scale)), (round(half_len * scale), round(half_wid * scale)),
                angle_deg, 0, 360, value, -1, lineType=cv2.LINE_AA, shift=shift)
    box[keep_out > 0] = 0
    np.maximum(canvas, box, out=canvas)


def _draw_mitotic_cell(hema: np.ndarray, eosin: np.ndarray, fig: SyntheticFigure, cell_radius: float,
                       rng: np.random.Generator, px: float) -> None:
    """A rounded cell with pale cytoplasm and dense, irregular chromatin in the pattern of ``fig.kind``."""
    height, width = hema.shape
    pad = int(cell_radius + 4 * px)
    x0, y0 = max(0, int(fig.x) - pad), max(0, int(fig.y) - pad)
    x1, y1 = min(width, int(fig.x) + pad + 1), min(height, int(fig.y) + pad + 1)
    cx, cy = fig.x - x0, fig.y - y0
    cell = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.circle(cell, (round(cx), round(cy)), round(cell_radius), 1.0, -1, lineType=cv2.LINE_AA)
    cell = cv2.GaussianBlur(cell, (0, 0), 1.5 * px)
    region_e = eosin[y0:y1, x0:x1]
    region_e[:] = region_e * (1 - 0.55 * cell) + 0.22 * cell * rng.uniform(0.9, 1.1)
    hema[y0:y1, x0:x1] *= 1 - cell  # clear the cell of other chromatin

    chrom = np.zeros_like(cell)
    angle = rng.uniform(0, np.pi)
    if fig.kind == "metaphase":
        _plate(chrom, cx, cy, fig.size_um * px, rng.uniform(2.0, 3.0) * px, angle, rng, px)
    elif fig.kind == "anaphase":
        plate_width = rng.uniform(1.6, 2.4) * px
        across = rng.uniform(5.5, 7.0) * px  # plate centres 3.5-5 µm apart: one figure, one count
        gap = (across - plate_width) / 2
        length = fig.size_um * px  # size_um = plate length, the longest extent
        for sign in (-1, 1):
            ox, oy = -np.sin(angle) * gap * sign, np.cos(angle) * gap * sign
            _plate(chrom, cx + ox, cy + oy, length, plate_width, angle + rng.normal(0, 0.1), rng, px,
                   curve=0.25 * sign)
    else:
        _clump(chrom, cx, cy, fig.size_um * px / 2, rng, px)
    chrom = cv2.GaussianBlur(chrom, (0, 0), 0.6)
    density = float(rng.uniform(1.9, 2.5))
    texture = 1.0 + 0.15 * rng.standard_normal(chrom.shape).astype(np.float32)
    hema[y0:y1, x0:x1] = np.maximum(hema[y0:y1, x0:x1], np.clip(chrom, 0, 1) * density * texture)


def _plate(canvas: np.ndarray, cx: float, cy: float, length: float, width: float, angle: float,
           rng: np.random.Generator, px: float, *, curve: float = 0.0) -> None:
    """Metaphase-like band: a dense core along ``angle`` with chromosome arms projecting from it."""
    ux, uy = np.cos(angle), np.sin(angle)
    nx, ny = -uy, ux
    n_core = 14
    ts = np.linspace(-length / 2, length / 2, n_core)
    core = []
    for t in ts:
        bend = curve * (1 - (2 * t / length) ** 2) * width * 2
        core.append((cx + ux * t + nx * bend, cy + uy * t + ny * bend))
    pts = np.array(core, np.float32)
    thickness = max(2, round(width * 0.75))
    cv2.polylines(canvas, [np.rint(pts).astype(np.int32)], False, 1.0, thickness, lineType=cv2.LINE_AA)
    n_arms = int(rng.integers(22, 34))
    for _ in range(n_arms):
        t = rng.uniform(-length / 2, length / 2)
        k = int(np.clip(np.searchsorted(ts, t), 0, n_core - 1))
        bx, by = pts[k]
        side = 1 if rng.random() < 0.5 else -1
        arm_angle = np.arctan2(ny * side, nx * side) + rng.normal(0, 0.55)
        arm_len = rng.uniform(0.8, 2.2) * px
        start = (bx + nx * side * rng.uniform(0, width / 3), by + ny * side * rng.uniform(0, width / 3))
        end = (start[0] + np.cos(arm_angle) * arm_len, start[1] + np.sin(arm_angle) * arm_len)
        cv2.line(canvas, _pt(start), _pt(end), float(rng.uniform(0.75, 1.0)), max(1, round(0.45 * px)),
                 lineType=cv2.LINE_AA, shift=4)


def _clump(canvas: np.ndarray, cx: float, cy: float, radius: float, rng: np.random.Generator, px: float) -> None:
    """Prometaphase-like clump: irregular dense ball with short radiating chromosome arms."""
    for _ in range(int(rng.integers(8, 12))):
        r = rng.uniform(0, radius * 0.55)
        a = rng.uniform(0, 2 * np.pi)
        blob = rng.uniform(0.9, 1.6) * px
        cv2.circle(canvas, _pt((cx + r * np.cos(a), cy + r * np.sin(a))), round(blob * 16), 1.0, -1,
                   lineType=cv2.LINE_AA, shift=4)
    for _ in range(int(rng.integers(18, 28))):
        a = rng.uniform(0, 2 * np.pi)
        r0 = rng.uniform(0.2, 0.6) * radius
        r1 = r0 + rng.uniform(0.9, 2.0) * px
        a1 = a + rng.normal(0, 0.3)
        cv2.line(canvas, _pt((cx + r0 * np.cos(a), cy + r0 * np.sin(a))),
                 _pt((cx + r1 * np.cos(a1), cy + r1 * np.sin(a1))), float(rng.uniform(0.75, 1.0)),
                 max(1, round(0.45 * px)), lineType=cv2.LINE_AA, shift=4)


def _pt(xy: tuple[float, float]) -> tuple[int, int]:
    """Fixed-point (4 fractional bits) integer coordinates for OpenCV drawing with ``shift=4``."""
    return round(float(xy[0]) * 16), round(float(xy[1]) * 16)
