"""Fit the IHC interpreter's global constants by cross-validation on the project's own cases.

Usage::

    .venv/bin/python scripts/calibrate_ihc.py [--folds 5] [--seed 0] [--write] [--plot docs/ihc_reliability.png]

Fits the global constants of :class:`spindledx.ihc.model.ModelConstants` (evidence weight, elicited pseudo-count
cap, weight of the markers-tested evidence, weight of the prior x clinical context, temperature, doubt) on a small
grid, by minimising the log loss of the expected entity on the training folds; reports the held-out
(cross-validated) top-1, top-3, Brier and ECE, for the whole set and for each of its parts, against the uncalibrated
defaults, and draws the reliability diagram (before: defaults; after: cross-validated predictions).  ``--write``
then refits on all cases and writes
``src/spindledx/ihc/data/calibration.json``, which :func:`default_constants` reads.

The fitting set is the project's own cases: the 100 literature test panels (``cases.csv`` + ``cases_holdout.csv``)
and the published case reports of sets A, B and C (``cases_reports.csv``, ``cases_reports_b.csv``,
``cases_reports_c.csv``; each has been run once as a blind set and is no longer blind), run with ``ignore_unknown``
as a new user would.  The blind set D (``cases_reports_d.csv``) is never read here.  Folds are drawn within each
part, so every fold holds every kind.

The doubt λ is applied after the softmax (p' = (1 − λ)p + λ/N), so it is evaluated exactly from each grid point's
λ = 0 outcome instead of re-running the interpreter: the ranking is unchanged, P'(expected) = (1 − λ)P + λ/N and
the Brier score follows from Σp² = Brier − 1 + 2P(expected).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from spindledx.ihc.evaluate import CaseOutcome, Evaluation, case_outcome, load_cases, summarise
from spindledx.ihc.knowledge import load_knowledge_base
from spindledx.ihc.model import ModelConstants

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_JSON = ROOT / "src" / "spindledx" / "ihc" / "data" / "calibration.json"
# evidence weight <= 1 by design: it can only discount partly dependent evidence, never amplify it; the
# temperature is the calibration knob for overall sharpness; estimates count for 20-100 cases (the n cap).
GRID = {
    "evidence_weight": (0.85, 1.0),
    "estimate_count": (100.0,),
    "elicited_sd_floor": (0.25, 0.5),
    "selection_weight": (0.75, 1.0),
    "selection_absent_weight": (0.25, 0.5),
    "context_weight": (0.1, 0.25),
    "temperature": (0.6, 0.7, 0.85),
    "doubt": (0.0, 0.02, 0.05, 0.1),
}
RUN_KEYS = ("evidence_weight", "estimate_count", "elicited_sd_floor", "selection_weight", "selection_absent_weight",
            "context_weight", "temperature")
FITTING_SETS = {"panels": "all", "reports": "reports", "reports-b": "reports-b", "reports-c": "reports-c"}
DEFAULT = ModelConstants()


def _metrics(ev: Evaluation) -> dict:
    return {"n": ev.n, "top1": round(ev.top1, 4), "top3": round(ev.top3, 4), "brier": round(ev.brier, 4),
            "log_loss": round(ev.log_loss, 4), "ece": round(ev.ece, 4)}


def with_doubt(outcome: CaseOutcome, doubt: float, n_entities: int) -> CaseOutcome:
    """The outcome the interpreter gives with ``doubt`` λ, from its outcome at λ = 0 (see the module docstring)."""
    if doubt == 0.0 or outcome.error is not None:
        return outcome
    a, b = 1.0 - doubt, doubt / n_entities
    sum_p2 = outcome.brier - 1.0 + 2.0 * outcome.expected_probability
    p_expected = a * outcome.expected_probability + b
    brier = a * a * sum_p2 + 2.0 * a * b + n_entities * b * b - 2.0 * p_expected + 1.0
    return dataclasses.replace(outcome, top_probability=a * outcome.top_probability + b,
                               expected_probability=p_expected, brier=brier)


def _constants(c: ModelConstants) -> dict:
    return {k: getattr(c, k) for k in (*RUN_KEYS, "doubt")}


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
    ax.set_title(f"IHC differential: {before.n} fitting cases (panels + case reports A-C)\n"
                 "(bins 0-.5-.8-.95-1; numbers = cases per bin)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as tmp:
        fig.savefig(tmp.name)
    os.replace(tmp.name, path)
    plt.close(fig)


def _fitting_cases():
    kb = load_knowledge_base()
    parts = {name: load_cases(case_set=case_set, kb=kb) for name, case_set in FITTING_SETS.items()}
    cases = [c for part in parts.values() for c in part]
    part_of = [name for name, part in parts.items() for _ in part]
    lenient = [name != "panels" for name in part_of]  # case reports run with ignore_unknown, like a new user
    return kb, parts, cases, part_of, lenient


def _run_point(point: tuple) -> list[CaseOutcome]:
    """The outcomes of every fitting case at one grid point (doubt 0), in a worker process."""
    kb, _, cases, _, lenient = _fitting_cases()
    constants = ModelConstants(**dict(zip(RUN_KEYS, point, strict=True)), source="grid")
    return [case_outcome(c, kb=kb, constants=constants, ignore_unknown=lax)
            for c, lax in zip(cases, lenient, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write data/calibration.json (refit on all cases)")
    parser.add_argument("--plot", type=Path, default=None, help="reliability diagram PNG")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes for the grid")
    args = parser.parse_args()

    kb, parts, cases, part_of, lenient = _fitting_cases()
    n_entities = len(kb.entities)

    def run(constants: ModelConstants) -> list[CaseOutcome]:
        return [case_outcome(c, kb=kb, constants=constants, ignore_unknown=lax)
                for c, lax in zip(cases, lenient, strict=True)]

    points = list(itertools.product(*(GRID[k] for k in RUN_KEYS)))
    with ThreadPoolExecutor(max_workers=1) if args.jobs == 1 else ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_run_point, points, chunksize=4))
    base = dict(zip(points, results, strict=True))
    combos = [ModelConstants(**dict(zip(RUN_KEYS, point, strict=True)), doubt=d, source="grid")
              for point, d in itertools.product(base, GRID["doubt"])]
    outcomes = {c: [with_doubt(o, c.doubt, n_entities) for o in base[tuple(getattr(c, k) for k in RUN_KEYS)]]
                for c in combos}
    before = summarise(run(DEFAULT))

    rng = np.random.default_rng(args.seed)
    fold = np.empty(len(cases), dtype=int)
    for name in parts:
        idx = np.flatnonzero(np.array(part_of) == name)
        fold[idx] = rng.permutation(len(idx)) % args.folds
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

    def by_part(outs: list[CaseOutcome]) -> dict:
        return {name: _metrics(summarise([o for o, p in zip(outs, part_of, strict=True) if p == name]))
                for name in parts}

    report = {
        "fitting_set": {name: len(part) for name, part in parts.items()},
        "before_defaults": {"constants": _constants(DEFAULT),
                            **_metrics(before), "parts": by_part(list(before.outcomes))},
        "after_cross_validated": {**_metrics(after), "parts": by_part(held_out)},
        "per_fold_choice": [_constants(c) for c in chosen],
        "final_fit_on_all": {**_constants(final), **_metrics(refit)},
    }
    print(json.dumps(report, indent=2))
    if args.plot:
        reliability_plot(args.plot, before, after)
        print(f"wrote {args.plot}")
    if args.write:
        payload = {
            **_constants(final),
            "method": f"grid search minimising log loss, {args.folds}-fold CV (seed {args.seed}) over the project's "
                      f"own cases: {len(parts['panels'])} test panels (cases.csv + cases_holdout.csv) and "
                      f"{len(cases) - len(parts['panels'])} published case reports (cases_reports.csv, "
                      "cases_reports_b.csv, cases_reports_c.csv); refit on all (scripts/calibrate_ihc.py)",
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
