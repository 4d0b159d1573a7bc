"""Interpret an IHC panel with its clinical and H&E findings: ranked differential with explanations, next markers
by expected information gain.

Library entry point: :func:`interpret_panel` (re-exported as ``spindledx.ihc.interpret_panel``).

Posterior: log P(e | data) = [capped context(e) + w · Σ_j g_j log P(obs_j | e)] / T + const, where the context is
the log prior (population or site, :mod:`spindledx.ihc.priors`) plus the clinical log-likelihoods (age, sex), capped
so that it can never outweigh a defining stain; the observations are the stains (:mod:`spindledx.ihc.model`) and
the morphological findings (:mod:`spindledx.ihc.evidence`); g_j are the lineage-group weights, w the evidence
weight and T the temperature; the result is mixed with the uniform distribution by the doubt λ (the only fitted
constants, :class:`spindledx.ihc.model.ModelConstants`).

Explanations: for entity e and observation r, the likelihood ratio is P(r | e) divided by the context-weighted
mean of P(r | e') over the other entities e' (how much r shifts the odds of e against the rest of the field);
LR >= 2 "supports", <= 1/2 "against", otherwise (and always for "no data") "neutral".  Every item carries its
``kind`` (stain, morphology, clinical, prior), literature figure and source.  Next markers: untested markers
ranked by the expected information gain of a +/- result over the current posterior
(:func:`expected_information_gain`), reported with P(+) for each leading entity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spindledx.ihc.evidence import CellInfo, EvidenceColumn, clinical_columns, morphology_columns
from spindledx.ihc.findings import Findings, parse_findings
from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base
from spindledx.ihc.model import (
    ModelConstants,
    default_constants,
    event_likelihood,
    fill_neutral,
    group_weights,
    marker_table,
    posterior,
)
from spindledx.ihc.priors import CONTEXT_MAX_RATIO, Prior, build_prior, cap_context
from spindledx.ihc.selection import leading_terms, selection_log_likelihood
from spindledx.ihc.vocabulary import Panel, parse_panel, resolve_site

SUPPORT_LR = 2.0  # likelihood ratio >= 2 "supports", <= 1/2 "against" (a conventional, fixed cut)
FIT_THRESHOLD = 0.35  # geometric-mean P(result | best entity) below this: the profile fits nothing well
DISCORDANT_P = 0.10  # a single result with P(result | entity) below this is flagged as discordant
UNRESOLVED_TOP_P = 0.50  # top posterior below this: the differential is unresolved
OPEN_WORLD_Z = -3.0  # every entity's panel log-likelihood this many SDs below its own typical panel: none explains it
OPEN_WORLD_SHARE = 0.5  # share of probability then set aside for "none of these entities"
NON_DISCRIMINATORY = ("vimentin",)
SEX_SPECIFIC_SITES = {"uterus": "F"}


@dataclass(frozen=True)
class MarkerEvidence:
    """How one observation (a stain, a morphological or clinical finding, or the prior) bears on one entity.

    For non-stain items ``marker`` holds the finding (``mitoses``, ``necrosis``, ``atypia``, ``pattern``, ``age``,
    ``sex``, ``prior``) and ``fraction_positive`` the literature probability of the observed value.
    """

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
    basis: str  # "site", "entity", "pair background", "background", "literature", "population" or "no data"
    kind: str = "stain"  # "stain", "morphology", "clinical" or "prior"

    def to_json(self) -> dict:
        """JSON-serialisable dict."""
        out = {
            "kind": self.kind, "marker": self.marker, "result": self.result, "event": self.event,
            "likelihood": round(self.likelihood, 4), "likelihood_ratio": round(self.likelihood_ratio, 3),
            "effect": self.effect, "fraction_positive": self.fraction_positive, "n_cases": self.n_cases,
            "evidence_level": self.evidence_level, "basis": self.basis, "source": self.source, "note": self.note,
        }
        if self.kind != "stain":
            out["feature"] = self.marker
            out["value"] = self.event
        return out


@dataclass(frozen=True)
class DifferentialEntry:
    """One entity of the ranked differential."""

    id: str
    name: str
    probability: float
    prior: float
    evidence: tuple[MarkerEvidence, ...]
    pitfalls: tuple[str, ...]
    fit: float  # geometric-mean likelihood of the observed stains (0-1)

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
    findings: Findings = Findings()
    prior: Prior | None = None
    constants: ModelConstants | None = None
    unexplained: float = 0.0  # probability set aside for "none of these entities" (open world)
    panel_kinds: dict = field(default_factory=dict, compare=False)  # marker -> kind (ihc, loss, molecular, ...)
    best_typicality: float | None = None  # the best entity's z-score of panel typicality

    @property
    def top(self) -> DifferentialEntry:
        """The most probable entity."""
        return self.differential[0]

    def to_json(self, top: int | None = None) -> dict:
        """The ``panel --format json`` contract (docs/architecture.md) as a JSON-serialisable dict.

        ``{"differential": [{"id", "name", "probability", "evidence": [{"kind", ...}]}...], "next_markers":
        [{"marker", "expected_information_gain", ...}], "warnings": [...], "prior": {"basis": "population" |
        "site", ...}}`` plus ``panel``, ``site``, ``findings`` and ``model``; ``top`` limits the differential to the
        N most probable entities.
        """
        entries = self.differential if top is None else self.differential[:top]
        prior = {"basis": "site" if self.site else "population", "site": self.site}
        if self.prior is not None:
            prior = self.prior.to_json()
        model = {}
        if self.constants is not None:
            model = {"evidence_weight": self.constants.evidence_weight,
                     "estimate_count": self.constants.estimate_count,
                     "temperature": self.constants.temperature, "doubt": self.constants.doubt,
                     "constants_from": self.constants.source}
        return {
            "panel": [{"marker": o.marker, "result": o.result, "event": o.event, "token": o.token,
                       "kind": self.panel_kinds.get(o.marker, "ihc")} for o in self.panel.observations],
            "site": self.site,
            "findings": self.findings.to_json(),
            "prior": prior,
            "differential": [e.to_json() for e in entries],
            "next_markers": [m.to_json() for m in self.next_markers],
            "warnings": list(self.warnings),
            "ignored": list(self.panel.ignored),
            "open_world": {"unexplained_probability": round(self.unexplained, 4),
                           "best_typicality_z": None if self.best_typicality is None
                           else round(self.best_typicality, 2), "threshold_z": OPEN_WORLD_Z},
            "model": model,
        }


def _effect(lr: float, basis: str) -> str:
    if basis == "no data":
        return "neutral"
    if lr >= SUPPORT_LR:
        return "supports"
    if lr <= 1.0 / SUPPORT_LR:
        return "against"
    return "neutral"


def expected_information_gain(prior: np.ndarray, p_positive: np.ndarray) -> float:
    """Mutual information (bits) between the entity and a binary stain result.

    ``EIG = H(π) − Σ_r P(r) H(π | r)`` with P(+) = Σ_e π_e p_e (Lindley 1956; the k-diagnosis generalisation of
    ImmunoQuery's pairwise discriminating power).
    """
    return float(expected_information_gains(prior, np.asarray(p_positive, dtype=float)[:, None])[0])


def expected_information_gains(prior: np.ndarray, p_positive: np.ndarray) -> np.ndarray:
    """:func:`expected_information_gain` for every column of ``p_positive`` (entities x markers) at once."""
    pi = np.asarray(prior, dtype=float)[:, None]

    def _h(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=0)

    h0 = _h(pi)[0]
    gain = np.full(p_positive.shape[1], h0)
    for lik in (p_positive, 1.0 - p_positive):
        joint = pi * lik
        p_r = joint.sum(axis=0)
        safe = np.where(p_r > 0, p_r, 1.0)
        gain -= np.where(p_r > 0, p_r * _h(joint / safe), 0.0)
    return np.maximum(gain, 0.0)


def _stain_columns(kb: KnowledgeBase, panel: Panel, site: str | None, weights: np.ndarray,
                   constants: ModelConstants) -> list[EvidenceColumn]:
    table = marker_table(kb, site, constants)
    cols_idx = [table.column[o.marker] for o in panel.observations]
    filled = fill_neutral(table.p[:, cols_idx], table.known[:, cols_idx], weights)
    gweights = group_weights(panel.markers)
    columns = []
    for k, (o, j) in enumerate(zip(panel.observations, cols_idx, strict=True)):
        p = filled[:, k]
        if np.isnan(p).any():  # no entity has data for this marker: neutral for all
            p = np.full_like(p, 0.5)
        lik = event_likelihood(p, table.focal[:, j], o.event)
        fit = event_likelihood(p, table.focal[:, j], "neg" if o.event == "neg" else "pos")
        outcomes = ("neg", "pos") if o.event in ("pos", "neg") else ("neg", "focal", "diffuse")
        probs = np.column_stack([event_likelihood(p, table.focal[:, j], r) for r in outcomes])
        probs /= probs.sum(axis=1, keepdims=True)
        logs = np.log(probs)
        typical_mean = (probs * logs).sum(axis=1)
        typical_var = (probs * logs**2).sum(axis=1) - typical_mean**2
        cells = []
        reason = kb.markers[o.marker].no_background_reason
        for i in range(len(kb.entity_ids)):
            ml = table.cells[(i, j)]
            fact = ml.site_fact or ml.fact
            if ml.basis == "no data":
                note = ("no data for this entity and no background figure for this marker: marker average used "
                        "(neutral)" + (f"; reason: {reason}" if reason else ""))
                cells.append(CellInfo(basis="no data", note=note))
                continue
            if ml.elicited is not None:
                cells.append(elicited_cell(ml))
                continue
            if ml.site_fact is not None and ml.fact is not None:
                note = f"site data: {ml.site_fact.note} (generic: {ml.fact.fraction_positive:.0%})"
            else:
                note = fact.note
            cells.append(CellInfo(basis=ml.basis, fraction=fact.fraction_positive, n_cases=fact.n_cases,
                                  evidence_level=fact.evidence, source=fact.source, note=note))
        columns.append(EvidenceColumn(kind="stain", item=o.marker, result=o.result, event=o.event, likelihood=lik,
                                      weight=gweights[o.marker] * constants.evidence_weight, cells=tuple(cells),
                                      fit=fit, typical_mean=typical_mean, typical_var=typical_var))
    return columns


def _selection_column(kb: KnowledgeBase, panel: Panel, constants: ModelConstants) -> EvidenceColumn:
    """The choice of markers as evidence (:mod:`spindledx.ihc.selection`), one column over the entities."""
    tested = set(panel.markers)
    log_lik = selection_log_likelihood(kb, tested, present_weight=constants.selection_weight,
                                       absent_weight=constants.selection_absent_weight)
    log_lik = log_lik - log_lik.max()  # a common factor: only differences between entities matter
    cells = []
    for i, _ in enumerate(kb.entity_ids):
        terms = leading_terms(kb, tested, i)
        parts = [f"{t.marker} {'tested' if t.tested else 'not tested'} (reported in {t.p_reported:.0%} of work-ups)"
                 for t in terms]
        note = ("which markers were tested: " + "; ".join(parts)) if parts else (
            "the markers tested are as usual for this entity's work-up as for the others")
        cells.append(CellInfo(basis="elicited", evidence_level="elicited", note=note,
                              source="structured elicitation: the markers a published work-up states"))
    return EvidenceColumn(kind="selection", item="markers tested", result=f"{len(tested)} markers",
                          event="work-up", likelihood=np.exp(np.maximum(log_lik, -700.0)), weight=1.0,
                          cells=tuple(cells))


def panel_typicality(stains: list[EvidenceColumn]) -> np.ndarray:
    """Per entity, how typical the observed stains are of that entity, as a z-score.

    z = (Σ w_j log P(r_j | e) − Σ w_j E_e[log P(R_j | e)]) / sqrt(Σ w_j² Var_e[log P(R_j | e)]): the observed
    log-likelihood against its distribution when the results are drawn from the entity's own figures (the
    goodness-of-fit view of a naive-Bayes likelihood; Cox DR, Hinkley DV, Theoretical Statistics 1974, §3.2).
    Empty when there are no stains.
    """
    if not stains:
        return np.zeros(0)
    w = np.array([c.weight for c in stains])
    observed = (np.log(np.column_stack([c.likelihood for c in stains])) * w).sum(axis=1)
    mean = (np.column_stack([c.typical_mean for c in stains]) * w).sum(axis=1)
    var = (np.column_stack([c.typical_var for c in stains]) * w**2).sum(axis=1)
    return (observed - mean) / np.sqrt(np.maximum(var, 1e-6))


def elicited_cell(ml) -> CellInfo:
    """The explanation of a likelihood that rests on the structured elicitation (and any literature counts)."""
    fig = ml.elicited
    revised = ", revised after seeing the group's spread" if fig.rounds > 1 else ""
    note = (f"elicited: median {fig.p_median:.0%} (range {fig.p_min:.0%}-{fig.p_max:.0%}, {fig.n_elicitors} "
            f"elicitors{revised}): {fig.rationale}")
    source = fig.reference
    if ml.fact is not None:
        note += f"; updated by data: {ml.fact.note}"
        source = f"{ml.fact.source} ; {fig.reference}"
    return CellInfo(basis=ml.basis, fraction=round(ml.p_positive, 3), n_cases=ml.fact.n_cases if ml.fact else None,
                    evidence_level="elicited", source=source, note=note)


def _contradictions(site: str | None, findings: Findings) -> list[str]:
    out = []
    if site in SEX_SPECIFIC_SITES and findings.sex and findings.sex != SEX_SPECIFIC_SITES[site]:
        out.append(f"--sex {findings.sex} contradicts --site {site} (a site of the other sex): check both; the sex is "
                   "still used as given")
    return out


def interpret_panel(text: str, site: str | None = None, ignore_unknown: bool = False, *,
                    age: float | str | None = None, sex: str | None = None, mitoses: str | float | None = None,
                    necrosis: bool | str | None = None, atypia: str | None = None,
                    pattern: str | Sequence[str] | None = None, kb: KnowledgeBase | None = None,
                    n_next: int = 8, n_expected: int = 4, constants: ModelConstants | None = None) -> PanelResult:
    """Rank the differential for an IHC panel with optional clinical and H&E findings.

    Parameters
    ----------
    text
        Panel in the panel grammar (docs/architecture.md), e.g. ``"actin+ desmin+ CK-pan- CD34- CD117- S-100-"``.
    site
        Optional site (lung, pleura, uterus, gi_tract, retroperitoneum, skin, soft_tissue, pulmonary_artery or an
        alias): sets the site prior and selects site-specific literature rows.  Without it the population prior
        is used.
    ignore_unknown
        Skip unknown markers with a warning instead of raising BadInputError.
    age, sex
        Age in years (0-120) and ``"F"`` / ``"M"``: likelihoods from the cited age/sex distributions.
    mitoses
        ``"12/10HPF"``, ``"3/50HPF"``, ``"4/mm2"`` or a number (per mm²), converted to mitoses per 10 HPF of
        0.2376 mm² (:mod:`spindledx.ihc.findings`).
    necrosis
        Tumour cell necrosis: True/False or ``"yes"`` / ``"no"``.
    atypia
        ``"none"``, ``"mild"``, ``"moderate"`` or ``"marked"``.
    pattern
        A pattern word or several (comma-separated string or a sequence) from the controlled vocabulary
        (:data:`spindledx.ihc.knowledge.PATTERNS`).
    kb
        Knowledge base (default: the package's).
    n_next, n_expected
        Number of next markers to propose, and of leading entities whose expected result is reported.
    constants
        Global model constants (default: the calibrated ones, :func:`spindledx.ihc.model.default_constants`).

    Returns
    -------
    PanelResult
        Frozen result; ``differential`` holds every entity ordered by posterior probability.

    Raises
    ------
    BadInputError
        Empty panel, unknown marker (unless ``ignore_unknown``), bad result word, conflicting duplicates,
        unknown site, or a bad finding (one line naming what is accepted).

    Example: ``interpret_panel("actin+ desmin+ CK-pan- CD34-", site="lung").to_json(top=5)`` is the
    ``spindledx panel ... --format json`` document.
    """
    kb = kb or load_knowledge_base()
    constants = constants or default_constants()
    site_id = resolve_site(site, kb=kb)
    findings = parse_findings(age=age, sex=sex, mitoses=mitoses, necrosis=necrosis, atypia=atypia, pattern=pattern)
    panel = parse_panel(text, ignore_unknown=ignore_unknown, kb=kb)
    ids = kb.entity_ids
    prior = build_prior(kb, site_id)
    warnings = list(panel.warnings) + _contradictions(site_id, findings)

    clinical = clinical_columns(kb, findings, prior.weights, constants)
    log_context = np.log(prior.weights) + sum((np.log(c.likelihood) for c in clinical), np.zeros(len(ids)))
    capped = cap_context(constants.context_weight * log_context, evidence_weight=constants.evidence_weight)
    context = np.exp(capped - capped.max())
    context /= context.sum()

    columns = _stain_columns(kb, panel, site_id, context, constants)
    columns += morphology_columns(kb, findings, context, constants)
    if (constants.selection_weight > 0 or constants.selection_absent_weight > 0) and kb.reporting:
        columns.append(_selection_column(kb, panel, constants))
    lik = np.column_stack([c.likelihood for c in columns])
    w = np.array([c.weight for c in columns])
    log_lik = (np.log(lik) * w).sum(axis=1)
    post = posterior(capped, log_lik, constants.temperature, constants.doubt)
    stains = [c for c in columns if c.kind == "stain"]
    typicality = panel_typicality(stains)
    unexplained = 0.0
    if typicality.size and float(typicality.max()) < OPEN_WORLD_Z:
        unexplained = OPEN_WORLD_SHARE
        post = (1.0 - unexplained) * post
        warnings.append(
            f"no entity in the knowledge base explains this panel well (the best fit is {-typicality.max():.1f} "
            f"standard deviations below that entity's own typical panel): {unexplained:.0%} of the probability is "
            "set aside for 'none of these'; re-check the stains and consider entities outside this knowledge base")
    fit = np.exp(np.log(np.column_stack([c.fit for c in stains])).mean(axis=1))

    # explanations: each column's likelihood ratio against the context-weighted mean of the other entities
    explained = clinical + columns
    all_lik = np.column_stack([c.likelihood for c in explained])
    total = context @ all_lik
    order = np.argsort(-post, kind="stable")
    entries = []
    for idx in order:
        e = ids[idx]
        rest = 1.0 - context[idx]
        alt = (total - context[idx] * all_lik[idx]) / rest if rest > 0 else all_lik[idx]
        evidence = []
        pe = prior.entries[idx]
        others_prior = (1.0 - prior.weights[idx]) / max(len(ids) - 1, 1)
        prior_lr = float(prior.weights[idx] / others_prior) if others_prior > 0 else math.inf
        cap_note = "" if capped[idx] == log_context[idx] else (
            f"; prior x clinical capped (at most the weight of one stain with likelihood ratio {CONTEXT_MAX_RATIO:g})")
        evidence.append(MarkerEvidence(
            marker="prior", result=prior.basis, event=prior.site or "population", likelihood=float(prior.weights[idx]),
            likelihood_ratio=prior_lr, effect=_effect(prior_lr, prior.basis), fraction_positive=pe.figure,
            n_cases=None, evidence_level=pe.evidence_level, source=pe.source, note=pe.note + cap_note,
            basis=prior.basis, kind="prior"))
        for j, col in enumerate(explained):
            cell = col.cells[idx]
            lr = float(all_lik[idx, j] / alt[j]) if alt[j] > 0 else math.inf
            evidence.append(MarkerEvidence(
                marker=col.item, result=col.result, event=col.event, likelihood=float(all_lik[idx, j]),
                likelihood_ratio=lr, effect=_effect(lr, cell.basis), fraction_positive=cell.fraction,
                n_cases=cell.n_cases, evidence_level=cell.evidence_level, source=cell.source, note=cell.note,
                basis=cell.basis, kind=col.kind))
        entries.append(DifferentialEntry(id=e, name=kb.entities[e].name, probability=float(post[idx]),
                                         prior=float(prior.weights[idx]), evidence=tuple(evidence),
                                         pitfalls=kb.entities[e].pitfalls, fit=float(fit[idx])))

    next_markers: tuple[NextMarker, ...] = ()
    if n_next > 0:
        next_markers = _next_markers(kb, panel, site_id, post, order, constants, n_next, n_expected)

    best = entries[0]
    if unexplained:
        pass  # the open-world warning above says it
    elif best.fit < FIT_THRESHOLD:
        warnings.append(
            f"the profile fits no entity well (best: {best.name}, mean per-stain likelihood {best.fit:.2f} < "
            f"{FIT_THRESHOLD}): re-check the stains and consider molecular testing or entities outside this "
            "knowledge base")
    elif best.probability < UNRESOLVED_TOP_P:
        warnings.append(f"differential unresolved (top probability {best.probability:.0%}): add the next markers "
                        "below or confirm with molecular testing")
    discordant = [ev.marker for ev in best.evidence
                  if ev.kind == "stain" and ev.likelihood < DISCORDANT_P and ev.basis != "no data"]
    if discordant:
        warnings.append(f"discordant for {best.name}: {', '.join(discordant)} (see pitfalls; repeat or add controls)")
    return PanelResult(panel=panel, site=site_id, differential=tuple(entries), next_markers=next_markers,
                       warnings=tuple(warnings), findings=findings, prior=prior, constants=constants,
                       unexplained=unexplained, panel_kinds={m: kb.markers[m].kind for m in panel.markers},
                       best_typicality=float(typicality.max()) if typicality.size else None)


def _next_markers(kb: KnowledgeBase, panel: Panel, site: str | None, post: np.ndarray, order: np.ndarray,
                  constants: ModelConstants, n_next: int, n_expected: int) -> tuple[NextMarker, ...]:
    table = marker_table(kb, site, constants)
    tested = set(panel.markers)
    cols = [j for j, m in enumerate(table.markers)
            if m not in tested and m not in NON_DISCRIMINATORY and table.known[:, j].any()]
    if not cols:
        return ()
    p = fill_neutral(table.p[:, cols], table.known[:, cols], post)
    p_pos = event_likelihood(p, table.focal[:, cols], "pos")
    gains = expected_information_gains(post, p_pos)
    lead = order[:n_expected]
    candidates = []
    for k, j in enumerate(cols):
        name = table.markers[j]
        expected = tuple((kb.entity_ids[i], float(p_pos[i, k])) for i in lead)
        candidates.append(NextMarker(marker=name, kind=kb.markers[name].kind,
                                     expected_information_gain=float(gains[k]), expected_positive=expected))
    candidates.sort(key=lambda m: (-m.expected_information_gain, m.marker))
    return tuple(candidates[:n_next])
