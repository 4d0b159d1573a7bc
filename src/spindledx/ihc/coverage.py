"""Coverage of the entity x marker matrix: which pairs have literature data, which only a background
(specificity) figure, and which are missing (with the reason stated in markers.csv ``no_background_reason``).

For a pair (entity, marker) the interpreter uses, in order: a fact of that entity (facts.csv, generic or site
row), the entity's own specificity figure (entity_marker_background.csv), the marker's background (markers.csv),
else nothing (neutral): :func:`spindledx.ihc.model.marker_likelihood`.  This module reports the same resolution.
"""

from __future__ import annotations

from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base
from spindledx.ihc.model import marker_likelihood

NO_REASON = "no background figure and no reason given in markers.csv"


def kb_coverage(kb: KnowledgeBase | None = None) -> dict:
    """Per-entity coverage and totals (JSON-ready).

    Returns
    -------
    dict
        ``{"entities": [{"id", "name", "with_data": [marker...], "background_only": [{"marker", "basis",
        "fraction_positive", "source"}], "missing": [{"marker", "reason"}]}], "totals": {...},
        "markers_without_background": [{"marker", "reason"}], "missing_files": [...]}``
    """
    kb = kb or load_knowledge_base()
    entities = []
    totals = {"with_data": 0, "background_only": 0, "missing": 0}
    for e in kb.entity_ids:
        with_data, background, missing = [], [], []
        for m, marker in kb.markers.items():
            ml = marker_likelihood(kb, e, m)
            if ml.basis in ("entity", "site"):
                with_data.append(m)
            elif ml.basis in ("pair background", "background"):
                background.append({"marker": m, "basis": ml.basis, "fraction_positive": ml.fact.fraction_positive,
                                   "n_cases": ml.fact.n_cases, "evidence": ml.fact.evidence,
                                   "source": ml.fact.source})
            else:
                missing.append({"marker": m, "reason": marker.no_background_reason or NO_REASON})
        totals["with_data"] += len(with_data)
        totals["background_only"] += len(background)
        totals["missing"] += len(missing)
        entities.append({"id": e, "name": kb.entities[e].name, "with_data": with_data,
                         "background_only": background, "missing": missing})
    pairs = len(kb.entity_ids) * len(kb.markers)
    covered = totals["with_data"] + totals["background_only"]
    totals.update(pairs=pairs, entities=len(kb.entity_ids), markers=len(kb.markers),
                  covered_fraction=round(covered / pairs, 4) if pairs else 0.0,
                  missing_without_reason=sum(1 for ent in entities for x in ent["missing"] if x["reason"] == NO_REASON))
    without = [{"marker": m, "reason": mk.no_background_reason or NO_REASON}
               for m, mk in kb.markers.items() if mk.background is None]
    return {"totals": totals, "entities": entities, "markers_without_background": without,
            "missing_files": list(kb.missing_files), "skipped_rows": list(kb.skipped_rows)}
