"""Detections and the :class:`Detector` protocol shared by every stage (score, batch, slide, case).

A detector maps an RGB ``uint8`` tile ``(H, W, 3)`` and its resolution (µm/px) to the mitotic figures found, in
the pixel coordinates of that tile. It also has a stable ``name`` (recorded in run signatures so that a resumed
run refuses another detector), the description of the model behind it (``None`` for a hand-written detector)
and a ``prepare()`` step run once before the first tile (load the model, so a missing model fails early).

Plain functions ``(rgb, mpp) -> list[Detection]`` (tests, benchmarks, user code) are turned into a
:class:`Detector` by :func:`as_detector`; the stages call that once at their entry point instead of probing the
callable for optional attributes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from spindledx.detection.model import ModelDescription


@dataclass(frozen=True)
class Detection:
    """One detected mitotic figure.

    Attributes
    ----------
    x, y
        Centre in pixels of the image as given (x = column, y = row), not of the internal working resolution.
    score
        Classifier probability in [0, 1].
    atypical, atypical_score
        Normal/atypical label and probability from the atypical head (:mod:`spindledx.detection.atypical`);
        None when no head has looked at the figure.
    """

    x: float
    y: float
    score: float
    atypical: bool | None = None
    atypical_score: float | None = None


@runtime_checkable
class Detector(Protocol):
    """What the stages need from a mitosis detector."""

    @property
    def name(self) -> str:
        """Stable, readable name (with the model version and checksum when there is a model)."""
        ...

    @property
    def model_description(self) -> ModelDescription | None:
        """The model behind the detector, or None for a detector without one."""
        ...

    def prepare(self) -> None:
        """Get ready (e.g. load the model) before the first tile; raise BadInputError when that is impossible."""
        ...

    def __call__(self, rgb: np.ndarray, mpp: float) -> list[Detection]:
        """Figures in ``rgb`` (uint8 ``(H, W, 3)`` at ``mpp`` µm/px), in its pixel coordinates."""
        ...


def callable_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a callable; a :func:`functools.partial` lists its keyword arguments."""
    if isinstance(func, functools.partial):
        kw = ",".join(f"{k}={v!r}" for k, v in sorted(func.keywords.items()))
        return f"{callable_name(func.func)}({kw})"
    module = getattr(func, "__module__", None) or type(func).__module__
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}"


@dataclass(frozen=True)
class FunctionDetector:
    """A plain ``(rgb, mpp) -> list[Detection]`` callable as a :class:`Detector`.

    Attributes
    ----------
    func
        The callable (must be picklable for worker processes).
    model_description
        The model behind it, if any (e.g. a test that wraps the shipped model's description).
    label
        Name to record; default ``module.qualname`` of ``func``.
    """

    func: Callable[[Any, float], list[Detection]]
    model_description: ModelDescription | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        """``label`` or ``module.qualname`` of the function."""
        return self.label or callable_name(self.func)

    def prepare(self) -> None:
        """Nothing to prepare."""

    def __call__(self, rgb: np.ndarray, mpp: float) -> list[Detection]:
        return list(self.func(rgb, mpp))


def as_detector(detector: Detector | Callable[[Any, float], list[Detection]]) -> Detector:
    """``detector`` itself when it implements :class:`Detector`, else a :class:`FunctionDetector` around it."""
    if isinstance(detector, Detector):
        return detector
    if not callable(detector):
        raise TypeError(f"a detector must be callable as detector(rgb, mpp), got {type(detector).__name__}")
    return FunctionDetector(detector)
