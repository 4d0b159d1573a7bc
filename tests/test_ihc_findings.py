"""Clinical and H&E findings (issue 10): parsing, units, bad values (library and CLI), stdin, contradictions."""

from __future__ import annotations

import io
import json

import pytest

from spindledx.cli import main
from spindledx.counting import DEFAULT_HPF_AREA_MM2
from spindledx.errors import BadInputError
from spindledx.ihc import interpret_panel
from spindledx.ihc.findings import (
    mitosis_band,
    parse_age,
    parse_atypia,
    parse_findings,
    parse_mitoses,
    parse_necrosis,
    parse_patterns,
    parse_sex,
)

REFERENCE = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("text", "per10"), [
    ("12/10HPF", 12.0), ("12/10 HPF", 12.0), ("12/10hpf", 12.0), ("3/50HPF", 0.6), ("11/10HPFs", 11.0),
    ("0/10HPF", 0.0),
])
def test_mitoses_per_hpf_forms(text, per10):
    written, value = parse_mitoses(text)
    assert written == text and value == pytest.approx(per10)


def test_mitoses_density_goes_through_the_hpf_area():
    _, value = parse_mitoses("4/mm2")
    assert value == pytest.approx(4 * 10 * DEFAULT_HPF_AREA_MM2)  # 9.5 per 10 HPF of 0.2376 mm²
    assert parse_mitoses("4/mm²")[1] == pytest.approx(value)
    assert parse_mitoses(4.0)[1] == pytest.approx(value)  # a bare number in the API is per mm²
    assert mitosis_band(value) == "5-9"


@pytest.mark.parametrize(("per10", "band"), [(0, "0-4"), (4.9, "0-4"), (5, "5-9"), (9.99, "5-9"), (10, "10-19"),
                                             (19.5, "10-19"), (20, ">=20"), (300, ">=20")])
def test_mitosis_bands(per10, band):
    assert mitosis_band(per10) == band


@pytest.mark.parametrize("bad", ["lots", "12", "12/0HPF", "-3/10HPF", "4/cm2", "12/10HPF/2", "nan"])
def test_mitoses_bad_values(bad):
    with pytest.raises(BadInputError, match="12/10HPF"):
        parse_mitoses(bad)
    with pytest.raises(BadInputError):
        parse_mitoses(-1.0)


def test_other_findings_parse_and_reject():
    assert parse_age("68") == 68.0 and parse_age(0) == 0.0 and parse_age(None) is None
    for bad in ("-3", "x", "121", "nan", True):
        with pytest.raises(BadInputError, match="0 to 120"):
            parse_age(bad)
    assert parse_sex("f") == "F" and parse_sex("Male") == "M"
    with pytest.raises(BadInputError, match="F or M"):
        parse_sex("X")
    assert parse_necrosis("yes") is True and parse_necrosis("no") is False and parse_necrosis(False) is False
    with pytest.raises(BadInputError, match="yes or no"):
        parse_necrosis("maybe")
    assert parse_atypia("Marked") == "marked" and parse_atypia("severe") == "marked"
    with pytest.raises(BadInputError, match="none, mild, moderate or marked"):
        parse_atypia("high")
    assert parse_patterns("fascicular, Staghorn vessels;myxoid") == ("fascicular", "staghorn_vessels", "myxoid")
    assert parse_patterns(["storiform", "storiform,whorled"]) == ("storiform", "whorled")
    with pytest.raises(BadInputError, match="fascicular"):
        parse_patterns("spindly")
    assert parse_findings().to_json() == {}


def test_findings_appear_in_the_explanation_and_json():
    result = interpret_panel(REFERENCE, age=68, sex="F", mitoses="11/10HPF", necrosis="no", atypia="marked",
                             pattern="fascicular")
    payload = json.loads(json.dumps(result.to_json()))
    assert payload["findings"]["mitoses"]["band"] == "10-19"
    assert payload["findings"]["mitoses"]["hpf_area_mm2"] == pytest.approx(0.2376, abs=1e-4)
    assert payload["prior"]["basis"] == "population"
    kinds = {ev["kind"] for ev in payload["differential"][0]["evidence"]}
    assert kinds == {"prior", "clinical", "stain", "morphology", "selection"}
    items = {(ev["kind"], ev["marker"]) for ev in payload["differential"][0]["evidence"]}
    assert {("clinical", "age"), ("clinical", "sex"), ("morphology", "mitoses"), ("morphology", "necrosis"),
            ("morphology", "atypia"), ("morphology", "pattern")} <= items
    for ev in payload["differential"][0]["evidence"]:
        assert {"likelihood_ratio", "effect", "basis", "source", "note"} <= set(ev)
        if ev["basis"] == "no data":
            assert ev["effect"] == "neutral" and ev["note"]
    site = interpret_panel(REFERENCE, site="lung").to_json()
    assert site["prior"]["basis"] == "site" and site["prior"]["site"] == "lung"


def test_findings_change_the_posterior_only_through_the_data():
    base = interpret_panel(REFERENCE)
    same = interpret_panel(REFERENCE, pattern=[])
    assert [e.probability for e in base.differential] == [e.probability for e in same.differential]


@pytest.mark.parametrize(("option", "value", "accepted"), [
    ("--mitoses", "lots", "12/10HPF"), ("--age", "-3", "0 to 120"), ("--sex", "X", "F or M"),
    ("--pattern", "spindly", "fascicular"), ("--necrosis", "maybe", "yes or no"),
    ("--atypia", "high", "none, mild, moderate or marked"),
])
def test_cli_bad_values_exit_2_with_one_line(capsys, option, value, accepted):
    code, out, err = run(capsys, "panel", REFERENCE, option, value)
    assert code == 2
    assert err.startswith("error: ") and accepted in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_all_options_and_repeatable_pattern(capsys):
    code, out, err = run(capsys, "panel", REFERENCE, "--site", "lung", "--age", "68", "--sex", "F", "--mitoses",
                         "11/10HPF", "--necrosis", "yes", "--atypia", "marked", "--pattern", "fascicular",
                         "--pattern", "pleomorphic,storiform", "--format", "json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["findings"]["pattern"] == ["fascicular", "pleomorphic", "storiform"]
    assert payload["findings"]["necrosis"] == "yes" and payload["findings"]["sex"] == "F"
    code, out, _ = run(capsys, "panel", REFERENCE, "--mitoses", "4/mm2", "--atypia", "mild")
    assert code == 0 and "Findings" in out and "mitoses" in out


def test_contradiction_is_a_warning_not_a_crash(capsys):
    code, out, err = run(capsys, "panel", REFERENCE, "--sex", "M", "--site", "uterus", "--format", "json")
    assert code == 0, err
    assert any("--sex M contradicts --site uterus" in w for w in json.loads(out)["warnings"])


def test_panel_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(REFERENCE + "\n"))
    code, out, err = run(capsys, "panel", "-", "--format", "json")
    assert code == 0, err
    direct = interpret_panel(REFERENCE).to_json(top=5)
    assert json.loads(out)["differential"][0]["id"] == direct["differential"][0]["id"]
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    code, _, err = run(capsys, "panel", "-")
    assert code == 2 and "empty panel" in err


def test_panel_cases_reads_case_report_columns(capsys, tmp_path):
    cases = tmp_path / "reports.csv"
    cases.write_text(
        "id,expected,site,age,sex,panel,mitoses,necrosis,atypia,pattern,citation,note\n"
        "r1,leiomyosarcoma,lung,68,F,actin+ desmin+ CK-pan- CD34- CD117- S-100- foo+,11/10HPF,yes,marked,"
        "fascicular;pleomorphic,doi:10.0/x,\n"
        "r2,solitary_fibrous_tumor,,54,M,STAT6+ CD34+,,,,,pmid:1,\n", encoding="utf-8")
    code, out, err = run(capsys, "panel-cases", "--cases", str(cases), "--ignore-unknown", "--format", "json",
                         "--per-entity")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["n_cases"] == 2 and set(payload["per_entity"]) == {"leiomyosarcoma", "solitary_fibrous_tumor"}
    code, out, err = run(capsys, "panel-cases", "--cases", str(cases), "--format", "json")
    assert code == 0, err  # without --ignore-unknown the unknown marker is refused: that case counts as a miss
    refused = [c for c in json.loads(out)["cases"] if c["error"]]
    assert len(refused) == 1 and "foo" in refused[0]["error"] and refused[0]["predicted"] is None


def test_age_spread_from_a_range_depends_on_the_number_of_cases():
    """Wan et al. 2014: the range of n normal draws spans 2·Φ⁻¹((n − 0.375)/(n + 0.25)) SDs."""
    from spindledx.ihc.evidence import RANGE_TO_SIGMA, age_sigma, range_in_sds
    from spindledx.ihc.knowledge import Clinical

    assert range_in_sds(30) == pytest.approx(4.08, abs=0.01)
    assert range_in_sds(1000) == pytest.approx(6.46, abs=0.01)
    assert range_in_sds(None) == range_in_sds(1) == RANGE_TO_SIGMA
    small = Clinical("x", 50, None, None, 20, 80, None, 30, "series", "doi:10.1/x")
    registry = Clinical("x", 50, None, None, 20, 80, None, 5000, "registry", "doi:10.1/x")
    # the same range from a registry means a narrower distribution than from a small series
    assert age_sigma(registry)[0] < age_sigma(small)[0] * 0.65
    # ages counted on fewer cases than the row's n (pooled sex figures) use their own n
    pooled = Clinical("x", 50, None, None, 20, 80, None, 5000, "pooled", "doi:10.1/x", age_n_cases=30)
    assert age_sigma(pooled)[0] == pytest.approx(age_sigma(small)[0])
