"""Atypical vs normal mitotic figures: a second small CNN run on each detected figure.

Atypical mitotic figures (multipolar, ring, lagging chromosomes, asymmetric segregation, ...) carry prognostic
weight of their own (Bertram et al., "Histologic Dataset of Normal and Atypical Mitotic Figures on Human Breast
Cancer (AMi-Br)", BVM 2025; Banerjee et al., arXiv:2506.21444). The head sees the same 64×64 RGB patch at
0.25 µm/px as the detector, centred on the detection, and returns the probability that the figure is atypical
(8 dihedral views averaged). It is described by ``atypical_model.json`` next to the detector in the package's
``detection/models`` (ONNX, checksum verified, trained by ``scripts/train_atypical.py``; balanced accuracy on held-out
ami-br slides in its description and in ``docs/model-card.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spindledx.detection.model import MODELS_DIR, MitosisModel, load_model
from spindledx.detection.patches import extract_patches
from spindledx.detection.types import Detection
from spindledx.imaging.resample import resample_to

ATYPICAL_DESCRIPTION = "atypical_model.json"
#: Dihedral views averaged per figure (rotations by 90° and their mirror images), scored in one batch.
VIEWS = 8


@functools.lru_cache(maxsize=4)
def load_atypical_model(threads: int = 2) -> MitosisModel | None:
    """The shipped atypical head (checksum verified, cached), or None when the package ships none."""
    path = MODELS_DIR / ATYPICAL_DESCRIPTION
    if not path.is_file():
        return None
    return load_model(path, threads=threads)


@dataclass(frozen=True)
class AtypicalLabels:
    """Per-detection atypical probability and label, with the per-image summary."""

    scores: tuple[float, ...]
    atypical: tuple[bool, ...]
    threshold: float
    model_version: str

    @property
    def count(self) -> int:
        return int(sum(self.atypical))

    def fraction(self) -> float | None:
        """Atypical share of the detections (None when there are none)."""
        return None if not self.atypical else self.count / len(self.atypical)


def atypical_fraction(atypical_count: int, count: int) -> float | None:
    """``atypical_count / count`` rounded to 4 places, None when nothing was counted."""
    return None if count <= 0 else round(atypical_count / count, 4)


def score_patches(head: MitosisModel, patches: np.ndarray) -> np.ndarray:
    """P(atypical) of each ``(N, size, size, 3)`` uint8 patch centred on a figure: the mean over the :data:`VIEWS`
    dihedral views, all views of all patches in one batch (the head scores one view when its graph already
    averages views). ``score`` and ``slide`` both label figures through this function."""
    if not len(patches):
        return np.zeros(0, np.float32)
    if head.description.tta <= 1 and VIEWS > 1:
        views = np.concatenate([np.rot90(patches, k, axes=(1, 2)) for k in range(4)]
                               + [np.rot90(patches[:, :, ::-1], k, axes=(1, 2)) for k in range(4)])
        return head.predict(np.ascontiguousarray(views)).reshape(VIEWS, len(patches)).mean(axis=0)
    return head.predict(patches)


def classify_atypical(rgb: np.ndarray, mpp: float, detections: Sequence[Detection], *,
                      model: MitosisModel | None = None) -> AtypicalLabels | None:
    """Label each detection of ``rgb`` normal or atypical.

    Parameters
    ----------
    rgb
        uint8 RGB image ``(H, W, 3)`` the detections were found on.
    mpp
        Its resolution in µm/px (patches are taken at the head's working resolution, 0.25 µm/px).
    detections
        Detections in the pixels of ``rgb``.
    model
        A loaded head; default :func:`load_atypical_model` (None when no head is shipped: returns None).

    Returns
    -------
    AtypicalLabels or None
    """
    head = load_atypical_model() if model is None else model
    if head is None:
        return None
    thr = float(head.threshold)
    if not detections:
        return AtypicalLabels((), (), thr, head.description.version)
    work, sx, sy = resample_to(np.ascontiguousarray(rgb), float(mpp), head.working_mpp)
    xy = np.array([[(d.x - (sx - 1) / 2) / sx, (d.y - (sy - 1) / 2) / sy] for d in detections], dtype=np.float64)
    scores = score_patches(head, extract_patches(work, xy, size=head.patch_size))
    return AtypicalLabels(tuple(float(s) for s in scores), tuple(bool(s >= thr) for s in scores), thr,
                          head.description.version)
