"""Knowledge-base site: build time and size of `spindledx kb site`, against its limits (< 10 s, < 5 MB).

Usage::

    .venv/bin/python bench/bench_site.py [--repeat 3]

Builds the site ``--repeat`` times into temporary folders (after one warm-up load of the knowledge base) and
prints the best and median wall-clock build time, the size on disk and the number of pages.  The floor measured
in the same run is the interpreter alone on every quiz case (``interpret_panel`` per published case, with its
findings, as the quiz page needs); the ratio build/floor shows how much the page rendering adds on top of it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from spindledx.ihc import interpret_panel, load_knowledge_base
from spindledx.teaching.quiz import build_questions, load_quiz_cases
from spindledx.teaching.site import build_site

LIMIT_SECONDS = 10.0
LIMIT_BYTES = 5_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kb = load_knowledge_base()
    cases = load_quiz_cases(kb=kb)
    interpret_panel(cases[0].panel, kb=kb)  # warm-up
    times, floors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):  # floor and build interleaved, so both see the same machine load
            start = time.perf_counter()
            build_questions(cases, kb=kb)
            floors.append(time.perf_counter() - start)
            build = build_site(Path(tmp) / f"site{i}", kb=kb)
            times.append(build.seconds)
            size = sum(p.stat().st_size for p in build.out.rglob("*") if p.is_file())
    best, median = min(times), statistics.median(times)
    floor = statistics.median(floors)
    print(f"interpreter on {len(cases)} quiz cases (floor, median): {floor:.2f} s")
    print(f"site build: best {best:.2f} s, median {median:.2f} s over {args.repeat} runs "
          f"(limit {LIMIT_SECONDS:.0f} s); ratio median/floor {median / floor:.2f}")
    print(f"site size: {size / 1e6:.2f} MB in {build.n_files} files, {build.n_pages} pages "
          f"(limit {LIMIT_BYTES / 1e6:.0f} MB)")
    print("within limits" if median < LIMIT_SECONDS and size < LIMIT_BYTES else "OVER LIMITS")


if __name__ == "__main__":
    main()
