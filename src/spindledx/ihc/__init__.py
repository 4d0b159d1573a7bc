"""IHC panel interpretation: vocabulary, knowledge base, Bayesian differential, next markers.

Library API (stable, used by the batch helper)::

    from spindledx.ihc import interpret_panel, parse_panel
    result = interpret_panel("actin+ desmin+ CK-pan- CD34- CD117- S-100-", site="lung")
    result.differential[0].id, result.differential[0].probability, result.next_markers, result.warnings
    json.dumps(result.to_json())

``parse_panel(text, ignore_unknown=False)`` validates a panel and raises ``spindledx.errors.BadInputError``.
"""

from spindledx.ihc.interpret import DifferentialEntry, MarkerEvidence, NextMarker, PanelResult, interpret_panel
from spindledx.ihc.knowledge import load_knowledge_base
from spindledx.ihc.vocabulary import Observation, Panel, parse_panel, resolve_marker

__all__ = [
    "DifferentialEntry", "MarkerEvidence", "NextMarker", "Observation", "Panel", "PanelResult", "interpret_panel",
    "load_knowledge_base", "parse_panel", "resolve_marker",
]
