"""Set-level statistics of a batch: detection F1, count agreement, per-case density and IHC agreement.

* Detection: TP/FP/FN summed over tiles (MIDOG rule, :mod:`spindledx.mitosis.evaluate`), then precision, recall
  and F1 with :func:`spindledx.mitosis.evaluate.f1_scores` — the same micro-average as ``spindledx evaluate``.
* Counts: mean absolute error; Bland–Altman bias and 95 % limits of agreement, bias +/- 1.96 SD of the
  differences (Bland & Altman, Lancet 1986;1:307); Spearman rank correlation (``scipy.stats.spearmanr``).
* Cases: mitoses per mm² over the tiles' total area, the per-10-HPF equivalent and FNCLCC mitotic score from
  :mod:`spindledx.counting` (Cree et al. 2021: state the area), and the IHC differential of the case's panel
  compared with its recorded diagnosis (top-1 and top-3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from spindledx import counting
from spindledx.errors import BadInputError

N_OUTLIERS = 10


@dataclass(frozen=True)
class CountAgreement:
    """Agreement of predicted with reference counts over ``n`` tiles (difference = predicted - reference)."""

    n: int
    mae: float
    bias: float
    sd: float | None
    loa_low: float | None
    loa_high: float | None
    spearman_rho: float | None
    spearman_p: float | None


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def count_agreement(predicted: Sequence[float], reference: Sequence[float]) -> CountAgreement | None:
    """MAE, Bland–Altman bias and limits, Spearman rho; None for no pairs.

    SD and limits need two pairs; Spearman needs two pairs and variation on both sides (else None).
    """
    from scipy.stats import spearmanr

    pred = np.asarray(predicted, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if pred.shape != ref.shape:
        raise ValueError("predicted and reference counts differ in length")
    n = int(pred.size)
    if n == 0:
        return None
    diff = pred - ref
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1)) if n >= 2 else None
    rho = p = None
    if n >= 2 and np.ptp(pred) > 0 and np.ptp(ref) > 0:
        res = spearmanr(pred, ref)
        rho, p = float(res.statistic), float(res.pvalue)
    return CountAgreement(n=n, mae=round(float(np.abs(diff).mean()), 6), bias=round(bias, 6), sd=_finite(sd),
                          loa_low=None if sd is None else _finite(bias - 1.96 * sd),
                          loa_high=None if sd is None else _finite(bias + 1.96 * sd),
                          spearman_rho=_finite(rho), spearman_p=_finite(p))


def detection_scores(rows: Sequence[dict]) -> dict | None:
    """Summed TP/FP/FN over rows that were matched to reference points, with precision, recall and F1."""
    from spindledx.mitosis.evaluate import detection_scores as scores

    matched = [r for r in rows if not r.get("error") and r.get("tp") is not None]
    if not matched:
        return None
    tp = sum(int(r["tp"]) for r in matched)
    fp = sum(int(r["fp"]) for r in matched)
    fn = sum(int(r["fn"]) for r in matched)
    precision, recall, f1 = scores(tp, fp, fn)  # None where undefined (no detections / no reference figures)
    return {"n_tiles": len(matched), "tp": tp, "fp": fp, "fn": fn,
            "precision": None if precision is None else round(precision, 4),
            "recall": None if recall is None else round(recall, 4), "f1": None if f1 is None else round(f1, 4)}


def _differential_ids(result: object) -> list[str]:
    """Entity ids of an IHC interpretation, most probable first (dict, ``to_dict()`` or attribute forms)."""
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    diff = result.get("differential", []) if isinstance(result, dict) else getattr(result, "differential", [])
    ids = []
    for item in diff:
        ids.append(str(item["id"] if isinstance(item, dict) else item.id))
    return ids


def _top_named(result: object, n: int) -> list[dict] | None:
    """The first ``n`` entities with name and probability, when the interpretation carries them."""
    if hasattr(result, "to_json"):
        result = result.to_json()
    diff = result.get("differential") if isinstance(result, dict) else None
    if not diff or not isinstance(diff[0], dict) or "probability" not in diff[0]:
        return None
    return [{"id": d["id"], "name": d.get("name"), "probability": round(float(d["probability"]), 4)} for d in diff[:n]]


def case_summaries(rows: Sequence[dict], specs_by_key: dict, *, hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2,
                   interpret: Callable[..., object] | None = None) -> list[dict]:
    """Per case: tiles, counts, density, per-10-HPF, FNCLCC mitotic score, and the IHC agreement.

    Parameters
    ----------
    rows
        Tile rows (failed tiles are counted but contribute no area).
    specs_by_key
        TileSpec by row key (for the case's panel, diagnosis and site).
    interpret
        ``interpret_panel(text, site=None)`` (default :func:`spindledx.ihc.interpret_panel`).
    """
    from spindledx.detection import guard
    from spindledx.detection.atypical import atypical_fraction

    cases: dict[str, dict] = {}
    for r in rows:
        spec = specs_by_key.get(r["key"])
        c = cases.setdefault(r["case"], {"case": r["case"], "n_tiles": 0, "n_failed": 0, "count": 0,
                                         "expected_count": None, "area_mm2": 0.0, "atypical_count": 0,
                                         "flags": set(),
                                         "panel": getattr(spec, "panel", None),
                                         "diagnosis": getattr(spec, "diagnosis", None),
                                         "site": getattr(spec, "site", None)})
        c["n_tiles"] += 1
        if r.get("error"):
            c["n_failed"] += 1
            continue
        c["count"] += int(r["count"])
        c["area_mm2"] += float(r["area_mm2"])
        c["flags"].update(r.get("guard_flags") or [])
        if c["atypical_count"] is not None:
            c["atypical_count"] = None if r.get("atypical_count") is None else c["atypical_count"] + r["atypical_count"]
        if r.get("expected_count") is not None:
            c["expected_count"] = (c["expected_count"] or 0) + int(r["expected_count"])
    out = []
    for c in cases.values():
        if c["area_mm2"] > 0:
            value = counting.MitoticDensity.of(c["count"], c["area_mm2"], hpf_area_mm2)
            c.update(mitoses_per_mm2=round(value.per_mm2, 4), mitoses_per_10hpf=round(value.per_10hpf, 4),
                     fnclcc_mitotic_score=value.fnclcc_score,
                     area_below_10hpf=c["area_mm2"] < 10 * hpf_area_mm2)
        else:
            c.update(mitoses_per_mm2=None, mitoses_per_10hpf=None, fnclcc_mitotic_score=None,
                     area_below_10hpf=None)
        if guard.density_is_implausible(c["count"], c["area_mm2"]):
            c["flags"].add(guard.IMPLAUSIBLE_DENSITY)
        c["flags"] = sorted(c["flags"])
        c["atypical_fraction"] = (None if c["atypical_count"] is None
                                  else atypical_fraction(c["atypical_count"], c["count"]))
        c["area_mm2"] = round(c["area_mm2"], 6)
        c.update(ihc_top=None, ihc_top_named=None, top1_agrees=None, top3_agrees=None, ihc_error=None)
        if c["panel"]:
            try:
                if interpret is None:
                    from spindledx.ihc import interpret_panel as interpret
                result = interpret(c["panel"], site=c["site"])
                ids = _differential_ids(result)
                c["ihc_top"] = ids[:3]
                c["ihc_top_named"] = _top_named(result, 3)
                if c["diagnosis"]:
                    dx = c["diagnosis"].strip().lower().replace(" ", "_").replace("-", "_")
                    c["top1_agrees"] = bool(ids[:1] == [dx])
                    c["top3_agrees"] = dx in ids[:3]
            except BadInputError as exc:
                c["ihc_error"] = str(exc)
        out.append(c)
    return out


def ihc_agreement(cases: Sequence[dict]) -> dict | None:
    """Fraction of cases with a panel and a recorded diagnosis whose top-1 / top-3 contains the diagnosis."""
    judged = [c for c in cases if c.get("top1_agrees") is not None]
    if not judged:
        return None
    n = len(judged)
    top1 = sum(c["top1_agrees"] for c in judged)
    top3 = sum(c["top3_agrees"] for c in judged)
    return {"n_cases": n, "top1_agree": top1, "top3_agree": top3, "top1_rate": round(top1 / n, 4),
            "top3_rate": round(top3 / n, 4)}


def outliers(rows: Sequence[dict], *, n: int = N_OUTLIERS) -> list[dict]:
    """Tiles worth a second look: largest |count error| first, then flagged and failed tiles."""
    picked: dict[str, dict] = {}
    with_err = sorted((r for r in rows if not r.get("error") and r.get("count_error")),
                      key=lambda r: (-abs(r["count_error"]), r["key"]))
    for r in with_err[:n]:
        picked[r["key"]] = {"key": r["key"], "reason": f"count error {r['count_error']:+d}"}
    for r in rows:
        if r.get("error"):
            picked.setdefault(r["key"], {"key": r["key"], "reason": f"failed: {r['error']}"})
        elif r.get("flags"):
            entry = picked.setdefault(r["key"], {"key": r["key"], "reason": ""})
            entry["reason"] = "; ".join(x for x in (entry["reason"], "QA: " + ", ".join(r["flags"])) if x)
    out = []
    for key, entry in picked.items():
        r = next(x for x in rows if x["key"] == key)
        out.append({**entry, "case": r.get("case"), "count": r.get("count"),
                    "expected_count": r.get("expected_count"), "count_error": r.get("count_error"),
                    "flags": r.get("flags") or []})
    return out


def summarize(rows: Sequence[dict], specs_by_key: dict, *, match_radius_um: float, hpf_area_mm2: float,
              interrupted: bool = False, n_planned: int | None = None,
              interpret: Callable[..., object] | None = None) -> dict:
    """The ``summary.json`` object of a batch."""
    from spindledx.qa.quality import QUALITY_CHECKS

    ok = [r for r in rows if not r.get("error")]
    failed = [r for r in rows if r.get("error")]
    pairs = [(r["count"], r["expected_count"]) for r in ok if r.get("expected_count") is not None]
    agreement = count_agreement([p for p, _ in pairs], [e for _, e in pairs]) if pairs else None
    flag_counts = {c.flag: sum(1 for r in ok if c.flag in (r.get("flags") or [])) for c in QUALITY_CHECKS}
    cases = case_summaries(rows, specs_by_key, hpf_area_mm2=hpf_area_mm2, interpret=interpret)
    return {
        "n_tiles": n_planned if n_planned is not None else len(rows),
        "n_done": len(ok),
        "n_failed": len(failed),
        "n_bad_input": sum(1 for r in failed if r.get("error_kind") == "bad_input"),
        "interrupted": interrupted,
        "match_radius_um": match_radius_um,
        "hpf_area_mm2": round(hpf_area_mm2, 6),
        "detection": detection_scores(ok),
        "counts": None if agreement is None else asdict(agreement),
        "quality": {"flag_counts": flag_counts, "n_flagged": sum(1 for r in ok if r.get("flags"))},
        "guard": {flag: sum(1 for r in ok if flag in (r.get("guard_flags") or []))
                  for flag in ("implausible_density", "out_of_distribution", "interphase_like")},
        "cases": cases,
        "ihc_agreement": ihc_agreement(cases),
        "outliers": outliers(rows),
        "failed": [{"key": r["key"], "error": r["error"], "error_kind": r.get("error_kind")} for r in failed],
    }
