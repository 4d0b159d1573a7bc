"""Screenshots of the pages a person opens (case.html, review.html, report.html) for the documentation (docs/guide/).

Run after `make demo` (it writes demo_out/run-YYYYmmdd-HHMMSS/): `.venv/bin/python scripts/screenshots.py` writes
docs/screenshots/{case,review,report}.png from the newest run (or `--run FOLDER`): the top of case and review, the
whole report, with Playwright driving Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"case": "case/case.html", "review": "case/review.html", "report": "batch/report.html"}


def newest_demo_run() -> Path | None:
    """The newest demo_out/run-* folder that `make demo` wrote, or None."""
    runs = sorted((ROOT / "demo_out").glob("run-*"))
    return runs[-1] if runs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--run", type=Path, default=None, help="a `make demo` run folder (default: the newest)")
    parser.add_argument("--height", type=int, default=1400, help="viewport height in px (the top of each page)")
    args = parser.parse_args()
    run = args.run or newest_demo_run()
    if run is None:
        raise SystemExit("error: no demo_out/run-* folder: run `make demo` first")
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("error: chromium is not installed")
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        for name, rel in PAGES.items():
            page_path = run / rel
            if not page_path.is_file():
                raise SystemExit(f"error: {page_path} is missing: run `make demo` first")
            page = browser.new_page(viewport={"width": 1200, "height": args.height})
            page.goto(page_path.as_uri())
            if name == "review":  # show a few decisions being made with the keyboard
                for key in ("y", "y", "n", "y", "u"):
                    page.keyboard.press(key)
            page.screenshot(path=str(args.out / f"{name}.png"), full_page=name == "report")
            page.close()
            print(f"{args.out / f'{name}.png'}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
