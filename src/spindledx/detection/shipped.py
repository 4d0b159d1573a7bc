"""The one place that builds the shipped detector (or the detector of a model card that follows the model
contract).

Every stage that runs the shipped model without being given a detector calls :func:`shipped_detector`. A caller
that wants another detector passes ``detector=`` to the stage's entry point; code that drives the command line
(a test, an application embedding it) sets :data:`factory` for a block with :func:`detector_factory`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindledx.detection.types import Detector

Factory = Callable[[float | None], "Detector"]
"""``factory(threshold) -> Detector``."""

factory: Factory | None = None
"""None: :func:`shipped_detector` builds the shipped model; else it returns ``factory(threshold)``."""


def shipped_detector(threshold: float | None = None, *, threads: int = 2, prepare: bool = False,
                     model: str | Path | None = None) -> Detector:
    """The shipped mitosis detector (:class:`spindledx.detection.ModelDetector`, model loaded once per process),
    or the detector of the enclosing :func:`detector_factory` block; with ``model``, that model card's detector.

    Parameters
    ----------
    threshold
        Minimum score of a detection (default: the model's).
    threads
        onnxruntime threads of the model.
    prepare
        Load the model now (one error up front when no model is shipped), not on the first tile.
    model
        A model card (JSON beside its ONNX file, the model contract of ``docs/guide/models.md``) instead of the
        shipped model; it is loaded now.

    Example: ``detector = shipped_detector(0.5); detections = detector(rgb, 0.25)``
    """
    from spindledx.detection.detect import ModelDetector

    if model is not None:
        detector = ModelDetector(threshold=threshold, model_path=str(model), threads=threads)
        detector.prepare()
        return detector
    if factory is not None:
        return factory(threshold)
    detector = ModelDetector(threshold=threshold, threads=threads)
    if prepare:
        detector.prepare()
    return detector


@contextlib.contextmanager
def detector_factory(make: Factory) -> Iterator[None]:
    """Within the block, :func:`shipped_detector` returns ``make(threshold)`` (a test double, or another model run
    through the command line).

    Example: ``with detector_factory(lambda threshold: my_detector): main(["score", "tile.png"])``
    """
    global factory
    previous, factory = factory, make
    try:
        yield
    finally:
        factory = previous
