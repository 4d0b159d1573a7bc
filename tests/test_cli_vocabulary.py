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


def test_case_takes_the_finding_words_of_panel(tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    code = main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out), "--age", "52", "--sex", "female",
                 "--atypia", "severe", "--pattern", "fascicular,storiform"])
    assert code == 0, capsys.readouterr().err
    inputs = json.loads((out / "case.json").read_text())["inputs"]
    assert (inputs["age"], inputs["sex"], inputs["atypia"]) == (52, "F", "marked")
    assert inputs["pattern"] == ["fascicular", "storiform"]


def test_case_age_is_refused_like_panel_age(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["case", "desmin+", "--tiles", str(tmp_path), "--out", str(tmp_path / "o"), "--age", "old"]) == 2
    assert main(["panel", "desmin+", "--age", "old"]) == 2
    case_err, panel_err = capsys.readouterr().err.splitlines()
    assert case_err == panel_err == "error: --age 'old': give the age in years, a number from 0 to 120"
