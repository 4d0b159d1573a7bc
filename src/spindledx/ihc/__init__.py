"""IHC panel interpretation: vocabulary, knowledge base, Bayesian differential, next markers.

Library API (stable, used by the batch helper)::

    from spindledx.ihc import interpret_panel, parse_panel
    result = interpret_panel("actin+ desmin+ CK-pan- CD34- CD117- S-100-", site="lung")
    result.differential[0].id, result.differential[0].probability, result.next_markers, result.warnings
    json.dumps(result.to_json())

``parse_panel(text, ignore_unknown=False)`` validates a panel and raises ``spindledx.errors.BadInputError``.
The names are imported on first use (PEP 562), so importing one submodule does not import the interpreter.
"""

from __future__ import annotations

from spindledx.lazy import lazy_getattr

_MODULES = {
    "spindledx.ihc.interpret": ("DifferentialEntry", "MarkerEvidence", "NextMarker", "PanelResult", "interpret_panel"),
    "spindledx.ihc.knowledge": ("load_knowledge_base",),
    "spindledx.ihc.vocabulary": ("Observation", "Panel", "parse_panel", "resolve_marker"),
}
__all__ = sorted(name for names in _MODULES.values() for name in names)
__getattr__ = lazy_getattr(__name__, _MODULES)  # `import spindledx.ihc.lookups` does not load the interpreter
