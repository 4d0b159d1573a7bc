"""Options shared between commands take the same words."""

from __future__ import annotations

import pytest

from spindledx.cli import main


@pytest.mark.parametrize("word", ["none", "no", "<50", ">=50"])
def test_grade_takes_the_necrosis_words_of_case(word: str) -> None:
    assert main(["grade", "--mitoses", "12", "--necrosis", word, "--differentiation", "2"]) == 0


def test_grade_necrosis_yes_asks_for_the_extent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "--mitoses", "12", "--necrosis", "yes", "--differentiation", "2"]) == 2
    err = capsys.readouterr().err
    assert "<50 or >=50" in err and err.count("\n") == 1


def test_case_shape_is_checked_like_slide(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["case", "desmin+", "--slide", str(tmp_path / "x.svs"), "--shape", "hexagon",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--shape" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
