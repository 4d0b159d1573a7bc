"""Likelihoods P(result | entity) from literature fractions, and the Bayesian posterior over entities.

Model (naive Bayes with a few corrections, all fixed a priori except the global constants of
:class:`ModelConstants`, which are fitted by cross-validation on the project's own cases, ``scripts/calibrate_ihc.py``):

1. **Beta posterior per fact.**  A fraction ``f`` reported on ``n`` cases becomes Beta(0.5 + f·n, 0.5 + (1−f)·n)
   (Jeffreys prior), with ``n`` capped at :data:`N_CAP` because series disagree more than binomial sampling
   suggests (LMS desmin: 73 % vs 93 %).  Facts without ``n`` get a pseudo-count by evidence level
   (:data:`PSEUDO_COUNTS`); an *estimate* counts for :attr:`ModelConstants.estimate_count` cases (at least
   :data:`MIN_ESTIMATE_COUNT`, so that a textbook "never" (0 %) stays below 2.5 %).  The likelihood of a
   positive stain is the posterior mean.
2. **Site variants** (e.g. primary pulmonary LMS, --site lung) update the generic fact, which acts as a prior
   worth :data:`SITE_PRIOR_COUNT` cases: lung LMS desmin 5/16 pulls the generic 79 % down to ~50 %.
3. **Entities without a series use the structured elicitation.**  The elicitors' median becomes a Beta whose
   weight follows their spread (:func:`elicited_count`); an entity's own specificity counts
   (``entity_marker_background.csv``, e.g. "0 of 30 LMS were STAT6+") update it.  Every cell of the knowledge
   base has a figure; the marker background (markers.csv) and a neutral fill remain only for a knowledge base
   without the elicitation.
4. **Stain error floor.**  Every likelihood is ε + (1 − 2ε)·p with ε = :data:`STAIN_ERROR` (technical or reading
   error), so one discordant stain can lower an entity by at most a factor ~1/ε and never zeroes it.
5. **Focal vs diffuse.**  ``focal`` observations have likelihood p·s and ``diffuse`` p·(1−s), s being the
   literature share of positive cases that stain focally (facts.csv ``focal_share``, floored like a stain:
   ε + (1 − 2ε)·s, so a share of 0 or 1 never gives a zero likelihood); where no share is known s = 0.5, which
   is the same for every entity and so neutral.
6. **Correlated markers.**  Markers of one lineage (e.g. SMA/MSA/calponin) are not independent; the
   log-likelihoods of the k observed markers of a group are weighted by 1/√k (:data:`MARKER_GROUPS`).
7. **Evidence weight.**  All stain and morphology log-likelihoods are multiplied by
   :attr:`ModelConstants.evidence_weight` (< 1 tempers the naive-Bayes over-confidence of many partly
   dependent results; Chong 2021 discusses the same effect).

References: Vollmer RT, Am J Clin Pathol 2009;131:723 (Bayes over IHC sensitivities); Chong Y et al., Diagn
Pathol 2021 (naive Bayes IHC); docs/methods/ihc.md.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from spindledx.ihc.knowledge import ElicitedFigure, Fact, KnowledgeBase

N_CAP = 100
MIN_ESTIMATE_COUNT = 20.0
PSEUDO_COUNTS = {"review": 15.0, "series": 15.0, "pooled": 15.0, "registry": 15.0}
JEFFREYS = 0.5
SITE_PRIOR_COUNT = 10.0
STAIN_ERROR = 0.01
DEFAULT_FOCAL_SHARE = 0.5

MARKER_GROUPS: dict[str, tuple[str, ...]] = {
    "muscle actins": ("SMA", "MSA", "calponin"),
    "smooth muscle": ("h-caldesmon", "smooth muscle myosin"),
    "skeletal muscle": ("myogenin", "MyoD1"),
    "keratins": ("pan-cytokeratin", "CAM5.2", "CK7", "CK5/6"),
    "melanocytic": ("HMB45", "Melan-A", "MiTF"),
    "neural crest": ("S100", "SOX10"),
    "endothelial": ("CD31", "ERG", "FLI1", "factor VIII"),
    "FDC": ("CD21", "CD35", "CD23", "clusterin"),
    "GIST": ("CD117", "DOG1"),
    "12q amplicon": ("MDM2", "CDK4", "MDM2 FISH"),
    "SS fusion": ("SS18-SSX", "SSX C-terminus"),
    "beta-catenin pathway": ("beta-catenin", "CTNNB1 mutation"),
    "mesothelial": ("D2-40", "calretinin", "WT1"),
    "hormone receptors": ("ER", "PR"),
}


@dataclass(frozen=True)
class ModelConstants:
    """The global constants fitted by ``scripts/calibrate_ihc.py`` (and only these).

    ``evidence_weight`` multiplies stain/morphology log-likelihoods; ``estimate_count`` is the pseudo-count of an
    evidence=estimate figure (>= :data:`MIN_ESTIMATE_COUNT`); ``temperature`` divides the final log-posterior;
    ``elicited_count`` caps the cases an elicited figure counts for and ``elicited_sd_floor`` is the smallest
    logit-scale spread it is given (:func:`elicited_count`: elicitors who agree still share one school);
    ``selection_weight`` and ``selection_absent_weight`` weigh the evidence of which markers were tested and of
    which usual ones were not (:mod:`spindledx.ihc.selection`);
    ``context_weight`` (in (0, 1]) multiplies the log of the prior x clinical context: the incidence of an entity among
    all spindle-cell tumours overstates its share of the tumours that get an immunohistochemical work-up (a
    typical uterine leiomyoma is diagnosed on H&E alone), so the prior may count for less than its face value;
    ``doubt`` (λ, in [0, 0.5)) is the share of probability kept outside the model: the reported posterior is
    (1 − λ)·p + λ/N over the N entities (an ε-contamination of the model, Berger JO, Statistical Decision Theory and
    Bayesian Analysis, 2nd ed. 1985, §4.7), so that no entity falls below λ/N and the top entity stays below
    1 − λ(N − 1)/N when the knowledge base is wrong about a case (a discordant stain beyond the error floor, an
    entity described differently in practice than in the series).
    """

    evidence_weight: float = 1.0
    estimate_count: float = 30.0
    temperature: float = 1.0
    doubt: float = 0.0
    elicited_count: float = 100.0
    elicited_sd_floor: float = 0.5
    selection_weight: float = 0.0
    selection_absent_weight: float = 0.0
    context_weight: float = 1.0
    source: str = "defaults (uncalibrated)"

    def __post_init__(self) -> None:
        if not (self.evidence_weight > 0 and self.temperature > 0 and self.estimate_count >= MIN_ESTIMATE_COUNT
                and 0.0 <= self.doubt < 0.5 and self.elicited_count > 0 and self.selection_weight >= 0
                and self.selection_absent_weight >= 0 and self.elicited_sd_floor > 0
                and 0 < self.context_weight <= 1):
            raise ValueError(f"invalid model constants {self}")


@functools.lru_cache(maxsize=1)
def default_constants() -> ModelConstants:
    """Constants from the package's ``data/calibration.json`` when present, else the uncalibrated defaults."""
    path = resources.files("spindledx.ihc").joinpath("data", "calibration.json")
    if not path.is_file():
        return ModelConstants()
    data = json.loads(path.read_text(encoding="utf-8"))
    return ModelConstants(evidence_weight=float(data["evidence_weight"]),
                          estimate_count=float(data["estimate_count"]),
                          temperature=float(data.get("temperature", 1.0)),
                          doubt=float(data.get("doubt", 0.0)),
                          elicited_count=float(data.get("elicited_count", 100.0)),
                          elicited_sd_floor=float(data.get("elicited_sd_floor", 0.5)),
                          selection_weight=float(data.get("selection_weight", 0.0)),
                          selection_absent_weight=float(data.get("selection_absent_weight", 0.0)),
                          context_weight=float(data.get("context_weight", 1.0)),
                          source=f"data/calibration.json ({data.get('method', 'cross-validated')})")


@dataclass(frozen=True)
class MarkerLikelihood:
    """P(marker positive | entity) with its basis.

    ``basis`` is ``"site"`` (site-variant row combined with the generic one), ``"entity"`` (generic row),
    ``"pair background"`` (entity_marker_background.csv), ``"background"`` (marker background from markers.csv)
    or ``"no data"`` (p_positive is NaN here and is filled with the weighted mean of the entities that have data).
    """

    entity: str
    marker: str
    p_positive: float
    alpha: float
    beta: float
    focal_share: float
    basis: str
    fact: Fact | None
    site_fact: Fact | None = None
    elicited: ElicitedFigure | None = None

    def likelihood(self, event: str) -> float:
        """P(event | entity) for event ``pos``, ``neg``, ``focal`` or ``diffuse``, with the stain-error floor."""
        return event_likelihood(self.p_positive, self.focal_share, event)


def event_likelihood(p_positive, focal_share, event: str):
    """P(event | entity) from P(positive) and the focal share, with the stain-error floor (rule 4).

    Works on floats and numpy arrays alike.
    """
    p = STAIN_ERROR + (1.0 - 2.0 * STAIN_ERROR) * p_positive
    focal_share = STAIN_ERROR + (1.0 - 2.0 * STAIN_ERROR) * focal_share  # a focal/diffuse reading error too
    if event == "pos":
        return p
    if event == "neg":
        return 1.0 - p
    if event == "focal":
        return p * focal_share
    if event == "diffuse":
        return p * (1.0 - focal_share)
    raise ValueError(f"unknown event {event!r}")


def effective_count(fact: Fact, constants: ModelConstants | None = None) -> float:
    """Cases a fact counts for: its n (capped at N_CAP), or the pseudo-count of its evidence level."""
    if fact.evidence in ("estimate", "elicited"):
        cap = (constants or default_constants()).estimate_count
        return float(min(fact.n_cases, cap)) if fact.n_cases else cap
    if fact.n_cases:
        return float(min(fact.n_cases, N_CAP))
    return PSEUDO_COUNTS[fact.evidence]


def beta_parameters(fact: Fact, constants: ModelConstants | None = None) -> tuple[float, float]:
    """Beta posterior (alpha, beta) of the positive fraction: Jeffreys prior + the fact's weighted cases."""
    n = effective_count(fact, constants)
    k = fact.fraction_positive * n
    return JEFFREYS + k, JEFFREYS + n - k


def elicited_count(figure: ElicitedFigure, constants: ModelConstants | None = None) -> float:
    """Cases an elicited figure counts for: the Beta whose logit has the elicitors' spread.

    A Beta(n·m, n·(1 − m)) has a logit variance of about 1 / (n·m·(1 − m)), so n = 1 / (σ²·m·(1 − m)) with σ the
    elicitors' standard deviation on the logit scale (floored at :attr:`ModelConstants.elicited_sd_floor`) and m the
    median; capped at :attr:`ModelConstants.elicited_count`.  A wide disagreement is thus weak evidence (O'Hagan A
    et al., Uncertain Judgements: Eliciting Experts' Probabilities, Wiley 2006, ch. 9: pooling by fitting a
    distribution).
    """
    constants = constants or default_constants()
    cap = constants.elicited_count
    m = min(max(figure.p_median, 0.005), 0.995)
    sd = max(figure.logit_sd, constants.elicited_sd_floor)
    return float(min(cap, 1.0 / (sd * sd * m * (1.0 - m))))


def elicited_beta(figure: ElicitedFigure, constants: ModelConstants | None = None) -> tuple[float, float]:
    """Beta (alpha, beta) of an elicited figure: Jeffreys prior + :func:`elicited_count` cases at the median."""
    n = elicited_count(figure, constants)
    return JEFFREYS + n * figure.p_median, JEFFREYS + n * (1.0 - figure.p_median)


def site_rows(kb: KnowledgeBase) -> dict[tuple[str, str], list[Fact]]:
    """Site-specific facts indexed by (entity, marker) (cached on the knowledge base)."""
    index = kb.cache.get("site_rows")
    if index is None:
        index = {}
        for (e, m, s), f in kb.facts.items():
            if s:
                index.setdefault((e, m), []).append(f)
        kb.cache["site_rows"] = index
    return index


def marker_likelihood(kb: KnowledgeBase, entity: str, marker: str, site: str | None = None,
                      constants: ModelConstants | None = None) -> MarkerLikelihood:
    """P(marker positive | entity [, site]) following the rules of the module docstring."""
    generic = kb.facts.get((entity, marker, ""))
    variant = kb.facts.get((entity, marker, site)) if site else None
    elicited = kb.elicited.get((entity, marker))
    if elicited is not None and generic is not None and generic.evidence == "estimate":
        generic = None  # an unstructured estimate gives way to the structured elicitation of the same cell
    if generic is None and variant is None and elicited is not None:
        a, b = elicited_beta(elicited, constants)
        pair = kb.pair_background.get((entity, marker))
        basis = "elicited"
        if pair is not None:  # literature counts update the elicited figure, never the other way round
            n = effective_count(pair, constants)
            a, b = a + pair.fraction_positive * n, b + (1.0 - pair.fraction_positive) * n
            basis = "elicited + data"
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=elicited.focal_median, basis=basis, fact=pair, elicited=elicited)
    if generic is None and variant is None:
        # a site-specific row is used for other sites too when it is the only data the entity has
        others = site_rows(kb).get((entity, marker), [])
        generic = others[0] if len(others) == 1 else None
    if generic is not None:
        a, b = beta_parameters(generic, constants)
        basis = "entity"
        focal = generic.focal_share
        if variant is not None:
            mean = a / (a + b)
            n_v = effective_count(variant, constants)
            k_v = variant.fraction_positive * n_v
            a = mean * SITE_PRIOR_COUNT + k_v
            b = (1.0 - mean) * SITE_PRIOR_COUNT + n_v - k_v
            basis = "site"
            focal = variant.focal_share if variant.focal_share is not None else focal
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=DEFAULT_FOCAL_SHARE if focal is None else focal, basis=basis,
                                fact=generic, site_fact=variant)
    if variant is not None:
        a, b = beta_parameters(variant, constants)
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=variant.focal_share or DEFAULT_FOCAL_SHARE, basis="site", fact=None,
                                site_fact=variant)
    for basis, background in (("pair background", kb.pair_background.get((entity, marker))),
                              ("background", kb.markers[marker].background)):
        if background is not None:
            a, b = beta_parameters(background, constants)
            return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                    focal_share=DEFAULT_FOCAL_SHARE, basis=basis, fact=background)
    return MarkerLikelihood(entity=entity, marker=marker, p_positive=math.nan, alpha=math.nan, beta=math.nan,
                            focal_share=DEFAULT_FOCAL_SHARE, basis="no data", fact=None)


@dataclass(frozen=True)
class MarkerTable:
    """Every entity x marker likelihood for one site, as arrays (rows: ``kb.entity_ids``, columns: ``markers``).

    ``p`` holds P(positive) with NaN where ``known`` is False ("no data": filled per call by
    :func:`fill_neutral`); ``cells[(i, j)]`` keeps the :class:`MarkerLikelihood` for explanations.
    """

    markers: tuple[str, ...]
    column: dict
    p: np.ndarray
    focal: np.ndarray
    known: np.ndarray
    cells: dict


def marker_table(kb: KnowledgeBase, site: str | None, constants: ModelConstants | None = None) -> MarkerTable:
    """The (cached) :class:`MarkerTable` of ``kb`` for ``site`` and ``constants``."""
    constants = constants or default_constants()
    key = ("marker_table", site, constants.estimate_count)
    table = kb.cache.get(key)
    if table is None:
        names = tuple(kb.markers)
        ids = kb.entity_ids
        p = np.full((len(ids), len(names)), np.nan)
        focal = np.full_like(p, DEFAULT_FOCAL_SHARE)
        cells = {}
        for i, e in enumerate(ids):
            for j, m in enumerate(names):
                ml = marker_likelihood(kb, e, m, site, constants)
                cells[(i, j)] = ml
                p[i, j] = ml.p_positive
                focal[i, j] = ml.focal_share
        known = ~np.isnan(p)
        table = MarkerTable(markers=names, column={m: j for j, m in enumerate(names)}, p=p, focal=focal,
                            known=known, cells=cells)
        kb.cache[key] = table
    return table


def fill_neutral(p: np.ndarray, known: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Replace "no data" cells of P(positive) (entities x markers) by the ``weights``-weighted mean of the
    entities with data for that marker (rule 3); columns without any data stay NaN."""
    w = np.asarray(weights, dtype=float)[:, None] * known
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, (w * np.where(known, p, 0.0)).sum(axis=0) / np.where(total > 0, total, 1.0),
                        np.nan)
    return np.where(known, p, mean[None, :])


def group_weights(markers: tuple[str, ...]) -> dict[str, float]:
    """Weight 1/√k for each marker whose lineage group has k observed members (1 for ungrouped markers)."""
    weights = {m: 1.0 for m in markers}
    for members in MARKER_GROUPS.values():
        present = [m for m in markers if m in members]
        for m in present:
            weights[m] = 1.0 / math.sqrt(len(present))
    return weights


def posterior(log_prior: np.ndarray, log_lik: np.ndarray, temperature: float = 1.0, doubt: float = 0.0) -> np.ndarray:
    """Normalised posterior from log prior and summed log likelihoods (stable softmax, optional temperature),
    mixed with the uniform distribution by ``doubt`` (:class:`ModelConstants`)."""
    z = (log_prior + log_lik) / temperature
    z = z - z.max()
    p = np.exp(z)
    p /= p.sum()
    return (1.0 - doubt) * p + doubt / p.size
