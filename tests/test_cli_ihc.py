"""`spindledx panel / marker / entity / markers / entities / panel-cases`: JSON contract, tables, exit codes."""

from __future__ import annotations

import json

import pytest

from spindledx.cli import main
from spindledx.ihc import load_knowledge_base

REFERENCE = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_panel_json_contract(capsys):
    code, out, err = run(capsys, "panel", REFERENCE, "--site", "lung", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) >= {"differential", "next_markers", "warnings"}
    diff = payload["differential"]
    assert len(diff) == 5  # --top default
    assert diff[0]["id"] == "leiomyosarcoma"
    probs = [d["probability"] for d in diff]
    assert probs == sorted(probs, reverse=True)
    for d in diff:
        assert {"id", "name", "probability", "evidence"} <= set(d)
        for ev in d["evidence"]:
            assert {"marker", "likelihood_ratio", "effect", "fraction_positive", "n_cases", "source"} <= set(ev)
            assert ev["effect"] in ("supports", "against", "neutral")
    for m in payload["next_markers"]:
        assert {"marker", "expected_information_gain", "expected_positive"} <= set(m)
    assert isinstance(payload["warnings"], list)


def test_panel_top_option(capsys):
    n = len(load_knowledge_base().entities)
    code, out, _ = run(capsys, "panel", REFERENCE, "--format", "json", "--top", str(n))
    assert code == 0
    payload = json.loads(out)
    assert len(payload["differential"]) == n
    assert sum(d["probability"] for d in payload["differential"]) == pytest.approx(1.0, abs=1e-3)


def test_panel_table_explains(capsys):
    code, out, _ = run(capsys, "panel", REFERENCE, "--site", "lung")
    assert code == 0
    assert "Leiomyosarcoma" in out and "h-caldesmon" in out and "pitfall" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["panel", "desmine+ CD34-"], "unknown marker 'desmine'"),
    (["panel", ""], "empty panel"),
    (["panel", "actin+ SMA-"], "conflicting"),
    (["panel", REFERENCE, "--site", "moon"], "unknown site"),
    (["panel", REFERENCE, "--format", "xml"], "--format"),
    (["marker", "foo"], "unknown marker"),
    (["entity", "leiomyosarcom"], "leiomyosarcoma"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_ignore_unknown(capsys):
    code, out, _ = run(capsys, "panel", "desmine+ SMA+ CD34-", "--ignore-unknown", "--format", "json")
    assert code == 0
    assert any("desmine" in w for w in json.loads(out)["warnings"])


def test_marker_lookup_through_synonym(capsys):
    code, out, _ = run(capsys, "marker", "c-KIT", "--format", "json")
    assert code == 0
    info = json.loads(out)
    assert info["marker"] == "CD117"
    fracs = [f["fraction_positive"] for f in info["facts"]]
    assert fracs == sorted(fracs, reverse=True) and info["facts"][0]["entity"] == "gist"
    code, out, _ = run(capsys, "marker", "desmin")
    assert code == 0 and "rhabdomyosarcoma" in out and "Nascimento" in out


def test_entity_lookup_through_alias(capsys):
    code, out, _ = run(capsys, "entity", "SFT", "--format", "json")
    assert code == 0
    info = json.loads(out)
    assert info["id"] == "solitary_fibrous_tumor"
    assert any(f["marker"] == "STAT6" for f in info["facts"]) and info["pitfalls"] and info["sources"]
    code, out, _ = run(capsys, "entity", "GIST")
    assert code == 0 and "DOG1" in out


def test_lists(capsys):
    code, out, _ = run(capsys, "markers", "--format", "json")
    assert code == 0 and any(m["marker"] == "SMA" and "actin" in m["synonyms"] for m in json.loads(out))
    code, out, _ = run(capsys, "entities", "--format", "json")
    assert code == 0 and len(json.loads(out)) == len(load_knowledge_base().entities)
    code, out, _ = run(capsys, "entities")
    assert code == 0 and "leiomyosarcoma" in out


def test_panel_cases_command(capsys, tmp_path):
    cases = tmp_path / "cases.csv"
    cases.write_text("id,expected,site,kind,panel,basis\n"
                     "a,gist,gi_tract,typical,CD117+ DOG1+ CD34+,x\n"
                     "b,schwannoma,,typical,S100:diffuse SOX10+ CD117-,x\n", encoding="utf-8")
    code, out, _ = run(capsys, "panel-cases", "--cases", str(cases), "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["n_cases"] == 2 and {"top1_accuracy", "top3_accuracy", "brier_score", "ece"} <= set(payload)
    code, _, err = run(capsys, "panel-cases", "--cases", str(tmp_path / "missing.csv"))
    assert code == 2 and "cannot read cases" in err
