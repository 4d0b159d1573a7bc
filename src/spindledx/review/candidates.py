"""Candidate files: every figure the detector proposed on an image, including those just below its threshold.

The review page (:mod:`spindledx.review.page`) shows candidates ordered by score so that a pathologist confirms
the detections and can rescue figures the detector scored just below its threshold. A candidates file
``<stem>_candidates.json`` is written next to a stage's other per-image outputs::

    {"format": "spindledx-candidates/1", "image": "/abs/path.tif", "stem": "tile_01", "width": ..,
     "height": .., "mpp": .., "threshold": 0.68, "review_floor": 0.48,
     "model": {"model_name": .., "model_version": .., "model_sha256": .., "adapted_from": {..}},
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
    """The JSON object of a candidates file (``origin``: offset of the crop source for a slide region;
    ``image_identity``: the image's size and content hash, checked before the review page crops it)."""
    from spindledx.engine.store import content_identity

    return {"format": FORMAT, "kind": kind, "image": str(Path(image).resolve()),
            "image_identity": content_identity(image), "stem": stem, "width": int(width),
            "height": int(height), "mpp": float(mpp), "origin": [float(origin[0]), float(origin[1])],
            "threshold": float(threshold), "review_floor": float(review_floor),
            "model": {"model_name": model.get("model_name"), "model_version": model.get("model_version"),
                      "model_sha256": model.get("model_sha256"),
                      **({"adapted_from": model["adapted_from"]} if model.get("adapted_from") else {})},
            "candidates": [c.to_json() for c in candidates]}


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
    from spindledx.files import check_file_name

    path = Path(out_dir) / f"{check_file_name(doc['stem'], what='candidates')}{SUFFIX}"
    write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False))
    return path


def load_candidate_files(out_dir: str | Path) -> list[dict[str, Any]]:
    """The candidates files of the run in an output folder (:func:`load_run_candidates`)."""
    return load_run_candidates(out_dir)[0]


def load_run_candidates(out_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The candidates files of the run in an output folder, sorted by name, and the names of candidates files in
    the folder that the run did not write (ignored).

    When the folder's ``summary.json`` lists the run's outputs, exactly the candidates files it lists are read
    (a listed file that is missing is an error; a file another run left there is ignored); a folder without a
    summary (an interrupted run) gives every ``*_candidates.json``.

    Raises
    ------
    BadInputError
        No such folder, no candidates, a listed file missing or any file damaged.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: no such folder")
    found = sorted(out_dir.glob(f"*{SUFFIX}"))
    listed = _listed_outputs(out_dir)
    ignored: list[str] = []
    if listed is not None:
        names = sorted(n for n in listed if n.endswith(SUFFIX) and "/" not in n)
        ignored = sorted(p.name for p in found if p.name not in names)
        paths = [out_dir / n for n in names]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise BadInputError(f"{missing[0]}: listed by {out_dir / 'summary.json'} but missing; run that command "
                                "again")
    else:
        paths = found
    if not paths:
        slides = [candidates_from_slide_outputs(p) for p in sorted(out_dir.glob("*_summary.json"))]
        slides = [d for d in slides if d is not None]
        for doc in slides:
            check_candidates(doc, where=str(out_dir / f"{doc['stem']}_summary.json"))
        if slides:
            return slides, ignored
        raise BadInputError(f"{out_dir}: no *{SUFFIX} files of its run and no slide outputs (run `spindledx case`, "
                            "`spindledx score --out`, `spindledx slide --out` or `spindledx batch` first)")
    docs = [read_candidates(path) for path in paths]
    stems = [d["stem"] for d in docs]
    if len(set(stems)) != len(stems):
        raise BadInputError(f"{out_dir}: two candidates files name the same image stem; run that command again")
    return docs, ignored


def _listed_outputs(out_dir: Path) -> list[str] | None:
    """The outputs listed by the folder's spindledx ``summary.json``, or None when it has none."""
    from spindledx.files import read_json

    path = out_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        doc = read_json(path, what="a spindledx summary", max_bytes=MAX_CANDIDATES_BYTES)
    except BadInputError:
        return None
    if not (isinstance(doc, dict) and str(doc.get("schema", "")).startswith("spindledx-summary/")
            and isinstance(doc.get("outputs"), list)):
        return None
    return [n for n in doc["outputs"] if isinstance(n, str)]


def read_candidates(path: str | Path) -> dict[str, Any]:
    """Read and check one candidates file (bounded read, every field checked: :func:`check_candidates`)."""
    from spindledx.files import read_json

    doc = read_json(path, what=f"a {FORMAT} file", max_bytes=MAX_CANDIDATES_BYTES)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadInputError(f"{path}: not a {FORMAT} file")
    check_candidates(doc, where=str(path))
    return doc


MAX_CANDIDATES_BYTES = 64 << 20
"""Largest candidates file read."""


def _number(value: Any) -> bool:
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_candidates(doc: dict[str, Any], *, where: str) -> None:
    """Refuse a candidates document whose fields could not have been written by spindledx: a stem that is not a
    plain file name, a size or resolution that is not a positive number, coordinates or scores that are not
    finite numbers, ids that are not unique strings.

    Raises
    ------
    BadInputError
        One line naming ``where`` and the first bad field.
    """
    from spindledx.files import check_file_name

    def bad(what: str) -> BadInputError:
        return BadInputError(f"{where}: {what}; not a candidates file spindledx wrote (rerun the command that made "
                             "this folder)")

    check_file_name(doc.get("stem"), what=f"{where} ('stem')")
    if not isinstance(doc.get("image"), str) or not doc["image"]:
        raise bad("'image' is not a file name")
    for key in ("width", "height"):
        if not (isinstance(doc.get(key), int) and not isinstance(doc[key], bool) and doc[key] > 0):
            raise bad(f"'{key}' is not a positive whole number of pixels")
    from spindledx.counting import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP

    if not (_number(doc.get("mpp")) and MIN_PLAUSIBLE_MPP <= doc["mpp"] <= MAX_PLAUSIBLE_MPP):
        raise bad("'mpp' is not a resolution in µm/px")
    for key in ("threshold", "review_floor"):
        if not (_number(doc.get(key)) and 0 <= doc[key] <= 1):
            raise bad(f"'{key}' is not a score between 0 and 1")
    origin = doc.get("origin", [0.0, 0.0])
    if not (isinstance(origin, list) and len(origin) == 2 and all(_number(v) for v in origin)):
        raise bad("'origin' is not two numbers")
    if "area_mm2" in doc and not (_number(doc["area_mm2"]) and doc["area_mm2"] > 0):
        raise bad("'area_mm2' is not a positive area")
    if doc.get("image_identity") is not None and not isinstance(doc["image_identity"], str):
        raise bad("'image_identity' is not text")
    if not isinstance(doc.get("model", {}), dict) or not isinstance(doc.get("flags", []), list):
        raise bad("'model' or 'flags' has the wrong type")
    cands = doc.get("candidates")
    if not isinstance(cands, list):
        raise bad("'candidates' is not a list")
    ids = set()
    for c in cands:
        if not (isinstance(c, dict) and isinstance(c.get("id"), str) and all(_number(c.get(k)) for k in
                                                                             ("x", "y", "score"))
                and isinstance(c.get("detected"), bool)):
            raise bad("a candidate is not {id: text, x, y, score: numbers, detected: true/false}")
        if c["id"] in ids:
            raise bad(f"candidate id {c['id']!r} appears twice")
        ids.add(c["id"])


def candidates_from_slide_outputs(summary_path: Path) -> dict[str, Any] | None:
    """Candidates of a ``spindledx slide --out`` folder: the detections inside its (first) hotspot, read from
    ``<stem>_summary.json`` and ``<stem>_mitoses.csv``; None when the file is not a slide summary. The slide stage
    keeps no candidates below its threshold, so only its detections can be reviewed."""
    import csv

    from spindledx.files import read_json

    try:
        summary = read_json(summary_path, what="a slide summary", max_bytes=MAX_CANDIDATES_BYTES)
    except BadInputError:
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
    doc["image_identity"] = _slide_run_identity(summary_path.parent)
    return doc


def _slide_run_identity(out_dir: Path) -> str | None:
    """The slide's content identity recorded by the ``slide`` run in ``out_dir/run.json`` (None if absent)."""
    from spindledx.files import read_json

    try:
        run = read_json(out_dir / "run.json", what="a slide run file", max_bytes=1 << 20)
    except BadInputError:
        return None
    identity = run.get("file") if isinstance(run, dict) else None
    if not isinstance(identity, str) or identity.count(":") != 2:
        return None
    size, _, digest = identity.split(":")
    return f"{size}:{digest}"


def check_image_identity(doc: dict[str, Any]) -> Path:
    """The image of a candidates document, checked to be the file the run read (same size and content hash).

    Raises
    ------
    BadInputError
        The image is gone or was replaced since the run (crops of another image would be reviewed).
    """
    from spindledx.engine.store import content_identity

    path = Path(doc["image"])
    if not path.is_file():
        raise BadInputError(f"{path}: the image of these candidates is gone (needed for the review crops)")
    expected = doc.get("image_identity")
    if expected is not None and content_identity(path) != expected:
        raise BadInputError(f"{path}: the image changed since the run that found these candidates; run that "
                            "command again to review this image")
    return path


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
        from spindledx.provenance import model_provenance

        description = getattr(detector, "model_description", None)
        if description is None:
            return cls(detector, threshold, threshold, {})
        thr = float(description.threshold if threshold is None else threshold)
        floor = max(0.0, thr - margin)
        return cls(load(floor), thr, floor, model_provenance(description))

    def __call__(self, rgb: Any, mpp: float) -> list[Any]:
        self.last = list(self._detector(rgb, mpp))
        return self.last

    def document(self, *, image: str | Path, stem: str, width: int, height: int, mpp: float,
                 area: Any = None) -> dict[str, Any]:
        """The candidates document of the image last run (suppressed as the counting stage suppresses), limited to
        the counted ``area`` (:class:`spindledx.slide.area.CountedArea`) when given, whose size it records."""
        import numpy as np

        from spindledx.detection.suppress import suppress_detections

        found = [d for d in self.last if 0 <= d.x < width and 0 <= d.y < height]
        found = suppress_detections(found, mpp=mpp)
        if area is not None and found:
            inside = area.contains(np.array([d.x for d in found]), np.array([d.y for d in found]))
            found = [d for d, k in zip(found, inside, strict=True) if k]
        thr = self.threshold if self.threshold is not None else min((d.score for d in found), default=0.0)
        floor = self.review_floor if self.review_floor is not None else thr
        cands = split_candidates(found, stem=stem, threshold=thr, review_floor=floor)
        doc = candidates_document(image=image, stem=stem, width=width, height=height, mpp=mpp, threshold=thr,
                                  review_floor=floor, model=self.model, candidates=cands)
        if area is not None:
            doc["area_mm2"] = area.area_mm2
        return doc
