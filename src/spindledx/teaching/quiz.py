"""A case quiz over the project's published test cases, answered by the interpreter after the student.

Questions are the built-in test panels of :mod:`spindledx.ihc.evaluate` (``cases.csv``: written before the first
evaluation; ``cases_holdout.csv``: written after it) and the blind set of published case reports
(``cases_reports.csv``, one row per patient with age, sex, site, mitoses, necrosis, atypia, pattern and the
citation), each shown as its panel with site, age, sex and morphology where the case gives them.
The student picks a diagnosis among the expected entity and the entities the interpreter ranks highest apart
from it (so the distractors are the real alternatives, listed alphabetically so the order gives nothing away);
then :meth:`QuizQuestion.reveal` shows the interpreter's differential, the evidence for the expected entity
(stains, morphology, clinical, prior) and the sources.  Markers outside the vocabulary are skipped with the
interpreter's warning; a case with no known marker left is left out and counted (:func:`build_questions`).
The cases are read by :func:`spindledx.ihc.evaluate.load_cases`, the same reader the evaluation uses.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from spindledx.errors import BadInputError
from spindledx.ihc.evaluate import CASE_SETS, Case, load_cases
from spindledx.ihc.interpret import PanelResult, interpret_panel
from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base
from spindledx.ihc.lookups import resolve_entity

N_CHOICES = 5  # expected entity + 4 distractors
QUIZ_CASE_SETS = ("original", "holdout", "reports", "reports-b", "reports-c")  # evaluate.CASE_SETS but the blind set


@dataclass(frozen=True)
class QuizCase:
    """One quiz case: a published test case (:class:`spindledx.ihc.evaluate.Case`) and the set it comes from."""

    case: Case
    case_set: str

    @property
    def id(self) -> str:
        """Case id."""
        return self.case.id

    @property
    def expected(self) -> str:
        """Entity id of the published diagnosis."""
        return self.case.expected

    @property
    def panel(self) -> str:
        """The panel in the result grammar."""
        return self.case.panel

    @property
    def site(self) -> str | None:
        """Site id or None."""
        return self.case.site

    @property
    def kind(self) -> str:
        """``typical`` / ``tricky`` (test panels) or ``report`` (case reports)."""
        return self.case.kind

    @property
    def source(self) -> str:
        """The case's basis (test panels) or the citation of the case report."""
        return self.case.basis

    def findings(self) -> dict:
        """The clinical / H&E keyword arguments of :func:`interpret_panel` this case gives."""
        return {k: v for k, v in self.case.findings().items() if v is not None}

    def clinical_line(self) -> str:
        """Site, age, sex and morphology as one line for display (nothing that names the diagnosis)."""
        c = self.case
        parts = [f"site: {c.site.replace('_', ' ')}" if c.site else "site: not given"]
        if c.age:
            parts.append(f"age {c.age}")
        if c.sex:
            parts.append({"F": "female", "M": "male"}.get(c.sex, c.sex))
        if c.mitoses:
            parts.append(f"mitoses {c.mitoses}")
        if c.necrosis:
            parts.append(f"necrosis {c.necrosis}")
        if c.atypia:
            parts.append(f"atypia {c.atypia}")
        if c.pattern:
            parts.append("pattern " + ", ".join(p.strip().replace("_", " ") for p in c.pattern.split(";") if p.strip()))
        return "; ".join(parts)


@dataclass(frozen=True)
class QuizQuestion:
    """One quiz question: the case as the student sees it, and the interpreter's answer for the reveal."""

    case: QuizCase
    choices: tuple[str, ...]  # entity ids, alphabetical by display name
    result: PanelResult

    @property
    def case_set(self) -> str:
        """``original``, ``holdout`` or ``reports``."""
        return self.case.case_set

    @property
    def expected(self) -> str:
        """Entity id of the correct answer."""
        return self.case.expected

    def is_correct(self, entity_id: str) -> bool:
        """Whether ``entity_id`` is the expected diagnosis."""
        return entity_id == self.case.expected

    def clinical_line(self) -> str:
        """Site, age, sex and morphology as one line for display."""
        return self.case.clinical_line()

    def reveal(self, *, kb: KnowledgeBase | None = None, top: int = 5) -> dict:
        """JSON-ready explanation: the interpreter's differential, the evidence for the expected entity, sources."""
        kb = kb or load_knowledge_base()
        result = self.result
        ranks = [e.id for e in result.differential]
        expected_entry = result.differential[ranks.index(self.expected)]
        return {
            "expected": {"id": self.expected, "name": kb.entities[self.expected].name,
                         "rank": ranks.index(self.expected) + 1,
                         "probability": round(expected_entry.probability, 4)},
            "differential": [{"id": e.id, "name": e.name, "probability": round(e.probability, 4)}
                             for e in result.differential[:top]],
            "evidence": [ev.to_json() for ev in expected_entry.evidence],
            "pitfalls": list(expected_entry.pitfalls),
            "warnings": list(result.warnings),
            "case_source": self.case.source,
        }

    def to_json(self, *, kb: KnowledgeBase | None = None) -> dict:
        """Question and reveal as one JSON-ready dict (the site's quiz data)."""
        kb = kb or load_knowledge_base()
        return {
            "id": self.case.id, "set": self.case.case_set, "kind": self.case.kind, "panel": self.case.panel,
            "site": self.case.site, "clinical": self.clinical_line(),
            "choices": [{"id": c, "name": kb.entities[c].name} for c in self.choices],
            "answer": self.reveal(kb=kb),
        }


def literature_label(evidence: dict) -> str:
    """The literature figure of one evidence item (``MarkerEvidence.to_json()``) as short text.

    Stains and morphology: the fraction / probability with n; clinical: the female fraction or "fitted"; prior:
    the cited figure (relative frequency or site weight, not a fraction).
    """
    if evidence.get("basis") == "no data":
        return "no data"
    value, n = evidence.get("fraction_positive"), evidence.get("n_cases")
    kind = evidence.get("kind", "stain")
    if kind == "prior":
        text = "-" if value is None else f"figure {value:g}"
    elif value is None:
        text = "fitted" if kind == "clinical" else "-"
    else:
        text = f"{value:.0%}"
    if n:
        text += f" of {n}"
    if evidence.get("evidence_level"):
        text += f" ({evidence['evidence_level']})"
    basis = evidence.get("basis")
    if basis in ("background", "pair background", "site"):
        text += f" [{basis}]"
    return text


def _choices(result: PanelResult, expected: str, kb: KnowledgeBase, n_choices: int) -> tuple[str, ...]:
    others = [e.id for e in result.differential if e.id != expected][: n_choices - 1]
    return tuple(sorted([expected, *others], key=lambda e: kb.entities[e].name.casefold()))


def load_quiz_cases(*, kb: KnowledgeBase | None = None,
                    case_sets: Sequence[str] = QUIZ_CASE_SETS) -> tuple[QuizCase, ...]:
    """Every published test case of ``case_sets`` (``original``, ``holdout``, ``reports``), in file order, read by
    :func:`spindledx.ihc.evaluate.load_cases`; the case-report set is skipped when the package does not have it."""
    kb = kb or load_knowledge_base()
    out: list[QuizCase] = []
    for name in case_sets:
        if name not in QUIZ_CASE_SETS:
            raise BadInputError(f"unknown case set '{name}' (one of {', '.join(QUIZ_CASE_SETS)})")
        if name not in CASE_SETS:  # an older package without the case-report set
            continue
        out += [QuizCase(case=c, case_set=name) for c in load_cases(case_set=name, kb=kb)]
    return tuple(out)


def build_questions(cases: Sequence[QuizCase], *, kb: KnowledgeBase | None = None,
                    n_choices: int = N_CHOICES) -> tuple[tuple[QuizQuestion, ...], tuple[tuple[str, str], ...]]:
    """Run the interpreter on each case: (questions, skipped cases as (id, reason)).

    A case is skipped when its expected entity is not in ``kb`` or when no marker of its panel is known.
    """
    kb = kb or load_knowledge_base()
    questions, skipped = [], []
    for case in cases:
        if case.expected not in kb.entities:
            skipped.append((case.id, f"entity '{case.expected}' is not in the knowledge base"))
            continue
        try:
            result = interpret_panel(case.panel, site=case.site, ignore_unknown=True, kb=kb, n_next=0,
                                     **case.findings())
            choices = _choices(result, case.expected, kb, n_choices)
        except BadInputError as exc:
            skipped.append((case.id, str(exc)))
            continue
        questions.append(QuizQuestion(case=case, choices=choices, result=result))
    return tuple(questions), tuple(skipped)


def quiz_questions(n: int | None = None, *, entity: str | None = None, seed: int | None = None,
                   kb: KnowledgeBase | None = None, n_choices: int = N_CHOICES,
                   case_sets: Sequence[str] = QUIZ_CASE_SETS) -> tuple[QuizQuestion, ...]:
    """Draw quiz questions from the published test cases.

    Parameters
    ----------
    n
        Number of questions (all matching cases when None or larger than their number).
    entity
        Only cases whose expected diagnosis is this entity (id, name or alias; BadInputError with close matches).
    seed
        Seed of the shuffle (``random.Random``); None draws a fresh order.
    kb
        Knowledge base (default: the package one).
    n_choices
        Answers offered: the expected entity plus the ``n_choices − 1`` other entities the interpreter ranks
        highest.
    case_sets
        Which published sets to draw from (default all: ``original``, ``holdout``, ``reports``).

    Returns
    -------
    tuple of QuizQuestion
        Shuffled questions, each with the interpreter's result for the reveal (cases with no known marker are
        left out; :func:`build_questions` reports them).
    """
    kb = kb or load_knowledge_base()
    if n is not None and n < 1:
        raise BadInputError(f"n must be at least 1 (got {n})", parameters="n")
    cases = load_quiz_cases(kb=kb, case_sets=case_sets)
    if entity is not None:
        wanted = resolve_entity(entity, kb=kb)
        cases = tuple(c for c in cases if c.expected == wanted)
        if not cases:
            raise BadInputError(f"no published test case has the diagnosis '{wanted}'")
    order = list(cases)
    random.Random(seed).shuffle(order)
    if n is None:
        return build_questions(order, kb=kb, n_choices=n_choices)[0]
    questions: list[QuizQuestion] = []
    for case in order:  # interpret only as many cases as needed
        questions += build_questions([case], kb=kb, n_choices=n_choices)[0]
        if len(questions) == n:
            break
    return tuple(questions)
