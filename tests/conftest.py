"""Shared fixtures: the real data in ../shared/data is optional, tests that need it skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is not there."""
    if not (SHARED_DATA / "midesec-train" / "mitoses.csv").is_file():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium_path() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def _browser():
    """One headless Debian Chromium for the session, driven by Playwright; skips when either is missing."""
    path = _chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    try:
        pw = sync_api.sync_playwright().start()
    except Exception as exc:  # the driver could not start on this machine
        pytest.skip(f"playwright could not start: {exc}")
    try:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        pytest.skip(f"chromium could not be launched: {exc}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture()
def browser_page(_browser):
    """A fresh page (own context: own localStorage, downloads accepted) that records console errors.

    ``page.console_errors`` lists the text of every console error and uncaught page error; a test of a page a
    person opens should assert it is empty. Open local files with ``page.goto(path.as_uri())``.
    """
    context = _browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    yield page
    context.close()
