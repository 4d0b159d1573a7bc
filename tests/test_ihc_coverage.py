"""`spindledx kb coverage`: every entity x marker pair says what its figure rests on (data, elicited, ...)."""

from __future__ import annotations

import json

from spindledx.cli import main
from spindledx.ihc import load_knowledge_base
from spindledx.ihc.coverage import kb_coverage


def test_coverage_partitions_every_pair():
    kb = load_knowledge_base()
    report = kb_coverage(kb)
    tot = report["totals"]
    assert tot["pairs"] == len(kb.entities) * len(kb.markers)
    keys = ("with_data", "elicited", "elicited_with_data", "estimate", "background_only", "missing")
    assert sum(tot[k] for k in keys) == tot["pairs"]
    for ent in report["entities"]:
        names = [x if isinstance(x, str) else x["marker"] for k in keys for x in ent[k]]
        assert sorted(names) == sorted(kb.markers)
        assert all(x["reason"] for x in ent["missing"])
        assert all(x["source"] or x["evidence"] == "estimate" for x in ent["background_only"])
    # facts are "with data"
    lms = next(e for e in report["entities"] if e["id"] == "leiomyosarcoma")
    assert "desmin" in lms["with_data"]


def test_coverage_cli(capsys):
    assert main(["kb", "coverage", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"totals", "entities", "markers_without_background"} <= set(payload)
    assert main(["kb", "coverage"]) == 0
    out = capsys.readouterr().out
    assert "with literature data" in out and "elicited" in out and "leiomyosarcoma" in out
    assert main(["kb", "coverage", "--format", "xml"]) == 2


def test_calibration_script_draws_a_reliability_diagram(tmp_path):
    import importlib.util
    from pathlib import Path

    from spindledx.ihc.evaluate import case_outcome, load_cases, summarise

    path = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_ihc.py"
    spec = importlib.util.spec_from_file_location("calibrate_ihc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kb = load_knowledge_base()
    cases = load_cases(case_set="all", kb=kb)[:6]
    ev = summarise([case_outcome(c, kb=kb) for c in cases])
    out = tmp_path / "docs" / "rel.png"
    module.reliability_plot(out, ev, ev)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cases_reports" not in module.GRID and module.GRID["evidence_weight"][-1] <= 1.0
