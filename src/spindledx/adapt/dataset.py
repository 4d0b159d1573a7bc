"""A training set from a pathologist's review: the decided candidates of reviewed folders, with their crops.

A source is a folder whose review was imported (``spindledx review DIR --import decisions.json``: its
``review_result.json`` names the decisions file) or a folder with a decisions file, given as ``FOLDER=FILE``. The
decisions are checked against the folder's run exactly as the import checks them
(:func:`spindledx.case.decisions.apply_decisions`: same run id, no unknown candidate), and each image is checked to
be the file the run read (:func:`spindledx.review.candidates.check_image_identity`) before its crops are read
again. Confirmed candidates (``y``) are positives, rejected ones (``n``) negatives; unsure and unreviewed ones are
left out.

Crops are cut as the detector cuts them (:func:`spindledx.detection.detect.detect_mitoses`): the image resampled to
the model's working resolution, a ``patch_size`` square centred on the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spindledx import counting
from spindledx.errors import BadInputError


@dataclass(frozen=True)
class ReviewedImage:
    """The decided candidates of one reviewed image and their crops at the model's working resolution.

    Attributes
    ----------
    folder, stem
        The reviewed folder and the image's stem in it (``group`` = ``folder/stem``: cross-validation holds out
        whole images).
    area_mm2
        The image's counted area (false detections per mm² are per this area).
    ids, labels, scores
        Candidate ids, 1 = confirmed / 0 = rejected, and the score the run recorded.
    patches
        uint8 ``(N, S, S, 3)`` crops.
    """

    folder: str
    stem: str
    area_mm2: float
    ids: tuple[str, ...]
    labels: np.ndarray
    scores: np.ndarray
    patches: np.ndarray

    @property
    def group(self) -> str:
        return f"{self.folder}/{self.stem}"


@dataclass(frozen=True)
class ReviewSource:
    """One reviewed folder: its run's candidates, the decisions, who made them, and the model of the run."""

    folder: Path
    decisions_path: Path
    docs: list[dict[str, Any]]
    decisions: dict[str, Any]
    model_sha256: str | None
    reviewer: str | None
    date: str | None
    counts: dict[str, int] = field(default_factory=dict)


def parse_source(text: str | Path) -> tuple[Path, Path]:
    """``FOLDER`` (its imported review names the decisions file) or ``FOLDER=DECISIONS.json``."""
    from spindledx.files import read_json

    text = str(text)
    if "=" in text and not Path(text).exists():
        folder, _, decisions = text.partition("=")
        folder_path, decisions_path = Path(folder), Path(decisions)
        if not folder_path.is_dir():
            raise BadInputError(f"{folder}: no such folder (a source is FOLDER or FOLDER=DECISIONS.json)",
                                parameters="sources")
        if not decisions_path.is_file():
            raise BadInputError(f"{decisions}: no such decisions file", parameters="sources")
        return folder_path, decisions_path
    folder_path = Path(text)
    if not folder_path.is_dir():
        raise BadInputError(f"{text}: no such folder (a source is a reviewed folder or FOLDER=DECISIONS.json)",
                            parameters="sources")
    result = folder_path / "review_result.json"
    if result.is_file():
        doc = read_json(result, what="a review result", max_bytes=32 << 20)
        named = (doc.get("provenance") or {}).get("decisions_file") if isinstance(doc, dict) else None
        if isinstance(named, str) and Path(named).is_file():
            return folder_path, Path(named)
    if (folder_path / "decisions.json").is_file():
        return folder_path, folder_path / "decisions.json"
    raise BadInputError(f"{text}: no imported review naming its decisions file and no decisions.json in it; give "
                        "FOLDER=DECISIONS.json", parameters="sources")


def load_source(text: str | Path) -> ReviewSource:
    """Read and check one source (the checks of ``review --import``)."""
    from spindledx.case.decisions import apply_decisions, load_decisions
    from spindledx.review.candidates import load_run_candidates

    folder, decisions_path = parse_source(text)
    docs, _ = load_run_candidates(folder)
    decisions = load_decisions(decisions_path)
    review = apply_decisions(docs, decisions, hpf_area_mm2=counting.DEFAULT_HPF_AREA_MM2)
    shas = {(d.get("model") or {}).get("model_sha256") for d in docs}
    if len(shas) != 1:
        raise BadInputError(f"{folder}: its images were scored by different models")
    counts = {"confirmed": review["decisions"]["mitosis"], "rejected": review["decisions"]["not_mitosis"],
              "unsure": review["decisions"]["unsure"], "candidates": review["n_candidates"]}
    return ReviewSource(folder=folder, decisions_path=decisions_path, docs=docs, decisions=decisions,
                        model_sha256=shas.pop(), reviewer=review["reviewer"], date=review["date"], counts=counts)


def _work_image(doc: dict[str, Any], working_mpp: float) -> tuple[np.ndarray, float, float, float, float]:
    """The image of a tile document at the working resolution, its scales and the origin of its frame."""
    from spindledx.imaging.reader import read_image
    from spindledx.imaging.resample import resample_to
    from spindledx.review.candidates import check_image_identity

    rgb = read_image(check_image_identity(doc), mpp=doc["mpp"]).rgb
    work, sx, sy = resample_to(np.ascontiguousarray(rgb), float(doc["mpp"]), working_mpp, tolerance=0.01)
    ox, oy = doc.get("origin") or (0.0, 0.0)
    return work, sx, sy, float(ox), float(oy)


def _slide_patches(doc: dict[str, Any], points: list[dict[str, Any]], *, working_mpp: float,
                   size: int) -> np.ndarray:
    """Crops of whole-slide candidates: a level-0 window around each, resampled to the working resolution."""
    from spindledx.detection.patches import extract_patches
    from spindledx.imaging.resample import resample_to
    from spindledx.imaging.slide import open_slide
    from spindledx.review.candidates import check_image_identity

    path = check_image_identity(doc)
    factor = working_mpp / float(doc["mpp"])  # level-0 pixels per working pixel
    half = int(np.ceil(size * factor / 2)) + 4
    out = []
    with open_slide(path, mpp=doc["mpp"]) as slide:
        for c in points:
            x0, y0 = int(round(c["x"])) - half, int(round(c["y"])) - half
            window = slide.read_level(0, x0, y0, 2 * half, 2 * half)
            work, sx, sy = resample_to(window, float(doc["mpp"]), working_mpp, tolerance=0.01)
            xy = np.array([[(c["x"] - x0 - (sx - 1) / 2) / sx, (c["y"] - y0 - (sy - 1) / 2) / sy]])
            out.append(extract_patches(work, xy, size=size)[0])
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def reviewed_images(source: ReviewSource, *, working_mpp: float, patch_size: int,
                    stain_scaling: dict[str, Any] | None = None) -> list[ReviewedImage]:
    """The decided candidates of every image of a source with their crops (images without decisions left out)."""
    from spindledx.detection.patches import extract_patches
    from spindledx.imaging.stain import scale_stain_concentrations

    by_id = {d["id"]: d.get("decision") for d in source.decisions["decisions"]}
    out = []
    for doc in source.docs:
        decided = [c for c in doc["candidates"] if by_id.get(c["id"]) in ("y", "n")]
        if not decided:
            continue
        if doc.get("kind") == "slide":
            patches = _slide_patches(doc, decided, working_mpp=working_mpp, size=patch_size)
        else:
            work, sx, sy, ox, oy = _work_image(doc, working_mpp)
            if stain_scaling:
                work = scale_stain_concentrations(work, percentile=float(stain_scaling["percentile"]),
                                                  target=tuple(stain_scaling["target"]))
            # input coordinate x of working pixel i is (i + 0.5) * s - 0.5, the inverse of detect_mitoses' mapping
            xy = np.array([[(c["x"] - ox - (sx - 1) / 2) / sx, (c["y"] - oy - (sy - 1) / 2) / sy] for c in decided])
            patches = extract_patches(work, xy, size=patch_size)
        area = float(doc.get("area_mm2") or counting.image_area_mm2(doc["width"], doc["height"], doc["mpp"]))
        out.append(ReviewedImage(folder=str(source.folder.resolve()), stem=doc["stem"], area_mm2=area,
                                 ids=tuple(c["id"] for c in decided),
                                 labels=np.array([by_id[c["id"]] == "y" for c in decided], np.int8),
                                 scores=np.array([c["score"] for c in decided], np.float32), patches=patches))
    return out
