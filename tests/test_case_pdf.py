"""`case --pdf` and `review --import`: case.pdf / case_reviewed.pdf open, fit two A4 pages for a case like the demo,
carry the header, the answer, the count and the sign-off, and hold no command-line flag or development history."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles
from test_user_text import forbidden_output_words

from spindledx.case.paper import has_cli_words
from spindledx.cli import main
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT

pypdf = pytest.importorskip("pypdf", reason="pypdf (the test extra) reads the PDF back")

SAMPLE_SLIDES = Path(__file__).resolve().parents[1] / "sample_slides"
HEADER = ["--case-id", "S26-04711", "--specimen", "lung, wedge resection", "--pathologist", "Dr A. Example"]


def pdf_text(path) -> tuple[int, list[str]]:
    """(page count, text of each page) of a PDF, read back with pypdf."""
    reader = pypdf.PdfReader(str(path))
    return len(reader.pages), [page.extract_text() for page in reader.pages]


def check_paper_text(text: str) -> None:
    """Nothing a reader of paper cannot act on, and no account of development."""
    assert not has_cli_words(text), re.findall(r".{0,40}(?:--[a-z]|spindledx [a-z]).{0,40}", text)
    assert not re.search(r"\bclick\b", text, re.I)
    assert not forbidden_output_words(text), forbidden_output_words(text)


@pytest.fixture()
def pdf_case(tmp_path, monkeypatch, capsys):
    """The demo's case (the reference panel, site lung, the four sample tiles) made with --pdf, with a fake
    detector (five points a tile) instead of the model."""
    use_detector(monkeypatch, fixed_detector)
    out = tmp_path / "case"
    code = main(["case", PANEL, "--site", "lung", "--tiles", str(SAMPLE_SLIDES), "--out", str(out), *HEADER, "--pdf"])
    assert code == 0, capsys.readouterr().err
    assert "case.pdf" in capsys.readouterr().out
    return out


def test_case_pdf_opens_fits_two_pages_and_carries_the_report(pdf_case):
    doc = json.loads((pdf_case / "case.json").read_text())
    assert doc["report_pdf"] is True
    n_pages, pages = pdf_text(pdf_case / "case.pdf")
    assert 1 <= n_pages <= 2
    text = "\n".join(pages)
    for i, page in enumerate(pages, start=1):  # the header on every page
        assert "S26-04711" in page and "lung, wedge resection" in page and "Dr A. Example" in page
        assert f"page {i} of {n_pages}" in page
    lead = doc["differential"][0]
    assert lead["name"] in text and f"{100 * lead['probability']:.0f} %" in text
    count = doc["count"]
    assert f"{count['count']} figures in {count['area_mm2']:.3f} mm²" in text
    assert f"{count['mitoses_per_10hpf']:.1f} per 10 HPF" in text and f"{count['hpf_area_mm2']:.4f} mm²" in text
    assert "FNCLCC mitotic score" in text and "necrosis not given" in text  # the grade status without a flag
    assert doc["provenance"]["model_sha256"] in text and doc["provenance"]["kb_version"] in text
    assert "Sign-off" in text and "Signature" in text
    check_paper_text(text)
    summary = json.loads((pdf_case / "summary.json").read_text())
    assert "case.pdf" in summary["outputs"]


def test_case_pdf_shows_the_overlay_thumbnails(pdf_case):
    reader = pypdf.PdfReader(str(pdf_case / "case.pdf"))
    images = [img for page in reader.pages for img in page.images]
    assert len(images) == 4  # one overlay per tile


def test_no_pdf_unless_asked(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    assert not (out / "case.pdf").exists() and "report_pdf" not in json.loads((out / "case.json").read_text())


def _decide_all(out, path, *, reject: int = 1):
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*_candidates.json"))]
    cands = [c for d in docs for c in d["candidates"]]
    chosen = {c["id"]: "y" if c["detected"] else "n" for c in cands}
    for c in [c for c in cands if c["detected"]][:reject]:
        chosen[c["id"]] = "n"
    path.write_text(json.dumps({"format": DECISIONS_FORMAT, "run_id": run_id(docs),
                                "model_sha256": docs[0]["model"]["model_sha256"], "reviewer": "Dr Test",
                                "date": "2026-11-29T09:00:00Z",
                                "decisions": [{"id": k, "decision": v} for k, v in chosen.items()]}))
    return path


def test_review_import_writes_the_reviewed_pdf_of_a_pdf_case(pdf_case, capsys):
    decisions = _decide_all(pdf_case, pdf_case.parent / "decisions.json")
    assert main(["review", str(pdf_case), "--import", str(decisions)]) == 0
    assert "case_reviewed.pdf" in capsys.readouterr().out
    reviewed = json.loads((pdf_case / "case_reviewed.json").read_text())
    assert reviewed["report"]["case_id"] == "S26-04711"  # the header travels to the reviewed report
    n_pages, pages = pdf_text(pdf_case / "case_reviewed.pdf")
    assert 1 <= n_pages <= 2
    text = "\n".join(pages)
    assert all("S26-04711" in page for page in pages)
    r = reviewed["review"]
    assert f"Reviewed by Dr Test on 2026-11-29T09:00:00Z: {r['n_reviewed']} of {r['n_candidates']}" in text
    assert f"{r['confirmed_count']} figures in" in text and "Sign-off" in text
    check_paper_text(text)


def test_review_pdf_follows_the_case_or_the_option(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    decisions = _decide_all(out, tmp_path / "decisions.json")
    assert main(["review", str(out), "--import", str(decisions)]) == 0
    assert not (out / "case_reviewed.pdf").exists()  # the case was made without --pdf
    assert main(["review", str(out), "--import", str(decisions), "--pdf"]) == 0
    assert pdf_text(out / "case_reviewed.pdf")[0] >= 1
    capsys.readouterr()
    assert main(["review", str(out), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "--pdf applies to --import" in err and len(err.strip().splitlines()) == 1


def test_review_pdf_is_never_written_through_a_link(pdf_case, tmp_path, capsys):
    elsewhere = tmp_path / "someone_elses.pdf"
    elsewhere.write_bytes(b"%PDF- not ours")
    os.symlink(elsewhere, pdf_case / "case_reviewed.pdf")
    decisions = _decide_all(pdf_case, tmp_path / "decisions.json")
    assert main(["review", str(pdf_case), "--import", str(decisions)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert elsewhere.read_bytes() == b"%PDF- not ours" and not (pdf_case / "case_reviewed.json").exists()


def test_pdf_of_a_long_header_keeps_page_numbers_apart(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    long = "x" * 110
    assert main(["case", PANEL, "--tiles", str(tiles[0]), "--out", str(out), "--case-id", long, "--specimen", long,
                 "--pathologist", "Dr <b>&amp; Example", "--pdf"]) == 0
    _, pages = pdf_text(out / "case.pdf")
    assert "Dr <b>&amp; Example" in pages[-1]  # markup in a field is printed as text
    assert re.search(r"page 1 of \d", pages[0])



def test_review_no_pdf_leaves_the_pdf_out(pdf_case, capsys):
    decisions = _decide_all(pdf_case, pdf_case.parent / "decisions.json")
    assert main(["review", str(pdf_case), "--import", str(decisions), "--no-pdf"]) == 0
    assert (pdf_case / "case_reviewed.html").is_file() and not (pdf_case / "case_reviewed.pdf").exists()


def test_pdf_without_dejavu_spells_out_what_helvetica_lacks(pdf_case, monkeypatch):
    from spindledx.case import pdf

    monkeypatch.setattr(pdf, "_fonts", lambda: ("Helvetica", "Helvetica-Bold", "Helvetica-Oblique"))
    doc = json.loads((pdf_case / "case.json").read_text())
    doc["warnings"].append("a count ≥ 20 − checked")
    out = pdf_case.parent / "helvetica.pdf"
    out.write_bytes(pdf.render_case_pdf(doc))
    n_pages, pages = pdf_text(out)
    text = "\n".join(pages)
    assert "a count >= 20 - checked" in text and "S26-04711" in pages[0] and n_pages >= 1
