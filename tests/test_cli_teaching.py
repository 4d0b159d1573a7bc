"""`spindledx compare / quiz / kb site`: JSON contract, interactive quiz on stdin, exit codes, --out rules."""

from __future__ import annotations

import io
import json

from spindledx.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json_lists_separating_markers_with_lrs_and_sources(capsys):
    code, out, err = run(capsys, "compare", "leiomyosarcoma", "gist", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["a"]["id"] == "leiomyosarcoma" and payload["b"]["id"] == "gist"
    assert payload["provenance"]["kb_version"]
    top = {m["marker"]: m for m in payload["markers"][:6]}
    assert {"DOG1", "CD117", "desmin"} <= set(top)
    for m in top.values():
        assert m["lr_positive"] > 0 and m["lr_negative"] > 0 and m["j_divergence_bits"] > 0
        assert m["a"]["source"] and m["b"]["source"]
    assert top["desmin"]["favours_if_positive"] == "a" and top["DOG1"]["favours_if_positive"] == "b"


def test_compare_table_and_unknown_entity(capsys):
    code, out, _ = run(capsys, "compare", "SFT", "SS", "--top", "4")
    assert code == 0 and "STAT6" in out and "[1]" in out
    code, out, err = run(capsys, "compare", "leiomyosarcomma", "gist")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "did you mean leiomyosarcoma" in err


def test_quiz_json_and_entity_filter(capsys):
    code, out, err = run(capsys, "quiz", "--n", "2", "--seed", "5", "--entity", "GIST", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert {"spindledx_version", "kb_version"} <= set(payload["provenance"])
    items = payload["questions"]
    assert len(items) == 2 and all(i["answer"]["expected"]["id"] == "gist" for i in items)
    code, _, err = run(capsys, "quiz", "--entity", "gistt")
    assert code == 2 and "did you mean gist" in err
    code, out, err = run(capsys, "quiz", "--n", "3", "--seed", "1", "--set", "reports", "--format", "json")
    assert code == 0, err
    assert {q["set"] for q in json.loads(out)["questions"]} == {"reports"}
    code, _, err = run(capsys, "quiz", "--set", "textbook")
    assert code == 2 and "--set" in err and "textbook" in err


def test_quiz_reads_answers_from_stdin_and_keeps_score(capsys, monkeypatch):
    code, out, _ = run(capsys, "quiz", "--n", "3", "--seed", "2", "--format", "json")
    items = json.loads(out)["questions"]
    right = [c["id"] for c in items[0]["choices"]].index(items[0]["answer"]["expected"]["id"]) + 1
    wrong = next(c["name"] for c in items[1]["choices"] if c["id"] != items[1]["answer"]["expected"]["id"])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{right}\n{wrong}\nq\n"))
    code, out, err = run(capsys, "quiz", "--n", "3", "--seed", "2")
    assert code == 0, err
    assert "Score: 1 / 1" in out and "Score: 1 / 2" in out and "Final score: 1 / 2" in out
    assert "Interpreter's differential" in out


def test_kb_site_out_rules(capsys, tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    code, _, err = run(capsys, "kb", "site", "--out", str(foreign))
    assert code == 2 and "not a spindledx site" in err
    assert (foreign / "mine.txt").read_text() == "keep me"
    afile = tmp_path / "file.html"
    afile.write_text("x")
    code, _, err = run(capsys, "kb", "site", "--out", str(afile))
    assert code == 2 and "not a folder" in err


def test_kb_site_writes_and_reports_size_and_time(capsys, tmp_path, monkeypatch):
    from spindledx.teaching import site as site_module

    monkeypatch.setattr(site_module, "render_site", lambda kb=None: {"index.html": "<p>x</p>", "a/b.html": "y"})
    code, out, err = run(capsys, "kb", "site", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "wrote 2 pages (4 files," in out and " MB) to " in out and " s; open " in out  # + site.json, summary
    assert (tmp_path / "s" / "a" / "b.html").read_text() == "y"
