"""The adapted model's card (the model contract of ``docs/guide/models.md`` plus what it was adapted from) and the
validation table shown when a model is written or refused."""

from __future__ import annotations

from typing import Any

from spindledx.adapt.validate import Validation


def adapted_card(start: dict[str, Any], *, name: str, version: str, onnx_file: str, sha256: str, threshold: float,
                 threshold_source: str, cut: dict[str, Any], adaptation: dict[str, Any]) -> dict[str, Any]:
    """The card of an adapted model: the starting card's input, views, gate and candidate settings, with a new
    name, file, checksum and threshold, ``adapted_from`` (name, version, sha256 of the starting model) and
    ``adaptation`` (decisions, folders, reviewers, date, validation). The starting model's own measurements
    (``cv``, ``training``, ``speed``, ...) are not copied: they are not this model's."""
    keep = ("input", "tta", "tta_gate", "tta_scheme", "candidates", "dedupe_radius_um", "stain_scaling")
    card: dict[str, Any] = {"name": name, "version": version, "onnx_file": onnx_file, "sha256": sha256}
    card.update({k: start[k] for k in keep if k in start})
    card["threshold"] = round(float(threshold), 4)
    card["threshold_source"] = threshold_source
    card["adapted_from"] = {"name": start.get("name"), "version": start.get("version"), "sha256": start.get("sha256"),
                            "adapted_from": start.get("adapted_from")}
    card["adaptation"] = adaptation
    card["adapt"] = cut
    return card


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(pair: list[float | None]) -> str:
    return "-" if pair[0] is None else f"{pair[0]:.2f}-{pair[1]:.2f}"


def validation_table(v: Validation) -> str:
    """Before/after figures on the held-out folds as a fixed-width text table."""
    b, a = v.before, v.after
    rows = [
        ("decided candidates (held out in turn)", str(v.n_decisions), ""),
        ("confirmed figures", str(v.n_confirmed), ""),
        ("threshold", "the model's", "; ".join(v.threshold_choice) or "-"),
        ("false detections", _fmt(b["fp"]), _fmt(a["fp"])),
        ("missed figures", _fmt(b["fn"]), _fmt(a["fn"])),
        ("false detections per mm²", _fmt(b["false_per_mm2"]), _fmt(a["false_per_mm2"])),
        ("precision", _fmt(b["precision"]), _fmt(a["precision"])),
        ("recall [95% CI]", f"{_fmt(b['recall'])} [{_ci(b['recall_ci95'])}]",
         f"{_fmt(a['recall'])} [{_ci(a['recall_ci95'])}]"),
        ("F1", _fmt(b["f1"]), _fmt(a["f1"])),
        ("anchor figures recall [95% CI]", f"{_fmt(b.get('anchor_recall'))} [{_ci(b['anchor_recall_ci95'])}]",
         f"{_fmt(a.get('anchor_recall'))} [{_ci(a['anchor_recall_ci95'])}]"),
        ("anchor non-figures called", _fmt(b.get("anchor_false_rate")), _fmt(a.get("anchor_false_rate"))),
        ("recall, lab + anchor figures [95% CI]",
         f"{_fmt(b['combined_recall'])} [{_ci(b['combined_recall_ci95'])}]",
         f"{_fmt(a['combined_recall'])} [{_ci(a['combined_recall_ci95'])}]"),
    ]
    width = max(len(r[0]) for r in rows)
    col = max(len(r[1]) for r in rows + [("", "before", "")])
    lines = [f"held-out images, {v.folds}-fold cross-validation by image ({v.n_images} images)",
             f"{'':{width}}  {'before':>{col}}  after"]
    lines += [f"{r[0]:{width}}  {r[1]:>{col}}  {r[2]}" for r in rows]
    lines.append("share of the fitted correction: " + "; ".join(
        f"{t['strength']:g}: {t['false']} false, {t['missed']} missed, recall {_fmt(t['combined_recall'])}"
        f"{' (better)' if t['better'] else ''}" for t in v.tried) + (f"; kept {v.strength:g}" if v.better else ""))
    lines += [f"note: {n}" for n in v.notes]
    return "\n".join(lines)
