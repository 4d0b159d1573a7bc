"""The teaching site's panel form (`panel.html`): the page script gives what `interpret_panel` gives, on every case
of the built-in case sets, and a person can type the reference panel into it."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from spindledx.cli import main
from spindledx.ihc import load_knowledge_base
from spindledx.ihc.evaluate import REPORT_SETS, load_cases
from spindledx.ihc.interpret import interpret_panel
from spindledx.teaching.site import build_site

REFERENCE = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"
FORM_CASE_SETS = ("original", "holdout", "reports", "reports-b", "reports-c")
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("panelsite") / "site").out


def _form_input(result) -> dict:
    """What the form holds for a case: the stains as read, the site and the findings (mitoses per 10 HPF)."""
    f = result.findings
    return {"site": result.site or "", "age": f.age_years, "sex": f.sex, "mitoses": f.mitoses_per_10hpf,
            "necrosis": f.necrosis, "atypia": f.atypia, "patterns": list(f.patterns),
            "obs": [{"marker": o.marker, "event": o.event, "result": o.result} for o in result.panel.observations]}


def _model_warnings(warnings) -> list[str]:
    """The warnings of the model itself (not of reading the typed text, nor naming command-line options)."""
    return [w for w in warnings if not w.startswith(("skipped ", "--sex ")) and " given twice " not in w]


def test_panel_page_and_model_are_part_of_the_site(site):
    page = (site / "panel.html").read_text(encoding="utf-8")
    assert "assets/panel-model.js" in page and "assets/panel.js" in page
    assert 'href="panel.html"' in (site / "index.html").read_text(encoding="utf-8")  # in the navigation
    text = (site / "assets" / "panel-model.js").read_text(encoding="utf-8")
    assert text.startswith("window.SPX_MODEL = ")
    model = json.loads(text.removeprefix("window.SPX_MODEL = ").rstrip().rstrip(";"))
    kb = load_knowledge_base()
    assert [e["id"] for e in model["entities"]] == list(kb.entity_ids)
    assert set(model["priors"]) == {"", *kb.site_priors}
    assert len(text) < 200_000  # the numbers only: notes and sources stay on the entity pages


def test_form_gives_the_differential_of_interpret_panel_on_every_case_set(site, browser_page):
    kb = load_knowledge_base()
    cases, expected = [], []
    for case_set in FORM_CASE_SETS:
        for case in load_cases(case_set=case_set, kb=kb):
            result = interpret_panel(case.panel, site=case.site, ignore_unknown=case_set in REPORT_SETS, kb=kb,
                                     **case.findings())
            cases.append((case_set, case.id))
            expected.append(result)
    assert len(cases) > 300
    with_findings = sum(1 for r in expected if r.findings.to_json())
    assert with_findings > 150  # age, sex, mitoses, necrosis, atypia and patterns are all exercised
    page = browser_page
    page.goto((site / "panel.html").as_uri())
    got = page.evaluate(
        "inputs => inputs.map(i => { const r = window.SPX_PANEL.interpret(i); return {"
        "p: Object.fromEntries(r.differential.map(e => [e.id, e.probability])),"
        "order: r.differential.map(e => e.id), next: r.next_markers.map(m => [m.marker, m.gain]),"
        "warnings: r.warnings, unexplained: r.unexplained}; })",
        [_form_input(r) for r in expected])
    for (case_set, case_id), want, js in zip(cases, expected, got, strict=True):
        where = f"{case_set} {case_id}"
        assert js["order"][0] == want.top.id, where
        for entry in want.differential:
            assert abs(js["p"][entry.id] - entry.probability) < TOLERANCE, (where, entry.id)
        assert js["unexplained"] == pytest.approx(want.unexplained)
        assert [m for m, _ in js["next"]] == [m.marker for m in want.next_markers], where
        for (_, gain), m in zip(js["next"], want.next_markers, strict=True):
            assert abs(gain - m.expected_information_gain) < TOLERANCE, where
        assert _model_warnings(js["warnings"]) == _model_warnings(want.warnings), where
    assert page.console_errors == []


def _screenshot(page, name: str, tmp_path: Path, *, full_page: bool = True) -> None:
    """Save a screenshot (into $SPINDLEDX_SCREENSHOTS when set, e.g. docs/screenshots, else the test's tmp)."""
    folder = Path(os.environ.get("SPINDLEDX_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=full_page)


def test_reference_panel_typed_into_the_form(site, browser_page, capsys, tmp_path):
    assert main(["panel", REFERENCE, "--site", "lung", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    page = browser_page
    page.goto((site / "panel.html").as_uri())
    page.fill("#panel-text", REFERENCE)
    page.click("#panel-read")
    page.select_option("#f-site", "lung")
    rows = page.locator("#panel-rows tbody tr")
    assert rows.count() == 6
    assert "SMA" in page.locator("#panel-text-msg").inner_text()  # 'actin' read as its canonical marker
    first = page.locator("#differential tr.entity").first
    assert first.get_attribute("data-entity") == cli["differential"][0]["id"] == "leiomyosarcoma"
    probability = float(first.get_attribute("data-probability"))
    assert abs(probability - cli["differential"][0]["probability"]) < TOLERANCE
    assert f"{cli['differential'][0]['probability'] * 100:.1f}%" in first.inner_text()
    assert page.locator("#differential tr.detail").first.is_visible()  # the leader's evidence is open
    assert "desmin" in page.locator("#differential tr.detail").first.inner_text()
    shown_next = page.locator("#panel-next tbody tr td:first-child").all_inner_texts()
    assert shown_next[:3] == [m["marker"] for m in cli["next_markers"][:3]]
    _screenshot(page, "kb_site_panel_form.png", tmp_path)

    # findings change the differential, as they do on the command line the page shows
    page.fill("#f-age", "61")
    page.select_option("#f-sex", "F")
    page.fill("#f-mitoses", "4.5")
    page.select_option("#f-mitoses-unit", "mm2")
    page.select_option("#f-necrosis", "yes")
    page.check("input[name=pattern][value=fascicular]")
    after = float(page.locator("#differential tr.entity").first.get_attribute("data-probability"))
    assert after != probability
    command = shlex.split(page.locator("#panel-command").inner_text())
    assert command[:2] == ["spindledx", "panel"] and "--mitoses" in command and "4.5/mm2" in command
    assert main([*command[1:], "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    first = page.locator("#differential tr.entity").first
    assert first.get_attribute("data-entity") == cli["differential"][0]["id"]
    assert abs(after - cli["differential"][0]["probability"]) < TOLERANCE
    # 'not done' takes a stain out
    page.select_option("#panel-rows tr[data-marker='desmin'] select", "")
    stains = page.locator("#differential tr.detail").first.locator("tbody tr").all_inner_texts()
    assert not [r for r in stains if r.startswith("stain\tdesmin")]
    assert "desmin not tested" in page.locator("#differential tr.detail").first.inner_text()  # markers tested
    assert page.console_errors == []


def test_marker_picker_searches_synonyms(site, browser_page):
    page = browser_page
    page.goto((site / "panel.html").as_uri())
    page.fill("#marker-search", "c-KIT")
    page.wait_for_selector("#marker-choices li[data-marker]")
    assert page.locator("#marker-choices li").first.get_attribute("data-marker") == "CD117"
    page.press("#marker-search", "Enter")
    page.select_option("#panel-rows tr[data-marker='CD117'] select", "neg")
    page.fill("#marker-search", "dog")
    page.press("#marker-search", "Enter")
    assert page.locator("#panel-rows tbody tr").count() == 2
    page.fill("#panel-text", "desmin+ h-caldesmon:diffuse DOG1 not done")  # a typed panel replaces the list
    page.press("#panel-text", "Enter")
    assert page.locator("#panel-rows tbody tr").all_inner_texts()[0].startswith("desmin")
    assert page.locator("#panel-rows tbody tr").count() == 3
    assert page.locator("#panel-rows tr[data-marker='DOG1'] select").input_value() == ""  # listed, not counted
    assert "DOG1" not in page.locator("#panel-command").inner_text()
    assert page.locator("#panel-rows tr[data-marker='h-caldesmon'] select").input_value() == "diffuse"
    assert page.locator("#differential tr.entity").count() > 0
    assert page.console_errors == []


def test_site_search_finds_a_marker_result(site, browser_page, tmp_path):
    page = browser_page
    page.goto((site / "index.html").as_uri())
    page.fill("#search", "desmin negative")
    page.wait_for_selector("#search-results li a")
    _screenshot(page, "kb_site_search_result.png", tmp_path, full_page=False)
    links = page.locator("#search-results li a")
    assert "desmin negative" in links.first.inner_text()
    assert "markers/desmin.html" in links.nth(1).get_attribute("href")  # and the marker's page
    page.press("#search", "Enter")
    page.wait_for_url("**/panel.html#panel=*")
    page.wait_for_selector("#panel-rows tr[data-marker='desmin']")
    assert page.locator("#panel-rows tr[data-marker='desmin'] select").input_value() == "neg"
    assert page.locator("#differential tr.entity").count() > 0
    assert page.console_errors == []


def test_typed_panels_are_read_as_the_command_line_reads_them(site, browser_page):
    """The compact grammar: every test panel of the original and hold-out sets, and every marker name and
    synonym with each result."""
    from spindledx.ihc.vocabulary import parse_panel

    kb = load_knowledge_base()
    panels = [c.panel for s in ("original", "holdout") for c in load_cases(case_set=s, kb=kb)]
    tokens = [f"{name.replace(' ', '_')}{sign}" for m in kb.markers.values() if m.kind in ("ihc", "molecular")
              for name in (m.name, *m.synonyms) for sign in ("+", "-")]
    page = browser_page
    page.goto((site / "panel.html").as_uri())
    got = page.evaluate("texts => texts.map(t => window.SPX_PANEL.readPanel(t))", panels + tokens)
    for text, js in zip(panels + tokens, got, strict=True):
        want = parse_panel(text, kb=kb)
        assert js["unread"] == [], text
        assert [(o["marker"], o["event"]) for o in js["obs"]] == [(o.marker, o.event) for o in want.observations], text


def test_exported_model_is_safe_to_embed():
    """Knowledge-base text reaches the page as JSON with <, > and & escaped (the script sets it as text only)."""
    from test_teaching_site import EVIL, _evil_kb

    from spindledx.ihc.model import default_constants
    from spindledx.teaching.compare import teaching_pairs
    from spindledx.teaching.html import json_for_script
    from spindledx.teaching.pages import SiteLinks
    from spindledx.teaching.panel_form import model_export

    kb = _evil_kb()
    links = SiteLinks(kb, teaching_pairs(kb))
    payload = json_for_script(model_export(kb, default_constants(), entity_links=links.entity,
                                           marker_links=links.marker, fact_anchor=links.fact_anchor,
                                           elicited_anchor=links.elicited_anchor, pair_anchor=links.pair_anchor))
    assert "<" not in payload and ">" not in payload
    gist = next(e for e in json.loads(payload)["entities"] if e["id"] == "gist")
    assert gist["pitfalls"] == [EVIL]
