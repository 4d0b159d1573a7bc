"""Library errors speak of parameters, the CLI of its flags (issue 11, "One CLI options module")."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest

from spindledx import counting
from spindledx.cli import main
from spindledx.cli.options import cli_message, flag_of
from spindledx.errors import BadInputError

SRC = Path(__file__).resolve().parents[1] / "src" / "spindledx"
CLI_PACKAGE = SRC / "cli"


def _message_text(node: ast.expr) -> str:
    """The literal text of a message expression (string constants and the constant parts of f-strings)."""
    return "".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def test_no_library_error_names_a_command_line_flag():
    """Every BadInputError raised outside the CLI modules names parameters, never `--flags` (a whole command
    line quoted as `spindledx ... --out`, telling what to run first, is not a parameter)."""
    offenders = []
    n_checked = 0
    for path in sorted(SRC.rglob("*.py")):
        if CLI_PACKAGE in path.parents or path.name == "entry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BadInputError" and node.args:
                n_checked += 1
                text = re.sub(r"`spindledx [^`]*`", "", _message_text(node.args[0]))
                if re.search(r"(?<![\w-])--[a-z]", text):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert n_checked > 50 and offenders == []


def test_hpf_resolver_names_parameters_and_the_cli_its_flags(tmp_path, capsys):
    with pytest.raises(BadInputError) as refused:
        counting.resolve_hpf_area_mm2(0.2, 22.0)
    message = str(refused.value)
    assert message == "give either hpf_area or field_number_mm/objective_magnification, not both"
    assert cli_message(refused.value) == "give either --hpf-area-mm2 or --field-number/--objective, not both"
    with pytest.raises(BadInputError, match=r"^hpf_area must be an HPF area"):
        counting.resolve_hpf_area_mm2(float("nan"))
    with pytest.raises(BadInputError, match=r"^hpf_area_mm2 must be an HPF area"):
        counting.check_hpf_area_mm2(-1.0)
    # the same errors through the CLI name the flags
    assert main(["grade", "--mitoses", "5", "--hpf-area-mm2", "0.2", "--field-number", "22", "--necrosis", "none",
                 "--differentiation", "2"]) == 2
    assert "error: give either --hpf-area-mm2 or --field-number/--objective, not both" in capsys.readouterr().err
    assert main(["score", str(tmp_path), "--hpf-area-mm2", "nan"]) == 2
    assert "error: --hpf-area-mm2 must be an HPF area" in capsys.readouterr().err


def test_dask_extra_missing_names_the_parameter_then_the_flag(monkeypatch):
    from spindledx.engine.workers import run_dask

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith("dask."):
            raise ImportError("No module named 'dask'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(BadInputError) as refused:
        list(run_dask(str, [1], address="local", jobs=1))
    assert str(refused.value) == "dask needs dask[distributed]: pip install 'spindledx[cluster]'"
    assert cli_message(refused.value) == "--dask needs dask[distributed]: pip install 'spindledx[cluster]'"


def test_case_and_panel_findings_speak_of_parameters_in_the_library_and_flags_in_the_cli(capsys):
    from spindledx.ihc import interpret_panel

    with pytest.raises(BadInputError) as refused:
        interpret_panel("SMA+", mitoses="lots")
    assert str(refused.value).startswith("mitoses 'lots'") and refused.value.parameters == ("mitoses",)
    with pytest.raises(BadInputError, match=r"use ignore_unknown=True to skip it"):
        interpret_panel("SMA+ foo+")
    assert main(["panel", "SMA+ foo+"]) == 2
    assert "(use --ignore-unknown to skip it)" in capsys.readouterr().err
    assert main(["panel", "SMA+", "--mitoses", "lots"]) == 2
    assert "error: --mitoses 'lots':" in capsys.readouterr().err


def test_cli_message_rewrites_whole_names_only():
    exc = BadInputError("n must be at least 1 (got 0); n is the number of questions", parameters="n")
    assert cli_message(exc) == "--n must be at least 1 (got 0); n is the number of questions"  # the first only
    exc = BadInputError("hpf_area_mm2 is not hpf_area", parameters="hpf_area")
    assert cli_message(exc) == "hpf_area_mm2 is not --hpf-area-mm2"
    assert cli_message(BadInputError("use restart=True", parameters="restart")) == "use --restart"
    assert cli_message(ValueError("plain")) == "plain"
    assert flag_of("out_dir") == "--out" and flag_of("ignore_unknown") == "--ignore-unknown"
