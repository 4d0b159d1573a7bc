"""A versus B: markers ranked by how well they separate two entities, from the interpreter's own likelihoods.

For a binary stain result the interpreter's likelihoods (:func:`spindledx.ihc.model.marker_likelihood`: Beta
posterior of the literature fraction, site variants, marker background, stain-error floor) give
``p_A = P(+ | A)`` and ``p_B = P(+ | B)``.  From them:

likelihood ratios
    ``LR+ = p_A / p_B`` (how much a positive result multiplies the odds of A against B) and
    ``LR− = (1 − p_A) / (1 − p_B)``.
separation
    the symmetric Kullback-Leibler divergence (Jeffreys' J divergence) between the two Bernoulli result
    distributions, ``J = KL(A‖B) + KL(B‖A) = (p_A − p_B) · ln[p_A (1 − p_B) / (p_B (1 − p_A))]``, reported in
    bits.  ``J`` is the expected log-likelihood ratio in favour of the true entity, summed over both
    possibilities (Kullback S, Information Theory and Statistics, 1959, ch. 1; the two-class case of
    ImmunoQuery's "discriminating power").  Markers are ranked by ``J``.

Morphology criteria (mitoses band, atypia level, tumour cell necrosis, described patterns) use the interpreter's
own evidence columns (:func:`spindledx.ihc.evidence.categorical_column` / ``binary_column``: Jeffreys-shrunk
literature probabilities with the reading-error floor): for each value the LR = P(value | A) / P(value | B), and
for mitoses, atypia and necrosis the J divergence of the whole feature (bits).  Patterns count only when
described (a pattern not mentioned is not evidence), so they get an LR for "described" and no J.

A marker resting on the marker background for both entities is skipped (same figure on both sides).  A marker
for which one of the two entities has neither a fact nor a marker background is not ranked (the
interpreter treats it as neutral for that entity: there is nothing to separate on); it is listed under
``no_data`` so the gap in the knowledge base is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spindledx.errors import BadInputError
from spindledx.ihc.evidence import CellInfo, binary_column, categorical_column
from spindledx.ihc.knowledge import (
    ATYPIA_LEVELS,
    MITOSIS_BANDS,
    PATTERNS,
    KnowledgeBase,
    load_knowledge_base,
)
from spindledx.ihc.lookups import resolve_entity
from spindledx.ihc.model import MARKER_GROUPS, MarkerLikelihood, default_constants, marker_likelihood
from spindledx.ihc.vocabulary import resolve_site
from spindledx.provenance import provenance

# The pairs that matter in practice (the classic differentials of a spindle-cell tumour); pages are built for the pairs
# whose two entities are in the knowledge base.
TEACHING_PAIRS: tuple[tuple[str, str], ...] = (
    ("leiomyosarcoma", "leiomyoma"),
    ("leiomyosarcoma", "gist"),
    ("gist", "schwannoma"),
    ("solitary_fibrous_tumor", "synovial_sarcoma"),
    ("mpnst", "spindle_cell_melanoma"),
    ("inflammatory_myofibroblastic_tumor", "low_grade_myofibroblastic_sarcoma"),
    ("dfsp", "solitary_fibrous_tumor"),
    ("sarcomatoid_carcinoma", "sarcomatoid_mesothelioma"),
    # further classic differentials of the knowledge base's entities
    ("schwannoma", "mpnst"),
    ("neurofibroma", "mpnst"),
    ("dedifferentiated_liposarcoma", "undifferentiated_pleomorphic_sarcoma"),
    ("nodular_fasciitis", "desmoid_fibromatosis"),
    ("low_grade_fibromyxoid_sarcoma", "desmoid_fibromatosis"),
    ("kaposi_sarcoma", "angiosarcoma"),
    ("spindle_cell_lipoma", "atypical_spindle_cell_lipomatous_tumor"),
)

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class SideEvidence:
    """What the interpreter knows about one marker in one entity.

    ``p_positive`` is the interpreter's P(+ | entity) including the stain-error floor; ``fraction_positive``,
    ``n_cases``, ``evidence``, ``source`` and ``note`` come from the fact it rests on (site row when the site row
    was used, the marker background when ``basis`` is ``"background"``).
    """

    basis: str
    p_positive: float
    fraction_positive: float | None
    n_cases: int | None
    evidence: str | None
    source: str
    note: str

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        return {"basis": self.basis, "p_positive": round(self.p_positive, 4),
                "fraction_positive": self.fraction_positive, "n_cases": self.n_cases, "evidence": self.evidence,
                "source": self.source, "note": self.note}


@dataclass(frozen=True)
class MarkerSeparation:
    """One marker's power to separate A from B (module docstring)."""

    marker: str
    kind: str
    group: str | None
    a: SideEvidence
    b: SideEvidence
    lr_positive: float
    lr_negative: float
    j_divergence_bits: float
    caveats: tuple[str, ...] = ()

    @property
    def favours_if_positive(self) -> str:
        """``"a"`` when a positive result favours A, ``"b"`` when it favours B, ``"neither"`` when LR+ is 1."""
        if self.lr_positive > 1.0:
            return "a"
        if self.lr_positive < 1.0:
            return "b"
        return "neither"

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        return {"marker": self.marker, "kind": self.kind, "group": self.group,
                "lr_positive": round(self.lr_positive, 3), "lr_negative": round(self.lr_negative, 3),
                "j_divergence_bits": round(self.j_divergence_bits, 4),
                "favours_if_positive": self.favours_if_positive, "caveats": list(self.caveats),
                "a": self.a.to_json(), "b": self.b.to_json()}


@dataclass(frozen=True)
class MorphologySeparation:
    """One morphological finding's value in A and in B (module docstring)."""

    feature: str
    value: str
    p_a: float
    p_b: float
    a: CellInfo
    b: CellInfo

    @property
    def likelihood_ratio(self) -> float:
        """P(value | A) / P(value | B)."""
        return self.p_a / self.p_b

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        def side(p: float, cell: CellInfo) -> dict:
            return {"p": round(p, 4), "probability": cell.fraction, "n_cases": cell.n_cases,
                    "evidence": cell.evidence_level, "source": cell.source, "note": cell.note}

        return {"feature": self.feature, "value": self.value, "likelihood_ratio": round(self.likelihood_ratio, 3),
                "a": side(self.p_a, self.a), "b": side(self.p_b, self.b)}


@dataclass(frozen=True)
class Comparison:
    """A versus B: ranked markers, and the markers without data for one side."""

    a: str
    b: str
    a_name: str
    b_name: str
    site: str | None
    markers: tuple[MarkerSeparation, ...]
    no_data: tuple[tuple[str, tuple[str, ...]], ...]  # (marker, ids of the entities without data)
    morphology: tuple[MorphologySeparation, ...] = ()
    morphology_j_bits: tuple[tuple[str, float], ...] = ()  # (feature, J divergence in bits) for mitoses/atypia/necrosis
    provenance: tuple[tuple[str, str], ...] = ()  # spindledx version, knowledge-base version, date

    def to_json(self, top: int | None = None) -> dict:
        """JSON-serialisable dict; ``top`` limits the ranked markers."""
        ranked = self.markers if top is None else self.markers[:top]
        return {
            "provenance": dict(self.provenance),
            "a": {"id": self.a, "name": self.a_name}, "b": {"id": self.b, "name": self.b_name}, "site": self.site,
            "method": "markers ranked by the symmetric KL (J) divergence, in bits, between P(result | A) and "
                      "P(result | B) from the interpreter's likelihoods; LR+ = P(+|A)/P(+|B), "
                      "LR- = P(-|A)/P(-|B)",
            "markers": [m.to_json() for m in ranked],
            "no_data": [{"marker": m, "missing_for": list(ids)} for m, ids in self.no_data],
            "morphology": {"features": [{"feature": f, "j_divergence_bits": round(j, 4)}
                                        for f, j in self.morphology_j_bits],
                           "values": [m.to_json() for m in self.morphology]},
        }


def j_divergence_bits(p_a: float, p_b: float) -> float:
    """Symmetric KL divergence, in bits, between Bernoulli(p_a) and Bernoulli(p_b) (both strictly in (0, 1))."""
    return (p_a - p_b) * math.log(p_a * (1.0 - p_b) / (p_b * (1.0 - p_a))) / _LN2


SAME_FIGURE = 0.05  # literature fractions closer than this: any separation comes from the numbers of cases


def caveats_for(a: SideEvidence, b: SideEvidence, name_a: str, name_b: str) -> tuple[str, ...]:
    """Warnings a reader needs next to a ranked marker (shown on the page, in the table and in JSON).

    * a side resting on the marker *background* (the fraction of other spindle-cell tumours positive, not a
      series of this entity): wrong for an entity of the marker's own lineage, so check the entity's data;
    * two literature figures within :data:`SAME_FIGURE` of each other: the LR then reflects only how many cases
      each figure rests on (Beta posterior means of e.g. 0/30 and 0/400 differ), not a biological difference.
    """
    out = []
    for side, name in ((a, name_a), (b, name_b)):
        if side.basis == "background":
            out.append(f"{name}: no series of this entity, the marker background (other tumours) is used")
    if (a.fraction_positive is not None and b.fraction_positive is not None
            and abs(a.fraction_positive - b.fraction_positive) < SAME_FIGURE):
        out.append(f"same literature figure ({a.fraction_positive:.0%} vs {b.fraction_positive:.0%}): the ratio "
                   "reflects only the numbers of cases")
    return tuple(out)


def _group_of(marker: str) -> str | None:
    for name, members in MARKER_GROUPS.items():
        if marker in members:
            return name
    return None


def _side(ml: MarkerLikelihood) -> SideEvidence:
    fact = ml.site_fact or ml.fact
    if ml.elicited is not None:
        fig = ml.elicited
        return SideEvidence(basis=ml.basis, p_positive=ml.likelihood("pos"), fraction_positive=fig.p_median,
                            n_cases=None if fact is None else fact.n_cases, evidence="elicited",
                            source=fig.reference, note=f"elicited (range {fig.p_min:.0%}-{fig.p_max:.0%}, "
                            f"{fig.n_elicitors} elicitors): {fig.rationale}")
    return SideEvidence(basis=ml.basis, p_positive=ml.likelihood("pos"),
                        fraction_positive=None if fact is None else fact.fraction_positive,
                        n_cases=None if fact is None else fact.n_cases,
                        evidence=None if fact is None else fact.evidence,
                        source="" if fact is None else fact.source, note="" if fact is None else fact.note)


def compare_entities(a: str, b: str, *, site: str | None = None, kb: KnowledgeBase | None = None) -> Comparison:
    """Rank every marker of the knowledge base by how well it separates entity ``a`` from entity ``b``.

    Parameters
    ----------
    a, b
        Entity ids, names or aliases (resolved like ``spindledx entity``).
    site
        Optional site: selects the site-specific literature rows, as in ``interpret_panel``.
    kb
        Knowledge base (default: the package one).

    Returns
    -------
    Comparison
        Markers ranked by J divergence (ties by marker name), plus the markers lacking data for a side.

    Raises
    ------
    BadInputError
        Unknown entity (with close matches), unknown site, or ``a`` and ``b`` the same entity.
    """
    kb = kb or load_knowledge_base()
    id_a, id_b = resolve_entity(a, kb=kb), resolve_entity(b, kb=kb)
    if id_a == id_b:
        raise BadInputError(f"'{a}' and '{b}' are the same entity ({id_a}); compare two different entities")
    site_id = resolve_site(site, kb=kb)
    ranked: list[MarkerSeparation] = []
    no_data: list[tuple[str, tuple[str, ...]]] = []
    for marker in kb.markers.values():
        ml_a = marker_likelihood(kb, id_a, marker.name, site_id)
        ml_b = marker_likelihood(kb, id_b, marker.name, site_id)
        missing = tuple(e for e, ml in ((id_a, ml_a), (id_b, ml_b)) if ml.basis == "no data")
        if missing:
            if len(missing) == 1:  # markers with data for neither side are not worth listing
                no_data.append((marker.name, missing))
            continue
        if ml_a.basis == ml_b.basis == "background":  # the same background figure on both sides: no separation
            continue
        p_a, p_b = ml_a.likelihood("pos"), ml_b.likelihood("pos")
        side_a, side_b = _side(ml_a), _side(ml_b)
        ranked.append(MarkerSeparation(
            marker=marker.name, kind=marker.kind, group=_group_of(marker.name), a=side_a, b=side_b,
            lr_positive=p_a / p_b, lr_negative=(1.0 - p_a) / (1.0 - p_b),
            j_divergence_bits=j_divergence_bits(p_a, p_b),
            caveats=caveats_for(side_a, side_b, kb.entities[id_a].name, kb.entities[id_b].name)))
    ranked.sort(key=lambda m: (-m.j_divergence_bits, m.marker))
    morph, features = _morphology(kb, kb.entity_ids.index(id_a), kb.entity_ids.index(id_b))
    return Comparison(a=id_a, b=id_b, a_name=kb.entities[id_a].name, b_name=kb.entities[id_b].name, site=site_id,
                      markers=tuple(ranked), no_data=tuple(no_data), morphology=tuple(morph),
                      morphology_j_bits=tuple(features),
                      provenance=tuple(provenance(include_model=False).items()))


def _morphology(kb: KnowledgeBase, i_a: int, i_b: int) -> tuple[list[MorphologySeparation], list[tuple[str, float]]]:
    """Per-value likelihoods of A and B from the interpreter's evidence columns (uniform prior for neutral fills)."""
    constants = default_constants()
    prior = np.full(len(kb.entity_ids), 1.0 / len(kb.entity_ids))
    rows: list[MorphologySeparation] = []
    features: list[tuple[str, float]] = []

    def add(feature: str, columns: list) -> None:
        usable = [c for c in columns if c.cells[i_a].basis != "no data" and c.cells[i_b].basis != "no data"]
        for c in usable:
            value = c.event if feature != "necrosis" else ("yes" if c.event == "yes" else "no")
            rows.append(MorphologySeparation(feature=feature, value=value, p_a=float(c.likelihood[i_a]),
                                             p_b=float(c.likelihood[i_b]), a=c.cells[i_a], b=c.cells[i_b]))
        if usable and feature != "pattern" and len(usable) == len(columns):
            j = sum((c.likelihood[i_a] - c.likelihood[i_b]) * math.log(c.likelihood[i_a] / c.likelihood[i_b])
                    for c in usable) / _LN2
            features.append((feature, float(j)))

    for feature, levels in (("mitoses", MITOSIS_BANDS), ("atypia", ATYPIA_LEVELS)):
        add(feature, [categorical_column(kb, feature, levels, v, v, prior, constants) for v in levels])
    add("necrosis", [binary_column(kb, "necrosis", "yes", present, "yes" if present else "no", prior, constants)
                     for present in (True, False)])
    add("pattern", [binary_column(kb, "pattern", v, True, v, prior, constants) for v in PATTERNS])
    order = {"mitoses": 0, "atypia": 1, "necrosis": 2, "pattern": 3}
    rows.sort(key=lambda r: (order[r.feature], -abs(math.log(r.likelihood_ratio)) if r.feature == "pattern" else 0))
    return rows, features


def teaching_pairs(kb: KnowledgeBase | None = None) -> tuple[tuple[str, str], ...]:
    """The :data:`TEACHING_PAIRS` whose two entities are both in the knowledge base."""
    kb = kb or load_knowledge_base()
    return tuple((a, b) for a, b in TEACHING_PAIRS if a in kb.entities and b in kb.entities)
