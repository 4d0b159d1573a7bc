"""Provenance of teaching outputs: the spindledx version and a content digest of the knowledge base."""

from __future__ import annotations

import hashlib

from spindledx import __version__
from spindledx.ihc.knowledge import KnowledgeBase


def kb_digest(kb: KnowledgeBase) -> str:
    """Short content digest of the knowledge base (sha256 of every table: markers, entities, facts, priors,
    specificity figures, clinical and morphology rows)."""
    h = hashlib.sha256()
    for part in (kb.markers, kb.entities, kb.facts, kb.site_priors, kb.pair_background, kb.population_priors,
                 kb.clinical, kb.morphology):
        h.update(repr(sorted((repr(k), repr(v)) for k, v in part.items())).encode())
    return h.hexdigest()[:12]


def provenance(kb: KnowledgeBase) -> dict[str, str]:
    """``{"spindledx": version, "knowledge_base": digest}`` for JSON outputs and page footers."""
    return {"spindledx": __version__, "knowledge_base": kb_digest(kb)}
