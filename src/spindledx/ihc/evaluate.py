"""Accuracy and calibration of the interpreter on the literature-based test panels (``data/cases.csv``).

The cases were written from published profiles before the model was evaluated on them, and are never used to
fit anything.  They are still drawn from the same literature as the knowledge base, so the figures are an
optimistic, in-distribution check, not a clinical validation.

Metrics
-------
top-1 / top-3 accuracy
    expected entity ranked first / within the first three.
Brier score
    multi-class, ``mean_i Σ_k (p_ik − y_ik)²`` (Brier 1950); 0 is perfect, a uniform guess over 24 entities
    scores ~0.96.
log loss
    ``mean_i −ln p_i(expected)``.
reliability
    cases binned by top-1 probability; mean confidence vs observed top-1 accuracy per bin, and the expected
    calibration error ``ECE = Σ_b (n_b / N) |acc_b − conf_b|`` (Guo et al., ICML 2017).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources

from spindledx.errors import BadInputError
from spindledx.ihc.interpret import interpret_panel
from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base
from spindledx.ihc.model import ModelConstants

RELIABILITY_BINS = (0.0, 0.5, 0.8, 0.95, 1.0000001)


@dataclass(frozen=True)
class Case:
    """One test panel with its expected entity (and, for case reports, the stated clinical/H&E findings)."""

    id: str
    expected: str
    site: str | None
    kind: str
    panel: str
    basis: str
    age: str | None = None
    sex: str | None = None
    mitoses: str | None = None
    necrosis: str | None = None
    atypia: str | None = None
    pattern: str | None = None

    def findings(self) -> dict:
        """Keyword arguments of :func:`interpret_panel` for the findings the case states."""
        pattern = [p for p in (self.pattern or "").split(";") if p.strip()] or None
        return {"age": self.age, "sex": self.sex, "mitoses": self.mitoses, "necrosis": self.necrosis,
                "atypia": self.atypia, "pattern": pattern}


@dataclass(frozen=True)
class CaseOutcome:
    """The interpreter's answer for one case."""

    case: Case
    ranked: tuple[str, ...]
    top_probability: float
    expected_probability: float
    rank: int  # 1-based rank of the expected entity (number of entities + 1 when the case raised an error)
    brier: float
    error: str | None = None  # the one-line error a user would have seen (the case counts as a miss)


@dataclass(frozen=True)
class ReliabilityBin:
    """Cases whose top-1 probability falls in [low, high)."""

    low: float
    high: float
    n: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class Evaluation:
    """Summary over a set of cases."""

    outcomes: tuple[CaseOutcome, ...]
    top1: float
    top3: float
    brier: float
    log_loss: float
    ece: float
    reliability: tuple[ReliabilityBin, ...]

    @property
    def n(self) -> int:
        """Number of cases."""
        return len(self.outcomes)

    def per_entity(self) -> dict[str, dict]:
        """Top-1 / top-3 accuracy and mean Brier per expected entity."""
        out: dict[str, dict] = {}
        for e in sorted({o.case.expected for o in self.outcomes}):
            sub = [o for o in self.outcomes if o.case.expected == e]
            out[e] = {"n": len(sub), "top1": sum(o.rank == 1 for o in sub), "top3": sum(o.rank <= 3 for o in sub),
                      "brier": round(sum(o.brier for o in sub) / len(sub), 4)}
        return out

    def to_json(self) -> dict:
        """JSON-serialisable summary plus per-case outcomes."""
        return {
            "n_cases": self.n, "top1_accuracy": round(self.top1, 4), "top3_accuracy": round(self.top3, 4),
            "brier_score": round(self.brier, 4), "log_loss": round(self.log_loss, 4), "ece": round(self.ece, 4),
            "reliability": [{"low": b.low, "high": min(b.high, 1.0), "n": b.n,
                             "mean_confidence": round(b.mean_confidence, 4), "accuracy": round(b.accuracy, 4)}
                            for b in self.reliability],
            "per_entity": self.per_entity(),
            "cases": [{"id": o.case.id, "kind": o.case.kind, "site": o.case.site, "panel": o.case.panel,
                       "expected": o.case.expected, "predicted": o.ranked[0] if o.ranked else None,
                       "rank": o.rank, "error": o.error,
                       "top_probability": round(o.top_probability, 4),
                       "expected_probability": round(o.expected_probability, 4)} for o in self.outcomes],
        }


CASE_SETS = {"original": ("cases.csv",), "holdout": ("cases_holdout.csv",), "all": ("cases.csv", "cases_holdout.csv"),
             "reports": ("cases_reports.csv",), "reports-b": ("cases_reports_b.csv",),
             "reports-c": ("cases_reports_c.csv",), "reports-d": ("cases_reports_d.csv",)}
REPORT_SETS = ("reports", "reports-b", "reports-c", "reports-d")
"""Sets of published case reports: run with ``ignore_unknown`` (markers outside the knowledge base are skipped, as a
new user would), and carrying the findings the reports state."""


def load_cases(path: str | None = None, *, case_set: str = "original",
               kb: KnowledgeBase | None = None) -> tuple[Case, ...]:
    """Read test cases and check their entity ids.

    ``path`` reads a CSV with columns ``id,expected,site,kind,panel,basis`` (or the case-report columns below);
    otherwise ``case_set`` selects the built-in panels: ``original`` (64 literature panels), ``holdout`` (36 more),
    ``all`` (both), or the published case reports ``reports``, ``reports-b`` and ``reports-c`` (80, 91 and 58 cases,
    columns ``id,expected,site,age,sex,panel,mitoses,necrosis,atypia,pattern,citation,note``; with ``all`` they fit
    the global constants) and ``reports-d`` (126 cases, same columns, kept apart from all fitting).
    """
    kb = kb or load_knowledge_base()
    rows: list[dict[str, str]] = []
    if path is None:
        if case_set not in CASE_SETS:
            raise ValueError(f"unknown case set {case_set!r} (one of {', '.join(CASE_SETS)})")
        for name in CASE_SETS[case_set]:
            with resources.files("spindledx.ihc").joinpath("cases", name).open(encoding="utf-8", newline="") as fh:
                rows += list(csv.DictReader(fh))
    else:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    cases = []
    for row in rows:
        if row["expected"] not in kb.entities:
            raise ValueError(f"case {row['id']}: unknown entity {row['expected']!r}")
        def opt(key: str, row=row) -> str | None:
            return (row.get(key) or "").strip() or None

        cases.append(Case(id=row["id"], expected=row["expected"], site=opt("site"), kind=opt("kind") or "report",
                          panel=row["panel"], basis=opt("basis") or opt("citation") or "", age=opt("age"),
                          sex=opt("sex"), mitoses=opt("mitoses"), necrosis=opt("necrosis"), atypia=opt("atypia"),
                          pattern=opt("pattern")))
    return tuple(cases)


def case_outcome(case: Case, *, kb: KnowledgeBase, constants: ModelConstants | None = None,
                 ignore_unknown: bool = False) -> CaseOutcome:
    """Run :func:`interpret_panel` on one case (with the findings it states).

    A case the interpreter refuses (BadInputError: e.g. an unreadable result word) counts as a miss with all
    probabilities 0 (rank = number of entities + 1, Brier 1) and keeps the error message.
    """
    try:
        result = interpret_panel(case.panel, site=case.site, ignore_unknown=ignore_unknown, kb=kb, n_next=0,
                                 constants=constants, **case.findings())
    except BadInputError as exc:
        return CaseOutcome(case=case, ranked=(), top_probability=0.0, expected_probability=0.0,
                           rank=len(kb.entities) + 1, brier=1.0, error=str(exc))
    ranked = tuple(e.id for e in result.differential)
    probs = {e.id: e.probability for e in result.differential}
    brier = sum((p - (1.0 if e == case.expected else 0.0)) ** 2 for e, p in probs.items())
    return CaseOutcome(case=case, ranked=ranked, top_probability=result.differential[0].probability,
                       expected_probability=probs[case.expected], rank=ranked.index(case.expected) + 1, brier=brier)


def evaluate_cases(cases: tuple[Case, ...] | None = None, *, kb: KnowledgeBase | None = None,
                   constants: ModelConstants | None = None, ignore_unknown: bool = False) -> Evaluation:
    """Run :func:`interpret_panel` on every case and summarise accuracy and calibration."""
    kb = kb or load_knowledge_base()
    cases = cases if cases is not None else load_cases(kb=kb)
    if not cases:
        raise ValueError("no cases to evaluate")
    return summarise([case_outcome(c, kb=kb, constants=constants, ignore_unknown=ignore_unknown) for c in cases])


def summarise(outcomes: list[CaseOutcome]) -> Evaluation:
    """Accuracy, Brier, log loss and reliability (ECE) over case outcomes."""
    if not outcomes:
        raise ValueError("no cases to evaluate")
    n = len(outcomes)
    bins = []
    ece = 0.0
    for low, high in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:], strict=True):
        members = [o for o in outcomes if low <= o.top_probability < high]
        if not members:
            bins.append(ReliabilityBin(low, high, 0, math.nan, math.nan))
            continue
        conf = sum(o.top_probability for o in members) / len(members)
        acc = sum(o.rank == 1 for o in members) / len(members)
        ece += len(members) / n * abs(acc - conf)
        bins.append(ReliabilityBin(low, high, len(members), conf, acc))
    return Evaluation(
        outcomes=tuple(outcomes),
        top1=sum(o.rank == 1 for o in outcomes) / n,
        top3=sum(o.rank <= 3 for o in outcomes) / n,
        brier=sum(o.brier for o in outcomes) / n,
        log_loss=sum(-math.log(max(o.expected_probability, 1e-12)) for o in outcomes) / n,
        ece=ece,
        reliability=tuple(bins),
    )
