"""Image-quality flags for H&E tiles, each a measured value compared with a documented threshold.

Every check is one row of :data:`QUALITY_CHECKS` (flag, measure, comparison, threshold, unit, basis); the
QA table of docs/guide/batch.md is the same table. Thresholds come from optics, from the Beer–Lambert stain model
and from the literature cited below; none was tuned on the project's evaluation data.

* Tissue: a pixel is tissue when its optical density (``OD = -ln(I / 255)``) exceeds Macenko's ``beta = 0.15``
  in at least one channel (Macenko et al., ISBI 2009), i.e. some channel is darker than 219/255 — the same cut as
  the "all RGB values above 220 is background" rule of Coudray et al., Nat Med 2018;24:1559, who also dropped
  tiles with more than 50 % background.
* Focus: variance of the Laplacian (Pech-Pacheco et al., ICPR 2000) of the hematoxylin concentration at the
  detector's working resolution (0.25 µm/px), taken at two Gaussian scales ``s1 < s2``. For a Gaussian-blurred
  edge the Laplacian-of-Gaussian energy falls as ``(sigma_b^2 + s^2)^(-3/2)``, so the ratio of the two energies
  gives the blur ``sigma_b`` in µm independent of contrast and of how many edges the tile has; using scales of
  2 and 4 px keeps pixel noise from looking like sharpness.
* Stain: Macenko stain vectors from :func:`spindledx.imaging.stain.estimate_stain_matrix` (its ``swapped`` flag
  and cosine similarity to the Ruifrok & Johnston 2001 vectors).
* Exposure and ink: from the 8-bit values and the OD colour (see :data:`QUALITY_CHECKS` for each basis).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

WORKING_MPP = 0.25
"""Resolution (µm/px) at which focus is measured: the mitosis detector's working resolution."""

TISSUE_OD = 0.15
"""Macenko's beta: OD (natural log) above which a channel carries stain."""

FOCUS_SCALES_PX = (2.0, 4.0)
"""Gaussian scales (px at :data:`WORKING_MPP`) of the two Laplacian-of-Gaussian energies used for the blur."""

MIN_TISSUE_PIXELS = 2000
"""Below this many tissue pixels, focus and stain are not measured (reported as None, never flagged)."""

CLIP_LEVEL = 254
"""8-bit value at or above which a channel is treated as clipped (saturated sensor or encoder)."""

BLACK_LEVEL = 25
"""8-bit value at or below which a channel is treated as black (OD >= 2.3, about 10 % transmission)."""

INK_MIN_OD = 0.30
"""Strongest-channel OD (2 x beta) from which a pixel's colour is judged for non-H&E ink."""


@dataclass(frozen=True)
class QualityCheck:
    """One documented quality rule: ``flag`` is raised when ``measure`` ``comparison`` ``threshold``."""

    flag: str
    measure: str
    comparison: str
    threshold: float
    unit: str
    basis: str


QUALITY_CHECKS: tuple[QualityCheck, ...] = (
    QualityCheck(
        "low_tissue", "tissue_fraction", "<", 0.5, "fraction of pixels",
        "tissue = OD > 0.15 in some channel (Macenko 2009 beta; equals the RGB > 220 background rule); tiles with "
        "more than 50 % background are discarded by Coudray et al., Nat Med 2018. A per-mm² density over a "
        "half-empty tile underestimates the tumour's density."),
    QualityCheck(
        "out_of_focus", "blur_sigma_um", ">", 1.0, "µm (Gaussian sigma)",
        "blur from the ratio of Laplacian-of-Gaussian energies (variance of Laplacian, Pech-Pacheco 2000) of the "
        "hematoxylin channel at 0.25 µm/px. A 40x/0.75 objective resolves 0.45 µm (Rayleigh 0.61 lambda/NA); "
        "sigma 1 µm (FWHM 2.4 µm) is more than 5 times that and wider than a metaphase plate (about 2 µm), so "
        "chromosome arms merge and a figure can no longer be told from a pyknotic nucleus."),
    QualityCheck(
        "stain_swapped", "stain_swapped", "=", 1.0, "boolean",
        "spindledx.imaging.stain's swapped flag: the clearly more red-absorbing Macenko vector (hematoxylin absorbs "
        "red more than eosin) and its partner resemble the Ruifrok eosin/hematoxylin references crosswise better "
        "than directly. A BGR-saved tile of Ruifrok-like stains is not caught (known gap)."),
    QualityCheck(
        "stain_atypical", "stain_min_similarity", "<", 0.8, "cosine to Ruifrok H / E",
        "a Macenko stain vector more than 37° from its Ruifrok & Johnston 2001 reference: that is about the angle "
        "between the H and E references themselves (39°), so the vector is no closer to its own stain than to the "
        "other one (faded, non-H&E or special stain)."),
    QualityCheck(
        "overexposed", "partial_clip_fraction", ">", 0.25, "fraction of pixels",
        "pixels with one or two (not all three) channels at >= 254: blank glass may clip to white, but a clipped "
        "channel on a coloured pixel has lost its optical density, so stain separation there is undefined. "
        "Correctly exposed scans clip pale lumina in one channel too (up to 9 % of pixels in the public MiDeSeC "
        "fields), so a quarter of the tile is required (judgement; a 1.4x gain gives 35–75 %)."),
    QualityCheck(
        "underexposed", "mean_luminance", "<", 0.25, "Rec. 709 luma / 255",
        "a 3–5 µm H&E section transmits most light: even a tissue-filled field has mean OD of about 0.3–0.8 "
        "(luma 0.45–0.75); a mean luma below 0.25 (mean OD above 1.4) crushes nuclei into the bottom of the "
        "8-bit range. Judgement from the Beer–Lambert model, not a literature value."),
    QualityCheck(
        "pen_marks", "ink_fraction", ">", 0.01, "fraction of pixels",
        "ink = strongly coloured pixels (OD > 0.3) whose green OD is lower than the red or blue OD by more than 15 % "
        "of their total OD (both H and E absorb green most: Ruifrok H 0.65/0.70/0.29, E 0.07/0.99/0.11, so H&E "
        "mixtures never do this; green and blue ink do), plus black pixels (all channels <= 25, OD >= 2.3, darker "
        "than any stained section). 1 % of the tile is a judgement."),
)
CHECKS_BY_FLAG = {c.flag: c for c in QUALITY_CHECKS}


@dataclass(frozen=True)
class QualityReport:
    """Quality measures of one tile and the flags raised (see :data:`QUALITY_CHECKS`).

    Measures that could not be taken (too little tissue for focus or stain) are None and raise no flag.
    """

    tissue_fraction: float
    blur_sigma_um: float | None
    laplacian_var: float | None
    stain_swapped: bool | None
    stain_min_similarity: float | None
    partial_clip_fraction: float
    mean_luminance: float
    ink_fraction: float
    flags: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict; ``flags`` as a list."""
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out


def _od(rgb: np.ndarray) -> np.ndarray:
    from spindledx.imaging.stain import rgb_to_od

    return rgb_to_od(rgb)


def _od_above(rgb: np.ndarray, od: float) -> np.ndarray:
    """Pixels whose OD exceeds ``od`` in some channel, i.e. whose darkest channel is below ``255 exp(-od)``."""
    rgb = np.asarray(rgb)
    darkest = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])  # faster than min(axis=-1)
    return darkest < 255.0 * math.exp(-od)


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of tissue pixels: OD above :data:`TISSUE_OD` in at least one channel (Macenko's beta)."""
    return _od_above(rgb, TISSUE_OD)


def _log_energy(channel: np.ndarray, sigma_px: float) -> float:
    smooth = cv2.GaussianBlur(channel, (0, 0), sigma_px)
    return float(cv2.Laplacian(smooth, cv2.CV_32F, ksize=1).var())


def estimate_blur_sigma_px(channel: np.ndarray, *, scales_px: tuple[float, float] = FOCUS_SCALES_PX) -> float:
    """Gaussian blur (px) of an image from the ratio of its Laplacian-of-Gaussian energies at two scales.

    For an edge blurred by ``sigma_b`` the energy of the Laplacian of Gaussian at scale ``s`` is proportional to
    ``(sigma_b^2 + s^2)^(-3/2)``; with ``q = (E(s2) / E(s1))^(2/3)``, ``sigma_b^2 = (s1^2 - q s2^2) / (q - 1)``.
    Returns 0.0 when the image is sharper than the model resolves and ``inf`` when it has no edges at all.
    """
    s1, s2 = scales_px
    e1 = _log_energy(channel, s1)
    e2 = _log_energy(channel, s2)
    if e1 <= 0.0:
        return math.inf
    q = (e2 / e1) ** (2.0 / 3.0)
    if q >= 1.0:
        return math.inf
    return math.sqrt(max((s1 * s1 - q * s2 * s2) / (q - 1.0), 0.0))


def _focus(rgb: np.ndarray, mpp: float, stain_matrix: np.ndarray) -> tuple[float, float]:
    from spindledx.imaging.resample import resample
    from spindledx.imaging.stain import hematoxylin_channel

    work = resample(rgb, mpp, WORKING_MPP)
    h = np.ascontiguousarray(hematoxylin_channel(work, stain_matrix), dtype=np.float32)
    lap_var = float(cv2.Laplacian(h, cv2.CV_32F, ksize=1).var())
    sigma_px = estimate_blur_sigma_px(h)
    return sigma_px * WORKING_MPP, lap_var


def _ink_fraction(rgb: np.ndarray, od: np.ndarray) -> float:
    r, g, b = od[..., 0], od[..., 1], od[..., 2]
    total = r + g + b
    coloured = _od_above(rgb, INK_MIN_OD)
    non_he = (np.maximum(r, b) - g) > 0.15 * total
    black = (rgb[..., 0] <= BLACK_LEVEL) & (rgb[..., 1] <= BLACK_LEVEL) & (rgb[..., 2] <= BLACK_LEVEL)
    return float(((coloured & non_he) | black).mean())


def assess_quality(rgb: np.ndarray, mpp: float) -> QualityReport:
    """Measure focus, tissue, stain, exposure and ink on an RGB tile and raise the flags of :data:`QUALITY_CHECKS`.

    Parameters
    ----------
    rgb
        uint8 array (H, W, 3).
    mpp
        Resolution in µm/px (focus is measured after resampling to :data:`WORKING_MPP`).

    Returns
    -------
    QualityReport
    """
    from spindledx.imaging.stain import estimate_stain_matrix

    rgb = np.asarray(rgb)
    od = _od(rgb)
    tissue = tissue_mask(rgb)
    tissue_fraction = float(tissue.mean())
    n_tissue = int(tissue.sum())

    blur_um = lap_var = min_sim = None
    swapped: bool | None = None
    estimate = estimate_stain_matrix(rgb)
    if n_tissue >= MIN_TISSUE_PIXELS and not estimate.degenerate:
        min_sim = float(min(estimate.similarity_to_reference))
        swapped = bool(estimate.swapped)
    if n_tissue >= MIN_TISSUE_PIXELS:
        blur, lap_var = _focus(rgb, mpp, estimate.matrix)
        blur_um = blur if math.isfinite(blur) else None

    clipped = ((rgb[..., 0] >= CLIP_LEVEL).astype(np.uint8) + (rgb[..., 1] >= CLIP_LEVEL)
               + (rgb[..., 2] >= CLIP_LEVEL))
    partial_clip = float(((clipped > 0) & (clipped < 3)).mean())
    luma = (0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]) / 255.0
    mean_luma = float(luma.mean())
    ink = _ink_fraction(rgb, od)

    measures = {"tissue_fraction": tissue_fraction, "blur_sigma_um": blur_um, "stain_swapped": swapped,
                "stain_min_similarity": min_sim, "partial_clip_fraction": partial_clip,
                "mean_luminance": mean_luma, "ink_fraction": ink}
    flags = tuple(c.flag for c in QUALITY_CHECKS if _raised(c, measures[c.measure]))
    return QualityReport(
        tissue_fraction=round(tissue_fraction, 4),
        blur_sigma_um=None if blur_um is None else round(blur_um, 3),
        laplacian_var=None if lap_var is None else round(lap_var, 6),
        stain_swapped=swapped,
        stain_min_similarity=None if min_sim is None else round(min_sim, 4),
        partial_clip_fraction=round(partial_clip, 4),
        mean_luminance=round(mean_luma, 4),
        ink_fraction=round(ink, 5),
        flags=flags,
    )


def _raised(check: QualityCheck, value: float | bool | None) -> bool:
    if value is None:
        return False
    if check.comparison == "<":
        return float(value) < check.threshold
    if check.comparison == ">":
        return float(value) > check.threshold
    return bool(value) == bool(check.threshold)
