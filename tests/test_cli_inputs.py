"""Inputs the commands refuse or handle plainly: NaN/inf coordinates, an unchecked site, echoed file contents and
arguments, misleading messages, a missing optional extra."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spindledx.cli import main
from spindledx.errors import BadInputError
from spindledx.mitosis.evaluate import load_points_csv
from spindledx.qa.manifest import load_manifest, read_points_csv


def test_evaluate_refuses_nan_and_infinite_coordinates(tmp_path):
    """Defect 12: `evaluate` accepted NaN/inf coordinates (every match silently missed)."""
    for bad in ("nan", "inf", "-inf"):
        path = tmp_path / f"{bad}.csv"
        path.write_text(f"image,x,y\na.png,{bad},3\n")
        with pytest.raises(BadInputError, match="infinite"):
            load_points_csv(path)
        with pytest.raises(BadInputError, match="finite"):
            read_points_csv(path)


def test_site_is_checked_when_the_panel_is_empty(tmp_path):
    """Defect 12: `site` was not checked for a case without a panel."""
    Image.fromarray(np.full((32, 32, 3), (200, 100, 150), np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "m.csv").write_text("image,site\nt.png,atlantis\n")
    with pytest.raises(BadInputError, match="unknown site 'atlantis'"):
        load_manifest(tmp_path / "m.csv")
    (tmp_path / "ok.csv").write_text("image,site\nt.png,lung\n")
    assert load_manifest(tmp_path / "ok.csv")[0].site == "lung"


def test_annotations_error_does_not_print_the_files_first_line(tmp_path):
    """Defect 13: a wrong annotations file had its first line (e.g. a secret) echoed in the error."""
    secret = tmp_path / "notes.txt"
    secret.write_text("password=hunter2,token\n1,2\n")
    with pytest.raises(BadInputError) as info:
        read_points_csv(secret)
    assert "hunter2" not in str(info.value) and "x, y" in str(info.value)


def test_a_huge_marker_is_not_echoed_in_full(capsys):
    """Defect 13: a 100k-character marker was echoed in full."""
    assert main(["panel", "X" * 100_000 + "+"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400 and err.count("\n") == 1


def test_nan_hpf_options_name_the_hpf_area(capsys):
    """Defect 13: NaN HPF options were reported as 'count must be non-negative'."""
    assert main(["grade", "--mitoses", "3", "--necrosis", "none", "--differentiation", "2",
                 "--field-number", "nan"]) == 2
    err = capsys.readouterr().err
    assert "field number" in err and "count" not in err


def test_without_the_parquet_extra_batch_writes_csv_and_says_so(tmp_path, monkeypatch):
    """pyarrow is an extra: without it the tables are CSV only and a Parquet manifest gets one clear line."""
    import builtins

    import spindledx.qa.report as report

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(report, "parquet_available", lambda: False)
    paths = report.write_outputs([{"key": "t.png", "case": "c", "count": 1, "mitoses": [], "error": None}],
                                 {"n_tiles": 1}, tmp_path / "out")
    assert "parquet" not in paths and not (tmp_path / "out" / "tiles.parquet").exists() and paths["csv"].exists()
    (tmp_path / "m.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(BadInputError, match=r"spindledx\[parquet\]"):
        load_manifest(tmp_path / "m.parquet")


def test_grade_entity_resolves_names_and_the_table_is_cited_data(capsys):
    """`grade --entity` resolves names and aliases like `panel`; the differentiation table is package data with a
    source on every row (knowledge as data, not code)."""
    import csv
    from importlib import resources

    text = (resources.files("spindledx") / "data" / "fnclcc_differentiation.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and all(r["source"].strip() for r in rows)
    for name in ("leiomyosarcoma", "Leiomyosarcoma", "LMS"):
        assert main(["grade", "--mitoses", "12", "--necrosis", "<50", "--entity", name, "--format", "json"]) == 0
        assert '"differentiation_score": 2' in capsys.readouterr().out
    assert main(["grade", "--mitoses", "12", "--necrosis", "<50", "--entity", "leiomyosarkoma"]) == 2
    assert "did you mean leiomyosarcoma" in capsys.readouterr().err
