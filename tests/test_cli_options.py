"""One CLI options module: usage errors exit 2 with one line; shared options mean the same in every command
(issue 11, defect 11 and the options redesign)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from spindledx.cli import app, main


@pytest.mark.parametrize("argv", [
    ["score", "--bogus"],                                   # unknown option
    ["score"],                                              # missing argument
    ["nosuch"],                                             # unknown command
    ["panel", "actin+", "--top", "0"],
    ["batch", "x", "--out", "o", "--jobs", "0"],
    ["score", "x.png", "--mpp", "abc"],
    ["score", "x.png", "--mpp", "nan"],
    ["score", "x.png", "--format", "xml"],
    ["score", "x.png", "--threshold", "1.5"],
    ["score", "x.png", "--hpf-area-mm2", "nan"],
    ["grade", "--mitoses", "3", "--necrosis", "none", "--differentiation", "2", "--hpf-area-mm2", "nan"],
    ["grade", "--mitoses", "nan", "--necrosis", "none", "--differentiation", "2"],
    ["grade", "--mitoses", "3", "--necrosis", "none", "--differentiation", "2", "--area-mm2", "nan"],
    ["slide", "x.tif", "--shape", "hexagon"],
    ["slide", "x.tif", "--backend", "pillow"],
])
def test_usage_errors_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "unexpected" not in err and "Traceback" not in err


def test_a_huge_argument_is_not_echoed_in_full(capsys):
    assert main(["score", "x.png", "--mpp", "9" * 100_000]) == 2
    assert len(capsys.readouterr().err) < 400


def test_short_help_and_version(capsys):
    assert main(["-V"]) == 0 and capsys.readouterr().out.startswith("spindledx ")
    assert main(["score", "-h"]) == 0 and "--format" in capsys.readouterr().out


def test_shared_options_have_one_meaning_in_every_command():
    import typer.main

    group = typer.main.get_command(app)
    seen: dict[str, tuple] = {}
    for name, command in group.commands.items():
        for param in command.params:
            for flag in ("--jobs", "--mpp", "--progress", "--hpf-area-mm2", "--field-number", "--objective",
                         "--threshold", "--dask"):
                if flag in param.opts:
                    signature = (tuple(param.opts), tuple(param.secondary_opts), param.default, param.help)
                    assert seen.setdefault(flag, signature) == signature, (name, flag)
    assert {"--jobs", "--mpp", "--progress", "--hpf-area-mm2"} <= set(seen)
    assert "-j" in seen["--jobs"][0] and seen["--jobs"][2] is None


def test_format_choices_are_listed_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["score", "--help"]) == 0
    assert "table|json|csv" in capsys.readouterr().out
    assert main(["slide", "--help"]) == 0
    out = capsys.readouterr().out
    assert "circle|square|fields|both|all" in out and "auto|openslide|tiffslide|tifffile" in out


def test_slide_numeric_options_are_checked(tmp_path, capsys):
    from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

    rgb = make_slide_rgb(600, 500, tissue_boxes=[(50, 50, 550, 450)], figures=np.zeros((0, 2)),
                         nuclei_per_mpx=100, seed=1)
    path = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25)
    for extra, needle in ((["--area-mm2", "1e12"], "larger than the whole slide"),
                          (["--margin-um", "nan"], "margin_um"),
                          (["--tile-um", "0.001"], "tile_um")):  # defect 12: a 4 µm tile was accepted
        assert main(["slide", str(path), "--out", str(tmp_path / "o"), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1


def test_truncated_slide_is_one_line(tmp_path, capsys):
    from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff

    rgb = make_slide_rgb(600, 500, tissue_boxes=[(50, 50, 550, 450)], figures=np.zeros((0, 2)),
                         nuclei_per_mpx=100, seed=1)
    path = write_pyramidal_tiff(tmp_path / "s.tif", rgb, mpp=0.25)
    data = path.read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) // 2])
    assert main(["slide", str(tmp_path / "t.tif"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and err.count("\n") == 1


def test_batch_out_on_a_file_and_huge_expected_count(tmp_path, capsys):
    tile = tmp_path / "t.tif"
    tifffile.imwrite(tile, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), photometric="rgb")
    (tmp_path / "m.csv").write_text("image,expected_count\nt.tif,99999999999999999999999999\n")
    (tmp_path / "afile").write_text("x")
    assert main(["batch", str(tmp_path / "m.csv"), "--out", str(tmp_path / "afile"), "--no-progress"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "expected_count" in capsys.readouterr().err


def test_registering_the_commands_loads_no_numeric_stack():
    """Start-up (issue 11): `spindledx --help` builds the app only; numpy, the interpreter and the image stack are
    imported by the commands that use them."""
    import subprocess
    import sys

    code = ("import sys, spindledx.cli; heavy = ('numpy', 'scipy', 'pandas', 'cv2', 'spindledx.ihc.interpret', "
            "'spindledx.imaging.reader', 'spindledx.teaching.compare'); print([m for m in heavy if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
