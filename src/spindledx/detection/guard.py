"""Plausibility and out-of-distribution guard for mitotic counts.

Two checks travel with every count (``flags`` in the score, slide, batch and case outputs):

``implausible_density``
    The count is more than even a very proliferative tumour would produce in the counted area. The bound is
    :data:`DENSITY_BOUND_PER_MM2` = 100 mitoses per mm² (23.8 per 0.2376-mm² HPF, 238 per 10 HPF of field number
    22 at 40×; HPF area per Cree et al., Mod Pathol 2021, doi:10.1038/s41379-021-00825-7). Basis: small-cell lung
    carcinoma, among the most mitotically active human tumours, averages 60–80 mitoses per 2 mm², i.e. 30–40 per mm²
    (WHO Classification of Tumours of the Lung 2015, Travis et al.; Nicholson et al., Am J Surg Pathol
    2002;26:1184–1197, PMID 12218575), and the counts behind FNCLCC score 3 start at 20 per 10 HPF, about
    8 per mm² (Coindre 2006). The 2.5–3× margin over the SCLC average for hotspots and case-to-case spread is an
    ESTIMATE. Because a small tile holds few figures, the flag is a Poisson test, not a ratio: it is raised when a
    tumour with a true density of 100 per mm² would show at least this many figures in this area with probability
    below :data:`DENSITY_FALSE_ALARM` (0.1 %). A single 1024² tile at 0.25 µm/px (0.066 mm², expected 6.6 at the
    bound) is flagged from 17 detections, 10 HPF (2.38 mm²) from 288, the CMU-1 region (0.59 mm² of tissue) from 85.

``out_of_distribution``
    The tile's stain and texture statistics (:func:`stain_features`) lie outside those of the images the detector
    was trained on (midesec-train fields, ami-br and atnorm-md patches; several scanners and tumour types). The
    score is the squared Mahalanobis distance to the training statistics (``ood_score``); the threshold is the
    99th percentile of the same distance over the 5,967 training images themselves (37.5: about 1 training-like tile
    in 100 is flagged), computed by ``scripts/build_guard_reference.py`` from the training images alone (the first
    choice, the 99.9th percentile, 140, let an IHC image and a grayscale field through; see that script). The
    reference statistics are package data (``detection/data/guard_reference.json``).

Both flags are warnings for the reader; a flagged count is still reported, never silently dropped or altered.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cv2
import numpy as np

from spindledx.counting import (  # noqa: F401 (re-exported: the density test and its wording live in counting)
    DENSITY_BOUND_PER_MM2,
    DENSITY_BOUND_SOURCE,
    DENSITY_FALSE_ALARM,
    density_is_implausible,
    density_message,
)
from spindledx.imaging.stain import REFERENCE_STAIN_MATRIX, rgb_to_od

#: Flag names (stable: other commands and tools read them).
IMPLAUSIBLE_DENSITY = "implausible_density"
OUT_OF_DISTRIBUTION = "out_of_distribution"

#: Resolutions at which the statistics are computed (µm/px): colour at 2 µm/px, texture at 0.5 µm/px.
COLOUR_MPP = 2.0
TEXTURE_MPP = 0.5
#: A pixel is tissue when its summed optical density exceeds this (about RGB 220 grey; Macenko 2009 beta 0.15
#: per channel).
TISSUE_OD = 0.45
#: Fewer tissue pixels than this fraction: no out-of-distribution judgement (the QA ``low_tissue`` flag covers it).
MIN_TISSUE_FRACTION = 0.05

FEATURE_NAMES = (
    "log_mean_od",  # overall staining strength
    "dir_r",  # direction of the mean tissue OD (unit vector): the colour of the stain mix
    "dir_g",
    "dir_b",
    "hematoxylin_share",  # H / (H + E) from Ruifrok-Johnston deconvolution
    "off_plane_fraction",  # share of OD outside the H-E plane (a third dye such as DAB, or no dye mix at all)
    "colour_spread",  # 1 - |mean of per-pixel unit OD vectors|: how varied the colours are (0 for grayscale)
    "log_sharpness",  # log(var(Laplacian of OD) / var(OD)) at 0.5 µm/px: blur and texture scale
)

_HE_NORMAL = np.cross(REFERENCE_STAIN_MATRIX[0], REFERENCE_STAIN_MATRIX[1])
_HE_NORMAL = _HE_NORMAL / np.linalg.norm(_HE_NORMAL)
#: Optical density of every 8-bit intensity (:func:`~spindledx.imaging.stain.rgb_to_od` as a table).
_OD_LUT = rgb_to_od(np.arange(256, dtype=np.uint8)).astype(np.float32).reshape(1, 256)


def _resize_to(rgb: np.ndarray, mpp: float, target_mpp: float) -> np.ndarray:
    factor = mpp / target_mpp
    if abs(factor - 1.0) < 1e-3:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(int(round(w * factor)), 1), max(int(round(h * factor)), 1))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def stain_features(rgb: np.ndarray, mpp: float) -> np.ndarray | None:
    """Stain and texture statistics of an RGB tile (see :data:`FEATURE_NAMES`), or None with too little tissue.

    Parameters
    ----------
    rgb
        uint8 RGB image ``(H, W, 3)``.
    mpp
        Its resolution in µm/px; colour statistics are taken at 2 µm/px and texture at 0.5 µm/px, so tiles of
        different scanners are compared at the same scale.

    Returns
    -------
    numpy.ndarray or None
        float64 ``(8,)``.

    Notes
    -----
    Optical density by Beer–Lambert; H and E by colour deconvolution with the Ruifrok & Johnston (2001) vectors;
    the off-plane share is the component of each tissue pixel's OD along the normal of the H–E plane.
    """
    small = _resize_to(rgb, mpp, COLOUR_MPP)
    od = rgb_to_od(small).reshape(-1, 3).astype(np.float64)
    total = od.sum(axis=1)
    tissue = total > TISSUE_OD
    if tissue.mean() < MIN_TISSUE_FRACTION or tissue.sum() < 16:
        return None
    od_t = od[tissue]
    mag = np.linalg.norm(od_t, axis=1)
    mean_od = od_t.mean(axis=0)
    direction = mean_od / max(np.linalg.norm(mean_od), 1e-9)
    conc = od_t @ np.linalg.pinv(REFERENCE_STAIN_MATRIX)
    h, e = np.clip(conc, 0, None).mean(axis=0)
    off_plane = float(np.abs(od_t @ _HE_NORMAL).mean() / max(mag.mean(), 1e-9))
    unit = od_t / np.maximum(mag, 1e-9)[:, None]
    spread = 1.0 - float(np.linalg.norm(unit.mean(axis=0)))
    tex = _resize_to(rgb, mpp, TEXTURE_MPP)
    grey = cv2.transform(cv2.LUT(tex, _OD_LUT), np.ones((1, 3), np.float32))  # summed OD, via a lookup table
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    sharp = float(np.log((lap.var() + 1e-6) / (grey.var() + 1e-6)))
    return np.array([np.log(mean_od.sum()), *direction, h / max(h + e, 1e-9), off_plane, spread, sharp])


@dataclass(frozen=True)
class GuardReference:
    """Training statistics of :func:`stain_features` and the out-of-distribution threshold."""

    mean: np.ndarray
    inv_cov: np.ndarray
    threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    def distance2(self, features: np.ndarray) -> float:
        """Squared Mahalanobis distance of ``features`` to the training statistics."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        return float(d @ self.inv_cov @ d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuardReference:
        if tuple(d["features"]) != FEATURE_NAMES:
            raise ValueError("guard reference was built for other features")
        return cls(np.asarray(d["mean"], float), np.asarray(d["inv_cov"], float), float(d["threshold"]),
                   {k: v for k, v in d.items() if k not in {"mean", "inv_cov", "threshold"}})


@functools.lru_cache(maxsize=1)
def load_reference() -> GuardReference:
    """The shipped reference statistics (package data ``spindledx/detection/data/guard_reference.json``)."""
    text = resources.files("spindledx.detection").joinpath("data", "guard_reference.json").read_text()
    return GuardReference.from_dict(json.loads(text))


def ood_score(rgb: np.ndarray, mpp: float, reference: GuardReference | None = None) -> float | None:
    """Squared Mahalanobis distance of the tile's :func:`stain_features` to the training statistics (None: too
    little tissue to judge)."""
    feats = stain_features(rgb, mpp)
    if feats is None:
        return None
    ref = load_reference() if reference is None else reference
    return ref.distance2(feats)


def min_implausible_count(area_mm2: float, *, bound_per_mm2: float = DENSITY_BOUND_PER_MM2,
                          false_alarm: float = DENSITY_FALSE_ALARM) -> int:
    """Smallest count that :func:`density_is_implausible` flags in ``area_mm2``."""
    from scipy.stats import poisson

    return int(poisson.isf(false_alarm, bound_per_mm2 * area_mm2)) + 1


@dataclass(frozen=True)
class GuardResult:
    """Flags for one count, with the measures behind them and a sentence for the reader."""

    flags: tuple[str, ...]
    ood_score: float | None
    ood_threshold: float
    density_bound_per_mm2: float
    messages: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "flags": list(self.flags),
            "ood_score": None if self.ood_score is None else round(self.ood_score, 2),
            "ood_threshold": round(self.ood_threshold, 2),
            "density_bound_per_mm2": self.density_bound_per_mm2,
            "flag_messages": list(self.messages),
        }


def ood_message(score: float, threshold: float) -> str:
    return (f"stain/texture statistics lie outside those of the detector's training images (distance {score:.0f}, "
            f"threshold {threshold:.0f}): not an H&E like the training fields (other stain, IHC, grayscale, "
            "unusual scanner); counts here are unreliable")


def judge(count: int, area_mm2: float, ood: float | None, *, reference: GuardReference | None = None) -> GuardResult:
    """Flags for a count of ``count`` figures over ``area_mm2`` with out-of-distribution score ``ood``."""
    ref = load_reference() if reference is None else reference
    flags, messages = [], []
    if density_is_implausible(count, area_mm2):
        flags.append(IMPLAUSIBLE_DENSITY)
        messages.append(density_message(count, area_mm2))
    if ood is not None and ood > ref.threshold:
        flags.append(OUT_OF_DISTRIBUTION)
        messages.append(ood_message(ood, ref.threshold))
    return GuardResult(tuple(flags), ood, ref.threshold, DENSITY_BOUND_PER_MM2, tuple(messages))


def guard_tile(rgb: np.ndarray, mpp: float, count: int, *, reference: GuardReference | None = None) -> GuardResult:
    """:func:`judge` for one tile: its area from its size and ``mpp``, its :func:`ood_score`."""
    area_mm2 = rgb.shape[0] * rgb.shape[1] * mpp * mpp / 1e6
    return judge(count, area_mm2, ood_score(rgb, mpp, reference), reference=reference)
