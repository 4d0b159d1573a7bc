"""Provenance of a result: spindledx version, detector model (name, version, sha256, threshold), IHC
knowledge-base version and the date, so that every count and differential can be traced to what produced it."""

from __future__ import annotations

import datetime as _dt
import hashlib
from importlib import resources
from typing import Any

from spindledx import __version__


def kb_version() -> str:
    """Version of the IHC knowledge base: the package's declared one if any, else ``sha256:<12 hex>`` of the
    data files (names and bytes, sorted), which changes whenever any CSV changes."""
    from spindledx import ihc

    declared = getattr(ihc, "KB_VERSION", None) or getattr(ihc, "__kb_version__", None)
    if declared:
        return str(declared)
    digest = hashlib.sha256()
    data = resources.files("spindledx.ihc") / "data"
    for entry in sorted(data.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".csv", ".json", ".yaml")):
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return "sha256:" + digest.hexdigest()[:12]


def model_provenance(description: Any | None) -> dict[str, Any]:
    """Name, version, sha256 and threshold of a model description (``ModelDescription``-like), or the shipped
    model's when ``description`` is None; empty values when no model can be read. A model made by
    ``spindledx adapt`` also gives ``adapted_from`` (name, version and sha256 of the model it was adapted from); a
    card with an 8-bit graph (``int8`` entry, run in place of the float graph) gives its sha256 as
    ``model_int8_sha256``."""
    if description is None:
        from spindledx.detection.model import shipped_description

        try:
            description = shipped_description()
        except Exception:  # provenance must not fail a run; it says the model is unknown instead
            return {"model_name": None, "model_version": None, "model_sha256": None, "threshold": None}
    out = {"model_name": getattr(description, "name", None) or description.extra.get("name"),
           "model_version": getattr(description, "version", None),
           "model_sha256": getattr(description, "sha256", None),
           "threshold": getattr(description, "threshold", None)}
    extra = getattr(description, "extra", None) or {}
    int8 = extra.get("int8")
    if isinstance(int8, dict) and isinstance(int8.get("sha256"), str):
        out["model_int8_sha256"] = int8["sha256"]  # the 8-bit graph the detector runs (the card's graph named above)
    adapted = extra.get("adapted_from")
    if isinstance(adapted, dict):
        out["adapted_from"] = {k: adapted.get(k) for k in ("name", "version", "sha256")}
    return out


def provenance(*, model_description: Any | None = None, include_model: bool = True,
               threshold: float | None = None, now: _dt.datetime | None = None) -> dict[str, Any]:
    """Provenance dict for a JSON output.

    Parameters
    ----------
    model_description
        The detector model's description (default: the shipped model's).
    include_model
        False for outputs that involve no detector (e.g. a panel alone).
    threshold
        The detection threshold used when it differs from the model's.
    now
        Timestamp (default: now, UTC).
    """
    when = (now or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    prov: dict[str, Any] = {"spindledx_version": __version__}
    if include_model:
        prov.update(model_provenance(model_description))
        if threshold is not None:
            prov["threshold"] = threshold
    prov["kb_version"] = kb_version()
    prov["date"] = when.isoformat().replace("+00:00", "Z")
    return prov


def detector_provenance(detector: Any, *, threshold: float | None = None) -> dict[str, Any]:
    """Provenance of a run with ``detector`` (a :class:`spindledx.detection.Detector` or a plain callable): its
    model's name, version and sha256 when it has a model description, else its name with no model version (a
    detector injected by a caller or a test is never reported as the shipped model)."""
    from spindledx.detection.types import as_detector

    wrapped = as_detector(detector)
    description = wrapped.model_description
    if description is not None:
        return provenance(model_description=description, threshold=threshold)
    base = provenance(include_model=False)
    return {"spindledx_version": base["spindledx_version"], "model_name": wrapped.name, "model_version": None,
            "model_sha256": None, "threshold": threshold, "kb_version": base["kb_version"], "date": base["date"]}
