"""Interpret an IHC panel: ranked differential with explanations, next markers by expected information gain.

Library entry point: :func:`interpret_panel` (re-exported as ``spindledx.ihc.interpret_panel``).

Explanations: for entity e and observed result r, the likelihood ratio is P(r | e) divided by the prior-weighted
mean of P(r | e') over the other entities e' (how much r shifts the odds of e against the rest of the field);
LR >= 2 "supports", <= 1/2 "against", otherwise (and always for "no data") "neutral".  Next markers: untested
markers ranked by the expected information gain of a +/- result over the current posterior
(:func:`expected_information_gain`), reported with P(+) for each leading entity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base
from spindledx.ihc.model import (
    MarkerLikelihood,
    entropy_bits,
    group_weights,
    marker_likelihoods,
    posterior,
    prior_weights,
)
from spindledx.ihc.vocabulary import Panel, parse_panel, resolve_site

SUPPORT_LR = 2.0  # likelihood ratio >= 2 "supports", <= 1/2 "against" (a conventional, fixed cut)
FIT_THRESHOLD = 0.35  # geometric-mean P(result | best entity) below this: the profile fits nothing well
DISCORDANT_P = 0.10  # a single result with P(result | entity) below this is flagged as discordant
UNRESOLVED_TOP_P = 0.50  # top posterior below this: the differential is unresolved
NON_DISCRIMINATORY = ("vimentin",)


@dataclass(frozen=True)
class MarkerEvidence:
    """How one observed marker bears on one entity."""

    marker: str
    result: str
    event: str
    likelihood: float
    likelihood_ratio: float
    effect: str  # "supports", "against" or "neutral"
    fraction_positive: float | None
    n_cases: int | None
    evidence_level: str | None
    source: str
    note: str
    basis: str  # "site", "entity", "background" or "no data"

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        return {
            "marker": self.marker, "result": self.result, "event": self.event,
            "likelihood": round(self.likelihood, 4), "likelihood_ratio": round(self.likelihood_ratio, 3),
            "effect": self.effect, "fraction_positive": self.fraction_positive, "n_cases": self.n_cases,
            "evidence_level": self.evidence_level, "basis": self.basis, "source": self.source, "note": self.note,
        }


@dataclass(frozen=True)
class DifferentialEntry:
    """One entity of the ranked differential."""

    id: str
    name: str
    probability: float
    prior: float
    evidence: tuple[MarkerEvidence, ...]
    pitfalls: tuple[str, ...]
    fit: float  # geometric-mean likelihood of the observed results (0-1)

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        return {
            "id": self.id, "name": self.name, "probability": round(self.probability, 4),
            "prior": round(self.prior, 4), "fit": round(self.fit, 3),
            "evidence": [e.to_json() for e in self.evidence], "pitfalls": list(self.pitfalls),
        }


@dataclass(frozen=True)
class NextMarker:
    """An untested marker ranked by expected information gain (bits) over the current posterior."""

    marker: str
    kind: str
    expected_information_gain: float
    expected_positive: tuple[tuple[str, float], ...]  # (entity id, P(positive)) for the leading entities

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        return {
            "marker": self.marker, "kind": self.kind,
            "expected_information_gain": round(self.expected_information_gain, 4),
            "expected_positive": {e: round(p, 3) for e, p in self.expected_positive},
        }


@dataclass(frozen=True)
class PanelResult:
    """Result of :func:`interpret_panel`: ``differential`` ordered by probability (all entities)."""

    panel: Panel
    site: str | None
    differential: tuple[DifferentialEntry, ...]
    next_markers: tuple[NextMarker, ...]
    warnings: tuple[str, ...]

    @property
    def top(self) -> DifferentialEntry:
        """The most probable entity."""
        return self.differential[0]

    def to_json(self, top: int | None = None) -> dict:
        """The DESIGN.md JSON contract as a JSON-serialisable dict (use ``json.dumps`` on it).

        ``{"differential": [{"id", "name", "probability", "evidence": [...]}...], "next_markers": [{"marker",
        "expected_information_gain", ...}], "warnings": [...]}`` plus ``panel`` and ``site``; ``top`` limits the
        differential to the N most probable entities.
        """
        entries = self.differential if top is None else self.differential[:top]
        return {
            "panel": [{"marker": o.marker, "result": o.result, "event": o.event, "token": o.token}
                      for o in self.panel.observations],
            "site": self.site,
            "differential": [e.to_json() for e in entries],
            "next_markers": [m.to_json() for m in self.next_markers],
            "warnings": list(self.warnings),
        }


def _effect(lr: float, basis: str) -> str:
    if basis == "no data":
        return "neutral"
    if lr >= SUPPORT_LR:
        return "supports"
    if lr <= 1.0 / SUPPORT_LR:
        return "against"
    return "neutral"


def _evidence_for(ml: MarkerLikelihood, result: str, event: str, lik: float, lr: float) -> MarkerEvidence:
    fact = ml.site_fact or ml.fact
    if ml.site_fact is not None and ml.fact is not None:
        note = f"site data: {ml.site_fact.note} (generic: {ml.fact.fraction_positive:.0%})"
    elif fact is not None:
        note = fact.note
    else:
        note = "no data for this entity: marker average used (neutral)"
    return MarkerEvidence(
        marker=ml.marker, result=result, event=event, likelihood=lik, likelihood_ratio=lr,
        effect=_effect(lr, ml.basis),
        fraction_positive=None if fact is None or ml.basis in ("no data",) else fact.fraction_positive,
        n_cases=None if fact is None else fact.n_cases,
        evidence_level=None if fact is None else fact.evidence,
        source="" if fact is None else fact.source, note=note, basis=ml.basis)


def expected_information_gain(prior: np.ndarray, p_positive: np.ndarray) -> float:
    """Mutual information (bits) between the entity and a binary stain result.

    ``EIG = H(π) − Σ_r P(r) H(π | r)`` with P(+) = Σ_e π_e p_e (Lindley 1956; the k-diagnosis generalisation of
    ImmunoQuery's pairwise discriminating power).
    """
    h0 = entropy_bits(prior)
    gain = h0
    for lik in (p_positive, 1.0 - p_positive):
        joint = prior * lik
        p_r = joint.sum()
        if p_r > 0:
            gain -= p_r * entropy_bits(joint / p_r)
    return max(gain, 0.0)


def interpret_panel(text: str, site: str | None = None, ignore_unknown: bool = False, *,
                    n_next: int = 8, n_expected: int = 4, kb: KnowledgeBase | None = None) -> PanelResult:
    """Rank the differential for an IHC panel (see :mod:`spindledx.ihc.model` for the model).

    Parameters
    ----------
    text
        Panel in the DESIGN.md grammar, e.g. ``"actin+ desmin+ CK-pan- CD34- CD117- S-100-"``.
    site
        Optional site (lung, pleura, uterus, gi_tract, retroperitoneum, skin, soft_tissue, pulmonary_artery or an
        alias): sets the prior and selects site-specific literature rows.
    ignore_unknown
        Skip unknown markers with a warning instead of raising BadInputError.
    n_next, n_expected
        Number of next markers to propose, and of leading entities whose expected result is reported.

    Returns
    -------
    PanelResult
        Frozen result; ``differential`` holds every entity ordered by posterior probability.

    Raises
    ------
    BadInputError
        Empty panel, unknown marker (unless ``ignore_unknown``), bad result word, conflicting duplicates,
        unknown site.
    """
    kb = kb or load_knowledge_base()
    site_id = resolve_site(site, kb=kb)
    panel = parse_panel(text, ignore_unknown=ignore_unknown, kb=kb)
    ids = kb.entity_ids
    prior = prior_weights(kb, site_id)
    observations = panel.observations
    weights = group_weights(tuple(o.marker for o in observations))

    table = {}
    for o in observations:
        mls = marker_likelihoods(kb, o.marker, site_id, prior)
        for e, ml in zip(ids, mls, strict=True):
            table[(e, o.marker)] = ml
    lik = np.array([[table[(e, o.marker)].likelihood(o.event) for o in observations] for e in ids])
    w = np.array([weights[o.marker] for o in observations])
    log_lik = (np.log(lik) * w).sum(axis=1)
    post = posterior(np.log(prior), log_lik)
    # coarse fit: P(stained or not | entity), ignoring the focal/diffuse split and the group weights
    coarse = np.array([[table[(e, o.marker)].likelihood("neg" if o.event == "neg" else "pos")
                        for o in observations] for e in ids])
    fit = np.exp(np.log(coarse).mean(axis=1))

    order = np.argsort(-post, kind="stable")
    entries = []
    for idx in order:
        e = ids[idx]
        others = np.delete(np.arange(len(ids)), idx)
        other_prior = prior[others] / prior[others].sum()
        evidence = []
        for j, o in enumerate(observations):
            ml = table[(e, o.marker)]
            alt = float((other_prior * lik[others, j]).sum())
            lr = float(lik[idx, j] / alt) if alt > 0 else math.inf
            evidence.append(_evidence_for(ml, o.result, o.event, float(lik[idx, j]), lr))
        entries.append(DifferentialEntry(id=e, name=kb.entities[e].name, probability=float(post[idx]),
                                         prior=float(prior[idx]), evidence=tuple(evidence),
                                         pitfalls=kb.entities[e].pitfalls, fit=float(fit[idx])))

    tested = set(panel.markers)
    lead = [ids[i] for i in order[:n_expected]]
    candidates = []
    for marker in kb.markers.values():
        if marker.name in tested or marker.name in NON_DISCRIMINATORY:
            continue
        mls = marker_likelihoods(kb, marker.name, site_id, post)
        if not mls:
            continue
        p_pos = np.array([ml.likelihood("pos") for ml in mls])
        gain = expected_information_gain(post, p_pos)
        expected = tuple((e, float(p_pos[ids.index(e)])) for e in lead)
        candidates.append(NextMarker(marker=marker.name, kind=marker.kind, expected_information_gain=gain,
                                     expected_positive=expected))
    candidates.sort(key=lambda m: (-m.expected_information_gain, m.marker))

    warnings = list(panel.warnings)
    best = entries[0]
    if best.fit < FIT_THRESHOLD:
        warnings.append(
            f"the profile fits no entity well (best: {best.name}, mean per-stain likelihood {best.fit:.2f} < "
            f"{FIT_THRESHOLD}): re-check the stains and consider molecular testing or entities outside this "
            "knowledge base")
    elif best.probability < UNRESOLVED_TOP_P:
        warnings.append(f"differential unresolved (top probability {best.probability:.0%}): add the next markers "
                        "below or confirm with molecular testing")
    discordant = [ev.marker for ev in best.evidence if ev.likelihood < DISCORDANT_P and ev.basis != "no data"]
    if discordant:
        warnings.append(f"discordant for {best.name}: {', '.join(discordant)} (see pitfalls; repeat or add controls)")
    return PanelResult(panel=panel, site=site_id, differential=tuple(entries),
                       next_markers=tuple(candidates[:n_next]), warnings=tuple(warnings))
