"""Fit the IHC interpreter's global constants by cross-validation on the project's own 100 test panels.

Usage::

    .venv/bin/python scripts/calibrate_ihc.py [--folds 5] [--seed 0] [--write] [--plot docs/ihc_reliability.png]

Fits at most three global constants (:class:`spindledx.ihc.model.ModelConstants`: evidence weight, estimate
pseudo-count, temperature) on a small grid, by minimising the log loss of the expected entity on the training
folds; reports the held-out (cross-validated) top-1, top-3, Brier and ECE against the uncalibrated defaults, and
draws the reliability diagram (before: defaults; after: cross-validated predictions).  ``--write`` then refits on
all 100 panels and writes ``src/spindledx/ihc/data/calibration.json``, which :func:`default_constants` reads.

Only ``cases.csv`` and ``cases_holdout.csv`` are used.  The published case reports (``cases_reports.csv``) are a
blind test set and are never read here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from spindledx.ihc.evaluate import Evaluation, case_outcome, load_cases, summarise
from spindledx.ihc.knowledge import load_knowledge_base
from spindledx.ihc.model import ModelConstants

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_JSON = ROOT / "src" / "spindledx" / "ihc" / "data" / "calibration.json"
# evidence weight <= 1 by design: it can only discount partly dependent evidence, never amplify it; the
# temperature is the calibration knob for overall sharpness; estimates count for 20-100 cases (the n cap).
GRID = {
    "evidence_weight": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "estimate_count": (20.0, 30.0, 50.0, 100.0),
    "temperature": (0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2),
}
DEFAULT = ModelConstants()


def _metrics(ev: Evaluation) -> dict:
    return {"n": ev.n, "top1": round(ev.top1, 4), "top3": round(ev.top3, 4), "brier": round(ev.brier, 4),
            "log_loss": round(ev.log_loss, 4), "ece": round(ev.ece, 4)}


def _log_loss(outcomes) -> float:
    return float(np.mean([-math.log(max(o.expected_probability, 1e-12)) for o in outcomes]))


def reliability_plot(path: Path, before: Evaluation, after: Evaluation) -> None:
    """Reliability diagram (mean top-1 confidence vs top-1 accuracy per bin, marker area ~ cases)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    for ev, label, color in ((before, "before (defaults)", "tab:red"), (after, "after (5-fold CV)", "tab:blue")):
        xs = [b.mean_confidence for b in ev.reliability if b.n]
        ys = [b.accuracy for b in ev.reliability if b.n]
        ns = [b.n for b in ev.reliability if b.n]
        ax.plot(xs, ys, color=color, lw=1.2, label=f"{label}: ECE {ev.ece:.3f}")
        ax.scatter(xs, ys, s=[20 + 4 * n for n in ns], color=color, alpha=0.6)
        for x, y, n in zip(xs, ys, ns, strict=True):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(6, -10), fontsize=7, color=color)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean top-1 probability in bin")
    ax.set_ylabel("top-1 accuracy in bin")
    ax.set_title("IHC differential: 100 test panels\n(bins 0-.5-.8-.95-1; numbers = cases per bin)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as tmp:
        fig.savefig(tmp.name)
    os.replace(tmp.name, path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write data/calibration.json (refit on all 100)")
    parser.add_argument("--plot", type=Path, default=None, help="reliability diagram PNG")
    args = parser.parse_args()

    kb = load_knowledge_base()
    cases = load_cases(case_set="all", kb=kb)  # cases.csv + cases_holdout.csv only
    combos = [ModelConstants(evidence_weight=w, estimate_count=k, temperature=t, source="grid")
              for w, k, t in itertools.product(*GRID.values())]
    outcomes = {c: [case_outcome(case, kb=kb, constants=c) for case in cases] for c in combos}
    before = summarise([case_outcome(case, kb=kb, constants=DEFAULT) for case in cases])

    rng = np.random.default_rng(args.seed)
    fold = rng.permutation(len(cases)) % args.folds
    held_out = [None] * len(cases)
    chosen = []
    for f in range(args.folds):
        train = np.flatnonzero(fold != f)
        best = min(combos, key=lambda c: _log_loss([outcomes[c][i] for i in train]))
        chosen.append(best)
        for i in np.flatnonzero(fold == f):
            held_out[i] = outcomes[best][i]
    after = summarise(held_out)
    final = min(combos, key=lambda c: _log_loss(outcomes[c]))
    refit = summarise(outcomes[final])

    report = {
        "before_defaults": {"constants": {"evidence_weight": DEFAULT.evidence_weight,
                                          "estimate_count": DEFAULT.estimate_count,
                                          "temperature": DEFAULT.temperature}, **_metrics(before)},
        "after_cross_validated": _metrics(after),
        "per_fold_choice": [{"evidence_weight": c.evidence_weight, "estimate_count": c.estimate_count,
                             "temperature": c.temperature} for c in chosen],
        "final_fit_on_all_100": {"evidence_weight": final.evidence_weight, "estimate_count": final.estimate_count,
                                 "temperature": final.temperature, **_metrics(refit)},
    }
    print(json.dumps(report, indent=2))
    if args.plot:
        reliability_plot(args.plot, before, after)
        print(f"wrote {args.plot}")
    if args.write:
        payload = {
            "evidence_weight": final.evidence_weight, "estimate_count": final.estimate_count,
            "temperature": final.temperature,
            "method": f"grid search minimising log loss, {args.folds}-fold CV (seed {args.seed}) over the 100 test "
                      "panels cases.csv + cases_holdout.csv; refit on all 100 (scripts/calibrate_ihc.py)",
            "grid": {k: list(v) for k, v in GRID.items()},
            "cross_validation": report,
        }
        with tempfile.NamedTemporaryFile("w", dir=CALIBRATION_JSON.parent, suffix=".json", delete=False,
                                         encoding="utf-8") as tmp:
            json.dump(payload, tmp, indent=2)
            tmp.write("\n")
        os.replace(tmp.name, CALIBRATION_JSON)
        print(f"wrote {CALIBRATION_JSON}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
