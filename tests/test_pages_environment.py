"""The pages' one Jinja2 environment: autoescape, strict undefined values, safe inline JSON and CSS, templates as
package data; and a hostile file name or case ID comes out escaped on every page type (case, review, batch
report), checked in the text and in Chromium (no script runs, the string shows as text)."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tomllib
from pathlib import Path

import jinja2
import pandas as pd
import pytest
from case_helpers import PANEL, fixed_detector, use_detector, write_tiles

from spindledx.cli import main
from spindledx.pages import environment, linkify, render
from spindledx.pages.environment import css_string
from spindledx.review.candidates import load_candidate_files
from spindledx.review.page import render_review_html

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_ID = "<script>alert(1)</script>"
HOSTILE_STEM = "<img src=x onerror=alert(2)>"  # a file name (no slash) that is markup


def test_values_are_escaped_and_missing_values_fail():
    env = environment()
    assert env.autoescape is True and env.undefined is jinja2.StrictUndefined
    out = env.from_string("<p title='{{ v }}'>{{ v }}</p>").render(v="<b x='1'>&")
    assert out == "<p title='&lt;b x=&#39;1&#39;&gt;&amp;'>&lt;b x=&#39;1&#39;&gt;&amp;</p>"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ d.nothing }}").render(d={})


def test_inline_json_and_css_cannot_close_their_element():
    payload = {"id": "</script><script>alert(1)</script>", "q": "it's & <b>"}
    out = environment().from_string("<script type='application/json'>{{ p|tojson }}</script>").render(p=payload)
    inner = out.removeprefix("<script type='application/json'>").removesuffix("</script>")
    assert "<" not in inner and ">" not in inner and "'" not in inner and "&" not in inner
    assert json.loads(inner) == payload
    css = str(css_string('a"b\\c</style><script>\nx'))
    assert "</style" not in css and "\n" not in css and css.startswith('a\\"b\\\\c')


def test_linkify_escapes_every_part():
    html = str(linkify('see <b> doi:10.1000/x"y https://example.org/?a=1&b=<2>'))
    assert "<b>" not in html and "&lt;b&gt;" in html and '"y' not in html
    assert '<a href="https://example.org/?a=1&amp;b=" ' in html


def test_every_template_is_package_data():
    """An installed wheel carries the templates: each file under pages/templates matches a package-data glob."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["spindledx"]
    package = ROOT / "src" / "spindledx"
    files = [p for p in (package / "pages" / "templates").rglob("*") if p.is_file()]
    assert any(p.name.endswith(".html.j2") for p in files)
    for path in files:
        rel = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
    assert set(environment().list_templates()) >= {"base.html.j2", "macros.html.j2", "review/review.html.j2",
                                                   "report/report.html.j2", "case/case.html.j2"}


def test_render_fails_loudly_on_a_missing_value():
    with pytest.raises(jinja2.UndefinedError):
        render("base.html.j2", title="t")  # no subtitle


def _hostile_tiles(folder: Path) -> list[Path]:
    tiles = write_tiles(folder / "made", n=2, filled=True)
    named = []
    for i, tile in enumerate(tiles):
        target = folder / f"{HOSTILE_STEM}{i}.png"
        shutil.move(tile, target)
        named.append(target)
    return named


def _assert_escaped(text: str) -> None:
    for raw in (HOSTILE_ID, HOSTILE_STEM):
        assert raw not in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text


def _assert_inert_in_browser(page, path: Path, n_scripts: int) -> None:
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    assert dialogs == [] and page.console_errors == []
    assert page.evaluate("document.scripts.length") == n_scripts
    assert page.evaluate("document.querySelectorAll('img[onerror]').length") == 0
    assert HOSTILE_STEM in page.evaluate("document.body.innerText")


def test_case_and_review_pages_escape_a_hostile_file_name_and_case_id(tmp_path, monkeypatch, capsys, browser_page):
    use_detector(monkeypatch, fixed_detector)
    tiles = _hostile_tiles(tmp_path)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--site", "lung", "--tiles", *map(str, tiles), "--out", str(out),
                 "--case-id", HOSTILE_ID, "--specimen", HOSTILE_ID, "--pathologist", HOSTILE_STEM]) == 0, \
        capsys.readouterr().err
    case_html = (out / "case.html").read_text(encoding="utf-8")
    _assert_escaped(case_html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in case_html
    _assert_inert_in_browser(browser_page, out / "case.html", n_scripts=0)
    assert HOSTILE_ID in browser_page.evaluate("document.body.innerText")  # the case ID, shown as text
    # output stems are made safe (spindledx.files.output_stems), but the review page also reads candidates files
    # that could have been edited: hostile stems and candidate ids come out escaped
    docs = load_candidate_files(out)
    for i, doc in enumerate(docs):
        doc["stem"] = f"{HOSTILE_STEM}{i}"
        for c in doc["candidates"]:
            c["id"] = HOSTILE_ID + c["id"]
    (out / "review.html").write_text(render_review_html(docs), encoding="utf-8")
    review_html = (out / "review.html").read_text(encoding="utf-8")
    _assert_escaped(review_html)
    assert review_html.count("<script") == 2  # the data block and the page script
    _assert_inert_in_browser(browser_page, out / "review.html", n_scripts=2)
    assert browser_page.locator(".card").count() == 8
    assert browser_page.locator(f"[id='img-{HOSTILE_STEM}0']").count() == 1  # the anchor keeps the stem
    assert browser_page.locator(".card").first.get_attribute("data-id").startswith(HOSTILE_ID)
    data = json.loads(browser_page.locator("#review-data").text_content())
    assert data["candidates"][0]["id"].startswith(HOSTILE_ID)  # the inline JSON decodes to the same ids


def test_batch_report_escapes_a_hostile_file_name_and_case_id(tmp_path, monkeypatch, browser_page):
    from spindledx.qa.manifest import load_manifest
    from spindledx.qa.runner import run_and_write

    tiles = _hostile_tiles(tmp_path)
    pd.DataFrame([{"image": t.name, "case": HOSTILE_ID, "mpp": 0.25, "panel": PANEL, "diagnosis": "leiomyosarcoma"}
                  for t in tiles]).to_csv(tmp_path / "manifest.csv", index=False)
    run_and_write(load_manifest(tmp_path / "manifest.csv"), tmp_path / "out", detector=fixed_detector,
                  progress=False)
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    _assert_escaped(report)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    _assert_inert_in_browser(browser_page, tmp_path / "out" / "report.html", n_scripts=1)
    assert HOSTILE_ID in browser_page.locator("section#cases").inner_text()


def test_site_pages_escape_hostile_knowledge_base_strings_in_their_frame():
    """The teaching site: a hostile entity name and summary, in the page frame (title, footer) and the body."""
    import dataclasses
    from types import MappingProxyType

    from spindledx.ihc.knowledge import load_knowledge_base
    from spindledx.teaching.compare import teaching_pairs
    from spindledx.teaching.html import Frame
    from spindledx.teaching.pages import SiteLinks, entity_page, index_page

    kb = load_knowledge_base()
    entities = dict(kb.entities)
    entities["gist"] = dataclasses.replace(entities["gist"], name=HOSTILE_ID, summary=HOSTILE_STEM,
                                           aliases=(HOSTILE_STEM,))
    kb = dataclasses.replace(kb, entities=MappingProxyType(entities))
    links = SiteLinks(kb, teaching_pairs(kb))
    frame = Frame(title=HOSTILE_ID, root="../", footer=(("built", HOSTILE_STEM),))
    for page in (entity_page(kb, "gist", links, frame=frame),
                 index_page(kb, links, n_questions=1, provenance={"built": HOSTILE_ID}, frame=frame)):
        _assert_escaped(page)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert page.count("<script") == 2  # the frame's two local scripts, nothing else
