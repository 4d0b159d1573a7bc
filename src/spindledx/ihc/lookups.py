"""Teaching lookups: which entities stain for a marker, the typical panel of an entity, and the lists of both."""

from __future__ import annotations

import difflib

from spindledx.errors import BadInputError
from spindledx.ihc.knowledge import Fact, KnowledgeBase, load_knowledge_base, normalize_name
from spindledx.ihc.model import beta_parameters
from spindledx.ihc.vocabulary import close_marker_matches, resolve_marker


def _fact_json(fact: Fact, *, with_entity: bool = True, kb: KnowledgeBase) -> dict:
    a, b = beta_parameters(fact)
    out = {
        "marker": fact.marker, "site": fact.site or None, "fraction_positive": fact.fraction_positive,
        "n_cases": fact.n_cases, "evidence": fact.evidence, "focal_share": fact.focal_share,
        "posterior_mean": round(a / (a + b), 4), "note": fact.note, "source": fact.source,
    }
    if with_entity:
        out = {"entity": fact.entity, "entity_name": kb.entities[fact.entity].name, **out}
    return out


def resolve_entity(name: str, *, kb: KnowledgeBase | None = None) -> str:
    """Entity id for an id, display name or alias (case-insensitive); BadInputError naming close matches."""
    kb = kb or load_knowledge_base()
    index: dict[str, str] = {}
    for entity in kb.entities.values():
        for label in (entity.id, entity.name, *entity.aliases):
            index.setdefault(normalize_name(label), entity.id)
    key = normalize_name(name)
    if key in index:
        return index[key]
    matches = []
    for k in difflib.get_close_matches(key, list(index), n=6, cutoff=0.6):
        if index[k] not in matches:
            matches.append(index[k])
    hint = f"; did you mean {', '.join(matches[:3])}?" if matches else "; see `spindledx entities`"
    raise BadInputError(f"unknown entity '{name}'{hint}")


def marker_info(name: str, *, kb: KnowledgeBase | None = None) -> dict:
    """Facts about one marker across entities, most often positive first (JSON-ready)."""
    kb = kb or load_knowledge_base()
    canonical = resolve_marker(name, kb=kb)
    if canonical is None:
        matches = close_marker_matches(name, kb=kb)
        hint = f"; did you mean {', '.join(matches)}?" if matches else "; see `spindledx markers`"
        raise BadInputError(f"unknown marker '{name}'{hint}")
    marker = kb.markers[canonical]
    facts = sorted(kb.facts_for_marker(canonical), key=lambda f: (-f.fraction_positive, f.entity, f.site))
    background = marker.background
    return {
        "marker": canonical, "kind": marker.kind, "synonyms": list(marker.synonyms), "note": marker.note,
        "background": None if background is None else {
            "fraction_positive": background.fraction_positive, "n_cases": background.n_cases,
            "evidence": background.evidence, "source": background.source},
        "entities_without_data": [e for e in kb.entity_ids if not any(f.entity == e for f in facts)],
        "facts": [_fact_json(f, kb=kb) for f in facts],
    }


def entity_info(name: str, *, kb: KnowledgeBase | None = None) -> dict:
    """Typical panel (facts, most often positive first), pitfalls, sources and site priors of one entity."""
    kb = kb or load_knowledge_base()
    entity = kb.entities[resolve_entity(name, kb=kb)]
    facts = sorted(kb.facts_for_entity(entity.id), key=lambda f: (f.site, -f.fraction_positive, f.marker))
    sources = []
    for f in facts:
        if f.source not in sources:
            sources.append(f.source)
    priors = {site: {"weight": table[entity.id].weight if entity.id in table else table["*"].weight,
                     "basis": (table[entity.id] if entity.id in table else table["*"]).basis}
              for site, table in kb.site_priors.items()}
    return {
        "id": entity.id, "name": entity.name, "aliases": list(entity.aliases), "summary": entity.summary,
        "pitfalls": list(entity.pitfalls), "facts": [_fact_json(f, with_entity=False, kb=kb) for f in facts],
        "sources": sources, "site_priors": priors,
    }


def list_markers(*, kb: KnowledgeBase | None = None) -> list[dict]:
    """Every canonical marker with kind, synonyms and the number of entities with data."""
    kb = kb or load_knowledge_base()
    return [{"marker": m.name, "kind": m.kind, "synonyms": list(m.synonyms),
             "entities_with_data": len({f.entity for f in kb.facts_for_marker(m.name)}),
             "has_background": m.background is not None} for m in kb.markers.values()]


def list_entities(*, kb: KnowledgeBase | None = None) -> list[dict]:
    """Every entity with name, aliases and the number of facts."""
    kb = kb or load_knowledge_base()
    return [{"id": e.id, "name": e.name, "aliases": list(e.aliases), "n_facts": len(kb.facts_for_entity(e.id)),
             "summary": e.summary} for e in kb.entities.values()]
