"""Case quiz (`spindledx.teaching.quiz`): questions from the published test panels, answered by the interpreter."""

from __future__ import annotations

import pytest

from spindledx.errors import BadInputError
from spindledx.ihc import interpret_panel, load_knowledge_base
from spindledx.ihc.evaluate import load_cases
from spindledx.teaching.quiz import N_CHOICES, build_questions, load_quiz_cases, quiz_questions


def test_questions_come_from_the_published_cases():
    published = {c.id for c in load_cases(case_set="all")}
    quiz = load_quiz_cases()
    assert {c.id for c in quiz} >= published
    reports = [c for c in quiz if c.case_set == "reports"]
    assert {c.id for c in reports} == {c.id for c in load_cases(case_set="reports")}
    questions, skipped = build_questions(quiz)
    assert len(questions) + len(skipped) == len(quiz)
    assert all("no known marker" in reason or "not in the knowledge base" in reason for _id, reason in skipped)
    assert len(skipped) < len(quiz) / 4


def test_report_cases_carry_their_findings_into_the_interpreter():
    report = next(c for c in load_quiz_cases(case_sets=("reports",)) if c.case.age and c.case.pattern)
    (q,), _ = build_questions([report])
    assert q.result.findings.to_json()  # age / pattern reached the interpreter
    kinds = {ev["kind"] for ev in q.reveal()["evidence"]}
    assert "stain" in kinds and kinds & {"morphology", "clinical"}
    assert f"age {report.case.age}" in q.clinical_line()
    assert q.reveal()["case_source"] == report.source and report.source


def test_seeded_draw_is_reproducible_and_choices_hold_the_answer():
    kb = load_knowledge_base()
    q1 = quiz_questions(4, seed=7)
    q2 = quiz_questions(4, seed=7)
    assert [q.case.id for q in q1] == [q.case.id for q in q2]
    assert len({q.case.id for q in q1}) == 4
    for q in q1:
        assert q.expected in q.choices and len(q.choices) == N_CHOICES == len(set(q.choices))
        names = [kb.entities[c].name.casefold() for c in q.choices]
        assert names == sorted(names)  # alphabetical: the order gives nothing away
        assert q.is_correct(q.expected) and not q.is_correct(next(c for c in q.choices if c != q.expected))


def test_reveal_is_the_interpreters_answer():
    q = quiz_questions(1, seed=3, case_sets=("original",))[0]
    reveal = q.reveal()
    fresh = interpret_panel(q.case.panel, site=q.case.site)
    assert [d["id"] for d in reveal["differential"]] == [e.id for e in fresh.differential[:5]]
    ranks = [e.id for e in fresh.differential]
    assert reveal["expected"]["rank"] == ranks.index(q.expected) + 1
    assert {ev["marker"] for ev in reveal["evidence"] if ev["kind"] == "stain"} == set(fresh.panel.markers)
    assert reveal["case_source"] == q.case.source


def test_entity_filter_and_bad_input():
    qs = quiz_questions(None, entity="GIST", seed=0)
    assert qs and all(q.expected == "gist" for q in qs)
    with pytest.raises(BadInputError, match="did you mean"):
        quiz_questions(2, entity="leiomyosarcomma")
    with pytest.raises(BadInputError):
        quiz_questions(0)


def test_literature_label_keeps_prior_figures_out_of_percentages():
    from spindledx.teaching.quiz import literature_label

    assert literature_label({"kind": "prior", "fraction_positive": 20.0, "basis": "site"}) == "figure 20 [site]"
    assert literature_label({"kind": "stain", "fraction_positive": 0.79, "n_cases": 108, "evidence_level": "pooled",
                             "basis": "entity"}) == "79% of 108 (pooled)"
    assert literature_label({"kind": "clinical", "fraction_positive": None, "basis": "literature"}) == "fitted"
    assert literature_label({"kind": "stain", "basis": "no data"}) == "no data"
