"""Detection core: the :class:`Detector` protocol, the shipped model (package data, checksum verified, cached),
the one suppression of nearby detections and the one QuPath GeoJSON writer.

Names are imported lazily so that ``import spindledx.detection`` does not load onnxruntime or scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Detection": "spindledx.detection.types",
    "Detector": "spindledx.detection.types",
    "FunctionDetector": "spindledx.detection.types",
    "as_detector": "spindledx.detection.types",
    "ModelDetector": "spindledx.detection.detect",
    "detect_mitoses": "spindledx.detection.detect",
    "detector_caveat": "spindledx.detection.detect",
    "load_shipped_model": "spindledx.detection.model",
    "load_model": "spindledx.detection.model",
    "shipped_description": "spindledx.detection.model",
    "MIDOG_RADIUS_UM": "spindledx.detection.suppress",
    "suppress_nearby": "spindledx.detection.suppress",
    "suppress_detections": "spindledx.detection.suppress",
    "write_geojson": "spindledx.detection.geojson",
    "points_geojson": "spindledx.detection.geojson",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spindledx.detection' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
