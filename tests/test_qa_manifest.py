"""Manifest and folder input of `spindledx batch`: every bad row is reported at once, before image work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spindledx.errors import BadInputError
from spindledx.qa.manifest import load_manifest, read_points_csv, tiles_from_folder


def _png(path: Path) -> Path:
    import cv2

    cv2.imwrite(str(path), np.full((16, 16, 3), 200, np.uint8))
    return path


def test_good_manifest_resolves_paths_and_case_fields(tmp_path: Path) -> None:
    (tmp_path / "tiles").mkdir()
    _png(tmp_path / "tiles" / "a.png")
    _png(tmp_path / "tiles" / "b.png")
    (tmp_path / "pts.csv").write_text("x,y\n10,12\n3,4\n")
    (tmp_path / "m.csv").write_text(
        "image,case,mpp,expected_count,annotations,panel,diagnosis,site\n"
        "tiles/a.png,C1,0.25,,pts.csv,actin+ desmin+ CD34-,leiomyosarcoma,lung\n"
        "tiles/b.png,C1,0.5,3,,,,\n")
    specs = load_manifest(tmp_path / "m.csv")
    assert [s.key for s in specs] == ["tiles/a.png", "tiles/b.png"]
    a, b = specs
    assert Path(a.image) == (tmp_path / "tiles" / "a.png").resolve()
    assert a.points == ((10.0, 12.0), (3.0, 4.0)) and a.expected_count == 2
    assert b.points is None and b.expected_count == 3 and b.mpp == 0.5
    # case-level fields given once apply to every tile of the case
    assert b.panel == "actin+ desmin+ CD34-" and b.diagnosis == "leiomyosarcoma" and b.site == "lung"


def test_every_bad_row_reported_in_one_error(tmp_path: Path) -> None:
    _png(tmp_path / "ok.png")
    (tmp_path / "m.csv").write_text(
        "image,mpp,expected_count,panel\n"
        "ok.png,0.25,1,actin+ desmin+\n"       # row 1 fine
        "missing.png,0.25,1,\n"                # row 2 missing file
        "ok2.png,0,1,\n"                       # row 3 missing file and bad mpp
        "ok.png,0.25,-1,\n"                    # row 4 duplicate and bad expected count
        ",0.25,,\n")                            # row 5 empty image
    (tmp_path / "m2.csv").write_text("image,panel\nok.png,actin+ flurbin+\n")
    with pytest.raises(BadInputError) as info:
        load_manifest(tmp_path / "m.csv")
    msg = str(info.value)
    assert "4 bad row(s)" in msg and "\n" not in msg
    for needle in ("row 2: image 'missing.png' not found", "row 3:", "plausible scan resolution",
                   "row 4:", "repeats row 1", "expected_count '-1'", "row 5: image is empty"):
        assert needle in msg, needle
    assert "row 1" not in msg.split("repeats row 1")[0]
    with pytest.raises(BadInputError, match=r"row 1: panel: .*flurbin"):
        load_manifest(tmp_path / "m2.csv")


def test_unknown_marker_and_conflicting_case_fields_are_rows(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    (tmp_path / "m.csv").write_text("image,case,panel,diagnosis\n"
                                    "a.png,C,desmin+ zzz9+,leiomyosarcoma\n"
                                    "b.png,C,,gist\n")
    with pytest.raises(BadInputError) as info:
        load_manifest(tmp_path / "m.csv")
    msg = str(info.value)
    assert "2 bad row(s)" in msg and "zzz9" in msg and "row 2: case 'C' has diagnosis 'gist'" in msg


def test_parquet_manifest_and_unknown_column(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    pd.DataFrame({"image": ["a.png"], "mpp": [0.25]}).to_parquet(tmp_path / "m.parquet")
    assert load_manifest(tmp_path / "m.parquet")[0].mpp == 0.25
    (tmp_path / "bad.csv").write_text("image,colour\na.png,red\n")
    with pytest.raises(BadInputError, match="unknown column"):
        load_manifest(tmp_path / "bad.csv")
    with pytest.raises(BadInputError, match="no such manifest"):
        load_manifest(tmp_path / "nope.csv")


def test_folder_with_set_annotations(tmp_path: Path) -> None:
    _png(tmp_path / "P1.png")
    _png(tmp_path / "P2.png")
    (tmp_path / "notes.txt").write_text("not an image")
    ann = tmp_path.parent / f"{tmp_path.name}_ann.csv"
    ann.write_text("image,cx,cy\nP1.png,5,6\nP1.png,7,8\nP9.png,1,1\n")
    specs = tiles_from_folder(tmp_path, mpp=0.25, annotations=ann)
    assert [s.key for s in specs] == ["P1.png", "P2.png"]
    assert specs[0].points == ((5.0, 6.0), (7.0, 8.0)) and specs[0].expected_count == 2
    assert specs[1].points == () and specs[1].expected_count == 0
    assert read_points_csv(ann)["P9.png"] == ((1.0, 1.0),)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match="no images"):
        tiles_from_folder(empty)


def test_cli_reports_bad_manifest_before_any_image_work(tmp_path: Path, capsys) -> None:
    from spindledx.cli import main

    _png(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("image,mpp\na.png,99\nb.png,0.25\n")
    code = main(["batch", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "2 bad row(s)" in err and "row 1:" in err and "row 2: image 'b.png' not found" in err
    assert not (tmp_path / "out").exists()


def test_diagnosis_names_resolve_and_unknown_site_or_entity_is_a_row(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    (tmp_path / "ok.csv").write_text("image,panel,diagnosis,site\na.png,desmin+,Leiomyosarcoma,lung\n")
    assert load_manifest(tmp_path / "ok.csv")[0].diagnosis == "leiomyosarcoma"
    (tmp_path / "bad.csv").write_text("image,panel,diagnosis,site\n"
                                      "a.png,desmin+,leiomyosarcomma,lung\n"
                                      "b.png,desmin+,gist,moon\n")
    with pytest.raises(BadInputError) as info:
        load_manifest(tmp_path / "bad.csv")
    msg = str(info.value)
    assert "2 bad row(s)" in msg and "row 1: diagnosis: unknown entity" in msg and "row 2: site: unknown site" in msg
