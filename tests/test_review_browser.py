"""review.html in a real browser (Playwright + Debian Chromium): keyboard review, export, import, speed."""

from __future__ import annotations

import json

import pytest
from case_helpers import PANEL, fixed_detector, grid_detector, use_detector, write_tiles

from spindledx.cli import main


def _case(tmp_path, monkeypatch, detector, *, n_tiles=2, size_px=256):
    use_detector(monkeypatch, detector)
    tiles = write_tiles(tmp_path / "tiles", n=n_tiles, size_px=size_px, filled=True)
    out = tmp_path / "case"
    assert main(["case", PANEL, "--site", "lung", "--tiles", *map(str, tiles), "--out", str(out),
                 "--necrosis", "<50"]) == 0
    return out


def test_keyboard_review_export_and_import(browser_page, tmp_path, monkeypatch, capsys):
    out = _case(tmp_path, monkeypatch, fixed_detector)
    capsys.readouterr()
    page = browser_page
    page.goto((out / "review.html").as_uri())
    cards = page.locator(".card")
    assert cards.count() == 8  # 4 detections + 4 candidates just below the threshold
    ids = [cards.nth(i).get_attribute("data-id") for i in range(8)]
    page.fill("#reviewer", "Dr Keyboard")
    page.locator("#reviewer").press("Tab")
    page.locator("body").click(position={"x": 5, "y": 5})
    # detections first: reject the first, confirm three; skip one below-threshold candidate, confirm the next
    for key in ("n", "y", "y", "y", "ArrowRight", "y"):
        page.keyboard.press(key)
    # undo the last decision and redo it as "unsure", then go back with the arrow key and change nothing
    page.keyboard.press("z")
    page.keyboard.press("u")
    page.keyboard.press("ArrowLeft")
    assert "reviewed 5 of 8" in page.inner_text("#tally")
    assert page.locator(".card.d-n").count() == 1 and page.locator(".card.d-y").count() == 3
    assert page.locator(".card.d-u").count() == 1
    # decisions survive a reload (localStorage)
    page.reload()
    assert page.locator(".card.d-y").count() == 3 and page.input_value("#reviewer") == "Dr Keyboard"
    with page.expect_download() as info:
        page.click("#btn-export")
    path = tmp_path / "decisions.json"
    info.value.save_as(path)
    exported = json.loads(path.read_text())
    assert exported["reviewer"] == "Dr Keyboard" and exported["date"].startswith("20")
    got = {d["id"]: d["decision"] for d in exported["decisions"]}
    assert got == {ids[0]: "n", ids[1]: "y", ids[2]: "y", ids[3]: "y", ids[5]: "u"}
    assert main(["review", str(out), "--import", str(path)]) == 0
    stdout = capsys.readouterr().out
    result = json.loads((out / "review_result.json").read_text())
    # 3 confirmed detections; the unsure one is below threshold, so the detector's call (not counted) stands
    assert result["confirmed_count"] == 3 and result["detector_count"] == 4
    assert result["partial"] is True and "3 of 8 candidates were not reviewed" in result["partial_note"]
    assert "confirmed count 3" in stdout
    assert page.console_errors == []


def test_hundred_candidates_by_keyboard_each_decision_under_50_ms(browser_page, tmp_path, monkeypatch, capsys):
    out = _case(tmp_path, monkeypatch, grid_detector(10, low=0.55), n_tiles=1, size_px=512)
    capsys.readouterr()
    page = browser_page
    page.goto((out / "review.html").as_uri())
    assert page.locator(".card").count() == 100
    # measured in the browser around the page's key handling: t0 in a capture-phase listener (before the page's
    # handler on document), t1 in a bubble-phase listener on window (after it) once style and layout are
    # flushed (offsetHeight), i.e. the decision is rendered into the layout; the time to the next frame is
    # recorded too (it also includes the compositor's scheduling on a loaded machine)
    page.evaluate("""() => {
      window.__handle = []; window.__frame = [];
      let t0 = 0;
      document.addEventListener('keydown', () => { t0 = performance.now(); }, true);
      window.addEventListener('keydown', () => {
        void document.body.offsetHeight;
        window.__handle.push(performance.now() - t0);
        const start = t0;
        requestAnimationFrame(() => window.__frame.push(performance.now() - start));
      });
    }""")
    for k in range(100):
        page.keyboard.press("yn"[k % 3 == 0])
    page.wait_for_function("window.__frame.length >= 100")
    handle, frame = sorted(page.evaluate("window.__handle")), sorted(page.evaluate("window.__frame"))
    assert len(handle) == 100
    print(f"\nreview of 100 candidates by keyboard: key handling + layout median {handle[50]:.1f} ms, max "
          f"{handle[-1]:.1f} ms; keydown to next frame median {frame[50]:.1f} ms, max {frame[-1]:.1f} ms")
    assert handle[-1] < 50.0
    assert "reviewed 100 of 100" in page.inner_text("#tally")
    assert page.locator(".card.d-n").count() == 34 and page.locator(".card.d-y").count() == 66
    with page.expect_download() as info:
        page.click("#btn-export")
    path = tmp_path / "decisions.json"
    info.value.save_as(path)
    assert main(["review", str(out), "--import", str(path)]) == 0
    result = json.loads((out / "review_result.json").read_text())
    assert result["confirmed_count"] == 66 and not result["partial"]
    assert page.console_errors == []


def test_case_page_opens_with_its_sections(browser_page, tmp_path, monkeypatch):
    from spindledx.case.page import SECTION_IDS

    out = _case(tmp_path, monkeypatch, fixed_detector)
    page = browser_page
    page.goto((out / "case.html").as_uri())
    for sid in SECTION_IDS:
        assert page.locator(f"section#{sid} h2").is_visible(), sid
    assert "Leiomyosarcoma" in page.inner_text("section#answer")
    broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
    assert page.evaluate("document.images.length") >= 2 and broken == 0
    # a thumbnail links to its first candidate on the review page, which opens selected
    page.locator("section#count a img").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("review.html#img-tile0")
    assert page.locator(".card.cur").get_attribute("id") == "img-tile0"
    assert page.console_errors == []


@pytest.mark.parametrize("media", ["print"])
def test_case_page_prints_on_a4_without_controls(browser_page, tmp_path, monkeypatch, media):
    out = _case(tmp_path, monkeypatch, fixed_detector, n_tiles=1)
    page = browser_page
    page.goto((out / "case.html").as_uri())
    page.emulate_media(media=media)
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    assert pdf[:4] == b"%PDF" and pdf.count(b"/Type /Page") >= 2
