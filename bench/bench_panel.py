"""Speed of ``interpret_panel`` per panel, as a ratio to loading the knowledge base in the same run.

Usage::

    python bench/bench_panel.py [--repeats R]

Times, best of ``R`` rounds:

* floor: :func:`spindledx.ihc.knowledge.build_knowledge_base` — reading and validating every CSV of the knowledge
  base (uncached), the least any run of the interpreter has to do once;
* panel: :func:`spindledx.ihc.interpret_panel` over the 100 built-in test panels (cases.csv + cases_holdout.csv),
  each once without and once with clinical and H&E findings (age, sex, mitoses, necrosis, atypia, pattern),
  with next-marker suggestions, after one warm-up pass (which builds the per-site likelihood tables).

Prints milliseconds per panel, the knowledge-base load time and their ratio. Target: at most 20 ms per
panel after the knowledge base is loaded.
"""

from __future__ import annotations

import argparse
import platform
import time

TARGET_MS = 20.0
FINDINGS = {"age": 55, "sex": "F", "mitoses": "11/10HPF", "necrosis": "yes", "atypia": "marked",
            "pattern": "fascicular"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from spindledx.ihc import interpret_panel
    from spindledx.ihc.evaluate import load_cases
    from spindledx.ihc.knowledge import build_knowledge_base

    load_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        kb = build_knowledge_base()
        load_s.append(time.perf_counter() - t0)
    cases = load_cases(case_set="all", kb=kb)
    calls = [(c.panel, c.site, {}) for c in cases] + [(c.panel, c.site, FINDINGS) for c in cases]

    def run_all() -> int:
        checksum = 0
        for panel, site, findings in calls:
            result = interpret_panel(panel, site=site, kb=kb, **findings)
            checksum += len(result.differential) + len(result.next_markers)
        return checksum

    run_all()  # warm-up: per-site likelihood tables
    per_panel_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run_all()
        per_panel_s.append((time.perf_counter() - t0) / len(calls))
    load_ms = min(load_s) * 1e3
    panel_ms = min(per_panel_s) * 1e3
    print(f"python {platform.python_version()} on {platform.machine()}; {len(kb.entities)} entities, "
          f"{len(kb.markers)} markers, {len(kb.facts)} facts")
    print(f"knowledge base load (floor): {load_ms:.1f} ms")
    print(f"interpret_panel: {panel_ms:.2f} ms per panel over {len(calls)} panels (best of {args.repeats})")
    print(f"ratio panel / KB load: {panel_ms / load_ms:.3f}; target <= {TARGET_MS:g} ms per panel: "
          f"{'met' if panel_ms <= TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
