"""Real data: batch QA on MiDeSeC fields agrees with `spindledx evaluate` (skips without ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spindledx.cli import main
from spindledx.qa.manifest import tiles_from_folder
from spindledx.qa.runner import run_and_write

FIELDS = ("P0_00.png", "P0_12.png", "P0_33.png")  # three stain clusters of the set


@pytest.mark.realdata
def test_batch_f1_equals_evaluate_on_real_fields(shared_data: Path, tmp_path: Path, capsys) -> None:
    try:
        from spindledx.detection.model import load_model

        load_model()
    except Exception as exc:  # no trained model in this checkout
        pytest.skip(f"shipped detector unavailable: {exc}")
    src = shared_data / "midesec-train"
    folder = tmp_path / "fields"
    folder.mkdir()
    for name in FIELDS:  # links in a temporary folder, nothing is copied
        (folder / name).symlink_to(src / name)
    specs = tiles_from_folder(folder, mpp=0.25, annotations=src / "mitoses.csv")
    report = run_and_write(specs, tmp_path / "out", progress=False)
    assert report.summary["n_done"] == len(FIELDS)
    assert report.summary["quality"]["n_flagged"] == 0
    # a light report: thumbnails of about 50 KB each, the full overlays stay files beside it
    assert (tmp_path / "out" / "report.html").stat().st_size <= 200_000 + 60_000 * len(FIELDS)
    capsys.readouterr()
    code = main(["evaluate", *[str(folder / n) for n in FIELDS], "--truth", str(src / "mitoses.csv"), "--mpp",
                 "0.25", "--format", "json"])
    assert code == 0
    evaluated = json.loads(capsys.readouterr().out)
    det = report.summary["detection"]
    assert (det["tp"], det["fp"], det["fn"]) == (evaluated["tp"], evaluated["fp"], evaluated["fn"])
    assert det["f1"] == pytest.approx(evaluated["f1"], abs=1e-4)
    assert det["tp"] + det["fn"] == sum(s.expected_count for s in specs)
