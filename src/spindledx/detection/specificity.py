"""Specificity check: do the detections look like mitotic figures or like a field of interphase nuclei?

A mitotic figure is condensed chromatin: in the hematoxylin channel it is among the darkest objects of its
neighbourhood. A detector that fires on ordinary nuclei (other tissue, another scanner) returns "figures" that are
no darker than the nuclei around them. The check measures this for every judged detection and compares the share
of detections that are not darker than their neighbours with the share among true figures.

For one detection (:func:`darkness_rank`):

1. a window of :data:`WINDOW_UM` (100 µm) side is read around it at :data:`CHECK_MPP` (0.25 µm/px, the resolution
   the candidates and the shipped detector use);
2. its hematoxylin map is smoothed and its candidate nuclei found exactly as the detector finds candidates
   (:func:`spindledx.detection.candidates.find_candidates`: hematoxylin peaks above the window's 80th percentile,
   4 µm apart);
3. the darkness of a point is the highest smoothed hematoxylin concentration within :data:`CORE_RADIUS_UM` (2 µm)
   of it (Ruifrok & Johnston 2001 colour deconvolution; condensed chromatin gives the highest values);
4. its darkness rank is the share of the window's other candidates (farther than 4 µm from it) that are less
   dark: 1 for the darkest nucleus of the neighbourhood, about 0.5 for a median one. Fewer than
   :data:`MIN_NEIGHBOURS` other candidates: no rank.

For a set of detections (:func:`judge_ranks`): ``k`` of the ``n`` ranked detections are "not darker than the
median neighbouring nucleus" (rank below :data:`NOT_DARKER_RANK` = 0.5). Among the true mitotic figures of the 35
MiDeSeC breast-carcinoma fields that share is ``p_ref`` (package data ``detection/data/specificity_reference.json``,
built by ``scripts/build_specificity_reference.py``: the Clopper-Pearson upper 95 % bound of the measured share,
so that a small reference set errs towards not flagging). The flag ``interphase_like`` is raised when

* at least :data:`MIN_RANKED` (10) detections could be ranked (a rule that needs a sample does not judge a handful
  of figures), and
* ``P(K >= k)`` for ``K ~ Binomial(n, p_ref)`` is below :data:`FALSE_ALARM` (0.1 %): that many not-darker
  detections would almost never occur if they were mitotic figures like the reference ones.

Interphase nuclei picked at random from a field have ranks spread evenly over 0-1 (half of them below 0.5), so a
field of interphase nuclei is flagged once enough of them are counted, while a set of true figures almost never is.

At most :data:`MAX_JUDGED` (64) detections are ranked, picked evenly from the detections sorted by position, so
that the check costs at most 64 windows on a slide and gives the same answer whatever route produced the same
points (``score``, ``slide``, ``case``, ``batch``, ``count-points``).

Why not the rate per candidate nucleus: mitotic figures are a small share of tumour nuclei even in the fastest
growing human tumour (Burkitt lymphoma: mitotic index 1.27 %, mitosis lasting 0.7 h; Iversen et al., Eur J Cancer
1974;10:155-163, PMID 4479620); but the detector's candidates are hematoxylin peaks, not nuclei (a large nucleus
gives several peaks, the threshold is relative to each image), so their count is not a count of nuclei and a bound
on detections per candidate would not rest on the published figure. The darkness rank needs no count of nuclei.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cv2
import numpy as np

#: Flag name (stable: other commands and tools read it).
INTERPHASE_LIKE = "interphase_like"
#: Resolution at which the check reads pixels (µm/px).
CHECK_MPP = 0.25
#: Side of the neighbourhood window around each detection (µm).
WINDOW_UM = 100.0
#: Darkness of a point: highest smoothed hematoxylin within this radius (µm).
CORE_RADIUS_UM = 2.0
#: Candidates nearer than this to the detection are the detection itself (µm; the candidates' spacing).
SELF_RADIUS_UM = 4.0
#: Fewer other candidates in the window than this: the detection is not ranked.
MIN_NEIGHBOURS = 5
#: A detection whose rank is below this is "not darker than the median neighbouring nucleus".
NOT_DARKER_RANK = 0.5
#: Fewer ranked detections than this: no judgement.
MIN_RANKED = 10
#: One-sided false-alarm probability of the binomial test at the reference share.
FALSE_ALARM = 1e-3
#: At most this many detections are ranked (picked evenly by position).
MAX_JUDGED = 64

#: Reads an RGB window ``(x0, y0, size) -> (size, size, 3) uint8`` of the image at :data:`CHECK_MPP`; pixels
#: beyond the image are white.
WindowReader = Callable[[int, int, int], np.ndarray]


@dataclass(frozen=True)
class SpecificityReference:
    """The share of true mitotic figures not darker than their median neighbour (``p_ref``) and how it was made."""

    p_ref: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpecificityReference:
        return cls(float(d["p_ref"]), {k: v for k, v in d.items() if k != "p_ref"})


@functools.lru_cache(maxsize=1)
def load_reference() -> SpecificityReference:
    """The shipped reference (package data ``spindledx/detection/data/specificity_reference.json``)."""
    text = resources.files("spindledx.detection").joinpath("data", "specificity_reference.json").read_text()
    return SpecificityReference.from_dict(json.loads(text))


def window_px(mpp: float = CHECK_MPP) -> int:
    """Side of the neighbourhood window in pixels at ``mpp``."""
    return max(int(round(WINDOW_UM / mpp)), 16)


def darkness_rank(window: np.ndarray, centre_xy: tuple[float, float], *, mpp: float = CHECK_MPP
                  ) -> tuple[float | None, int]:
    """Darkness rank of the point ``centre_xy`` (window pixels) among the candidate nuclei of ``window``.

    Parameters
    ----------
    window
        uint8 RGB ``(H, W, 3)`` around the point, at ``mpp`` µm/px.
    centre_xy
        The point ``(x, y)`` in window pixels.
    mpp
        Resolution of ``window``.

    Returns
    -------
    tuple
        ``(rank, n_neighbours)``: the share of the other candidates (beyond :data:`SELF_RADIUS_UM`) that are less
        dark than the point (None with fewer than :data:`MIN_NEIGHBOURS` of them), and how many there are.
    """
    from spindledx.detection.candidates import candidate_channel, find_candidates

    cand = find_candidates(window, mpp)
    h = candidate_channel(window)
    smooth = cv2.GaussianBlur(h, (0, 0), max(0.75 / mpp, 0.5))
    r = max(int(round(CORE_RADIUS_UM / mpp)), 1)
    core = cv2.dilate(smooth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    hgt, wid = core.shape
    cx = int(np.clip(round(centre_xy[0]), 0, wid - 1))
    cy = int(np.clip(round(centre_xy[1]), 0, hgt - 1))
    value = float(core[cy, cx])
    if len(cand) == 0:
        return None, 0
    dist = np.hypot(cand[:, 0] - centre_xy[0], cand[:, 1] - centre_xy[1])
    others = cand[dist > SELF_RADIUS_UM / mpp].astype(int)
    if len(others) < MIN_NEIGHBOURS:
        return None, int(len(others))
    values = core[others[:, 1], others[:, 0]]
    return float(np.mean(values < value)), int(len(others))


def pick_judged(points_xy: np.ndarray, max_judged: int = MAX_JUDGED) -> np.ndarray:
    """Indices of at most ``max_judged`` points, evenly spread over the points sorted by (y, x) position to 0.1 px
    (the same points give the same picks whatever their order)."""
    pts = np.asarray(points_xy, float).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, int)
    key = np.round(pts, 1)
    order = np.lexsort((key[:, 0], key[:, 1]))
    if len(order) <= max_judged:
        return order
    return order[np.unique(np.linspace(0, len(order) - 1, max_judged).round().astype(int))]


def rank_points(read_window: WindowReader, points_xy: np.ndarray, *, mpp: float = CHECK_MPP,
                max_judged: int = MAX_JUDGED) -> np.ndarray:
    """Darkness ranks of up to ``max_judged`` of ``points_xy`` (pixels of the image ``read_window`` reads).

    Returns
    -------
    numpy.ndarray
        float ranks of the points that could be ranked (points without enough neighbours are left out).
    """
    pts = np.asarray(points_xy, float).reshape(-1, 2)
    size = window_px(mpp)
    half = size // 2
    ranks = []
    for i in pick_judged(pts, max_judged):
        x, y = pts[i]
        x0, y0 = int(np.floor(x)) - half, int(np.floor(y)) - half
        window = read_window(x0, y0, size)
        rank, _ = darkness_rank(window, (x - x0, y - y0), mpp=mpp)
        if rank is not None:
            ranks.append(rank)
    return np.asarray(ranks, float)


@dataclass(frozen=True)
class SpecificityResult:
    """The check on one set of detections: the flag, the figures behind it and a sentence for the reader."""

    flagged: bool
    n_detections: int
    n_ranked: int
    n_not_darker: int
    p_ref: float
    p_value: float | None
    message: str | None

    @property
    def share_not_darker(self) -> float | None:
        return None if not self.n_ranked else self.n_not_darker / self.n_ranked

    @property
    def flags(self) -> tuple[str, ...]:
        return (INTERPHASE_LIKE,) if self.flagged else ()

    @property
    def messages(self) -> tuple[str, ...]:
        return (self.message,) if self.flagged and self.message else ()

    def to_dict(self) -> dict[str, Any]:
        share = self.share_not_darker
        return {"flagged": self.flagged, "n_detections": self.n_detections, "n_ranked": self.n_ranked,
                "n_not_darker": self.n_not_darker, "share_not_darker": None if share is None else round(share, 4),
                "reference_share": round(self.p_ref, 4) if np.isfinite(self.p_ref) else None,
                "p_value": None if self.p_value is None else float(f"{self.p_value:.3g}")}


NOT_JUDGED = SpecificityResult(False, 0, 0, 0, float("nan"), None, None)


def interphase_message(n_not_darker: int, n_ranked: int, p_ref: float) -> str:
    """The ``interphase_like`` flag in one sentence a pathologist reads."""
    return (f"{n_not_darker} of {n_ranked} detections checked ({n_not_darker / n_ranked:.0%}) are no darker than "
            f"the median nucleus around them, against at most {p_ref:.0%} of true mitotic figures: these look like "
            "interphase nuclei, not condensed chromatin; check the overlay, do not grade from this count")


def judge_ranks(ranks: Sequence[float] | np.ndarray, n_detections: int | None = None, *,
                reference: SpecificityReference | None = None) -> SpecificityResult:
    """The ``interphase_like`` rule on the darkness ranks of a set of detections (see the module notes).

    Parameters
    ----------
    ranks
        Darkness ranks (0-1) of the ranked detections.
    n_detections
        How many detections the set has (default ``len(ranks)``).
    reference
        Reference share; default :func:`load_reference`.
    """
    from scipy.stats import binom

    ref = load_reference() if reference is None else reference
    r = np.asarray(ranks, float)
    r = r[np.isfinite(r)]
    n, k = int(len(r)), int(np.sum(r < NOT_DARKER_RANK))
    total = n if n_detections is None else int(n_detections)
    if n < MIN_RANKED:
        return SpecificityResult(False, total, n, k, ref.p_ref, None, None)
    p = float(binom.sf(k - 1, n, ref.p_ref))
    flagged = p < FALSE_ALARM
    return SpecificityResult(flagged, total, n, k, ref.p_ref, p, interphase_message(k, n, ref.p_ref))


def check_points(read_window: WindowReader, points_xy: np.ndarray, *, mpp: float = CHECK_MPP,
                 reference: SpecificityReference | None = None) -> SpecificityResult:
    """:func:`rank_points` then :func:`judge_ranks`: the check on detections at ``points_xy`` (pixels of the
    image at ``mpp`` that ``read_window`` reads)."""
    pts = np.asarray(points_xy, float).reshape(-1, 2)
    if len(pts) < MIN_RANKED:
        return judge_ranks([], len(pts), reference=reference)
    return judge_ranks(rank_points(read_window, pts, mpp=mpp), len(pts), reference=reference)


def array_reader(rgb: np.ndarray) -> WindowReader:
    """A :data:`WindowReader` over an image in memory already at :data:`CHECK_MPP` (white beyond its edges)."""
    h, w = rgb.shape[:2]

    def read(x0: int, y0: int, size: int) -> np.ndarray:
        out = np.full((size, size, 3), 255, np.uint8)
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
        if xb > xa and yb > ya:
            out[ya - y0:yb - y0, xa - x0:xb - x0] = rgb[ya:yb, xa:xb, :3]
        return out

    return read
