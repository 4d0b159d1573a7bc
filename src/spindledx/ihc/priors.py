"""Priors over entities: a cited population prior without a site, a cited site prior with one, and the cap that
keeps the prior (with the clinical context) from outweighing a defining stain.

Population prior (``population_priors.csv``): the relative frequency of each entity among adult spindle-cell
tumours (registries, large consultation series).  An entity without a figure gets the smallest listed
frequency (stated in the explanation); with no population file at all the prior is uniform (also stated).

Site prior (``site_priors.csv``): relative weights per site, with the site's ``*`` row as the floor for the
entities not listed.

**Cap** (by construction: a prior can never outweigh a defining stain): the *context* — log prior plus
the clinical (age, sex) log-likelihoods — is clipped to a range of w · ln :data:`CONTEXT_MAX_RATIO` below its maximum
(w = the evidence weight that also multiplies every stain's log-likelihood, so both are on one scale): prior and
clinical findings together can shift the odds between two entities by at most as much as one stain with a
likelihood ratio of 10.  A defining
stain moves them by far more: a marker positive in ≥ 80 % of its entity against a background of ≤ 3 % has a
likelihood ratio ≥ 0.8 / 0.04 = 20 even after the Jeffreys shrinkage and the 1 % stain-error floor
(``tests/test_ihc_priors.py`` checks this on the defining markers of the knowledge base, and on classic pairs with
adversarial sites).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spindledx.ihc.knowledge import KnowledgeBase

CONTEXT_MAX_RATIO = 10.0


@dataclass(frozen=True)
class PriorEntry:
    """Prior weight of one entity and where it comes from."""

    weight: float  # normalised
    figure: float | None  # the cited figure (relative frequency or site weight)
    evidence_level: str | None
    source: str
    note: str


@dataclass(frozen=True, eq=False)
class Prior:
    """Normalised prior over ``kb.entity_ids`` with its basis ("population" or "site")."""

    basis: str
    site: str | None
    weights: np.ndarray
    entries: tuple[PriorEntry, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The ``"prior"`` object of the JSON output."""
        return {"basis": self.basis, "site": self.site, "context_max_ratio": CONTEXT_MAX_RATIO,
                "notes": list(self.notes)}


def population_prior(kb: KnowledgeBase) -> Prior:
    """The population prior (see module docstring)."""
    ids = kb.entity_ids
    table = kb.population_priors
    if not table:
        w = np.full(len(ids), 1.0 / len(ids))
        note = "no population frequencies in the knowledge base: uniform prior"
        return Prior("population", None, w, tuple(PriorEntry(float(x), None, None, "", note) for x in w), (note,))
    floor = min(p.relative_frequency for p in table.values())
    raw = np.array([table[e].relative_frequency if e in table else floor for e in ids], dtype=float)
    w = raw / raw.sum()
    entries = []
    missing = []
    for e, x in zip(ids, w, strict=True):
        p = table.get(e)
        if p is None:
            missing.append(e)
            entries.append(PriorEntry(float(x), None, None, "",
                                      f"no population figure: the smallest listed frequency ({floor:g}) used"))
        else:
            entries.append(PriorEntry(float(x), p.relative_frequency, p.evidence, p.source, p.note))
    notes = (f"{len(missing)} entities without a population figure get the smallest listed one",) if missing else ()
    return Prior("population", None, w, tuple(entries), notes)


def site_prior(kb: KnowledgeBase, site: str) -> Prior:
    """The site prior (see module docstring)."""
    table = kb.site_priors[site]
    floor = table["*"]
    raw = np.array([table[e].weight if e in table else floor.weight for e in kb.entity_ids], dtype=float)
    w = raw / raw.sum()
    entries = []
    for e, x in zip(kb.entity_ids, w, strict=True):
        row = table.get(e, floor)
        note = row.basis if e in table else f"floor for entities not listed at this site: {row.basis}"
        entries.append(PriorEntry(float(x), row.weight, row.evidence or None, row.source, note))
    return Prior("site", site, w, tuple(entries))


def build_prior(kb: KnowledgeBase, site: str | None) -> Prior:
    """Site prior when a site is given, else the population prior."""
    return population_prior(kb) if site is None else site_prior(kb, site)


def prior_weights(kb: KnowledgeBase, site: str | None) -> np.ndarray:
    """Normalised prior weights over ``kb.entity_ids`` (see :func:`build_prior`)."""
    return build_prior(kb, site).weights


def cap_context(log_context: np.ndarray, max_ratio: float = CONTEXT_MAX_RATIO,
                evidence_weight: float = 1.0) -> np.ndarray:
    """Clip log prior + clinical log-likelihoods to ``[max − w·ln max_ratio, max]`` (module docstring).

    ``w`` is the evidence weight that multiplies every stain's log-likelihood, so the cap stays on the scale of one
    weighted stain: a stain with likelihood ratio > ``max_ratio`` outweighs any prior whatever the weight.
    """
    top = float(np.max(log_context))
    return np.maximum(log_context, top - evidence_weight * math.log(max_ratio))
