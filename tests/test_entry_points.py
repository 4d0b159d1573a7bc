"""The library entry points of `spindledx`: one per command, importable from the package, documented with an
example, and light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import spindledx

ENTRY_POINTS = ("score_images", "count_points", "evaluate_images", "analyze_slide", "run_batch", "run_case",
                "import_decisions", "interpret_panel", "build_site")


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_point_is_documented_with_an_example(name):
    function = getattr(spindledx, name)
    assert callable(function) and name in spindledx.__all__
    assert "Example:" in (function.__doc__ or "")


def test_importing_the_package_loads_no_numeric_stack():
    code = "import sys, spindledx; print([m for m in ('numpy', 'typer', 'spindledx.cli') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_score_images_returns_what_score_prints(tmp_path, capsys, monkeypatch):
    import json

    import numpy as np
    from PIL import Image

    from spindledx.cli import main
    from spindledx.detection import shipped
    from spindledx.detection.types import Detection

    rgb = np.full((120, 160, 3), (235, 170, 220), np.uint8)
    tile = tmp_path / "t.png"
    Image.fromarray(rgb).save(tile)
    monkeypatch.setattr(shipped, "factory", lambda threshold: lambda rgb, mpp: [Detection(40.0, 30.0, 0.9)])
    run = spindledx.score_images([tile], mpp=0.25)
    assert main(["score", str(tile), "--mpp", "0.25", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(run.to_json()))


def test_interpret_panel_returns_what_panel_prints(capsys):
    import json

    from spindledx.cli import main

    panel = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"
    assert main(["panel", panel, "--site", "lung", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    returned = json.loads(json.dumps(spindledx.interpret_panel(panel, site="lung").to_json(top=5)))
    assert printed == returned


def test_count_points_returns_what_count_points_prints(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from spindledx.cli import main

    rgb = np.full((200, 240, 3), (200, 120, 170), np.uint8)
    tile = tmp_path / "t.png"
    Image.fromarray(rgb).save(tile)
    points = tmp_path / "p.csv"
    points.write_text("x,y\n40,50\n150,100\n")
    counted = spindledx.count_points(points, tile, mpp=0.25)
    assert main(["count-points", str(points), "--image", str(tile), "--mpp", "0.25", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [json.loads(json.dumps(counted.result.to_dict()))]
