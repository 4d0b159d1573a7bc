"""The case on paper names no command-line flag: the paper wording of the texts case.json carries, and the printed
case.html (the screen may keep the hint for the command-line user)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.case.paper import has_cli_words, paper_text
from spindledx.case.workup import CaseOptions, differential, grade
from spindledx.cli import main
from spindledx.counting import fnclcc_grade

COUNT = {"count": 3, "area_mm2": 0.3, "hpf_area_mm2": 0.2376, "n_hpf": 1.26, "extrapolated": True,
         "mitoses_per_mm2": 10.0, "method": "detector", "flags": []}


def test_grade_texts_read_on_paper_without_flags(tmp_path):
    from spindledx.ihc import interpret_panel
    from spindledx.imaging import read_image

    incomplete = grade(CaseOptions(panel=PANEL), "leiomyosarcoma", COUNT)
    assert "--necrosis" in incomplete["reason"]  # the command-line user's hint stays in case.json
    assert paper_text(incomplete["reason"]).startswith("necrosis not given: the grade needs its extent")
    assert "--differentiation" in incomplete["assumptions"][0]
    flagged = fnclcc_grade(mitoses=5000, differentiation_score=2, necrosis="none", area_mm2=2.4, hpf_area=0.24)
    forced = grade(CaseOptions(panel=PANEL, necrosis="none", use_flagged_count=True), "leiomyosarcoma",
                   {**COUNT, "count": 40, "area_mm2": 2.5, "n_hpf": 10.5, "extrapolated": False,
                    "flags": ["out_of_distribution"]})
    _, notes = differential(CaseOptions(panel=PANEL), {**COUNT, "flags": ["implausible_density"]})
    no_mpp = [w for w in read_image(write_tiles(tmp_path, n=1)[0]).warnings if "--" in w]
    sex = interpret_panel(PANEL, site="uterus", sex="M").to_json()["warnings"]
    texts = [incomplete["reason"], *incomplete["assumptions"], flagged.reason,
             *[a for a in forced["assumptions"] if "flagged" in a], *notes, *no_mpp, *sex,
             "the mitotic detector is a screening aid: confirm the figures with `spindledx review`"]
    assert no_mpp and sex
    assert all(has_cli_words(t) for t in texts), [t for t in texts if not has_cli_words(t)]
    for text in texts:
        assert not has_cli_words(paper_text(text)), paper_text(text)
    assert paper_text(sex[0]).startswith("sex M contradicts site uterus")
    assert paper_text("an option --some-new-option here") == "an option some new option here"
    assert paper_text("ranges 10-20, --5 and x--y stay") == "ranges 10-20, --5 and x--y stay"


class _PrintedText(HTMLParser):
    """The text of a page as printed: elements of class screen-only left out (the print sheet hides them)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "meta", "link", "input", "hr", "col"):
            return
        classes = (dict(attrs).get("class") or "").split()
        self.stack.append("screen-only" in classes or tag in ("style", "script")
                          or bool(self.stack and self.stack[-1]))

    def handle_endtag(self, tag):
        if self.stack and tag not in ("br", "img", "meta", "link", "input", "hr", "col"):
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]):
            self.parts.append(data)


@pytest.fixture()
def incomplete_case(tmp_path, monkeypatch, capsys):
    use_detector(monkeypatch, fixed_detector)
    tiles = write_tiles(tmp_path / "tiles", n=1)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--site", "lung", "--tiles", str(tiles[0]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert json.loads((out / "case.json").read_text())["grade"]["status"] == "incomplete"
    return out


def test_printed_case_page_names_no_flag_but_the_screen_keeps_the_hint(incomplete_case):
    page = (incomplete_case / "case.html").read_text()
    assert "<span class='screen-only'>necrosis extent not given: --necrosis none" in page  # on screen
    parser = _PrintedText()
    parser.feed(page)
    printed = "".join(parser.parts)
    assert "necrosis not given: the grade needs its extent" in printed
    assert not re.search(r"(?<![\w-])--[a-z]", printed), re.findall(r".{30}--[a-z].{30}", printed)


def test_case_page_printed_by_chromium_says_necrosis_not_given(incomplete_case, browser_page):
    pypdf = pytest.importorskip("pypdf", reason="pypdf (the test extra) reads the PDF back")
    import io

    browser_page.goto((incomplete_case / "case.html").as_uri())
    pdf = browser_page.pdf(format="A4", prefer_css_page_size=True)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "necrosis not given" in text
    assert "--necrosis" not in text and not has_cli_words(text.replace("\n", " "))
