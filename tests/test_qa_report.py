"""The batch report page: self-contained, expected sections, and no broken images in a real headless browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spindledx.detection.types import Detection
from spindledx.mitosis.synthetic import make_tile
from spindledx.qa.manifest import load_manifest
from spindledx.qa.report import SECTION_IDS
from spindledx.qa.runner import run_and_write

MPP = 0.25


def offset_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake: one detection near the tile centre and one in a corner."""
    h, w = rgb.shape[:2]
    return [Detection(w / 2, h / 2, 0.8), Detection(8.0, 8.0, 0.55)]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("qa_report")
    manifest = []
    for i in range(4):
        rgb, figures = make_tile(size_px=256, n_mitoses=1 + i % 2, seed=40 + i, mpp=MPP)
        if i == 3:
            rgb = cv2.GaussianBlur(rgb, (0, 0), 8)
        name = f"tile{i}.png"
        cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        pd.DataFrame([{"x": f.x, "y": f.y} for f in figures]).to_csv(root / f"tile{i}_pts.csv", index=False)
        case = "A" if i < 2 else "B"
        panel = "actin+ desmin+ CK-pan- CD34- CD117- S-100-" if case == "A" else "CD34+ CD117+ DOG1+"
        dx = "leiomyosarcoma" if case == "A" else "gist"
        manifest.append({"image": name, "case": case, "mpp": MPP, "annotations": f"tile{i}_pts.csv",
                         "panel": panel, "diagnosis": dx, "site": "lung" if case == "A" else ""})
    pd.DataFrame(manifest).to_csv(root / "manifest.csv", index=False)
    (root / "tile1.png").write_bytes(b"not a png")  # one failed tile for the failures section
    specs = load_manifest(root / "manifest.csv")
    result = run_and_write(specs, root / "out", detector=offset_detector, progress=False)
    assert result.summary["n_failed"] == 1 and result.summary["n_done"] == 3
    assert result.summary["ihc_agreement"]["n_cases"] == 2
    return root / "out"


def _img_sources(page: str) -> list[str]:
    return re.findall(r"<img [^>]*src=['\"]([^'\"]+)['\"]", page)


def test_report_is_self_contained_png_only(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert f"id='{sid}'" in page
    sources = _img_sources(page)
    assert len(sources) >= 4  # count plot, Bland-Altman, QA flags, density, thumbnails
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] > 10
    assert "http://" not in page and "https://" not in page


def test_report_loads_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
           "--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw", "--dump-dom",
           (report_dir / "report.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom, sid
    n_images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert n_images == len(_img_sources((report_dir / "report.html").read_text(encoding="utf-8")))
    assert re.search(r'data-broken-images="(\d+)"', dom).group(1) == "0"
