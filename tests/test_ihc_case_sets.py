"""The case-report sets are well formed and kept apart: A, B and C fit the global constants, D is the blind set.

These tests only parse the sets; they never interpret set D (it is evaluated once, by
``panel-cases --set reports-d``).
"""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path

import pytest

from spindledx.ihc.evaluate import CASE_SETS, REPORT_SETS, load_cases
from spindledx.ihc.findings import parse_findings
from spindledx.ihc.knowledge import load_knowledge_base

ROOT = Path(__file__).resolve().parents[1]
FITTING_REPORT_SETS = ("reports", "reports-b", "reports-c")


@pytest.mark.parametrize("case_set", [*FITTING_REPORT_SETS, "reports-d"])
def test_report_sets_parse_with_their_findings(case_set):
    kb = load_knowledge_base()
    cases = load_cases(case_set=case_set, kb=kb)
    assert len(cases) >= 50 and len({c.id for c in cases}) == len(cases)
    for case in cases:
        parse_findings(**case.findings())
        assert re.match(r"^(doi:10\.|pmid:\s*\d|https?://)", case.basis, re.IGNORECASE), case.id
        assert case.site is None or case.site in kb.sites
    assert set(REPORT_SETS) <= set(CASE_SETS)


def test_set_b_covers_the_entities_it_was_written_for():
    kb = load_knowledge_base()
    cases = load_cases(case_set="reports-b", kb=kb)
    set_b_entities = list(kb.entities)[:30]  # the entities of the knowledge base when set B was written
    per_entity = {e: sum(c.expected == e for c in cases) for e in set_b_entities}
    assert min(per_entity.values()) >= 1 and sum(n >= 3 for n in per_entity.values()) >= 29


def test_blind_set_d_covers_every_entity():
    kb = load_knowledge_base()
    cases = load_cases(case_set="reports-d", kb=kb)
    per_entity = {e: sum(c.expected == e for c in cases) for e in kb.entities}
    assert len(cases) >= 120 and min(per_entity.values()) >= 1
    assert sum(n >= 3 for n in per_entity.values()) >= 32


def test_no_two_sets_share_a_case_or_a_source():
    kb = load_knowledge_base()
    sets = {name: load_cases(case_set=name, kb=kb) for name in ("all", *FITTING_REPORT_SETS, "reports-d")}
    for (a, cases_a), (b, cases_b) in itertools.combinations(sets.items(), 2):
        assert not {c.id for c in cases_a} & {c.id for c in cases_b}, (a, b)
        assert not {c.basis for c in cases_a} & {c.basis for c in cases_b} - {""}, (a, b)


def test_calibration_and_teaching_never_read_the_blind_set():
    script = (ROOT / "scripts" / "calibrate_ihc.py").read_text(encoding="utf-8")
    assert 'case_set="reports-d"' not in script and '"reports-d"' not in script
    payload = resources.files("spindledx.ihc").joinpath("data", "calibration.json").read_text(encoding="utf-8")
    assert "cases_reports_d" not in payload and "reports-d" not in payload
    from spindledx.teaching.quiz import QUIZ_CASE_SETS

    assert "reports-d" not in QUIZ_CASE_SETS  # the teaching site would show its answers
