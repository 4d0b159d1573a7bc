"""`spindledx case` end to end on tiny synthetic tiles with a fake detector: case.json, case.html, bad input."""

from __future__ import annotations

import json
import re

import pytest
from case_helpers import FAKE_MODEL, PANEL, THRESHOLD, fixed_detector, use_detector, write_tiles

from spindledx.case.page import SECTION_IDS
from spindledx.cli import main


@pytest.fixture()
def tiles(tmp_path, monkeypatch):
    use_detector(monkeypatch, fixed_detector)
    return write_tiles(tmp_path / "tiles", n=2)


def test_case_writes_json_with_count_differential_grade_and_provenance(tiles, tmp_path, capsys):
    out = tmp_path / "case"
    code = main(["case", PANEL, "--site", "lung", "--tiles", str(tiles[0]), str(tiles[1]), "--out", str(out),
                 "--necrosis", "<50"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    count = doc["count"]
    assert count["count"] == 4  # two detections per tile at or above the threshold
    area = 2 * (256 * 0.25) ** 2 / 1e6
    assert count["area_mm2"] == pytest.approx(area, rel=1e-4)
    assert count["mitoses_per_mm2"] == pytest.approx(4 / area, rel=1e-3)
    assert count["extrapolated"] is True and count["n_hpf"] < 10
    assert doc["differential"][0]["id"] == "leiomyosarcoma"
    assert doc["next_markers"]
    g = doc["grade"]
    # under 10 HPF counted: never silently an FNCLCC grade
    assert g["status"] == "extrapolated" and g["grade"] is None and g["extrapolated_grade"] in (1, 2, 3)
    assert any("extrapolation" in w for w in doc["warnings"])
    prov = doc["provenance"]
    for key in ("spindledx_version", "model_version", "model_sha256", "kb_version", "date", "threshold"):
        assert prov[key], key
    assert prov["model_sha256"] == FAKE_MODEL["model_sha256"] and prov["threshold"] == THRESHOLD
    assert doc["inputs"]["panel"] == PANEL and doc["inputs"]["necrosis"] == "<50"
    stdout = capsys.readouterr().out
    assert "report:" in stdout and "case.html" in stdout
    page = (out / "case.html").read_text()
    for sid in SECTION_IDS:
        assert f"id='{sid}'" in page
    assert "<script" not in page and "http://" not in page.split("<section id='evidence'>")[0]
    assert (out / "review.html").is_file()
    cands = json.loads((out / "tile0_candidates.json").read_text())
    assert [c["detected"] for c in cands["candidates"]] == [True, True, False, False]  # 0.1 is below the floor


def test_case_count_over_10_hpf_is_graded(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "case"
    # a tiny HPF makes the 0.004 mm² tile more than 10 HPF: the grade is then an FNCLCC grade
    code = main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out), "--necrosis", "none",
                 "--hpf-area-mm2", "0.0003", "--allow-unusual-hpf"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    assert doc["count"]["extrapolated"] is False
    assert doc["grade"]["status"] == "graded" and doc["grade"]["grade"] in (1, 2, 3)


def test_case_not_gradable_entity_says_why(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "t", n=1)
    code = main(["case", "CD117+ DOG1+ CD34+", "--site", "gi_tract", "--tiles", str(tiles[0]), "--out",
                 str(tmp_path / "c"), "--necrosis", "none"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "c" / "case.json").read_text())
    assert doc["differential"][0]["id"] == "gist"
    assert doc["grade"]["status"] == "not_applicable" and "not applied" in doc["grade"]["reason"]


@pytest.mark.parametrize("args, message", [
    (["foo+ bar-"], "unknown marker"),
    ([PANEL, "--necrosis", "some"], "--necrosis"),
    ([PANEL, "--sex", "X"], "--sex"),
    ([PANEL, "--differentiation", "5"], "--differentiation"),
])
def test_case_bad_input_is_one_line_exit_2(tiles, tmp_path, capsys, args, message):
    code = main(["case", *args, "--tiles", str(tiles[0]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert message.lower() in err.lower() and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written before the inputs are checked


def test_case_refuses_missing_tiles_and_an_existing_case(tiles, tmp_path, capsys):
    assert main(["case", PANEL, "--tiles", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["case", PANEL, "--out", str(tmp_path / "o")]) == 2
    assert "--tiles" in capsys.readouterr().err
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 2
    assert "already holds a case" in capsys.readouterr().err


def test_a_flagged_count_shows_its_flag_next_to_the_grade(tmp_path, monkeypatch, capsys):
    from case_helpers import grid_detector

    use_detector(monkeypatch, grid_detector(6, low=0.6))  # 36 figures in 0.004 mm²: an implausible density
    tiles = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out), "--necrosis", "none",
                 "--hpf-area-mm2", "0.0003", "--allow-unusual-hpf"]) == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    assert "implausible_density" in doc["count"]["flags"]
    assert doc["grade"]["status"] == "flagged" and doc["grade"]["grade"] is None
    assert doc["grade"]["flagged_grade"] in (1, 2, 3) and "implausible_density" in doc["grade"]["flags"]
    assert any("do not grade from this count" in w for w in doc["warnings"])
    assert "mitoses" not in doc["morphology_used"]  # a flagged count is not evidence in the differential
    assert any("not used as evidence in the differential" in w for w in doc["warnings"])
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out), "--necrosis", "none", "--overwrite",
                 "--hpf-area-mm2", "0.0003", "--allow-unusual-hpf", "--use-flagged-count"]) == 0
    doc = json.loads((out / "case.json").read_text())
    assert doc["grade"]["status"] == "graded" and "implausible_density" in doc["grade"]["flags"]
    assert "mitoses" in doc["morphology_used"] and doc.get("morphology_used_flagged") == ["mitoses"]
    page = (out / "case.html").read_text()
    grade_html = page.split("<section id='grade'>")[1].split("</section>")[0]
    assert "flagged count" in grade_html and "implausible_density" in grade_html


def test_case_page_shows_atypical_figures_and_flag_sentences_when_the_score_has_them(tiles, tmp_path, capsys,
                                                                                      monkeypatch):
    from spindledx.case.page import render_case_html
    from spindledx.detection import atypical

    monkeypatch.setattr(atypical, "load_atypical_model", lambda threads=2: None)  # as without a shipped head

    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    doc = json.loads((out / "case.json").read_text())
    assert "atypical figures" not in (out / "case.html").read_text()  # no atypical head: no column
    doc["tiles"][0].update(atypical_count=1, flags=["out_of_distribution"],
                           flag_messages=["stain/texture statistics lie outside the training images"])
    doc["count"].update(atypical_count=1, flags=["out_of_distribution"])
    page = render_case_html(doc)
    count_html = page.split("<section id='count'>")[1].split("</section>")[0]
    assert "atypical figures" in count_html and "out of distribution" in count_html
    assert "lie outside the training images" in count_html


def test_case_report_to_file_has_its_header_sign_off_and_prints_on_two_a4_pages(tiles, tmp_path, capsys,
                                                                                browser_page):
    out = tmp_path / "case"
    code = main(["case", PANEL, "--site", "lung", "--tiles", str(tiles[0]), str(tiles[1]), "--out", str(out),
                 "--case-id", "S26-04711", "--specimen", "lung, wedge resection", "--pathologist", "Dr A. Example"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "case.json").read_text())
    assert doc["report"] == {"case_id": "S26-04711", "specimen": "lung, wedge resection",
                             "pathologist": "Dr A. Example"}
    page = (out / "case.html").read_text()
    assert "S26-04711" in page.split("<h2")[0] and "id='sign-off'" in page  # header above the report, sign-off
    assert "@page" in page and "counter(page)" in page and "S26-04711 · lung, wedge resection" in page
    browser_page.goto((out / "case.html").as_uri())
    pdf = browser_page.pdf(format="A4", prefer_css_page_size=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= 2, pages


@pytest.mark.parametrize("value", ["x" * 200, "two\nlines"])
def test_case_report_fields_are_one_short_line(tiles, tmp_path, capsys, value):
    code = main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(tmp_path / "c"), "--case-id", value])
    err = capsys.readouterr().err
    assert code == 2 and "--case-id" in err and len(err.strip().splitlines()) == 1
