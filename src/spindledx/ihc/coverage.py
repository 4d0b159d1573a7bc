"""Coverage of the entity x marker matrix: what each pair's figure rests on.

``with_data``: literature counts of that entity (facts.csv, generic or site row); ``elicited``: the structured
expert elicitation (elicited.csv), ``elicited_with_data`` when literature counts (entity_marker_background.csv)
update it; ``estimate``: an unstructured estimate in facts.csv; ``background_only``: only the marker's background
over other tumours; ``missing``: no figure (neutral).  The resolution is the interpreter's own
(:func:`spindledx.ihc.model.marker_likelihood`).
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
    keys = ("with_data", "elicited", "elicited_with_data", "estimate", "background_only", "missing")
    totals = dict.fromkeys(keys, 0)
    for e in kb.entity_ids:
        found: dict[str, list] = {k: [] for k in keys}
        for m, marker in kb.markers.items():
            ml = marker_likelihood(kb, e, m)
            fact = ml.site_fact or ml.fact
            if ml.basis in ("entity", "site"):
                found["estimate" if fact is not None and fact.evidence == "estimate" else "with_data"].append(m)
            elif ml.basis in ("elicited", "elicited + data"):
                fig = ml.elicited
                found["elicited" if ml.basis == "elicited" else "elicited_with_data"].append(
                    {"marker": m, "p_median": fig.p_median, "p_min": fig.p_min, "p_max": fig.p_max,
                     "n_elicitors": fig.n_elicitors, "rounds": fig.rounds, "p_positive": round(ml.p_positive, 4)})
            elif ml.basis in ("pair background", "background"):
                found["background_only"].append({"marker": m, "basis": ml.basis, "fraction_positive":
                                                 ml.fact.fraction_positive, "n_cases": ml.fact.n_cases,
                                                 "evidence": ml.fact.evidence, "source": ml.fact.source})
            else:
                found["missing"].append({"marker": m, "reason": marker.no_background_reason or NO_REASON})
        for k in keys:
            totals[k] += len(found[k])
        entities.append({"id": e, "name": kb.entities[e].name, **found})
    pairs = len(kb.entity_ids) * len(kb.markers)
    covered = pairs - totals["missing"]
    totals.update(pairs=pairs, entities=len(kb.entity_ids), markers=len(kb.markers),
                  covered_fraction=round(covered / pairs, 4) if pairs else 0.0,
                  missing_without_reason=sum(1 for ent in entities for x in ent["missing"] if x["reason"] == NO_REASON))
    without = [{"marker": m, "reason": mk.no_background_reason or NO_REASON}
               for m, mk in kb.markers.items() if mk.background is None]
    return {"totals": totals, "entities": entities, "markers_without_background": without,
            "missing_files": list(kb.missing_files), "skipped_rows": list(kb.skipped_rows)}
