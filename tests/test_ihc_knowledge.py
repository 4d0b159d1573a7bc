"""The knowledge base loads every row of its files, and a row that breaks a file's columns is refused naming the
file, the line and the column."""

from __future__ import annotations

import csv
import shutil
from importlib import resources
from pathlib import Path

import pytest

from spindledx.ihc import knowledge
from spindledx.ihc.knowledge import KnowledgeBaseError, build_knowledge_base

DATA = Path(str(resources.files("spindledx.ihc") / "data"))


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_no_row_of_the_knowledge_files_is_skipped():
    kb = build_knowledge_base()
    assert kb.skipped_rows == () and kb.missing_files == ()
    # files whose every row is one entry
    assert len(kb.markers) == len(_rows("markers.csv"))
    assert len(kb.entities) == len(_rows("entities.csv"))
    assert len(kb.facts) == len(_rows("facts.csv"))
    assert len(kb.pair_background) == len(_rows("entity_marker_background.csv"))
    assert len(kb.elicited) == len(_rows("elicited.csv"))
    assert len(kb.reporting) == len(_rows("reporting.csv"))
    # files the structured elicitation completes: every row is there, with the literature figure kept
    assert all(kb.site_priors[r["site"]][r["entity"]].weight == float(r["weight"]) for r in _rows("site_priors.csv"))
    assert {r["entity"] for r in _rows("population_priors.csv")} <= set(kb.population_priors)
    assert {(r["entity"], r["feature"], r["value"]) for r in _rows("morphology.csv")} <= set(kb.morphology)
    placeholders = {r["entity"] for r in _rows("clinical.csv")
                    if not any(r.get(k) for k in ("age_median", "age_q1", "age_q3", "age_min", "age_max",
                                                   "female_fraction"))}
    assert {r["entity"] for r in _rows("clinical.csv")} - placeholders <= set(kb.clinical)


@pytest.fixture()
def data_copy(tmp_path, monkeypatch):
    """A copy of the data files that the loader reads instead of the package's."""
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)

    class Files:
        @staticmethod
        def files(package: str) -> Path:
            return tmp_path

    monkeypatch.setattr(knowledge, "resources", Files)
    return copy


def _replace_cell(path: Path, line: int, column: str, value: str) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), reader.fieldnames
    rows[line - 2][column] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(("name", "column", "value", "message"), [
    ("facts.csv", "fraction_positive", "1.2", "fraction 1.2 outside [0, 1]"),
    ("facts.csv", "n_cases", "many", "'many' is not a whole number"),
    ("facts.csv", "evidence", "hearsay", "unknown evidence 'hearsay'"),
    ("facts.csv", "marker", "NOSUCH", "unknown marker 'NOSUCH'"),
    ("markers.csv", "kind", "magic", "unknown kind 'magic'"),
    ("elicited.csv", "p_min", "x", "'x' is not a number"),
    ("site_priors.csv", "weight", "0", "weight must be > 0"),
])
def test_a_bad_cell_names_file_line_and_column(data_copy, name, column, value, message):
    _replace_cell(data_copy / name, 3, column, value)
    with pytest.raises(KnowledgeBaseError) as refused:
        build_knowledge_base()
    error = refused.value
    assert (error.file, error.row, error.column) == (name, 3, column)
    assert str(error).startswith(f"{name} line 3, column {column}: ") and message in str(error)
    assert isinstance(error, ValueError)
