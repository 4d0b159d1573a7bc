"""A case quiz over the project's published test panels, answered by the interpreter after the student.

Questions are the built-in test cases of :mod:`spindledx.ihc.evaluate` (``cases.csv``: written before the first
evaluation; ``cases_holdout.csv``: written after it), each shown as its panel with site (and age / morphology
where the case gives them).  The student picks a diagnosis among the expected entity and the entities the
interpreter ranks highest apart from it (so the distractors are the real alternatives, listed alphabetically so
the order gives nothing away); then :func:`reveal` shows the interpreter's differential, the evidence for the
expected entity and its sources.  The cases are never used to fit anything.
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
QUIZ_CASE_SETS = ("original", "holdout")  # the published test panels (evaluate.CASE_SETS)


@dataclass(frozen=True)
class QuizQuestion:
    """One quiz question: the case as the student sees it, and the interpreter's answer for the reveal."""

    case: Case
    case_set: str
    choices: tuple[str, ...]  # entity ids, alphabetical by display name
    result: PanelResult

    @property
    def expected(self) -> str:
        """Entity id of the correct answer."""
        return self.case.expected

    def is_correct(self, entity_id: str) -> bool:
        """Whether ``entity_id`` is the expected diagnosis."""
        return entity_id == self.case.expected

    def clinical_line(self) -> str:
        """Site (and whatever clinical data the case carries) as one line for display."""
        parts = [f"site: {self.case.site.replace('_', ' ')}" if self.case.site else "site: not given"]
        return "; ".join(parts)

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
            "case_source": self.case.basis,
        }

    def to_json(self, *, kb: KnowledgeBase | None = None) -> dict:
        """Question and reveal as one JSON-ready dict (the site's quiz data)."""
        kb = kb or load_knowledge_base()
        return {
            "id": self.case.id, "set": self.case_set, "kind": self.case.kind, "panel": self.case.panel,
            "site": self.case.site, "clinical": self.clinical_line(),
            "choices": [{"id": c, "name": kb.entities[c].name} for c in self.choices],
            "answer": self.reveal(kb=kb),
        }


def _choices(result: PanelResult, expected: str, kb: KnowledgeBase, n_choices: int) -> tuple[str, ...]:
    others = [e.id for e in result.differential if e.id != expected][: n_choices - 1]
    return tuple(sorted([expected, *others], key=lambda e: kb.entities[e].name.casefold()))


def load_quiz_cases(*, kb: KnowledgeBase | None = None,
                    case_sets: Sequence[str] = QUIZ_CASE_SETS) -> tuple[tuple[str, Case], ...]:
    """Every published test case as (case set, case), in file order."""
    kb = kb or load_knowledge_base()
    out: list[tuple[str, Case]] = []
    for name in case_sets:
        if name not in CASE_SETS:
            raise BadInputError(f"unknown case set '{name}' (one of {', '.join(CASE_SETS)})")
        out += [(name, c) for c in load_cases(case_set=name, kb=kb)]
    return tuple(out)


def quiz_questions(n: int | None = None, *, entity: str | None = None, seed: int | None = None,
                   kb: KnowledgeBase | None = None, n_choices: int = N_CHOICES) -> tuple[QuizQuestion, ...]:
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

    Returns
    -------
    tuple of QuizQuestion
        Shuffled questions, each with the interpreter's result for the reveal.
    """
    kb = kb or load_knowledge_base()
    if n is not None and n < 1:
        raise BadInputError(f"--n must be at least 1 (got {n})")
    cases = load_quiz_cases(kb=kb)
    if entity is not None:
        wanted = resolve_entity(entity, kb=kb)
        cases = tuple(c for c in cases if c[1].expected == wanted)
        if not cases:
            raise BadInputError(f"no published test case has the diagnosis '{wanted}'")
    order = list(cases)
    random.Random(seed).shuffle(order)
    if n is not None:
        order = order[:n]
    questions = []
    for case_set, case in order:
        result = interpret_panel(case.panel, site=case.site, kb=kb, n_next=0)
        questions.append(QuizQuestion(case=case, case_set=case_set,
                                      choices=_choices(result, case.expected, kb, n_choices), result=result))
    return tuple(questions)
