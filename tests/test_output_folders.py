"""Output folders: nothing is written through links or outside the folder, and a run never silently replaces or
mixes with another (the ownership rule of :mod:`spindledx.engine.folder`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.detection.types import Detection
from spindledx.engine.folder import OWNER_NAME
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT


def spot_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake: a figure in the middle of the tile and one near its corner."""
    return [Detection(rgb.shape[1] / 2, rgb.shape[0] / 2, 0.9), Detection(20.0, 20.0, 0.8)]


@pytest.fixture()
def fakes(monkeypatch):
    """Fake detectors for `score`, `batch` and `case` (no model, no CPU cost)."""
    import spindledx.detection.model as model_module

    monkeypatch.setattr(shipped, "factory", lambda threshold: spot_detector)
    monkeypatch.setattr(model_module, "load_shipped_model", lambda *a, **k: None)
    use_detector(monkeypatch, fixed_detector)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "precious.txt"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("precious\nsecond line\n")
    return victim


def _batch(tiles: Path, out: Path, *extra: str) -> int:
    return main(["batch", str(tiles), "--out", str(out), "--mpp", "0.25", "--jobs", "1", "--no-progress", *extra])


# ------------------------------------------------------------------------------------------ writes through links


@pytest.mark.parametrize("command", ["score", "batch"])
def test_a_lock_file_link_is_refused_and_its_target_untouched(tmp_path, fakes, capsys, command):
    """A `.spindledx.lock` symlink in --out: the run emptied the link's target and wrote `pid N` into it."""
    write_tiles(tmp_path / "tiles", n=1)
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".spindledx.lock").symlink_to(victim)
    if command == "score":
        code = main(["score", str(tmp_path / "tiles"), "--out", str(out), "--format", "json"])
    else:
        code = _batch(tmp_path / "tiles", out)
    err = capsys.readouterr().err
    assert code == 2 and "symbolic link" in err and "Traceback" not in err
    assert victim.read_text() == "precious\nsecond line\n"


def test_a_result_log_link_is_refused_and_its_target_untouched(tmp_path, fakes, capsys):
    """A `tiles.jsonl` symlink: `batch` cut the target's last line and appended its rows to it."""
    write_tiles(tmp_path / "tiles", n=2)
    out = tmp_path / "out"
    assert _batch(tmp_path / "tiles", out) == 0
    victim = _victim(tmp_path)
    victim.write_text("precious\nno newline at the end")
    (out / "tiles.jsonl").unlink()
    (out / "tiles.jsonl").symlink_to(victim)
    capsys.readouterr()
    assert _batch(tmp_path / "tiles", out) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious\nno newline at the end"


def test_an_output_file_link_is_refused_before_anything_is_written(tmp_path, fakes, capsys):
    """`batch` replaced report.html whatever it was; a link among the outputs is now refused."""
    write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "out"
    assert _batch(tmp_path / "tiles", out) == 0
    victim = _victim(tmp_path)
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(victim)
    capsys.readouterr()
    assert _batch(tmp_path / "tiles", out) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious\nsecond line\n" and (out / "report.html").is_symlink()


def test_a_tiles_folder_link_is_refused_by_slide(tmp_path, capsys, monkeypatch):
    """A `tiles/` symlink: `slide` wrote its tile files into the link's target."""
    from spindledx.detection import shipped
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    rgb = make_slide_rgb(1200, 900, tissue_boxes=[(100, 100, 1100, 800)], figures=np.array([[600.0, 400.0]]),
                         figure_radius_px=20, seed=1)
    slide = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25, n_levels=2)
    out = tmp_path / "out"
    args = ["slide", str(slide), "--out", str(out), "--tile-um", "128", "--no-progress", "--format", "json"]
    assert main(args) == 0
    elsewhere = tmp_path / "elsewhere_tiles"
    elsewhere.mkdir()
    import shutil

    shutil.rmtree(out / "tiles")
    (out / "tiles").symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(args) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []
    assert main([*args, "--restart"]) == 2  # --restart does not follow the link either
    assert list(elsewhere.iterdir()) == []


def _score_folder(tmp_path: Path, capsys) -> tuple[Path, dict]:
    (tile,) = write_tiles(tmp_path / "t", n=1)
    out = tmp_path / "score"
    assert main(["score", str(tile), "--out", str(out), "--format", "json"]) == 0
    capsys.readouterr()
    return out, json.loads((out / "tile0_candidates.json").read_text())


def _decisions(path: Path, docs: list[dict], decide: str = "y", reviewer: str = "Dr A", **extra) -> Path:
    doc = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": reviewer, "date": "2026-11-29",
           "decisions": [{"id": c["id"], "decision": decide} for d in docs for c in d["candidates"]], **extra}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("stem", ["../PWNED", "ABSOLUTE", "", ".hidden", "a/b"])
def test_review_import_refuses_a_stem_that_is_not_a_file_name(tmp_path, fakes, capsys, stem):
    """`review --import` wrote `<stem>_reviewed.geojson` with the stem read unchecked (`../PWNED` escaped)."""
    out, doc = _score_folder(tmp_path, capsys)
    absolute = tmp_path / "abs" / "PWNED"
    absolute.parent.mkdir()
    doc["stem"] = str(absolute) if stem == "ABSOLUTE" else stem
    (out / "tile0_candidates.json").write_text(json.dumps(doc))
    decisions = _decisions(tmp_path / "d.json", [doc])
    assert main(["review", str(out), "--import", str(decisions)]) == 2
    err = capsys.readouterr().err
    assert "not a plain file name" in err and "Traceback" not in err
    assert not (tmp_path / "PWNED_reviewed.geojson").exists() and not list(absolute.parent.iterdir())
    assert not (out / "review_result.json").exists()


# ------------------------------------------------------------------------------------------------ ownership


def test_score_refuses_a_case_folder(tmp_path, fakes, capsys):
    """`score --out` into a case folder replaced its summary.json."""
    tiles = write_tiles(tmp_path / "tiles", n=1)
    case = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(case)]) == 0
    before = (case / "summary.json").read_bytes()
    capsys.readouterr()
    assert main(["score", str(tiles[0]), "--out", str(case)]) == 2
    err = capsys.readouterr().err
    assert "spindledx case" in err and "--overwrite" in err and err.count("\n") == 1
    assert (case / "summary.json").read_bytes() == before


@pytest.mark.parametrize("command", ["score", "batch"])
def test_a_users_files_are_not_replaced_without_overwrite(tmp_path, fakes, capsys, command):
    """`batch` / `score` replaced a user's report.html, tiles.csv or summary.json without asking."""
    write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("report.html", "tiles.csv", "summary.json", "mitoses.csv"):
        (out / name).write_text(f"my own {name}")

    def run(*extra: str) -> int:
        if command == "score":
            return main(["score", str(tmp_path / "tiles"), "--out", str(out), "--format", "json", *extra])
        return _batch(tmp_path / "tiles", out, *extra)

    assert run() == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err
    assert all((out / n).read_text() == f"my own {n}" for n in ("report.html", "tiles.csv", "summary.json"))
    assert run("--overwrite") == 0
    assert json.loads((out / "summary.json").read_text())["command"] == command


def test_the_same_run_resumes_and_another_is_refused(tmp_path, fakes, capsys):
    tiles = write_tiles(tmp_path / "tiles", n=2)
    out = tmp_path / "out"
    assert main(["score", str(tiles[0]), "--out", str(out), "--format", "json"]) == 0
    assert main(["score", str(tiles[0]), "--out", str(out), "--format", "json"]) == 0  # the same run again
    capsys.readouterr()
    assert main(["score", str(tiles[1]), "--out", str(out), "--format", "json"]) == 2
    assert "other inputs or settings (inputs)" in capsys.readouterr().err
    assert main(["score", str(tiles[1]), "--out", str(out), "--format", "json", "--overwrite"]) == 0
    # the replaced run's files are gone: the folder holds one run, not two mixed
    assert sorted(p.name for p in out.glob("*_candidates.json")) == ["tile1_candidates.json"]
    assert json.loads((out / OWNER_NAME).read_text())["command"] == "score"


def test_a_second_case_into_the_same_folder_is_refused(tmp_path, fakes, capsys):
    """Two `case --out X` both exited 0: one case silently replaced and the folder mixing both runs' files."""
    tiles = write_tiles(tmp_path / "tiles", n=2)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["case", "desmin+ CD34-", "--tiles", str(tiles[1]), "--out", str(out)]) == 2
    assert "already holds a case" in capsys.readouterr().err
    assert json.loads((out / "case.json").read_text())["inputs"]["panel"] == PANEL


def test_a_folder_in_use_is_refused_for_the_whole_run(tmp_path, fakes, capsys):
    """While another process holds the folder, a case run stops at once (exit 2) and writes nothing."""
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"fh = open({str(out / '.spindledx.lock')!r}, 'a+')\n"
        "fcntl.flock(fh, fcntl.LOCK_EX)\nfh.write('pid 1'); fh.flush()\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 2
        assert "in use by another spindledx run" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".spindledx.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_a_folders_own_outputs_are_never_read_as_inputs(tmp_path, fakes, capsys):
    """`score DIR --out DIR` made the next run score its own overlays (double count)."""
    folder = tmp_path / "slides"
    write_tiles(folder, n=2)
    assert main(["score", str(folder), "--out", str(folder), "--format", "json"]) == 2  # not empty, not ours
    assert "--overwrite" in capsys.readouterr().err
    assert main(["score", str(folder), "--out", str(folder / "scored"), "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["score", str(folder), "--out", str(tmp_path / "again"), "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert len(first) == len(again) == 2  # the overlays in slides/scored are not images to score
    assert main(["score", str(folder), "--out", str(folder), "--overwrite", "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["score", str(folder), "--out", str(folder), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


# ------------------------------------------------------------------------------------------------ review


def test_review_imports_only_the_images_of_the_run(tmp_path, fakes, capsys):
    """`review --import` pooled every *_candidates.json in the folder, images not in the case included."""
    out, doc = _score_folder(tmp_path, capsys)
    stranger = dict(doc, stem="stranger", candidates=[dict(c, id="stranger#0") for c in doc["candidates"]])
    (out / "stranger_candidates.json").write_text(json.dumps(stranger))
    decisions = _decisions(tmp_path / "d.json", [doc])
    assert main(["review", str(out), "--import", str(decisions)]) == 0
    captured = capsys.readouterr()
    result = json.loads((out / "review_result.json").read_text())
    assert [i["stem"] for i in result["images"]] == ["tile0"]
    assert any("stranger_candidates.json" in n for n in result["notes"])
    assert "stranger_candidates.json" in captured.out
    (out / "tile0_candidates.json").unlink()  # an image of the run gone: an error, not a smaller review
    assert main(["review", str(out), "--import", str(decisions)]) == 2
    assert "listed by" in capsys.readouterr().err


def test_a_second_import_with_fewer_decisions_asks_for_replace(tmp_path, fakes, capsys):
    out, doc = _score_folder(tmp_path, capsys)
    full = _decisions(tmp_path / "full.json", [doc])
    assert main(["review", str(out), "--import", str(full)]) == 0
    before = (out / "review_result.json").read_bytes()
    fewer = json.loads(full.read_text())
    fewer["decisions"] = fewer["decisions"][:1]
    (tmp_path / "fewer.json").write_text(json.dumps(fewer))
    capsys.readouterr()
    assert main(["review", str(out), "--import", str(tmp_path / "fewer.json")]) == 2
    assert "--replace" in capsys.readouterr().err
    assert (out / "review_result.json").read_bytes() == before
    assert main(["review", str(out), "--import", str(tmp_path / "fewer.json"), "--replace"]) == 0
    assert json.loads((out / "review_result.json").read_text())["n_reviewed"] == 1


def test_review_refuses_an_image_replaced_since_the_run(tmp_path, fakes, capsys):
    """`review` built its crops from an image replaced since the run (no identity check)."""
    out, doc = _score_folder(tmp_path, capsys)
    image = Path(doc["image"])
    write_tiles(tmp_path / "other", n=2)
    os.replace(tmp_path / "other" / "tile1.png", image)
    assert main(["review", str(out)]) == 2
    err = capsys.readouterr().err
    assert "changed since the run" in err and "Traceback" not in err


def test_make_demo_does_not_delete_the_demo_folder():
    """`make demo` began with `rm -rf demo_out`; the runs now replace only their own outputs."""
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "rm -rf demo_out" not in demo and "rm -r" not in demo


def test_the_lock_is_released_when_a_run_is_refused(tmp_path, fakes, capsys):
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "user.txt").write_text("mine")
    start = time.perf_counter()
    assert main(["score", str(tiles[0]), "--out", str(out)]) == 2
    assert main(["score", str(tiles[0]), "--out", str(out), "--overwrite", "--format", "json"]) == 0
    assert (out / "user.txt").read_text() == "mine" and time.perf_counter() - start < 60
