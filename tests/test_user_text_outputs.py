"""The pages and reports the demo writes say what the tool does, never how it was developed: the word list of
test_user_text.py over every page a person opens or files (case.html, case.pdf, review.html, the batch report,
the knowledge-base site, the score outputs), made here from small inputs with fake detectors."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles
from test_user_text import forbidden_output_words

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.review.candidates import run_id
from spindledx.review.page import DECISIONS_FORMAT

pypdf = pytest.importorskip("pypdf", reason="pypdf (the test extra) reads the PDF back")

TEXT_SUFFIXES = (".html", ".json", ".csv", ".geojson", ".md", ".txt", ".js")


JS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\]|\\.)*`')


def script_strings(code: str) -> str:
    """The string literals of a script (the messages it shows), one a line; the code itself is not text."""
    return "\n".join(m.group(0)[1:-1] for m in JS_STRING.finditer(code))


class _Text(HTMLParser):
    """The text a person reads on a page: text nodes, title/alt/placeholder/aria-label attributes and the strings
    of scripts (styles and embedded images left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.inside: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.inside.append(tag)
        for name, value in attrs:
            if name in ("title", "alt", "placeholder", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if self.inside and tag == self.inside[-1]:
            self.inside.pop()

    def handle_data(self, data):
        if not self.inside:
            self.parts.append(data)
        elif self.inside[-1] == "script":
            self.parts.append(script_strings(data))


def page_text(path: Path) -> str:
    """The readable text of one output file."""
    if path.suffix == ".pdf":
        return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".js":
        return script_strings(text)
    if path.suffix == ".html":
        parser = _Text()
        parser.feed(re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "", text))
        return "\n".join(parser.parts)
    return text


IDENTIFIER_KEY = r"\w*(?:run_id|identity|signature|sha256|digest)\w*"


def identifiers(root: Path) -> tuple[str, ...]:
    """Run ids and input signatures the outputs carry (digests of the inputs): the values of such keys in JSON and
    in pages that embed JSON, and of such columns in CSV tables."""
    import csv

    found: set[str] = set()
    for path in root.rglob("*"):
        if path.suffix in (".json", ".html", ".jsonl"):
            found.update(re.findall(rf'"{IDENTIFIER_KEY}"\s*:\s*"([^"]+)"', path.read_text(errors="replace")))
        elif path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    found.update(v for k, v in row.items() if k and re.fullmatch(IDENTIFIER_KEY, k) and v)
    return tuple(sorted(found, key=len, reverse=True))


def fake_detector(rgb, mpp):
    from spindledx.detection.types import Detection

    h, w = rgb.shape[:2]
    return [Detection(w / 2, h / 2, 0.9), Detection(30.0, 30.0, 0.55)]


@pytest.fixture(scope="module")
def demo_outputs(tmp_path_factory) -> Path:
    """What `make demo` writes (score, batch, case with its PDF and review, kb site), from four small tiles."""
    root = tmp_path_factory.mktemp("demo")
    write_tiles(root / "tiles", n=4)
    with pytest.MonkeyPatch.context() as mp, shipped.detector_factory(lambda threshold: fake_detector):
        use_detector(mp, fixed_detector)
        assert main(["score", str(root / "tiles"), "--mpp", "0.25", "--out", str(root / "score")]) == 0
        assert main(["batch", str(root / "tiles"), "--mpp", "0.25", "--out", str(root / "batch"), "--jobs", "1",
                     "--no-progress"]) == 0
        assert main(["case", PANEL, "--site", "lung", "--tiles", str(root / "tiles"), "--mpp", "0.25", "--out",
                     str(root / "case"), "--case-id", "DEMO-1", "--specimen", "sample tiles", "--pdf"]) == 0
        docs = [json.loads(p.read_text()) for p in sorted((root / "case").glob("*_candidates.json"))]
        decisions = {"format": DECISIONS_FORMAT, "run_id": run_id(docs), "reviewer": "Dr Test",
                     "model_sha256": docs[0]["model"]["model_sha256"], "date": "2026-11-29T09:00:00Z",
                     "decisions": [{"id": c["id"], "decision": "y"} for d in docs for c in d["candidates"]]}
        (root / "decisions.json").write_text(json.dumps(decisions))
        assert main(["review", str(root / "case"), "--import", str(root / "decisions.json")]) == 0
    assert main(["kb", "site", "--out", str(root / "kb_site")]) == 0
    return root


def test_every_page_the_demo_writes_holds_no_development_history(demo_outputs):
    ids = identifiers(demo_outputs)
    scanned, found = [], []
    for path in sorted(demo_outputs.rglob("*")):
        if not path.is_file() or path.suffix not in (*TEXT_SUFFIXES, ".pdf") or path.parent.name == "tiles":
            continue
        if path.name == "decisions.json" and path.parent == demo_outputs:
            continue  # the test's own input
        rel = path.relative_to(demo_outputs)
        scanned.append(str(rel))
        found += [f"{rel}: {hit}" for hit in forbidden_output_words(page_text(path), identifiers=ids)]
    for wanted in ("case/case.html", "case/case.pdf", "case/case_reviewed.pdf", "case/review.html",
                   "batch/report.html", "batch/review.html", "kb_site/index.html", "score/summary.json"):
        assert wanted in scanned, (wanted, scanned[:20])
    assert any(s.startswith("kb_site/entities/") for s in scanned)
    assert not found, "\n".join(found[:40])


def test_the_scan_sees_the_text_of_pages_and_reports(demo_outputs):
    case_pdf = page_text(demo_outputs / "case" / "case.pdf")
    assert "DEMO-1" in case_pdf and "Sign-off" in case_pdf
    case_html = page_text(demo_outputs / "case" / "case.html")
    assert "Leiomyosarcoma" in case_html and "base64" not in case_html and "{" not in case_html.split("Sign-off")[0]
    assert forbidden_output_words("fixed in commit ab12cd3 (issue 4)")
    assert not forbidden_output_words("feature 02ade204-9100-5782-8395-ef04e013da84, doi:10.1097/PAS.0b013e3181658c14, "
                                      "PLoS One 2021;16:e0246958, kb sha256:21db22bd4d19")
