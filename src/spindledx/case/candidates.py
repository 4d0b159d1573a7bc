"""Candidate files: every figure the detector proposed on an image, including those just below its threshold.

The review page (:mod:`spindledx.case.review`) shows candidates ordered by score so that a pathologist confirms
the detections and can rescue figures the detector scored just below its threshold. A candidates file
``<stem>_candidates.json`` is written next to a stage's other per-image outputs::

    {"format": "spindledx-candidates/1", "image": "/abs/path.tif", "stem": "tile_01", "width": ..,
     "height": .., "mpp": .., "threshold": 0.68, "review_floor": 0.48,
     "model": {"model_version": .., "model_sha256": ..},
     "candidates": [{"id": "tile_01#0", "x": .., "y": .., "score": .., "detected": true}, ...]}

Candidates come from one detector run at the lower ``review_floor``: greedy non-maximum suppression keeps the
highest score first, so the points at or above the threshold are exactly those a run at the threshold keeps
(a lower-scoring point never suppresses a higher one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spindledx.errors import BadInputError

FORMAT = "spindledx-candidates/1"
#: Default review floor = threshold minus this (candidates "just below the threshold").
DEFAULT_REVIEW_MARGIN = 0.2
#: At most this many below-threshold candidates per image go to the review page (highest scores first).
MAX_BELOW_PER_IMAGE = 60
SUFFIX = "_candidates.json"


@dataclass(frozen=True)
class Candidate:
    """One proposed figure: id, position in pixels of the image as given, score, and whether it was counted."""

    id: str
    x: float
    y: float
    score: float
    detected: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (coordinates to 0.1 px, score to 1e-4)."""
        return {"id": self.id, "x": round(float(self.x), 1), "y": round(float(self.y), 1),
                "score": round(float(self.score), 4), "detected": bool(self.detected)}


def split_candidates(points: Iterable[Any], *, stem: str, threshold: float, review_floor: float,
                     max_below: int = MAX_BELOW_PER_IMAGE) -> list[Candidate]:
    """Candidates (objects with ``x``, ``y``, ``score``) at or above ``review_floor``, highest score first,
    flagged ``detected`` when at or above ``threshold``; at most ``max_below`` below the threshold."""
    ordered = sorted((p for p in points if p.score >= review_floor), key=lambda p: -p.score)
    out: list[Candidate] = []
    below = 0
    for p in ordered:
        detected = p.score >= threshold
        if not detected:
            below += 1
            if below > max_below:
                continue
        out.append(Candidate(id=f"{stem}#{len(out)}", x=float(p.x), y=float(p.y), score=float(p.score),
                             detected=detected))
    return out


def candidates_document(*, image: str | Path, stem: str, width: int, height: int, mpp: float, threshold: float,
                        review_floor: float, model: dict[str, Any], candidates: Sequence[Candidate],
                        origin: tuple[float, float] = (0.0, 0.0), kind: str = "tile") -> dict[str, Any]:
    """The JSON object of a candidates file (``origin``: offset of the crop source for a slide region)."""
    return {"format": FORMAT, "kind": kind, "image": str(Path(image).resolve()), "stem": stem, "width": int(width),
            "height": int(height), "mpp": float(mpp), "origin": [float(origin[0]), float(origin[1])],
            "threshold": float(threshold), "review_floor": float(review_floor),
            "model": {"model_version": model.get("model_version"), "model_sha256": model.get("model_sha256")},
            "candidates": [c.to_json() for c in candidates]}


def safe_stem(key: str) -> str:
    """A file-name stem for an image key (``sub/dir/tile 1.tif`` -> ``sub_dir_tile_1``)."""
    import hashlib
    import re

    stem = str(Path(key).with_suffix("")) if Path(key).suffix else str(key)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "image"
    if len(stem) > 100:  # a 250-character image name must not make file names longer than the file system allows
        stem = stem[:91] + "-" + hashlib.sha256(stem.encode()).hexdigest()[:8]
    return stem


def candidates_from_detections(*, image: str | Path, stem: str, width: int, height: int, mpp: float,
                               detections: Sequence[dict[str, Any]], threshold: float | None,
                               model: dict[str, Any]) -> dict[str, Any]:
    """A candidates document from a stage that kept only its detections (``{"x", "y", "score"}``): every
    candidate is a detection and nothing below the threshold can be reviewed (the page says so)."""
    cands = [Candidate(id=f"{stem}#{i}", x=float(d["x"]), y=float(d["y"]), score=float(d["score"]), detected=True)
             for i, d in enumerate(sorted(detections, key=lambda d: -float(d["score"])))]
    thr = float(threshold) if threshold is not None else (min((c.score for c in cands), default=0.0))
    return candidates_document(image=image, stem=stem, width=width, height=height, mpp=mpp, threshold=thr,
                               review_floor=thr, model=model, candidates=cands, kind="detections only")


def write_candidates(doc: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``<stem>_candidates.json`` atomically into ``out_dir``; returns the path."""
    from spindledx.files import atomic_write_text as write_text_atomic

    path = Path(out_dir) / f"{doc['stem']}{SUFFIX}"
    write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False))
    return path


def load_candidate_files(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every candidates file of an output folder, sorted by name; BadInputError when there is none."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: no such folder")
    paths = sorted(out_dir.glob(f"*{SUFFIX}"))
    if not paths:
        slides = [candidates_from_slide_outputs(p) for p in sorted(out_dir.glob("*_summary.json"))]
        slides = [d for d in slides if d is not None]
        if slides:
            return slides
        raise BadInputError(f"{out_dir}: no *{SUFFIX} files and no slide outputs (run `spindledx case`, "
                            "`spindledx score --out`, `spindledx slide --out` or `spindledx batch` first)")
    docs = []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"{path}: not a readable candidates file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise BadInputError(f"{path}: not a {FORMAT} file")
        docs.append(doc)
    return docs


def candidates_from_slide_outputs(summary_path: Path) -> dict[str, Any] | None:
    """Candidates of a ``spindledx slide --out`` folder: the detections inside its (first) hotspot, read from
    ``<stem>_summary.json`` and ``<stem>_mitoses.csv``; None when the file is not a slide summary. The slide stage
    keeps no candidates below its threshold, so only its detections can be reviewed."""
    import csv

    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(summary, dict) or "slide" not in summary or not summary.get("hotspots"):
        return None
    stem = summary_path.name[: -len("_summary.json")]
    table = summary_path.with_name(f"{stem}_mitoses.csv")
    if not table.is_file():
        raise BadInputError(f"{table}: missing (the slide's detections)")
    with table.open(newline="", encoding="utf-8") as fh:
        rows = [(float(r["x"]), float(r["y"]), float(r["score"])) for r in csv.DictReader(fh)]
    h = summary["hotspots"][0]
    mpp = float(summary["mpp"])
    inside = []
    for x, y, score in rows:
        dx, dy = (x + 0.5) * mpp - h["centre_x_um"], (y + 0.5) * mpp - h["centre_y_um"]
        if (h["shape"] == "circle" and (dx * dx + dy * dy) ** 0.5 <= h["radius_um"]) or (
                h["shape"] != "circle" and abs(dx) <= h["width_um"] / 2 and abs(dy) <= h["height_um"] / 2):
            inside.append({"x": x, "y": y, "score": score})
    image = Path(summary["slide"])
    if not image.is_absolute():
        image = (summary_path.parent / image) if (summary_path.parent / image).exists() else image.resolve()
    doc = candidates_from_detections(image=image, stem=stem, width=summary["width"], height=summary["height"],
                                     mpp=mpp, detections=inside, threshold=None, model={})
    doc["kind"] = "slide"
    doc["area_mm2"] = float(h["area_mm2"])
    return doc


def run_id(docs: Sequence[dict[str, Any]]) -> str:
    """Identity of a set of candidates: sha256 over every image's stem, size, threshold, model checksum and
    candidate list. Decisions carry it; decisions made on another run (other candidates or model) are refused."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d["stem"]):
        key = {"stem": doc["stem"], "width": doc["width"], "height": doc["height"], "threshold": doc["threshold"],
               "model_sha256": (doc.get("model") or {}).get("model_sha256"),
               "candidates": [[c["id"], c["x"], c["y"], c["score"]] for c in doc["candidates"]]}
        digest.update(json.dumps(key, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class CandidateRecorder:
    """A detector run at the review floor that remembers each image's raw output, for a stage (``score``) that
    counts at the threshold and writes the candidates just below it for the review page.

    ``score_image(tile, detector=recorder, threshold=recorder.threshold)`` counts exactly what the detector at
    the threshold counts (suppression keeps the higher score first), and :meth:`document` turns the recorded
    output into a candidates file.
    """

    def __init__(self, detector: Any, threshold: float | None, review_floor: float | None,
                 model: dict[str, Any]) -> None:
        self._detector = detector
        self.threshold = threshold
        self.review_floor = review_floor
        self.model = model
        self.last: list[Any] = []
        self.model_description = getattr(detector, "model_description", None)

    @classmethod
    def around(cls, detector: Any, load: Any, *, threshold: float | None,
               margin: float = DEFAULT_REVIEW_MARGIN) -> CandidateRecorder:
        """Wrap a stage's detector: ``load(t)`` makes the same detector at threshold ``t``. A detector without a
        model description (a test's fake) is recorded as it is, every output counted."""
        from spindledx.pages.provenance import model_provenance

        description = getattr(detector, "model_description", None)
        if description is None:
            return cls(detector, threshold, threshold, {})
        thr = float(description.threshold if threshold is None else threshold)
        floor = max(0.0, thr - margin)
        return cls(load(floor), thr, floor, model_provenance(description))

    def __call__(self, rgb: Any, mpp: float) -> list[Any]:
        self.last = list(self._detector(rgb, mpp))
        return self.last

    def document(self, *, image: str | Path, stem: str, width: int, height: int, mpp: float) -> dict[str, Any]:
        """The candidates document of the image last run (suppressed as the counting stage suppresses)."""
        from spindledx.detection.suppress import suppress_detections

        found = [d for d in self.last if 0 <= d.x < width and 0 <= d.y < height]
        found = suppress_detections(found, mpp=mpp)
        thr = self.threshold if self.threshold is not None else min((d.score for d in found), default=0.0)
        floor = self.review_floor if self.review_floor is not None else thr
        cands = split_candidates(found, stem=stem, threshold=thr, review_floor=floor)
        return candidates_document(image=image, stem=stem, width=width, height=height, mpp=mpp, threshold=thr,
                                   review_floor=floor, model=self.model, candidates=cands)
