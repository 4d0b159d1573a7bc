"""The blind case-report set (cases_reports_b.csv) is well formed and kept apart from fitting.

These tests only parse the set; they never interpret it (it is evaluated once, by ``panel-cases --set reports-b``).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from spindledx.ihc.evaluate import CASE_SETS, REPORT_SETS, load_cases
from spindledx.ihc.findings import parse_findings
from spindledx.ihc.knowledge import load_knowledge_base

ROOT = Path(__file__).resolve().parents[1]


def test_blind_set_parses_and_covers_the_entities():
    kb = load_knowledge_base()
    cases = load_cases(case_set="reports-b", kb=kb)
    assert len(cases) == 91 and len({c.id for c in cases}) == 91
    set_b_entities = list(kb.entities)[:30]  # the entities of the knowledge base when set B was written
    per_entity = {e: sum(c.expected == e for c in cases) for e in set_b_entities}
    assert min(per_entity.values()) >= 1 and sum(n >= 3 for n in per_entity.values()) >= 29
    for case in cases:
        parse_findings(**case.findings())
        assert re.match(r"^(doi:10\.|pmid:\d|https://)", case.basis), case.id
        assert case.site is None or case.site in kb.sites


def test_blind_set_shares_no_case_or_source_with_the_fitting_sets():
    kb = load_knowledge_base()
    blind = load_cases(case_set="reports-b", kb=kb)
    fitting = load_cases(case_set="all", kb=kb) + load_cases(case_set="reports", kb=kb)
    assert not {c.id for c in blind} & {c.id for c in fitting}
    assert not {c.basis for c in blind} & {c.basis for c in fitting}
    assert set(REPORT_SETS) <= set(CASE_SETS)


def test_calibration_never_reads_the_blind_set():
    script = (ROOT / "scripts" / "calibrate_ihc.py").read_text(encoding="utf-8")
    assert 'case_set="reports-b"' not in script and "cases_reports_b.csv" in script  # named only to say so
    payload = resources.files("spindledx.ihc").joinpath("data", "calibration.json").read_text(encoding="utf-8")
    assert "cases_reports_b" not in payload


def test_next_blind_set_c_parses_and_shares_nothing_with_the_earlier_sets():
    """Set C (cases_reports_c.csv) is written but not yet run: parsed here, never interpreted by any test."""
    kb = load_knowledge_base()
    blind_c = load_cases(case_set="reports-c", kb=kb)
    assert len(blind_c) >= 40 and len({c.id for c in blind_c}) == len(blind_c)
    for case in blind_c:
        parse_findings(**case.findings())
        assert re.match(r"^(doi:10\.|pmid:\d|https://)", case.basis), case.id
        assert case.site is None or case.site in kb.sites
    earlier = load_cases(case_set="all", kb=kb) + load_cases(case_set="reports", kb=kb) + load_cases(
        case_set="reports-b", kb=kb)
    assert not {c.id for c in blind_c} & {c.id for c in earlier}
    assert not {c.basis for c in blind_c} & {c.basis for c in earlier}
    script = (ROOT / "scripts" / "calibrate_ihc.py").read_text(encoding="utf-8")
    assert "reports-c" not in script and "cases_reports_c" not in script
    from spindledx.teaching.quiz import QUIZ_CASE_SETS

    assert "reports-c" not in QUIZ_CASE_SETS  # the teaching site would show its answers


def test_blind_set_d_is_written_apart_from_every_earlier_set():
    """Set D (cases_reports_d.csv) is the blind test set: read here as plain CSV, never interpreted by any test."""
    import csv

    path = resources.files("spindledx.ihc").joinpath("cases", "cases_reports_d.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 100 and len({r["id"] for r in rows}) == len(rows)
    assert all(r["panel"].strip() and r["expected"].strip() for r in rows)
    assert all(re.match(r"^(doi:10\.|pmid:\s*\d|https?://)", r["citation"], re.IGNORECASE) for r in rows)
    kb = load_knowledge_base()
    earlier = [c for s in ("all", "reports", "reports-b", "reports-c") for c in load_cases(case_set=s, kb=kb)]
    assert not {r["id"] for r in rows} & {c.id for c in earlier}
    assert not {r["citation"] for r in rows} & {c.basis for c in earlier}
    script = (ROOT / "scripts" / "calibrate_ihc.py").read_text(encoding="utf-8")
    assert "reports-d" not in script and "cases_reports_d" not in script
    from spindledx.teaching.quiz import QUIZ_CASE_SETS

    assert "reports-d" not in QUIZ_CASE_SETS  # the teaching site would show its answers
