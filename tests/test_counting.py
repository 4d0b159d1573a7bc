import math

import pytest

from spindledx import counting
from spindledx.cli import main
from spindledx.errors import BadInputError


def test_hpf_area_fn22_40x_is_0238_mm2():
    # Renne 2023: 10x/22 eyepiece with a 40x objective -> d = 0.55 mm -> 0.238 mm²
    assert counting.hpf_area_mm2(22, 40) == pytest.approx(math.pi * 0.275**2)
    assert round(counting.DEFAULT_HPF_AREA_MM2, 3) == 0.238


def test_image_area_and_density_are_exact():
    area = counting.image_area_mm2(1024, 1024, 0.25)
    assert area == pytest.approx(0.065536)
    assert counting.density_per_mm2(4, area) == pytest.approx(4 / 0.065536)
    # 10 mitoses/mm² over 10 HPF of 0.238 mm² -> 23.8 per 10 HPF
    assert counting.per_10_hpf(10.0, 0.238) == pytest.approx(23.8)


@pytest.mark.parametrize("count,score", [(0, 1), (9, 1), (9.99, 1), (10, 2), (19, 2), (20, 3), (55, 3)])
def test_fnclcc_mitotic_score_cutoffs(count, score):
    assert counting.fnclcc_mitotic_score(count) == score


@pytest.mark.parametrize("mpp", [0.0, -1.0, 100.0, float("nan")])
def test_implausible_mpp_is_bad_input(mpp):
    with pytest.raises(BadInputError):
        counting.check_mpp(mpp)


def test_reference_case_conventional_lms_grade():
    # conventional LMS (2) + 12 mitoses/10 HPF (2) + necrosis <50% (1) = 5 -> grade 2
    g = counting.fnclcc_grade(mitoses=12, differentiation_score=counting.differentiation_score_for(
        "leiomyosarcoma", "conventional"), necrosis="<50")
    assert (g.mitotic_score, g.total, g.grade) == (2, 5, 2)
    assert "0.238" in g.area_note


def test_grade_by_area_converts_to_the_reference_hpf():
    # 5 mitoses in 1 mm² = 5/mm² = 11.9 per 10 HPF of 0.238 mm² -> mitotic score 2
    g = counting.fnclcc_grade(mitoses=5, differentiation_score=3, necrosis=">=50", area_mm2=1.0)
    assert g.mitoses_per_10hpf == pytest.approx(5 * 2.376, rel=1e-3)
    assert (g.mitotic_score, g.extrapolated_grade) == (2, 3)
    assert g.grade is None and g.status == "extrapolated"  # 1 mm² is 4.2 HPF: no FNCLCC grade


def test_grade_rejects_bad_necrosis_and_ungraded_entities():
    with pytest.raises(BadInputError):
        counting.fnclcc_grade(mitoses=3, differentiation_score=2, necrosis="some")
    with pytest.raises(BadInputError):
        counting.differentiation_score_for("leiomyoma")


def test_grade_cli_json_and_bad_input(capsys):
    assert main(["grade", "--mitoses", "25", "--necrosis", ">=50", "--entity", "leiomyosarcoma",
                 "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"grade": 3' in out
    assert main(["grade", "--mitoses", "5", "--necrosis", "lots", "--differentiation", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: necrosis") and "Traceback" not in err


def test_resolve_hpf_area_from_cli_options():
    assert counting.resolve_hpf_area_mm2() == pytest.approx(counting.DEFAULT_HPF_AREA_MM2)
    assert counting.resolve_hpf_area_mm2(0.3) == 0.3
    assert counting.resolve_hpf_area_mm2(None, 20, 40) == pytest.approx(math.pi * 0.25**2)
    with pytest.raises(BadInputError):
        counting.resolve_hpf_area_mm2(0.3, 22, None)
    with pytest.raises(BadInputError):
        counting.resolve_hpf_area_mm2(-1.0)


@pytest.mark.parametrize(("count", "low", "high"), [(0, 0.0, 3.689), (1, 0.0253, 5.572), (10, 4.795, 18.390),
                                                     (20, 12.217, 30.888)])
def test_poisson_interval_matches_the_exact_garwood_table(count, low, high):
    # reference values: the chi-square form chi2(0.025; 2k)/2, chi2(0.975; 2k+2)/2 (Garwood 1936)
    got = counting.poisson_interval(count)
    assert got[0] == pytest.approx(low, abs=1e-3) and got[1] == pytest.approx(high, abs=1e-3)


def test_a_count_near_a_cut_off_spans_two_or_three_scores_until_more_area_is_counted():
    ten_hpf = 10 * counting.DEFAULT_HPF_AREA_MM2
    small = counting.MitoticDensity.of(12, ten_hpf)  # 12 / 10 HPF: score 2, but 6.2-21.0 per 10 HPF
    low, high = small.per_10hpf_interval()
    assert low == pytest.approx(6.2, abs=0.05) and high == pytest.approx(20.96, abs=0.05)
    assert small.fnclcc_score == 2 and small.fnclcc_scores_in_interval() == (1, 2, 3)
    large = counting.MitoticDensity.of(150, 10 * ten_hpf)  # the same density over 100 HPF
    assert large.fnclcc_scores_in_interval() == (2,)
    assert counting.MitoticDensity.of(0, ten_hpf).fnclcc_scores_in_interval() == (1,)
    with pytest.raises(BadInputError):
        counting.poisson_interval(-1)
    with pytest.raises(BadInputError):
        counting.poisson_interval(3, level=1.0)


def test_case_grade_states_the_counting_uncertainty_when_it_spans_scores():
    from spindledx.case.workup import CaseOptions, grade, pooled_count

    ten_hpf = 10 * counting.DEFAULT_HPF_AREA_MM2
    opts = CaseOptions(panel="actin+ desmin+", necrosis="none")
    near = pooled_count([{"count": 12, "area_mm2": ten_hpf}], hpf_area_mm2=counting.DEFAULT_HPF_AREA_MM2)
    assert near["mitotic_scores_ci95"] == [1, 2, 3] and near["mitoses_per_10hpf_ci95"][0] < 10 < 20 < \
        near["mitoses_per_10hpf_ci95"][1]
    g = grade(opts, "leiomyosarcoma", near)
    assert g["status"] == "graded" and any("counting uncertainty" in c and "scores 1-3" in c for c in g["caveats"])
    far = pooled_count([{"count": 300, "area_mm2": 4 * ten_hpf}], hpf_area_mm2=counting.DEFAULT_HPF_AREA_MM2)
    assert far["mitotic_scores_ci95"] == [3]
    assert not any("counting uncertainty" in c for c in grade(opts, "leiomyosarcoma", far)["caveats"])


def test_grade_command_reports_the_interval_and_drops_the_cut_off_guess(capsys):
    code = main(["grade", "--mitoses", "12", "--hpf", "10", "--necrosis", "none", "--differentiation", "2",
                 "--format", "json"])
    doc = __import__("json").loads(capsys.readouterr().out)
    assert code in (0, None) and doc["mitotic_score"] == 2 and doc["mitotic_scores_ci95"] == [1, 2, 3]
    assert doc["mitoses_per_10hpf_ci95"][0] == pytest.approx(6.2, abs=0.05)
    assert any("counting uncertainty" in c for c in doc["caveats"])
    fractional = counting.fnclcc_grade(mitoses=9.5, differentiation_score=2, necrosis="none")
    assert fractional.mitoses_per_10hpf_ci95 is None and any("just below" in c for c in fractional.caveats)
