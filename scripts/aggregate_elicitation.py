"""Pool the structured expert elicitation into the knowledge base's ``elicited.csv``.

Usage::

    .venv/bin/python scripts/aggregate_elicitation.py [--check] [--round2-sheets DIR]

Reads the elicitors' answer files of ``elicitation/round1/`` (``<elicitor>_<part>.csv``: ``entity,marker,
p_positive,focal_share,rationale,reference``) and their revisions of ``elicitation/round2/`` (same columns, only the
cells an elicitor was asked to reconsider; a cell left out keeps the first-round answer).  For every cell the final
answer of each elicitor is pooled: median P(positive) and focal share, range, standard deviation on the logit scale
(which sets the figure's weight, :func:`spindledx.ihc.model.elicited_count`), the rationale of the median elicitor
and the references named.  The prior, clinical and morphology figures of ``elicitation/context/`` are pooled the
same way (median and range) into ``elicited_context.csv``, and the markers a published work-up of each entity
states (``elicitation/reporting/``) into ``reporting.csv``.  ``--check`` only verifies that the committed files are
what the answer files give.

``--round2-sheets DIR`` writes, per elicitor, the sheet of round 2 instead: every cell on which the elicitors
disagree (range of P(positive) above :data:`ROUND2_RANGE` or logit spread above :data:`ROUND2_LOGIT_SD`), with the
elicitor's own first answer, the group median and range, and empty columns for the revision.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ELICITATION = ROOT / "elicitation"
OUTPUT = ROOT / "src" / "spindledx" / "ihc" / "data" / "elicited.csv"
CONTEXT_OUTPUT = ROOT / "src" / "spindledx" / "ihc" / "data" / "elicited_context.csv"
REPORTING_OUTPUT = ROOT / "src" / "spindledx" / "ihc" / "data" / "reporting.csv"
REPORTING_COLUMNS = ("entity", "marker", "p_median", "p_min", "p_max", "n_elicitors", "rationale")
UNLISTED_REPORTED = 0.10  # spindledx.ihc.selection.UNLISTED_REPORTED: a marker an elicitor did not list
CONTEXT_COLUMNS = ("entity", "item", "value_median", "value_min", "value_max", "n_elicitors", "rationale",
                   "reference")
COLUMNS = ("entity", "marker", "p_median", "p_min", "p_max", "logit_sd", "focal_median", "n_elicitors", "rounds",
           "rationale", "reference")
ROUND2_RANGE = 0.15
ROUND2_LOGIT_SD = 0.75
P_CLIP = 0.005


_PROCESS_CLAUSE = re.compile(r"^(kept|unchanged|revised[^;:.]*|moved[^;:.]*|raised[^;:.]*|lowered[^;:.]*|"
                             r"nudged[^;:.]*)\s*[;:.,]\s*", re.IGNORECASE)
_PROCESS_TAIL = re.compile(r"[;,]\s*((agrees with|close to|near|moved to(ward)?|toward|align(ed)? with|revised to) "
                           r"(the )?(group )?median)\.?$", re.IGNORECASE)


def clean_rationale(text: str) -> str:
    """The reason an elicitor gave, without the remark on how the answer changed between rounds."""
    text = _PROCESS_TAIL.sub("", _PROCESS_CLAUSE.sub("", text.strip())).strip()
    return text[:1].upper() + text[1:] if text else text


def _logit(p: float) -> float:
    p = min(max(p, P_CLIP), 1.0 - P_CLIP)
    return math.log(p / (1.0 - p))


def _answers(folder: Path) -> dict[tuple[str, str], dict[str, dict]]:
    """(entity, marker) -> elicitor -> answer row, from every ``<elicitor>_<part>.csv`` of ``folder``."""
    out: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for path in sorted(folder.glob("*.csv")):
        elicitor = path.stem.split("_")[0]
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                key = (row["entity"].strip(), row["marker"].strip())
                if elicitor in out[key]:
                    raise SystemExit(f"{path.name}: {key} answered twice by elicitor {elicitor}")
                p, focal = float(row["p_positive"]), float(row["focal_share"] or 0)
                if not (0 <= p <= 1 and 0 <= focal <= 1):
                    raise SystemExit(f"{path.name}: {key}: values outside [0, 1]")
                out[key][elicitor] = {"p": p, "focal": focal, "rationale": clean_rationale(row.get("rationale") or ""),
                                      "reference": (row.get("reference") or "").strip()}
    return out


def pooled_rows() -> list[dict]:
    """One pooled row per elicited cell (see the module docstring)."""
    first = _answers(ELICITATION / "round1")
    revised = _answers(ELICITATION / "round2") if (ELICITATION / "round2").is_dir() else {}
    rows = []
    for (entity, marker), by_elicitor in sorted(first.items()):
        final = dict(by_elicitor)
        rounds = 1
        for elicitor, answer in revised.get((entity, marker), {}).items():
            final[elicitor] = answer
            rounds = 2
        if len(final) < 3:
            raise SystemExit(f"{entity} x {marker}: only {len(final)} elicitors answered")
        ps = sorted(a["p"] for a in final.values())
        median = statistics.median(ps)
        median_elicitor = min(final, key=lambda e: (abs(final[e]["p"] - median), e))
        references = []
        for answer in final.values():
            if answer["reference"] and answer["reference"] not in references:
                references.append(answer["reference"])
        rows.append({
            "entity": entity, "marker": marker, "p_median": f"{median:.3f}", "p_min": f"{ps[0]:.3f}",
            "p_max": f"{ps[-1]:.3f}", "logit_sd": f"{statistics.stdev(_logit(p) for p in ps):.3f}",
            "focal_median": f"{statistics.median(a['focal'] for a in final.values()):.3f}",
            "n_elicitors": str(len(final)), "rounds": str(rounds),
            "rationale": final[median_elicitor]["rationale"], "reference": " | ".join(references)})
    return rows


def pooled_context_rows() -> list[dict]:
    """Median and range of the elicitors' prior, clinical and morphology figures (``elicitation/context/``)."""
    answers: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for path in sorted((ELICITATION / "context").glob("*_items.csv")):
        elicitor = path.stem.split("_")[0]
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                answers[(row["entity"].strip(), row["item"].strip())][elicitor] = row
    rows = []
    for (entity, item), by_elicitor in sorted(answers.items()):
        if len(by_elicitor) < 3:
            raise SystemExit(f"{entity} {item}: only {len(by_elicitor)} elicitors answered")
        values = sorted(float(r["value"]) for r in by_elicitor.values())
        median = statistics.median(values)
        median_elicitor = min(by_elicitor, key=lambda e: (abs(float(by_elicitor[e]["value"]) - median), e))
        references = []
        for r in by_elicitor.values():
            if r["reference"].strip() and r["reference"].strip() not in references:
                references.append(r["reference"].strip())
        rows.append({"entity": entity, "item": item, "value_median": f"{median:g}", "value_min": f"{values[0]:g}",
                     "value_max": f"{values[-1]:g}", "n_elicitors": str(len(by_elicitor)),
                     "rationale": by_elicitor[median_elicitor]["rationale"].strip(),
                     "reference": " | ".join(references)})
    return rows


def pooled_reporting_rows() -> list[dict]:
    """P(a published work-up of the entity states the marker): median and range over the elicitors of
    ``elicitation/reporting/``, an elicitor who did not list the marker counting as :data:`UNLISTED_REPORTED`."""
    answers: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    elicitors = []
    for path in sorted((ELICITATION / "reporting").glob("*_reported.csv")):
        elicitor = path.stem.split("_")[0]
        elicitors.append(elicitor)
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                answers[(row["entity"].strip(), row["marker"].strip())][elicitor] = row
    rows = []
    for (entity, marker), by_elicitor in sorted(answers.items()):
        values = {e: float(by_elicitor[e]["p_reported"]) if e in by_elicitor else UNLISTED_REPORTED
                  for e in elicitors}
        median = statistics.median(values.values())
        listed = [e for e in elicitors if e in by_elicitor]
        median_elicitor = min(listed, key=lambda e: (abs(values[e] - median), e))
        rows.append({"entity": entity, "marker": marker, "p_median": f"{median:.3f}",
                     "p_min": f"{min(values.values()):.3f}", "p_max": f"{max(values.values()):.3f}",
                     "n_elicitors": str(len(elicitors)),
                     "rationale": by_elicitor[median_elicitor].get("rationale", "").strip()})
    return rows


def _csv_text(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def round2_sheets(folder: Path) -> None:
    """Per elicitor, the disputed cells with the elicitor's own answer and the group's median and range."""
    first = _answers(ELICITATION / "round1")
    folder.mkdir(parents=True, exist_ok=True)
    sheets: dict[str, list[dict]] = defaultdict(list)
    for (entity, marker), by_elicitor in sorted(first.items()):
        ps = [a["p"] for a in by_elicitor.values()]
        spread = statistics.stdev(_logit(p) for p in ps) if len(ps) > 1 else 0.0
        if max(ps) - min(ps) <= ROUND2_RANGE and spread <= ROUND2_LOGIT_SD:
            continue
        for elicitor, answer in by_elicitor.items():
            sheets[elicitor].append({
                "entity": entity, "marker": marker, "your_p_positive": answer["p"],
                "your_focal_share": answer["focal"], "group_median": statistics.median(ps),
                "group_min": min(ps), "group_max": max(ps), "p_positive": "", "focal_share": "", "rationale": "",
                "reference": ""})
    for elicitor, rows in sheets.items():
        with (folder / f"{elicitor}_round2_sheet.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{elicitor}: {len(rows)} cells to reconsider")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify elicited.csv instead of writing it")
    parser.add_argument("--round2-sheets", type=Path, help="write the round-2 sheets to this folder instead")
    args = parser.parse_args(argv)
    if args.round2_sheets:
        round2_sheets(args.round2_sheets)
        return 0
    outputs = {OUTPUT: _csv_text(pooled_rows()), CONTEXT_OUTPUT: _csv_text(pooled_context_rows(), CONTEXT_COLUMNS),
               REPORTING_OUTPUT: _csv_text(pooled_reporting_rows(), REPORTING_COLUMNS)}
    status = 0
    for path, text in outputs.items():
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{path.name} {'matches' if same else 'differs from'} the answer files")
            status = status or (0 if same else 1)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}: {text.count(chr(10)) - 1} rows")
    return status


if __name__ == "__main__":
    sys.exit(main())
