"""Detection core: the :class:`Detector` protocol, the shipped model (package data, checksum verified, cached),
the one suppression of nearby detections and the one QuPath GeoJSON writer.

Names are imported lazily so that ``import spindledx.detection`` does not load onnxruntime or scipy.
"""

from __future__ import annotations

from spindledx.lazy import lazy_getattr

_MODULES = {
    "spindledx.detection.types": ("Detection", "Detector", "FunctionDetector", "as_detector"),
    "spindledx.detection.detect": ("ModelDetector", "detect_mitoses", "detector_caveat"),
    "spindledx.detection.model": ("load_shipped_model", "load_model", "shipped_description"),
    "spindledx.detection.suppress": ("MIDOG_RADIUS_UM", "suppress_nearby", "suppress_detections"),
    "spindledx.detection.geojson": ("write_geojson", "points_geojson", "polygon_annotation"),
}
__all__ = sorted(name for names in _MODULES.values() for name in names)
__getattr__ = lazy_getattr(__name__, _MODULES)
