"""The batch report page: self-contained, words not field names, a per-tile table with thumbnails linking to the
review page, charts only with data, provenance; checked in a real browser (Playwright + Debian Chromium)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from case_helpers import fill_glass

from spindledx.detection.types import Detection
from spindledx.mitosis.synthetic import make_tile
from spindledx.qa.manifest import load_manifest
from spindledx.qa.report import OPTIONAL_SECTION_IDS, SECTION_IDS, render_html
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
        rgb = fill_glass(rgb)  # all tissue: every point of the tile is counted
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


def test_report_is_self_contained_without_script(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    for sid in SECTION_IDS + OPTIONAL_SECTION_IDS:
        assert f"id='{sid}'" in page, sid
    assert page.count("<script") == 1 and "table.sortable" in page  # only the table sorter, inline
    sources = _img_sources(page)
    assert len(sources) >= 5  # count plot, Bland-Altman, QA flags, density, 3 tile thumbnails
    jpegs = [src for src in sources if src.startswith("data:image/jpeg;base64,")]
    assert len(jpegs) == 3  # the tile thumbnails: JPEG, so that a report of many fields stays light
    for src in sources:
        assert src.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
        data = base64.b64decode(src.split(",", 1)[1])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] > 10
    assert "http://" not in page and "https://" not in page
    for field in ("loa_low", "spearman_p", "ihc_top", "area_below_10hpf", "top1_agrees"):
        assert field not in page, field  # words, not field names
    assert re.search(r"Leiomyosarcoma \d+ %", page)  # entity names with probabilities
    assert "injected detector" in page and "IHC knowledge-base version" in page


def test_report_opens_in_chromium_with_tiles_linked_to_review(report_dir: Path, browser_page) -> None:
    page = browser_page
    page.goto((report_dir / "report.html").as_uri())
    for sid in SECTION_IDS + OPTIONAL_SECTION_IDS:
        assert page.locator(f"section#{sid} h2").is_visible(), sid
    n_images = page.evaluate("document.images.length")
    broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
    assert n_images >= 5 and broken == 0
    rows = page.locator("section#tiles tbody tr")
    assert rows.count() == 4  # every tile, the failed one included
    links = page.locator("section#tiles a")
    assert links.count() == 3  # one thumbnail per scored tile, each linking to the review page
    header = page.locator("section#tiles table.sortable thead th").nth(1)  # "tile"
    header.click()
    keys = page.locator("section#tiles tbody tr td:nth-child(2)").all_inner_texts()
    header.click()
    assert page.locator("section#tiles tbody tr td:nth-child(2)").all_inner_texts() == keys[::-1] != keys
    assert header.get_attribute("aria-sort") == "descending"
    links.first.click()
    page.wait_for_load_state()
    assert "review.html#img-" in page.url and page.locator(".card.cur").count() == 1
    assert page.console_errors == []


def test_sections_without_data_are_absent_and_no_empty_chart() -> None:
    summary = {"n_tiles": 1, "n_done": 1, "n_failed": 0, "hpf_area_mm2": 0.2376, "detection": None, "counts": None,
               "quality": {"flag_counts": {"low_tissue": 0}, "n_flagged": 0}, "cases": [], "outliers": [],
               "failed": []}
    page = render_html([], summary, provenance={"spindledx_version": "x", "date": "d"})
    for sid in OPTIONAL_SECTION_IDS:
        assert f"id='{sid}'" not in page
    assert "<img" not in page and "No tile raised an image-quality flag" in page


def test_review_stems_of_tiles_are_distinct() -> None:
    """Defect 2 of issue 11 for the batch review files: a.png + a.jpg, sub/b.png + sub__b.png keep apart."""
    from spindledx.qa.report import _tile_stems

    rows = [{"key": "a.png"}, {"key": "a.jpg"}, {"key": "sub/b.png"}, {"key": "sub__b.png"}, {"key": "c.png"}]
    stems = _tile_stems(rows)
    assert len(set(stems.values())) == len(rows)
    assert all("/" not in s and not s.startswith(".") for s in stems.values())
    assert _tile_stems([{"key": "x/c.png"}, {"key": "d.png"}]) == {"x/c.png": "c", "d.png": "d"}
