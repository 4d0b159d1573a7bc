"""Screenshots of the pages a person opens (case.html, review.html, report.html) and of the pages of the filed
report (case.pdf) for the documentation (docs/guide/).

Run after `make demo` (it writes demo_out/run-YYYYmmdd-HHMMSS/): `.venv/bin/python scripts/screenshots.py` writes
docs/screenshots/{case,review,report}.png from the newest run (or `--run FOLDER`): the top of case and review, the
whole report, with Playwright driving Debian's /usr/bin/chromium; and docs/screenshots/case_pdf_page{1,2,...}.png,
each page of case.pdf rendered by pdftoppm (poppler-utils) or, without it, pypdfium2. `--only case_pdf` renders
the PDF pages alone (no browser needed).
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


def render_pdf_pages(pdf: Path, out: Path, *, stem: str, dpi: int = 110) -> list[Path]:
    """Every page of ``pdf`` as ``out/<stem>_page<N>.png`` (pdftoppm when installed, else pypdfium2)."""
    import subprocess
    import tempfile

    for old in out.glob(f"{stem}_page*.png"):
        old.unlink()  # a report that got shorter leaves no stale page behind
    written = []
    if shutil.which("pdftoppm"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), f"{tmp}/page"], check=True)
            for page in sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.split("-")[-1])):
                target = out / f"{stem}_page{int(page.stem.split('-')[-1])}.png"
                shutil.copyfile(page, target)
                written.append(target)
        return written
    try:
        import pypdfium2
    except ImportError:
        raise SystemExit("error: render the PDF with pdftoppm (poppler-utils) or `pip install pypdfium2`") from None
    document = pypdfium2.PdfDocument(str(pdf))
    for number, page in enumerate(document, start=1):
        target = out / f"{stem}_page{number}.png"
        page.render(scale=dpi / 72).to_pil().save(target)
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--run", type=Path, default=None, help="a `make demo` run folder (default: the newest)")
    parser.add_argument("--height", type=int, default=1400, help="viewport height in px (the top of each page)")
    parser.add_argument("--only", choices=[*PAGES, "case_pdf"], action="append", default=None,
                        help="only these screenshots (repeatable; default: all)")
    args = parser.parse_args()
    run = args.run or newest_demo_run()
    if run is None:
        raise SystemExit("error: no demo_out/run-* folder: run `make demo` first")
    wanted = args.only or [*PAGES, "case_pdf"]
    args.out.mkdir(parents=True, exist_ok=True)
    if "case_pdf" in wanted:
        pdf = run / "case" / "case.pdf"
        if not pdf.is_file():
            raise SystemExit(f"error: {pdf} is missing: run `make demo` first")
        for path in render_pdf_pages(pdf, args.out, stem="case_pdf"):
            print(path)
    pages = {name: rel for name, rel in PAGES.items() if name in wanted}
    if not pages:
        return 0
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("error: chromium is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        for name, rel in pages.items():
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
