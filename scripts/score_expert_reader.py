"""Score the expert readers' answers on a case-report set the same way ``spindledx panel-cases`` scores the
interpreter.

Usage::

    .venv/bin/python scripts/score_expert_reader.py [evaluation/expert_reader]

The folder holds the readers' brief (``BRIEF.md``), the cases exactly as the readers saw them (``cases_d.csv``:
the columns the interpreter is given, under anonymous ids in a shuffled order), ``key.csv`` (anonymous id -> case
id of ``cases_reports_d.csv``) and one ``<reader>_answers.csv`` per reader (``id,top1,p1,top2,p2,top3,p3``).
A reader's probability outside its top 3 is spread evenly over the other entities, so that the multi-class
Brier score is over the same entities as the interpreter's.  Top-1, top-3, Brier and ECE (bins 0-.5-.8-.95-1,
:data:`spindledx.ihc.evaluate.RELIABILITY_BINS`) are printed per reader and for the readers pooled.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from spindledx.ihc.evaluate import RELIABILITY_BINS, load_cases
from spindledx.ihc.knowledge import load_knowledge_base

ROOT = Path(__file__).resolve().parents[1]


def score(answers: list[dict], expected: dict[str, str], entities: list[str]) -> dict:
    """Top-1, top-3, Brier and ECE of one reader's answers (see the module docstring)."""
    n_entities = len(entities)
    rows = []
    for a in answers:
        probs = {a[f"top{k}"]: float(a[f"p{k}"]) for k in (1, 2, 3) if a.get(f"top{k}")}
        rest = max(0.0, 1.0 - sum(probs.values())) / (n_entities - len(probs))
        truth = expected[a["id"]]
        vector = {e: probs.get(e, rest) for e in entities}
        brier = sum((p - (e == truth)) ** 2 for e, p in vector.items())
        ranked = list(probs)
        rows.append({"top1": ranked[0] == truth, "top3": truth in ranked, "brier": brier, "conf": probs[ranked[0]]})
    n = len(rows)
    ece = 0.0
    for low, high in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:], strict=True):
        members = [r for r in rows if low <= r["conf"] < high]
        if members:
            acc = sum(r["top1"] for r in members) / len(members)
            conf = sum(r["conf"] for r in members) / len(members)
            ece += len(members) / n * abs(acc - conf)
    return {"n": n, "top1": round(sum(r["top1"] for r in rows) / n, 4),
            "top3": round(sum(r["top3"] for r in rows) / n, 4),
            "brier": round(sum(r["brier"] for r in rows) / n, 4), "ece": round(ece, 4)}


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "evaluation" / "expert_reader"
    kb = load_knowledge_base()
    truth = {c.id: c.expected for c in load_cases(case_set="reports-d", kb=kb)}
    with (folder / "key.csv").open(encoding="utf-8", newline="") as handle:
        expected = {r["reader_id"]: truth[r["case_id"]] for r in csv.DictReader(handle)}
    entities = list(kb.entities)
    report, pooled = {}, []
    for path in sorted(folder.glob("*_answers.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            answers = list(csv.DictReader(handle))
        if {a["id"] for a in answers} != set(expected):
            raise SystemExit(f"{path.name}: does not answer exactly the {len(expected)} cases")
        report[path.stem.removesuffix("_answers")] = score(answers, expected, entities)
        pooled += answers
    report["pooled"] = score(pooled, expected, entities)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
