"""`grade` follows the rules of every count: under 10 HPF no grade, the density bound, a plausible HPF area."""

from __future__ import annotations

import json

import pytest

from spindledx import counting
from spindledx.cli import main
from spindledx.errors import BadInputError


def test_one_figure_in_a_tiny_area_gives_no_grade_and_says_why(capsys):
    assert main(["grade", "--mitoses", "1", "--area-mm2", "0.0001", "--necrosis", "none",
                 "--differentiation", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "No FNCLCC grade (extrapolated" in out and "were counted; FNCLCC counts 10 HPF" in out


def test_grade_json_states_status_reason_and_the_grade_it_would_give(capsys):
    assert main(["grade", "--mitoses", "1", "--area-mm2", "0.0001", "--necrosis", "none", "--differentiation", "2",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grade"] is None and doc["status"] == "extrapolated" and doc["extrapolated"] is True
    assert doc["extrapolated_grade"] in (1, 2, 3) and "10 HPF" in doc["reason"]


def test_an_impossible_density_is_flagged_not_graded(capsys):
    assert main(["grade", "--mitoses", "5000", "--necrosis", "none", "--differentiation", "2", "--format",
                 "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grade"] is None and doc["status"] == "flagged" and doc["flags"] == ["implausible_density"]
    assert main(["grade", "--mitoses", "5000", "--necrosis", "none", "--differentiation", "2", "--format", "json",
                 "--use-flagged-count"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["grade"] == 2 and doc["status"] == "graded" and doc["flags"] == ["implausible_density"]


@pytest.mark.parametrize("args", [["--hpf-area-mm2", "1e-9"], ["--hpf-area-mm2", "0.5"], ["--objective", "20"]])
def test_an_hpf_that_is_not_a_40x_field_is_refused_unless_allowed(args, capsys):
    base = ["grade", "--mitoses", "5", "--necrosis", "none", "--differentiation", "2", *args]
    assert main(base) == 2
    assert "--allow-unusual-hpf" in capsys.readouterr().err
    assert main([*base, "--allow-unusual-hpf"]) == 0


def test_library_rules():
    g = counting.fnclcc_grade(mitoses=12, differentiation_score=2, necrosis="<50")
    assert (g.status, g.grade, g.n_hpf) == ("graded", 2, pytest.approx(10.0))
    g = counting.fnclcc_grade(mitoses=3, differentiation_score=2, necrosis="<50", area_mm2=0.5)
    assert g.status == "extrapolated" and g.grade is None and g.extrapolated_grade == 2
    g = counting.fnclcc_grade(mitoses=12, differentiation_score=2, necrosis="<50", flags=["out_of_distribution"])
    assert g.status == "flagged" and g.grade is None and g.flagged_grade == 2
    with pytest.raises(BadInputError, match="allow_unusual_hpf"):
        counting.resolve_hpf_area_mm2(0.01)
    assert counting.resolve_hpf_area_mm2(0.01, allow_unusual_hpf=True) == 0.01


def test_score_json_marks_extrapolation(tmp_path, capsys):
    from spindledx.mitosis.score import count_extras

    extras = count_extras(3, 0.066, counting.DEFAULT_HPF_AREA_MM2)
    assert extras["extrapolated"] is True and extras["n_hpf"] == pytest.approx(0.278, abs=1e-3)
    assert extras["mitoses_per_10hpf_ci95"][0] < 3 / 0.066 * 2.376 < extras["mitoses_per_10hpf_ci95"][1]
