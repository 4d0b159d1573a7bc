"""`spindledx kb site`: the static site (links, assets, escaping, size) and a real-browser walk through it."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from types import MappingProxyType

import pytest

from spindledx.ihc import load_knowledge_base
from spindledx.teaching import site as site_module
from spindledx.teaching.compare import compare_entities, teaching_pairs
from spindledx.teaching.html import json_for_script, linkify, slugify, source_links, source_segments
from spindledx.teaching.pages import SiteLinks, compare_page, entity_page, marker_page, matrix_page
from spindledx.teaching.quiz import build_questions, literature_label, load_quiz_cases, quiz_questions
from spindledx.teaching.site import MANIFEST, build_site

MAX_SITE_BYTES = 5_000_000  # the limit of bench/bench_site.py: 137 pages, the quiz with its answers, the panel model


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("kbsite") / "site"
    return build_site(out)


def test_site_has_every_page_and_stays_small(built):
    kb = load_knowledge_base()
    out = built.out
    for e in kb.entities:
        assert (out / "entities" / f"{slugify(e)}.html").is_file()
    assert len(list((out / "markers").glob("*.html"))) == len(kb.markers)
    assert len(list((out / "compare").glob("*.html"))) == len(teaching_pairs(kb))
    for name in ("index.html", "matrix.html", "quiz.html", "assets/site.js", "assets/site.css", MANIFEST):
        assert (out / name).is_file()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size == built.total_bytes < MAX_SITE_BYTES
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["generator"] == "spindledx kb site" and len(manifest["files"]) == built.n_files - 2
    summary = json.loads((out / "summary.json").read_text())  # the one summary shape (tests/test_summary_shape.py)
    assert summary["command"] == "kb site" and len(summary["outputs"]) == built.n_files - 1
    assert not list(out.rglob("*.tmp"))  # atomic writes left no temporary files


def test_every_local_link_resolves_and_nothing_is_external(built):
    out = built.out
    ref = re.compile(r"""(?:href|src)=["']([^"']+)["']""")
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "<link" not in text.replace('<link rel="stylesheet" href="', "")  # one local stylesheet only
        for target in ref.findall(text):
            if target.startswith(("http://", "https://")):
                assert not re.search(r"<(script|link)[^>]+" + re.escape(target), text)  # sources only, no scripts
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.is_file(), f"{page.relative_to(out)} links to missing {target}"
            if anchor and dest.suffix == ".html":
                assert re.search(f"id=[\"']{re.escape(anchor)}[\"']", dest.read_text(encoding="utf-8")), target
    css = (out / "assets" / "site.css").read_text()
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_matrix_marks_what_each_figure_rests_on(built):
    text = (built.out / "matrix.html").read_text(encoding="utf-8")
    assert "class='c eli'" in text and "class='c'" in text  # elicited and literature figures
    assert "class='miss'" not in text  # no cell without a figure
    assert "entities/kaposi-sarcoma.html#el-" in text  # an elicited cell links to its row on the entity page
    assert "id='el-" in (built.out / "entities" / "kaposi-sarcoma.html").read_text(encoding="utf-8")
    # LMS × desmin links to the fact row on the LMS page
    assert "entities/leiomyosarcoma.html#f-desmin" in text
    assert "id='f-desmin'" in (built.out / "entities" / "leiomyosarcoma.html").read_text(encoding="utf-8")


def test_source_links():
    text = ("Carvalho 2009 (doi 10.1002/cncr.24486) http://example.org/a.html; pmid:12345678 ; PMC3140662 "
            "javascript:alert(1)")
    labels = [label for _s, _e, label, _h in source_links(text)]
    assert labels == ["doi:10.1002/cncr.24486", "http://example.org/a.html", "pmid:12345678", "PMC3140662"]
    html = linkify(text)
    assert 'href="https://doi.org/10.1002/cncr.24486"' in html
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/12345678/"' in html
    assert 'href="javascript' not in html


EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _evil_kb():
    kb = load_knowledge_base()
    entities = dict(kb.entities)
    entities["gist"] = dataclasses.replace(entities["gist"], summary=EVIL, pitfalls=(EVIL,), name="GIST " + EVIL)
    facts = dict(kb.facts)
    key = ("gist", "DOG1", "")
    facts[key] = dataclasses.replace(facts[key], note=EVIL, source=EVIL + ' "onclick=alert(2)')
    markers = dict(kb.markers)
    markers["DOG1"] = dataclasses.replace(markers["DOG1"], note=EVIL)
    return dataclasses.replace(kb, entities=MappingProxyType(entities), facts=MappingProxyType(facts),
                               markers=MappingProxyType(markers))


def test_every_knowledge_base_string_is_escaped():
    kb = _evil_kb()
    links = SiteLinks(kb, teaching_pairs(kb))
    pages = [entity_page(kb, "gist", links), marker_page(kb, "DOG1", links), matrix_page(kb, links),
             compare_page(kb, compare_entities("leiomyosarcoma", "gist", kb=kb), links)]
    for html in pages:
        assert "<script" not in html and "<img" not in html and '"onclick' not in html
        assert "&lt;script&gt;" in html
    quiz = [q.to_json(kb=kb) for q in quiz_questions(None, entity="gist", seed=0, kb=kb)]
    payload = json_for_script(quiz)
    assert "<" not in payload and ">" not in payload
    assert json.loads(payload)[0]["answer"]["pitfalls"][0] == EVIL  # same text, safely encoded


def test_rebuild_replaces_its_own_files_only(tmp_path, monkeypatch):
    out = tmp_path / "site"
    monkeypatch.setattr(site_module, "render_site", lambda kb=None: {"index.html": "a", "old/page.html": "b"})
    build_site(out)
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(site_module, "render_site", lambda kb=None: {"index.html": "c"})
    build_site(out)
    assert (out / "index.html").read_text() == "c"
    assert not (out / "old" / "page.html").exists()  # stale page of the previous build removed
    assert (out / "notes.txt").read_text() == "mine"  # never touches what it did not write


def _screenshot(page, name: str, tmp_path: Path, *, full_page: bool = False) -> None:
    """Save a screenshot (into $SPINDLEDX_SCREENSHOTS when set, e.g. docs/screenshots, else the test's tmp)."""
    folder = Path(os.environ.get("SPINDLEDX_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=full_page)


def test_site_in_a_real_browser(built, browser_page, tmp_path):
    page = browser_page
    out = built.out
    page.goto((out / "index.html").as_uri())
    _screenshot(page, "kb_site_index.png", tmp_path)

    # search a synonym and land on the canonical marker
    page.fill("#search", "c-KIT")
    page.wait_for_selector("#search-results li a")
    first = page.locator("#search-results li a").first
    assert "CD117" in first.inner_text() and "c-KIT" in first.inner_text()
    _screenshot(page, "kb_site_search.png", tmp_path)
    page.press("#search", "Enter")
    page.wait_for_url("**/markers/cd117.html")
    assert page.locator("h1").inner_text() == "CD117"

    # keyboard: ArrowDown + Enter opens the second result
    page.fill("#search", "des")
    page.wait_for_selector("#search-results li a")
    links = page.locator("#search-results li a")
    assert links.count() >= 2
    second = links.nth(1).get_attribute("href")
    page.press("#search", "ArrowDown")
    page.press("#search", "Enter")
    page.wait_for_url("**/" + second.removeprefix("../"))

    # an A-versus-B page, reached from the index
    page.goto((out / "index.html").as_uri())
    page.click("text=Leiomyosarcoma versus Gastrointestinal stromal tumour")
    page.wait_for_url("**/compare/leiomyosarcoma--gist.html")
    top = page.locator("table.compare tbody tr td:nth-child(2) a").all_inner_texts()[:6]
    assert {"DOG1", "CD117", "desmin"} <= set(top)
    _screenshot(page, "kb_site_compare.png", tmp_path)

    # the matrix: a cell opens the fact on the entity page
    page.goto((out / "matrix.html").as_uri())
    _screenshot(page, "kb_site_matrix.png", tmp_path)
    page.click("a[href='entities/leiomyosarcoma.html#f-desmin']")
    page.wait_for_url("**/entities/leiomyosarcoma.html#f-desmin")
    assert "desmin" in page.locator("tr#f-desmin").inner_text()

    # the quiz: three answers (right, wrong, right) and the score follows
    page.goto((out / "quiz.html").as_uri())
    questions = page.evaluate("window.SPX_QUIZ")
    assert page.locator("#quiz-score").inner_text() == "Score: 0 / 0"
    expected_scores = []
    correct = 0
    for i, pick_right in enumerate((True, False, True)):
        q = questions[i]
        answer = q["answer"]["expected"]["id"]
        choice = answer if pick_right else next(c["id"] for c in q["choices"] if c["id"] != answer)
        page.click(f"#quiz button[data-entity='{choice}']")
        correct += pick_right
        expected_scores.append(f"Score: {correct} / {i + 1}")
        assert page.locator("#quiz-score").inner_text() == expected_scores[-1]
        assert page.locator("#quiz .reveal table").count() == 2  # differential + evidence
        if i == 1:
            _screenshot(page, "kb_site_quiz.png", tmp_path, full_page=True)
        page.click("#quiz-next")
    assert expected_scores == ["Score: 1 / 1", "Score: 1 / 2", "Score: 2 / 3"]

    # filters: only published case reports of one diagnosis; a new round starts at 0 / 0
    page.select_option("#quiz-set", "reports")
    page.select_option("#quiz-entity", "gist")
    assert page.locator("#quiz-score").inner_text() == "Score: 0 / 0"
    case_id = page.locator("#quiz .case").get_attribute("data-case")
    picked = next(q for q in questions if q["id"] == case_id)
    assert picked["set"] in ("reports", "reports-b", "reports-c") and picked["answer"]["expected"]["id"] == "gist"
    page.click("#quiz button[data-entity='gist']")
    assert page.locator("#quiz-score").inner_text() == "Score: 1 / 1"
    assert page.console_errors == []


NUMBERS = ("probability", "likelihood", "likelihood_ratio")


def _without_numbers(value):
    """A quiz question with the interpreter's numbers left out (they are compared within a tolerance)."""
    if isinstance(value, dict):
        return {k: _without_numbers(v) for k, v in value.items() if k not in NUMBERS}
    if isinstance(value, list):
        return [_without_numbers(v) for v in value]
    return value


def test_quiz_in_the_browser_is_the_interpreters_answer(built, browser_page):
    """Every quiz question with the answer the page computes (the panel form's interpreter on the question's input)
    against the Python answer, in one page session: the same questions, ranking, expected entity and rank, evidence
    rows (result, effect, literature label, note and source of each), and every probability, likelihood and
    likelihood ratio within 0.0005 of the interpreter's own."""
    kb = load_knowledge_base()
    python, _ = site_module._quiz_data(kb)
    cases = {c.id: c for c in load_quiz_cases(kb=kb)}
    questions = {q.case.id: q for q in build_questions(list(cases.values()), kb=kb)[0]}
    page = browser_page
    page.goto((built.out / "quiz.html").as_uri())
    shown = page.evaluate("window.SPX_QUIZ")
    assert len(shown) == len(python) == len(questions) > 300
    summary = re.search(r"(\d+) cases: (\d+) test panels, (\d+) hold-out panels and\s+(\d+) published case reports",
                        page.locator("p.summary").inner_text())
    total, *parts = (int(x) for x in summary.groups())
    assert total == sum(parts) == len(python)  # the summary counts every case the quiz asks
    for got, want in zip(shown, python, strict=True):
        assert _without_numbers(got) == _without_numbers(want)
        result = questions[got["id"]].result
        ranked = result.differential[: len(got["answer"]["differential"])]
        assert [d["id"] for d in got["answer"]["differential"]] == [e.id for e in ranked]
        for d, e in zip(got["answer"]["differential"], ranked, strict=True):
            assert abs(d["probability"] - e.probability) <= 0.0005
        entry = next(e for e in result.differential if e.id == got["answer"]["expected"]["id"])
        assert abs(got["answer"]["expected"]["probability"] - entry.probability) <= 0.0005
        rows = got["answer"]["evidence"]
        assert len(rows) == len(entry.evidence)
        for r, ev in zip(rows, entry.evidence, strict=True):
            j = ev.to_json()
            assert (r["kind"], r["marker"], r["result"], r["effect"]) == (j["kind"], j["marker"], j["result"],
                                                                           j["effect"])
            assert abs(r["likelihood"] - ev.likelihood) <= 0.0005
            # the ratio is kept to 3 decimals (as the Python quiz keeps it): half a unit of that, and no more
            assert abs(r["likelihood_ratio"] - ev.likelihood_ratio) <= 0.0005 * max(1.0, ev.likelihood_ratio) + 1e-9
            assert r["literature"] == literature_label(j) and r["note"] == j["note"]
            assert r["source_segments"] == source_segments(j["source"])
    assert page.console_errors == []


def test_source_segments_rebuild_the_text():

    text = "Kim 2005 https://synapse.koreamed.org/articles/1020122 ; doi:10.1002/cncr.24486."
    segs = source_segments(text)
    assert "".join(s["text"] for s in segs) == text
    assert [s["href"] for s in segs if "href" in s] == ["https://synapse.koreamed.org/articles/1020122",
                                                         "https://doi.org/10.1002/cncr.24486"]


def test_old_wiley_dois_with_angle_brackets_stay_whole():
    text = "Gustafson P. Cancer 1992 doi:10.1002/1097-0142(19920701)70:1<114::aid-cncr2820700119>3.0.co;2-u ; x"
    ((_s, _e, label, href),) = source_links(text)
    assert label.endswith("3.0.co;2-u")
    assert href == "https://doi.org/10.1002/1097-0142(19920701)70:1%3C114::aid-cncr2820700119%3E3.0.co;2-u"
    assert "<114" not in linkify(text) and "&lt;114" in linkify(text)
