"""Which markers were tested: the work-up a pathologist orders carries the impression formed on the H&E.

A report of Kaposi sarcoma almost always states HHV8, one of solitary fibrous tumour STAT6, one of synovial sarcoma
an SS18 test: the choice of stains is evidence in itself (the ordering pathologist's morphological impression).
For each entity e and marker m the knowledge base holds P(m is reported | e) (``reporting.csv``, a structured
elicitation: the median of independent elicitors, each listing the markers a published work-up of the entity
states with probability >= 0.25; a marker an elicitor did not list counts as :data:`UNLISTED_REPORTED` in that
elicitor's answer, and a marker no elicitor listed for the entity is :data:`UNLISTED_REPORTED`).

The selection log-likelihood of entity e is Σ_m [a t_m log q_em + b (1 − t_m) log(1 − q_em)] over the markers of
the knowledge base (t_m = 1 when m was tested), a and b being :attr:`ModelConstants.selection_weight` and
:attr:`ModelConstants.selection_absent_weight` (fitted by cross-validation; 0 switches a term off).  This is the
verification-bias view of a diagnostic work-up (Begg CB, Greenes RA, Biometrics 1983;39:207): which tests were done
depends on the suspected diagnosis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spindledx.ihc.knowledge import KnowledgeBase

UNLISTED_REPORTED = 0.10  # "rarely reported" (below the elicitors' listing threshold of 0.25)
Q_FLOOR = 0.02  # no marker is certain to be tested or left out (q kept in [Q_FLOOR, 1 - Q_FLOOR])
NOT_SELECTION_EVIDENCE = ("vimentin",)  # tested in nearly every report of every entity: carries no impression


@dataclass(frozen=True)
class SelectionTerm:
    """One marker's contribution to an entity's selection log-likelihood."""

    marker: str
    tested: bool
    p_reported: float
    log_likelihood: float


def reporting_table(kb: KnowledgeBase) -> tuple[tuple[str, ...], np.ndarray]:
    """(markers, q) with q[i, j] = P(marker j reported | entity i), cached on the knowledge base."""
    cached = kb.cache.get("reporting_table")
    if cached is None:
        markers = tuple(m for m in kb.markers if m not in NOT_SELECTION_EVIDENCE)
        q = np.full((len(kb.entity_ids), len(markers)), UNLISTED_REPORTED)
        for i, e in enumerate(kb.entity_ids):
            for j, m in enumerate(markers):
                fig = kb.reporting.get((e, m))
                if fig is not None:
                    q[i, j] = fig.p_median
        cached = kb.cache["reporting_table"] = (markers, np.clip(q, Q_FLOOR, 1.0 - Q_FLOOR))
    return cached


def selection_log_likelihood(kb: KnowledgeBase, tested: set[str], *, present_weight: float = 1.0,
                             absent_weight: float = 1.0) -> np.ndarray:
    """Per entity, the weighted log P(this set of markers tested | entity) (module docstring): the tested markers'
    terms times ``present_weight``, the untested ones' times ``absent_weight`` (a published panel as abstracted
    often omits stains the full report gives, so an absence counts for less); zeros without reporting data."""
    if not kb.reporting:
        return np.zeros(len(kb.entity_ids))
    markers, q = reporting_table(kb)
    t = np.array([m in tested for m in markers], dtype=float)
    return (present_weight * t * np.log(q) + absent_weight * (1.0 - t) * np.log1p(-q)).sum(axis=1)


def leading_terms(kb: KnowledgeBase, tested: set[str], entity_index: int, *, n: int = 3) -> list[SelectionTerm]:
    """The markers whose testing (or absence) moves ``entity`` most against the average of the entities."""
    if not kb.reporting:
        return []
    markers, q = reporting_table(kb)
    t = np.array([m in tested for m in markers], dtype=float)
    ll = t * np.log(q) + (1.0 - t) * np.log1p(-q)
    shift = ll[entity_index] - ll.mean(axis=0)
    order = np.argsort(-np.abs(shift), kind="stable")[:n]
    return [SelectionTerm(markers[j], bool(t[j]), float(q[entity_index, j]), float(shift[j])) for j in order
            if abs(shift[j]) > math.log(1.5)]
