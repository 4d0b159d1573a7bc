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
    assert (g.mitotic_score, g.grade) == (2, 3)


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
