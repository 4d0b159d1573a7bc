"""Likelihoods P(result | entity) from literature fractions, and the Bayesian posterior over entities.

Model (naive Bayes with three corrections, all fixed a priori, none fitted to the test cases):

1. **Beta posterior per fact.**  A fraction ``f`` reported on ``n`` cases becomes Beta(0.5 + f·n, 0.5 + (1−f)·n)
   (Jeffreys prior), with ``n`` capped at :data:`N_CAP` because series disagree more than binomial sampling
   suggests (LMS desmin: 73 % vs 93 %).  Facts without ``n`` get a pseudo-count by evidence level
   (:data:`PSEUDO_COUNTS`: estimates weigh like 8 cases, review/series figures without n like 15).  The
   likelihood of a positive stain is the posterior mean.
2. **Site variants** (e.g. primary pulmonary LMS, --site lung) update the generic fact, which acts as a prior
   worth :data:`SITE_PRIOR_COUNT` cases: lung LMS desmin 5/16 pulls the generic 79 % down to ~50 %.
3. **No data is neutral.**  When an entity has no fact for a marker, the marker's *background* (markers.csv,
   e.g. STAT6 in SFT mimics, 0/580 SS18-SSX outside SS) is used when one is given.  Otherwise the entity gets
   the marker's average over the entities that do have data, weighted by the prior (for observed stains) or by
   the current posterior (for next-marker gains): its likelihood then moves with the field and the stain does
   not change its standing.  The explanation labels these "no data" and calls them neutral.
4. **Stain error floor.**  Every likelihood is ε + (1 − 2ε)·p with ε = :data:`STAIN_ERROR` (technical or reading
   error), so one discordant stain can lower an entity by at most a factor ~1/ε and never zeroes it.
5. **Focal vs diffuse.**  ``focal`` observations have likelihood p·s and ``diffuse`` p·(1−s), s being the
   literature share of positive cases that stain focally (facts.csv ``focal_share``, e.g. 0.71 for keratin in
   LMS); where no share is known s = 0.5, which is the same for every entity and so neutral.
6. **Correlated markers.**  Markers of one lineage (e.g. SMA/MSA/calponin) are not independent; the
   log-likelihoods of the k observed markers of a group are weighted by 1/√k (:data:`MARKER_GROUPS`).

References: Vollmer RT, Am J Clin Pathol 2009;131:723 (Bayes over IHC sensitivities); Chong Y et al., Diagn
Pathol 2021 (naive Bayes IHC); ``../shared/reference/ihc_tools_survey.md`` (design notes 1-2).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from spindledx.ihc.knowledge import Fact, KnowledgeBase

N_CAP = 100
PSEUDO_COUNTS = {"estimate": 8.0, "review": 15.0, "series": 15.0, "pooled": 15.0}
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
class MarkerLikelihood:
    """P(marker positive | entity) with its basis.

    ``basis`` is ``"site"`` (site-variant row combined with the generic one), ``"entity"`` (generic row),
    ``"background"`` (marker background from markers.csv) or ``"no data"`` (p_positive is NaN here and is
    filled by :func:`marker_likelihoods` with the weighted mean of the entities that have data).
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

    def likelihood(self, event: str) -> float:
        """P(event | entity) for event ``pos``, ``neg``, ``focal`` or ``diffuse``, with the stain-error floor."""
        p = STAIN_ERROR + (1.0 - 2.0 * STAIN_ERROR) * self.p_positive
        if event == "pos":
            return p
        if event == "neg":
            return 1.0 - p
        if event == "focal":
            return p * self.focal_share
        if event == "diffuse":
            return p * (1.0 - self.focal_share)
        raise ValueError(f"unknown event {event!r}")


def effective_count(fact: Fact) -> float:
    """Cases a fact counts for: its n (capped at N_CAP), or the pseudo-count of its evidence level."""
    if fact.evidence == "estimate":
        cap = PSEUDO_COUNTS["estimate"]
        return float(min(fact.n_cases, cap)) if fact.n_cases else cap
    if fact.n_cases:
        return float(min(fact.n_cases, N_CAP))
    return PSEUDO_COUNTS[fact.evidence]


def beta_parameters(fact: Fact) -> tuple[float, float]:
    """Beta posterior (alpha, beta) of the positive fraction: Jeffreys prior + the fact's weighted cases."""
    n = effective_count(fact)
    k = fact.fraction_positive * n
    return JEFFREYS + k, JEFFREYS + n - k


def marker_likelihood(kb: KnowledgeBase, entity: str, marker: str, site: str | None = None) -> MarkerLikelihood:
    """P(marker positive | entity [, site]) following the rules of the module docstring."""
    generic = kb.facts.get((entity, marker, ""))
    variant = kb.facts.get((entity, marker, site)) if site else None
    if generic is None and variant is None:
        # a site-specific row is used for other sites too when it is the only data the entity has
        others = [f for (e, m, s), f in kb.facts.items() if e == entity and m == marker and s]
        generic = others[0] if len(others) == 1 else None
    if generic is not None:
        a, b = beta_parameters(generic)
        basis = "entity"
        focal = generic.focal_share
        if variant is not None:
            mean = a / (a + b)
            n_v = effective_count(variant)
            k_v = variant.fraction_positive * n_v
            a = mean * SITE_PRIOR_COUNT + k_v
            b = (1.0 - mean) * SITE_PRIOR_COUNT + n_v - k_v
            basis = "site"
            focal = variant.focal_share if variant.focal_share is not None else focal
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=DEFAULT_FOCAL_SHARE if focal is None else focal, basis=basis,
                                fact=generic, site_fact=variant)
    if variant is not None:
        a, b = beta_parameters(variant)
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=variant.focal_share or DEFAULT_FOCAL_SHARE, basis="site", fact=None,
                                site_fact=variant)
    background = kb.markers[marker].background
    if background is not None:
        a, b = beta_parameters(background)
        return MarkerLikelihood(entity=entity, marker=marker, p_positive=a / (a + b), alpha=a, beta=b,
                                focal_share=DEFAULT_FOCAL_SHARE, basis="background", fact=background)
    return MarkerLikelihood(entity=entity, marker=marker, p_positive=math.nan, alpha=math.nan, beta=math.nan,
                            focal_share=DEFAULT_FOCAL_SHARE, basis="no data", fact=None)


def marker_likelihoods(kb: KnowledgeBase, marker: str, site: str | None, weights: np.ndarray) -> list[MarkerLikelihood]:
    """:func:`marker_likelihood` for every entity of ``kb.entity_ids``, "no data" entries made neutral.

    A "no data" entity gets the ``weights``-weighted mean P(positive) of the entities with data (module
    docstring, rule 3).  Returns an empty list when no entity has data for the marker.
    """
    mls = [marker_likelihood(kb, e, marker, site) for e in kb.entity_ids]
    known = np.array([ml.basis != "no data" for ml in mls])
    if not known.any():
        return []
    p = np.array([ml.p_positive if k else 0.0 for ml, k in zip(mls, known, strict=True)])
    w = np.asarray(weights, dtype=float) * known
    mean = float((w * p).sum() / w.sum()) if w.sum() > 0 else float(p[known].mean())
    return [ml if k else dataclasses.replace(ml, p_positive=mean) for ml, k in zip(mls, known, strict=True)]


def prior_weights(kb: KnowledgeBase, site: str | None) -> np.ndarray:
    """Normalised prior over ``kb.entity_ids``: uniform without a site, else the site's relative weights."""
    ids = kb.entity_ids
    if site is None:
        return np.full(len(ids), 1.0 / len(ids))
    table = kb.site_priors[site]
    floor = table["*"].weight
    w = np.array([table[e].weight if e in table else floor for e in ids], dtype=float)
    return w / w.sum()


def group_weights(markers: tuple[str, ...]) -> dict[str, float]:
    """Weight 1/√k for each marker whose lineage group has k observed members (1 for ungrouped markers)."""
    weights = {m: 1.0 for m in markers}
    for members in MARKER_GROUPS.values():
        present = [m for m in markers if m in members]
        for m in present:
            weights[m] = 1.0 / math.sqrt(len(present))
    return weights


def entropy_bits(p: np.ndarray) -> float:
    """Shannon entropy in bits of a probability vector."""
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def posterior(log_prior: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    """Normalised posterior from log prior and summed log likelihoods (stable softmax)."""
    z = log_prior + log_lik
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()
