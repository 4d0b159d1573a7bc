"""Evidence columns: one likelihood per entity for each stain, morphological finding or clinical finding.

A column holds P(observation | entity) for every entity of the knowledge base, and for each entity where that
figure comes from (``basis``: the literature row, a background / specificity figure, or "no data" with the
reason).  The interpreter sums the weighted log-likelihoods of the columns; the explanation shows each column
with its likelihood ratio like a stain.

Morphology (``morphology.csv``: P(feature value | entity)):

* mitoses and atypia are categorical over 4 values: Dirichlet posterior mean (p·n + ½) / (n + 4·½) (Jeffreys),
  necrosis and each described pattern are binary: (p·n + ½) / (n + 1), n being the number of cases (capped at
  :data:`~spindledx.ihc.model.N_CAP`) or the pseudo-count of the evidence level (as for stains);
* a floor ε = :data:`~spindledx.ihc.model.STAIN_ERROR` per value (reading error: ε + (1 − kε)·p);
* only *described* patterns count (a pattern not mentioned is not evidence against an entity).

Clinical (``clinical.csv``):

* age: log-normal density fitted to the median and interquartile range (σ = ln(Q3/Q1) / 1.349), or to the
  median and range when quartiles are not given: σ = ln(max/min) / ξ(n) with ξ(n) = 2·Φ⁻¹((n − 0.375)/(n + 0.25)),
  the expected range of n normal draws in SDs (Wan X et al., BMC Med Res Methodol 2014;14:135, doi:10.1186/
  1471-2288-14-135: ξ ≈ 4 for 30 cases, 6.5 for 1,000; 4 when n is not given), mixed with a uniform 0-100 years
  density for :data:`AGE_OUTLIER_SHARE` of patients (heavy tails: an unusual age lowers an entity, never
  excludes it);
* sex: P(F | entity) = Beta posterior mean of the female fraction (Jeffreys), P(M) = 1 − P(F).

An entity without a figure gets the prior-weighted mean likelihood of the entities that have one (neutral:
its standing does not change) and the explanation says "no data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spindledx.ihc.findings import Findings
from spindledx.ihc.knowledge import ATYPIA_LEVELS, MITOSIS_BANDS, Clinical, KnowledgeBase, MorphologyFact
from spindledx.ihc.model import JEFFREYS, N_CAP, PSEUDO_COUNTS, STAIN_ERROR, ModelConstants

AGE_OUTLIER_SHARE = 0.05  # share of patients outside the fitted age distribution (uniform over 0-100 years)
AGE_UNIFORM_DENSITY = 1.0 / 100.0
IQR_TO_SIGMA = 1.349  # interquartile range of a standard normal
RANGE_TO_SIGMA = 4.0  # the range of a series of a few dozen cases spans about +-2 SD (used when n is not given)


@dataclass(frozen=True)
class CellInfo:
    """Where one entity's likelihood in a column comes from."""

    basis: str  # "site", "entity", "pair background", "background", "no data", "literature"
    fraction: float | None = None  # the literature figure (fraction positive / probability / female fraction)
    n_cases: int | None = None
    evidence_level: str | None = None
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class EvidenceColumn:
    """P(observation | entity) over ``kb.entity_ids`` for one observation."""

    kind: str  # "stain", "morphology" or "clinical"
    item: str  # marker name or finding (mitoses, necrosis, atypia, pattern, age, sex)
    result: str  # as given (``+``, ``11/10HPF``, ``68``)
    event: str  # model event (pos/neg/focal/diffuse, band, level, pattern word, F/M)
    likelihood: np.ndarray
    weight: float  # log-likelihood weight (lineage groups, evidence weight)
    cells: tuple[CellInfo, ...]
    fit: np.ndarray | None = None  # stains only: P(stained or not | entity), for the coarse fit
    typical_mean: np.ndarray | None = None  # stains only: E[log P(result | e)] over e's own results
    typical_var: np.ndarray | None = None  # stains only: Var[log P(result | e)] over e's own results


def neutral_fill(values: np.ndarray, known: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Replace unknown entries by the prior-weighted mean of the known ones (all equal 1 when none is known)."""
    if not known.any():
        return np.ones_like(values)
    w = prior * known
    mean = float((w * values).sum() / w.sum()) if w.sum() > 0 else float(values[known].mean())
    return np.where(known, values, mean)


def _count(n_cases: int | None, evidence: str, constants: ModelConstants) -> float:
    if evidence in ("estimate", "elicited"):
        return float(min(n_cases, constants.estimate_count)) if n_cases else constants.estimate_count
    if n_cases:
        return float(min(n_cases, N_CAP))
    return PSEUDO_COUNTS[evidence]


def _info(fact: MorphologyFact | None, basis: str = "literature", note: str | None = None) -> CellInfo:
    if fact is None:
        return CellInfo(basis="no data", note=note or "no figure for this entity: average of the others (neutral)")
    return CellInfo(basis=basis, fraction=fact.probability, n_cases=fact.n_cases, evidence_level=fact.evidence,
                    source=fact.source, note=fact.note if note is None else note)


def categorical_column(kb: KnowledgeBase, feature: str, levels: tuple[str, ...], value: str, result: str,
                       prior: np.ndarray, constants: ModelConstants) -> EvidenceColumn:
    """Column for a categorical feature (mitoses band, atypia level) observed at ``value``."""
    k = len(levels)
    lik = np.zeros(len(kb.entity_ids))
    known = np.zeros(len(kb.entity_ids), dtype=bool)
    cells = []
    for i, e in enumerate(kb.entity_ids):
        rows = [kb.morphology.get((e, feature, lv)) for lv in levels]
        present = [r for r in rows if r is not None]
        if not present:
            cells.append(_info(None))
            continue
        n = min(_count(r.n_cases, r.evidence, constants) for r in present)
        row = kb.morphology.get((e, feature, value))
        p = 0.0 if row is None else row.probability
        mean = (p * n + JEFFREYS) / (n + k * JEFFREYS)
        lik[i] = STAIN_ERROR + (1.0 - k * STAIN_ERROR) * mean
        known[i] = True
        cells.append(_info(row) if row is not None else CellInfo(
            basis="literature", fraction=0.0, n_cases=present[0].n_cases, evidence_level=present[0].evidence,
            source=present[0].source, note=f"no {feature} = {value} in the figures given for this entity"))
    return EvidenceColumn(kind="morphology", item=feature, result=result, event=value,
                          likelihood=neutral_fill(lik, known, prior), weight=constants.evidence_weight,
                          cells=tuple(cells))


def binary_column(kb: KnowledgeBase, feature: str, value: str, present: bool, result: str, prior: np.ndarray,
                  constants: ModelConstants) -> EvidenceColumn:
    """Column for a binary feature (necrosis yes, a described pattern) observed present or absent."""
    lik = np.zeros(len(kb.entity_ids))
    known = np.zeros(len(kb.entity_ids), dtype=bool)
    cells = []
    for i, e in enumerate(kb.entity_ids):
        row = kb.morphology.get((e, feature, value))
        cells.append(_info(row))
        if row is None:
            continue
        n = _count(row.n_cases, row.evidence, constants)
        mean = (row.probability * n + JEFFREYS) / (n + 2 * JEFFREYS)
        p = STAIN_ERROR + (1.0 - 2 * STAIN_ERROR) * mean
        lik[i] = p if present else 1.0 - p
        known[i] = True
    event = value if present else f"no {value}"
    return EvidenceColumn(kind="morphology", item=feature, result=result, event=event,
                          likelihood=neutral_fill(lik, known, prior), weight=constants.evidence_weight,
                          cells=tuple(cells))


def morphology_columns(kb: KnowledgeBase, findings: Findings, prior: np.ndarray,
                       constants: ModelConstants) -> list[EvidenceColumn]:
    """Columns for the mitoses band, necrosis, atypia and each described pattern that were given."""
    cols = []
    if findings.mitoses_per_10hpf is not None:
        result = f"{findings.mitoses_input} = {findings.mitoses_per_10hpf:.1f}/10 HPF of 0.2376 mm²"
        cols.append(categorical_column(kb, "mitoses", MITOSIS_BANDS, findings.mitoses_band, result, prior,
                                       constants))
    if findings.necrosis is not None:
        cols.append(binary_column(kb, "necrosis", "yes", findings.necrosis, "yes" if findings.necrosis else "no",
                                  prior, constants))
    if findings.atypia is not None:
        cols.append(categorical_column(kb, "atypia", ATYPIA_LEVELS, findings.atypia, findings.atypia, prior,
                                       constants))
    for pattern in findings.patterns:
        cols.append(binary_column(kb, "pattern", pattern, True, pattern, prior, constants))
    return cols


def range_in_sds(n_cases: int | None) -> float:
    """Expected range of ``n_cases`` normal draws in standard deviations, ξ(n) = 2·Φ⁻¹((n − 0.375)/(n + 0.25))
    (Wan et al. 2014, module docstring); :data:`RANGE_TO_SIGMA` when n is unknown or below 2."""
    if not n_cases or n_cases < 2:
        return RANGE_TO_SIGMA
    from statistics import NormalDist

    return 2.0 * NormalDist().inv_cdf((n_cases - 0.375) / (n_cases + 0.25))


def age_sigma(c: Clinical) -> tuple[float, str] | None:
    """(σ of ln age, how it was obtained) for a clinical row, or None when there is no spread."""
    if c.age_q1 and c.age_q3 and c.age_q3 > c.age_q1:
        return math.log(c.age_q3 / c.age_q1) / IQR_TO_SIGMA, "log-normal fitted to median and IQR"
    if c.age_min is not None and c.age_max and c.age_max > max(c.age_min, 1.0):
        n = c.age_n_cases or c.n_cases
        xi = range_in_sds(n)
        return (math.log(c.age_max / max(c.age_min, 1.0)) / xi,
                f"log-normal fitted to median and range, range = {xi:.1f} SD for n = {n or 'unknown'}")
    return None


def age_likelihood(c: Clinical | None, age_years: float) -> tuple[float | None, str]:
    """Density of ``age_years`` under the entity's fitted log-normal (see module docstring), with a note."""
    if c is None or not c.age_median:
        return None, "no age figures for this entity"
    fit = age_sigma(c)
    if fit is None:
        return None, f"median {c.age_median:g} years only (no quartiles or range): not used"
    sigma, how = fit
    sigma = max(sigma, 0.05)
    a = max(age_years, 1.0)
    z = (math.log(a) - math.log(max(c.age_median, 1.0))) / sigma
    density = math.exp(-0.5 * z * z) / (a * sigma * math.sqrt(2 * math.pi))
    lik = (1.0 - AGE_OUTLIER_SHARE) * density + AGE_OUTLIER_SHARE * AGE_UNIFORM_DENSITY
    quart = f", IQR {c.age_q1:g}-{c.age_q3:g}" if c.age_q1 and c.age_q3 else ""
    rng = f", range {c.age_min:g}-{c.age_max:g}" if c.age_min is not None and c.age_max else ""
    return lik, f"median {c.age_median:g}{quart}{rng} years ({how})"


def clinical_columns(kb: KnowledgeBase, findings: Findings, prior: np.ndarray,
                     constants: ModelConstants) -> list[EvidenceColumn]:
    """Columns for the age and sex that were given."""
    cols = []
    ids = kb.entity_ids
    if findings.age_years is not None:
        lik = np.zeros(len(ids))
        known = np.zeros(len(ids), dtype=bool)
        cells = []
        for i, e in enumerate(ids):
            c = kb.clinical.get(e)
            value, note = age_likelihood(c, findings.age_years)
            if value is None:
                cells.append(CellInfo(basis="no data", note=note + ": average of the others (neutral)"))
                continue
            lik[i] = value
            known[i] = True
            cells.append(CellInfo(basis="literature", fraction=None, n_cases=c.n_cases, evidence_level=c.evidence,
                                  source=c.source, note=note))
        cols.append(EvidenceColumn(kind="clinical", item="age", result=f"{findings.age_years:g}",
                                   event=f"{findings.age_years:g} years", likelihood=neutral_fill(lik, known, prior),
                                   weight=1.0, cells=tuple(cells)))
    if findings.sex is not None:
        lik = np.zeros(len(ids))
        known = np.zeros(len(ids), dtype=bool)
        cells = []
        for i, e in enumerate(ids):
            c = kb.clinical.get(e)
            if c is None or c.female_fraction is None:
                cells.append(CellInfo(basis="no data", note="no sex distribution: average of the others (neutral)"))
                continue
            n = _count(c.n_cases, c.evidence, constants)
            p_f = (c.female_fraction * n + JEFFREYS) / (n + 2 * JEFFREYS)
            p_f = STAIN_ERROR + (1.0 - 2 * STAIN_ERROR) * p_f
            lik[i] = p_f if findings.sex == "F" else 1.0 - p_f
            known[i] = True
            cells.append(CellInfo(basis="literature", fraction=c.female_fraction, n_cases=c.n_cases,
                                  evidence_level=c.evidence, source=c.source,
                                  note=f"{c.female_fraction:.0%} female" + (f"; {c.note}" if c.note else "")))
        cols.append(EvidenceColumn(kind="clinical", item="sex", result=findings.sex, event=findings.sex,
                                   likelihood=neutral_fill(lik, known, prior), weight=1.0, cells=tuple(cells)))
    return cols
