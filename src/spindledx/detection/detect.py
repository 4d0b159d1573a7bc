"""Tile -> mitotic figures with the shipped model, and :class:`ModelDetector`, the stages' default detector.

:func:`detect_mitoses`: resample to the model's working resolution (0.25 µm/px), hematoxylin candidates
(:mod:`spindledx.detection.candidates`), CNN patch scores (:mod:`spindledx.detection.model`), threshold, and the one
suppression of nearby points (:func:`spindledx.detection.suppress.suppress_nearby`, 7.5 µm). Coordinates of the
returned detections are in the pixels of the image as given (not of the working resolution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from spindledx.detection.suppress import MIDOG_RADIUS_UM, suppress_nearby
from spindledx.detection.types import Detection
from spindledx.errors import BadInputError

if TYPE_CHECKING:
    from spindledx.detection.model import MitosisModel, ModelDescription


def _check_input(rgb: np.ndarray, mpp: float) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise BadInputError(f"detect_mitoses needs an RGB array of shape (H, W, 3), got {shape}")
    if rgb.dtype != np.uint8:
        raise BadInputError(f"detect_mitoses needs a uint8 RGB image, got dtype {rgb.dtype}")
    if not (isinstance(mpp, int | float) and np.isfinite(mpp) and 0.05 <= mpp <= 10.0):
        raise BadInputError(f"mpp must be a resolution in µm/px between 0.05 and 10, got {mpp!r}")


def detect_mitoses(
    rgb: np.ndarray,
    mpp: float,
    *,
    threshold: float | None = None,
    model: MitosisModel | None = None,
) -> list[Detection]:
    """Detect mitotic figures in an H&E tile.

    Parameters
    ----------
    rgb
        uint8 RGB image ``(H, W, 3)``.
    mpp
        Its resolution in µm/px.
    threshold
        Decision threshold on the classifier probability; default the model's cross-validated threshold.
    model
        A loaded :class:`~spindledx.detection.model.MitosisModel`; default the cached shipped model
        (:func:`~spindledx.detection.model.load_shipped_model`).

    Returns
    -------
    list of Detection
        Sorted by decreasing score, no two within 7.5 µm (MIDOG radius), ``(x, y)`` in input-image pixels.
    """
    from spindledx.detection.candidates import find_candidates
    from spindledx.detection.model import load_shipped_model
    from spindledx.detection.patches import extract_patches
    from spindledx.imaging.resample import resample_to
    from spindledx.imaging.stain import scale_stain_concentrations

    _check_input(rgb, mpp)
    if model is None:
        model = load_shipped_model()
    thr = model.threshold if threshold is None else float(threshold)
    work_mpp = model.working_mpp
    work, sx, sy = resample_to(np.ascontiguousarray(rgb), float(mpp), work_mpp, tolerance=0.01)
    cand = find_candidates(work, work_mpp)
    if len(cand) == 0:
        return []
    # optional per-image stain scaling, declared by the model description ("stain_scaling": {percentile, target})
    scaling = model.description.extra.get("stain_scaling") if model.description is not None else None
    patch_source = work
    if scaling:
        patch_source = scale_stain_concentrations(
            work, percentile=float(scaling["percentile"]), target=tuple(scaling["target"])
        )
    # candidates that cannot reach thr stop their test-time averaging early; the kept ones are unaffected
    scores = model.predict(extract_patches(patch_source, cand, size=model.patch_size), threshold=thr)
    keep = scores >= thr
    cand, scores = cand[keep], scores[keep]
    order = suppress_nearby(cand, scores, radius_um=MIDOG_RADIUS_UM, mpp=work_mpp)
    # centre of working pixel i lies at input coordinate (i + 0.5) * s - 0.5
    xs = cand[:, 0] * sx + (sx - 1) / 2
    ys = cand[:, 1] * sy + (sy - 1) / 2
    return [Detection(x=float(xs[i]), y=float(ys[i]), score=float(scores[i])) for i in order]


class ModelDetector:
    """The shipped model as a :class:`~spindledx.detection.types.Detector` (the default of every stage).

    The model is loaded by :func:`~spindledx.detection.model.load_shipped_model` (checksum verified, cached per
    process). The object pickles as its settings only, so it can be sent to worker processes and Dask workers,
    which load the model on their first tile.

    Parameters
    ----------
    threshold
        Decision threshold; None for the model's cross-validated one.
    threads
        onnxruntime threads (1 in worker processes).
    model_path
        A model card (JSON) with its ONNX file that follows the model contract (``docs/guide/models.md``), or a
        folder holding one card, used instead of the shipped model.
    """

    model_path: str | None = None  # also the value of an object pickled before the field existed

    def __init__(self, *, threshold: float | None = None, threads: int = 2,
                 model_path: str | None = None) -> None:
        self.threshold = threshold
        self.threads = threads
        if model_path is not None:
            from spindledx.detection.model import resolve_model_card

            model_path = resolve_model_card(model_path)
        self.model_path = None if model_path is None else str(model_path)

    @property
    def model_description(self) -> ModelDescription:
        """The model's description (read without loading the ONNX file)."""
        from spindledx.detection.model import read_description, shipped_description

        return shipped_description() if self.model_path is None else read_description(self.model_path)

    def _model(self):
        from spindledx.detection.model import load_model_file, load_shipped_model

        if self.model_path is None:
            return load_shipped_model(self.threads)
        return load_model_file(self.model_path, threads=self.threads)

    @property
    def name(self) -> str:
        """``spindledx.detection.detect_mitoses(threshold=..., model=VERSION sha256:...)``."""
        desc = self.model_description
        named = "" if self.model_path is None else f"{desc.extra.get('name') or 'model'} "
        return (f"spindledx.detection.detect_mitoses(threshold={self.threshold!r}, "
                f"model={named}{desc.version} sha256:{desc.sha256[:12]})")

    def prepare(self) -> None:
        """Load and verify the model now, so a missing or corrupt model fails before any tile is read."""
        self._model()

    def __call__(self, rgb: np.ndarray, mpp: float) -> list[Detection]:
        return detect_mitoses(rgb, mpp, threshold=self.threshold, model=self._model())


def detector_caveat(detector: object) -> str | None:
    """One line on the detector model's measured accuracy for the human-readable outputs, or None for a
    detector without a model description (e.g. one injected by tests).

    The figure is the by-field cross-validated mean F1 recorded in the model description (MIDOG rule); the
    model card (``docs/model-card.md``) has the folds and limits.
    """
    from spindledx.detection.types import as_detector

    description = as_detector(detector).model_description
    if description is None:
        return None
    f1 = description.extra.get("cv", {}).get("mean_f1")
    if getattr(as_detector(detector), "model_path", None) is not None:
        name = description.extra.get("name") or "model"
        return (f"Detector model {name} {description.version} (sha256 {description.sha256[:12]}), given with "
                "--model: its accuracy is its card's; check the detections on the overlay (--out) before "
                "reporting a count.")
    accuracy = f"cross-validated F1 {f1:.2f} on breast-carcinoma fields" if f1 is not None else "accuracy unmeasured"
    return (f"Detector model {description.version}: {accuracy} (docs/model-card.md). A screening aid: check "
            "the detections on the overlay (--out) before reporting a count.")
