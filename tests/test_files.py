"""Output names and cells (spindledx.files) as `score` and `batch` use them: names stay inside --out, outputs of
different images never overwrite each other, one bad file does not stop a folder run, no spreadsheet formulas in
tiles.csv, duplicates counted once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.detection.types import Detection
from spindledx.files import output_stems
from spindledx.qa.manifest import load_manifest


def one_spot_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake: the darkest pixel of the tile."""
    y, x = np.unravel_index(int(np.argmin(rgb.astype(int).sum(axis=2))), rgb.shape[:2])
    return [Detection(float(x), float(y), 0.9)]


@pytest.fixture(autouse=True)
def fake_detector(monkeypatch):
    monkeypatch.setattr(shipped, "factory", lambda threshold: one_spot_detector)


def _tile(path: Path, seed: int = 0) -> Path:
    noise = np.random.default_rng(seed).integers(0, 40, (64, 80, 3))
    rgb = (noise + np.array([170, 90, 140])).astype(np.uint8)  # H&E-pink: all of it is tissue
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, dpi=(25400 / 0.25, 25400 / 0.25))
    return path


def _outputs(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


def test_same_names_in_two_folders_stay_inside_out(tmp_path, monkeypatch):
    """Defect 1: `score a/x.tif b/x.tif --out O` wrote the per-image files into / (names from absolute paths)."""
    a, b = _tile(tmp_path / "a" / "x.png", 1), _tile(tmp_path / "b" / "x.png", 2)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "O"
    assert main(["score", str(a), str(b), "--out", str(out), "--format", "json"]) == 0
    geojson = sorted(p for p in out.rglob("*.geojson"))
    assert len(geojson) == 2 and all(p.parent == out for p in geojson)
    assert {p.name for p in geojson} == {"a__x.png_mitoses.geojson", "b__x.png_mitoses.geojson"}


def test_outputs_of_different_images_never_overwrite_each_other(tmp_path):
    """Defect 2: a.png + a.jpg, and sub/b.png + sub__b.png, wrote to the same output files."""
    folder = tmp_path / "in"
    _tile(folder / "a.png", 1)
    Image.open(_tile(tmp_path / "other.png", 2)).save(folder / "a.jpg")
    _tile(folder / "sub" / "b.png", 3)
    _tile(folder / "sub__b.png", 4)
    out = tmp_path / "O"
    assert main(["score", str(folder), "--out", str(out), "--mpp", "0.25", "--format", "json"]) == 0
    overlays = [n for n in _outputs(out) if n.endswith("_overlay.png")]
    assert len(overlays) == 4


def test_output_stems_are_safe_and_distinct():
    paths = [Path("/x/a.png"), Path("/x/a.jpg"), Path("/x/sub/b.png"), Path("/x/sub__b.png"), Path("/x/A.png"),
             Path("/x/" + "n" * 250 + ".png"), Path("/x/.hidden.png")]
    stems = output_stems(paths)
    assert len({s.lower() for s in stems}) == len(stems)
    assert all("/" not in s and not s.startswith(".") and len(s) <= 100 for s in stems)


def test_one_bad_file_does_not_stop_a_folder_run(tmp_path, capsys):
    """Defect 6: an unreadable file or a non-UTF-8 name stopped `score` (exit 1); the others must be scored."""
    folder = tmp_path / "in"
    _tile(folder / "good.png", 1)
    locked = _tile(folder / "locked.png", 2)
    locked.chmod(0)
    odd = os.fsencode(str(folder)) + b"/caf\xe9.png"  # Latin-1 name, not UTF-8
    with open(odd, "wb") as fh:
        fh.write((folder / "good.png").read_bytes())
    try:
        code = main(["score", str(folder), "--format", "json"])
    finally:
        locked.chmod(0o644)
    captured = capsys.readouterr()
    scored = json.loads(captured.out)
    if os.geteuid() == 0:  # root reads a mode-000 file: then only the odd name is checked
        assert code == 0 and len(scored) == 3
    else:
        assert code == 2 and len(scored) == 2 and "locked.png" in captured.err
    assert any(r["image"].endswith("caf\\xe9.png") for r in scored)
    assert "Traceback" not in captured.err


def test_case_names_cannot_run_as_spreadsheet_formulas(tmp_path):
    """Defect 9: a case named =HYPERLINK(...) reached tiles.csv as a live formula."""
    from spindledx.qa.report import write_outputs

    rows = [{"key": "t.png", "case": '=HYPERLINK("http://x","y")', "count": 1, "flags": ["-bad"],
             "warnings": ["@w"], "mitoses": [], "error": None}]
    paths = write_outputs(rows, {"n_tiles": 1}, tmp_path)
    frame = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    assert frame.loc[0, "case"] == "'=HYPERLINK(\"http://x\",\"y\")" and frame.loc[0, "flags"] == "'-bad"
    assert frame.loc[0, "count"] == "1"  # numbers stay numbers


def test_manifest_duplicates_and_same_stem_cases(tmp_path):
    """Defect 10: ./t1.png and t1.png in one manifest were two tiles; tile.png and tile.jpg were pooled."""
    _tile(tmp_path / "t1.png", 1)
    (tmp_path / "m.csv").write_text("image\n./t1.png\nt1.png\n")
    from spindledx.errors import BadInputError

    with pytest.raises(BadInputError, match="repeats row 1"):
        load_manifest(tmp_path / "m.csv")
    _tile(tmp_path / "tile.png", 2)
    Image.fromarray(np.full((64, 80, 3), (200, 100, 150), np.uint8)).save(tmp_path / "tile.jpg")
    (tmp_path / "n.csv").write_text("image\ntile.png\ntile.jpg\nt1.png\n")
    cases = [s.case for s in load_manifest(tmp_path / "n.csv")]
    assert cases == ["tile.png", "tile.jpg", "t1"]


def test_same_image_twice_is_counted_once(tmp_path, capsys, monkeypatch):
    """Defect 10: the same image passed twice to `score` doubled the counted area."""
    tile = _tile(tmp_path / "t1.png", 1)
    monkeypatch.chdir(tmp_path)
    assert main(["score", "t1.png", "./t1.png", str(tile), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 1 and "scored once" in captured.err


def test_batch_survives_odd_and_over_long_names(tmp_path):
    """Defect 6: a non-UTF-8 or over-long file name stopped `batch` (exit 1 while writing the tables)."""
    from spindledx.qa.manifest import tiles_from_folder
    from spindledx.qa.runner import run_and_write

    folder = tmp_path / "in"
    good = _tile(folder / "good.png", 1)
    for raw in (b"caf\xe9.png", b"n" * 240 + b".png"):
        with open(os.fsencode(str(folder)) + b"/" + raw, "wb") as fh:
            fh.write(good.read_bytes())
    result = run_and_write(tiles_from_folder(folder, mpp=0.25), tmp_path / "out", detector=one_spot_detector,
                           progress=False)
    assert len(result.outcome.rows) == 3 and not any(r["error"] for r in result.outcome.rows)
    frame = pd.read_csv(result.paths["csv"])
    assert any("caf\\xe9" in str(k) for k in frame["key"])
    assert all(len(p.name) < 255 for p in (tmp_path / "out").iterdir())
