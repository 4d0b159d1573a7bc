"""``adapt_model``: a reviewed laboratory's decisions -> an adapted detector model (ONNX + card) in a new folder.

Stages: the decided candidates and their crops (:mod:`spindledx.adapt.dataset`), the starting model's features of
8 dihedral views and of stain-jittered copies (:mod:`spindledx.adapt.features`), the anchors
(:mod:`spindledx.adapt.anchors`), grouped cross-validation and the verdict (:mod:`spindledx.adapt.validate`), the
final head on every decision, one ONNX graph (:mod:`spindledx.adapt.compose`) and the card
(:mod:`spindledx.adapt.card`). A model that is not better on the held-out images than the starting model, or too
few decisions to tell, is refused (:class:`AdaptRefusedError`) and nothing is written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.adapt.dataset import ReviewedImage, load_source, reviewed_images
from spindledx.adapt.features import FeatureExtractor, require_onnx, stain_jitter, view_features
from spindledx.adapt.validate import (
    MIN_DECISIONS,
    MIN_IMAGES,
    AnchorSet,
    LabSet,
    Settings,
    Validation,
    choose_threshold,
    fit,
    validate,
)
from spindledx.errors import BadInputError

#: Stain-jittered training copies per decided candidate (besides its 8 dihedral views).
AUGMENTED_COPIES = 4
SEED = 20261205


class AdaptRefusedError(BadInputError):
    """The adapted model was not written; ``table`` holds the figures that say why (empty when too few decisions)."""

    def __init__(self, message: str, *, table: str = "", validation: Validation | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.validation = validation


class StartingModel:
    """The model adapted: its raw card, description, ONNX bytes and feature extractor."""

    def __init__(self, card_path: Any | None, *, threads: int = 2) -> None:
        from spindledx.detection.model import (
            DEFAULT_DESCRIPTION,
            MODELS_DIR,
            read_description,
            resolve_model_card,
            verify_checksum,
        )

        if card_path is None:
            path, folder = DEFAULT_DESCRIPTION, MODELS_DIR
        else:
            path = resolve_model_card(card_path)
            folder = path.parent
        self.description = read_description(path)
        self.card = json.loads(path.read_text(encoding="utf-8"))
        onnx_path = folder / self.description.onnx_file
        verify_checksum(onnx_path, self.description.sha256)
        d = self.description
        if d.tta > 1 and d.tta_gate is None:
            raise BadInputError("the model averages its views inside its graph; adapt needs a single-view graph "
                                "(a card with tta_gate, or tta 1)")
        self.onnx_bytes = onnx_path.read_bytes()
        self.hint = self.card.get("adapt") if isinstance(self.card.get("adapt"), dict) else None
        self.extractor = FeatureExtractor(self.onnx_bytes, hint=self.hint, threads=threads)
        self.feature_sha256 = (self.hint or {}).get("feature_extractor_sha256") or d.sha256

    @property
    def settings(self) -> Settings:
        d = self.description
        return Settings(threshold=d.threshold, ways=d.tta, gate=d.tta_gate)


def lab_set(images: Sequence[ReviewedImage], start: StartingModel, *, copies: int = AUGMENTED_COPIES,
            seed: int = SEED) -> LabSet:
    """Features of the decided candidates: their 8 dihedral views and ``copies`` stain-jittered views each."""
    rng = np.random.default_rng(seed)
    patches = np.concatenate([im.patches for im in images])
    ways = max(start.description.tta, 1)
    views, view_logits = view_features(start.extractor, patches, ways=ways)
    aug_f, aug_z = [], []
    for _ in range(copies):
        jittered = stain_jitter(patches, rng)
        k = rng.integers(0, 4)
        jittered = np.ascontiguousarray(np.rot90(jittered, k, axes=(1, 2)))
        f, z = start.extractor.features(_to_input(jittered))
        aug_f.append(f)
        aug_z.append(z)
    width = views.shape[2]
    augmented = np.stack(aug_f) if aug_f else np.zeros((0, len(patches), width), np.float32)
    augmented_logits = np.stack(aug_z) if aug_z else np.zeros((0, len(patches)), np.float32)
    return LabSet(views=views, view_logits=view_logits, augmented=augmented, augmented_logits=augmented_logits,
                  labels=np.concatenate([im.labels for im in images]).astype(np.int8),
                  image=np.concatenate([np.full(len(im.labels), i) for i, im in enumerate(images)]),
                  groups=[im.group for im in images], areas_mm2=np.array([im.area_mm2 for im in images]))


def _to_input(patches: np.ndarray) -> np.ndarray:
    from spindledx.detection.patches import to_model_input

    return to_model_input(patches)


def anchor_set(start: StartingModel, exclude_groups: Sequence[str] = ()) -> AnchorSet:
    """The packaged anchors (less ``exclude_groups``) with the starting model's logits on them; none for a model
    whose features are not the shipped model's (a laboratory's own model: recall is then judged on its confirmed
    figures alone)."""
    from spindledx.adapt.anchors import load_anchors

    anchors = load_anchors()
    if anchors.feature_extractor_sha256 != start.feature_sha256:  # another model: no anchors of its training
        width = start.extractor.cut.width
        return AnchorSet(np.zeros((0, width), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int8),
                         np.zeros(0, str))
    anchors = anchors.without(set(exclude_groups))
    return AnchorSet(anchors.features, start.extractor.head(anchors.features), anchors.labels, anchors.groups)


def check_enough(n_decided: int, n_images: int) -> None:
    """Refuse too few decisions or images to judge an adapted model, saying how many more are needed."""
    if n_decided < MIN_DECISIONS:
        raise AdaptRefusedError(f"too few decisions to tell whether an adapted model is better: {n_decided} "
                                f"candidates marked mitosis or not mitosis, at least {MIN_DECISIONS} needed "
                                f"({MIN_DECISIONS - n_decided} more)")
    if n_images < MIN_IMAGES:
        raise AdaptRefusedError(f"decisions on {n_images} image(s): at least {MIN_IMAGES} reviewed images are "
                                f"needed to hold one out ({MIN_IMAGES - n_images} more)")


def _safe_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise BadInputError(f"model name {name[:60]!r}: use letters, digits, '.', '_' or '-'", parameters="name")
    return name


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BadInputError(f"{out}: exists and is not a folder", parameters="out")
    if out.is_dir() and any(out.iterdir()):
        raise BadInputError(f"{out}: not empty; an adapted model is written into a new or empty folder",
                            parameters="out")


def adapt_images(images: Sequence[ReviewedImage], start: StartingModel, *,
                 exclude_anchor_groups: Sequence[str] = (), copies: int = AUGMENTED_COPIES,
                 seed: int = SEED) -> dict[str, Any]:
    """Validate and fit the adaptation on reviewed images (no files read or written): the validation, the final
    head, its threshold and the composed ONNX model. Raises :class:`AdaptRefusedError` as :func:`adapt_model`."""
    from spindledx.adapt.card import validation_table
    from spindledx.adapt.compose import compose

    check_enough(sum(len(im.labels) for im in images), len(images))
    lab = lab_set(images, start, copies=copies, seed=seed)
    anchors = anchor_set(start, exclude_anchor_groups)
    every = np.ones(len(anchors.labels), bool)
    settings = start.settings
    validation = validate(lab, anchors, every, settings)
    table = validation_table(validation)
    if not validation.better:
        raise AdaptRefusedError("adapted model not written: " + "; ".join(validation.reasons), table=table,
                           validation=validation)
    rows = np.arange(len(lab))
    settings = replace(settings, strength=validation.strength)
    head = fit(lab, rows, anchors, every, settings).scaled(validation.strength)
    threshold, threshold_source = choose_threshold(lab, rows, anchors, every, settings)
    tag = hashlib.sha256(head.w.tobytes()).hexdigest()[:8]
    model, cut = compose(start.extractor.model, start.extractor.cut, head, tag=tag)
    return {"validation": validation, "table": table, "head": head, "threshold": threshold,
            "threshold_source": threshold_source, "model": model, "cut": cut, "lab": lab}


def adapt_model(sources: Sequence[str | Path], out: str | Path, *, model: str | Path | None = None,
                name: str | None = None, threads: int = 2) -> dict[str, Any]:
    """Adapt the detector to a laboratory's review decisions and write the adapted model into ``out``.

    Parameters
    ----------
    sources
        Reviewed folders (``review DIR --import`` done) or ``FOLDER=DECISIONS.json`` pairs.
    out
        A new or empty folder; receives ``<name>.onnx`` and its card ``<name>.json``.
    model
        The card (or a folder holding one) of the model the folders were run with; default the shipped model.
    name
        The adapted model's name (default ``<starting name>-adapted``).
    threads
        onnxruntime threads.

    Returns
    -------
    dict
        ``card``, ``paths`` (card, onnx), ``validation`` (before/after figures), ``table`` (the same as text).

    Raises
    ------
    AdaptRefusedError
        Too few decisions or images, or the adapted model is not better on held-out images (nothing written).
    BadInputError
        Missing training extra, unreadable or mismatched sources, a folder that is not empty.

    Example: ``adapt_model(["case_1", "case_2"], "lab_model")["card"]["threshold"]``
    """
    require_onnx()
    out = Path(out)
    _check_out(out)
    if not sources:
        raise BadInputError("no reviewed folder given", parameters="sources")
    loaded = [load_source(s) for s in sources]
    folders = [str(s.folder.resolve()) for s in loaded]
    if len(set(folders)) != len(folders):
        raise BadInputError("the same folder is given twice", parameters="sources")
    start = StartingModel(model, threads=threads)
    for s in loaded:
        if s.model_sha256 != start.description.sha256:
            raise BadInputError(f"{s.folder} was run with model sha256 {str(s.model_sha256)[:12]}…, not "
                                f"{start.description.sha256[:12]}…; give that model's card as model",
                                parameters="model")
    check_enough(sum(s.counts["confirmed"] + s.counts["rejected"] for s in loaded),
                 sum(1 for s in loaded for d in s.docs if _decided(s, d)))
    d = start.description
    images = [im for s in loaded for im in reviewed_images(s, working_mpp=d.working_mpp, patch_size=d.patch_size,
                                                           stain_scaling=d.extra.get("stain_scaling"))]
    fitted = adapt_images(images, start)
    start_name = str(start.card.get("name") or "model")
    name = _safe_name(name or f"{start_name}-adapted")
    onnx_bytes = fitted["model"].SerializeToString()
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    when = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    v: Validation = fitted["validation"]
    adaptation = {
        "date": when,
        "reviewers": sorted({s.reviewer for s in loaded if s.reviewer}) or None,
        "sources": [{"folder": str(s.folder.resolve()), "decisions_file": str(s.decisions_path.resolve()),
                     "decisions_date": s.date, "reviewer": s.reviewer, "confirmed": s.counts["confirmed"],
                     "rejected": s.counts["rejected"], "unsure_left_out": s.counts["unsure"]} for s in loaded],
        "decisions": v.n_decisions, "confirmed": v.n_confirmed, "images": v.n_images,
        "method": "logit of the starting model + L2-regularised linear correction on its pooled features, fitted on "
                  f"the decisions (8 dihedral views and {AUGMENTED_COPIES} stain-jittered copies each) and the "
                  f"packaged anchors; {v.strength:g} of the fitted correction applied",
        "validation": {"folds": v.folds, "by": "image", "before": v.before, "after": v.after, "notes": v.notes,
                       "correction_share": v.strength, "shares_tried": v.tried,
                       "threshold_choice": v.threshold_choice},
    }
    cut = {"features": fitted["cut"].features, "logit": fitted["cut"].logit, "width": fitted["cut"].width,
           "feature_extractor_sha256": start.feature_sha256}
    version = f"{d.version}+adapted.{when[:10].replace('-', '')}"
    from spindledx.adapt.card import adapted_card
    from spindledx.files import atomic_write_bytes, atomic_write_text

    card = adapted_card(start.card, name=name, version=version, onnx_file=f"{name}.onnx", sha256=sha,
                        threshold=fitted["threshold"], threshold_source=fitted["threshold_source"], cut=cut,
                        adaptation=adaptation)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = atomic_write_bytes(out / f"{name}.onnx", onnx_bytes)
    card_path = atomic_write_text(out / f"{name}.json", json.dumps(card, indent=2, ensure_ascii=False))
    return {"card": card, "paths": {"card": card_path, "onnx": onnx_path}, "validation": v,
            "table": fitted["table"]}


def _decided(source: Any, doc: dict[str, Any]) -> bool:
    by_id = {d["id"]: d.get("decision") for d in source.decisions["decisions"]}
    return any(by_id.get(c["id"]) in ("y", "n") for c in doc["candidates"])
