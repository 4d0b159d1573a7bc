"""Batch outputs: ``tiles.csv`` / ``tiles.parquet``, ``summary.json`` and a self-contained ``report.html``.

The HTML page embeds everything (plots drawn with matplotlib's Agg backend and tile thumbnails as base64 PNG
``data:`` URIs), so it can be mailed or archived as one file. Section ids: ``summary``, ``detection``,
``counts``, ``quality``, ``cases``, ``ihc``, ``outliers``, ``thumbnails``, ``failures``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

SECTION_IDS = ("summary", "detection", "counts", "quality", "cases", "ihc", "outliers", "thumbnails", "failures")
N_THUMBNAILS = 6
THUMBNAIL_PX = 360
REFERENCE_COLOR_RGB = (0, 200, 255)


def tiles_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """One row per tile with lists (mitoses, flags, warnings) flattened to text for CSV/Parquet."""
    flat = []
    for r in rows:
        f = dict(r)
        f["flags"] = ";".join(r.get("flags") or [])
        f["guard_flags"] = ";".join(r.get("guard_flags") or [])
        f["flag_messages"] = " | ".join(r.get("flag_messages") or [])
        f["warnings"] = " | ".join(r.get("warnings") or [])
        f["mitoses"] = json.dumps(r.get("mitoses") or [])
        flat.append(f)
    frame = pd.DataFrame(flat)
    first = [c for c in ("key", "case", "count", "atypical_count", "atypical_fraction", "expected_count",
                         "count_error", "tp", "fp", "fn", "flags", "error") if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def write_outputs(rows: Sequence[dict], summary: dict, out_dir: str | Path, *, specs_by_key: dict | None = None,
                  title: str = "spindledx batch report") -> dict[str, Path]:
    """Write the tables, the summary and the report; returns the paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = tiles_frame(rows)
    paths = {"csv": out_dir / "tiles.csv", "parquet": out_dir / "tiles.parquet",
             "summary": out_dir / "summary.json", "report": out_dir / "report.html"}
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], index=False)
    paths["summary"].write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["report"].write_text(render_html(rows, summary, specs_by_key=specs_by_key or {}, title=title),
                               encoding="utf-8")
    return paths


# ------------------------------------------------------------------------------------------------- images


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plots(rows: Sequence[dict], summary: dict) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if not r.get("error")]
    pairs = [(r["expected_count"], r["count"]) for r in ok if r.get("expected_count") is not None]
    plots: dict[str, bytes] = {}
    if pairs:
        ref = np.array([p[0] for p in pairs], dtype=float)
        pred = np.array([p[1] for p in pairs], dtype=float)
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        top = max(1.0, ref.max(), pred.max()) + 1
        ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="identity")
        xs, ys, sizes = _stacked(ref, pred)
        ax.scatter(xs, ys, s=sizes, alpha=0.7, label="tiles (area = number)")
        ax.set(xlabel="reference count", ylabel="spindledx count", title="Count vs reference", xlim=(-0.5, top),
               ylim=(-0.5, top))
        ax.legend(loc="upper left", fontsize=8)
        plots["count_vs_expected"] = _figure_png(fig)

        counts = summary.get("counts") or {}
        fig, ax = plt.subplots(figsize=(4.6, 4.0))
        xs, ys, sizes = _stacked((pred + ref) / 2, pred - ref)
        ax.scatter(xs, ys, s=sizes, alpha=0.7)
        for key, style in (("bias", "-"), ("loa_low", "--"), ("loa_high", "--")):
            if counts.get(key) is not None:
                ax.axhline(counts[key], color="crimson", ls=style, lw=1)
        ax.set(xlabel="mean of the two counts", ylabel="spindledx - reference",
               title="Bland–Altman (bias, 95% limits)")
        plots["bland_altman"] = _figure_png(fig)

    flag_counts = (summary.get("quality") or {}).get("flag_counts") or {}
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    names = list(flag_counts)
    values = [flag_counts[n] for n in names]
    ax.barh(names, values, color="#b0569c")
    ax.set(xlabel="tiles flagged", title=f"QA flags ({len(ok)} tiles scored)", xlim=(0, max([1, *values]) * 1.1))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.invert_yaxis()
    plots["qa_flags"] = _figure_png(fig)

    cases = [c for c in summary.get("cases", []) if c.get("mitoses_per_mm2") is not None]
    if cases:
        cases = cases[:40]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(cases) + 2), 3.4))
        pos = np.arange(len(cases))
        ax.bar(pos - 0.2, [c["mitoses_per_mm2"] for c in cases], width=0.4, color="#3d6fb6", label="spindledx")
        ref = [c["expected_count"] / c["area_mm2"] if c.get("expected_count") is not None and c["area_mm2"] > 0
               else 0.0 for c in cases]
        if any(c.get("expected_count") is not None for c in cases):
            ax.bar(pos + 0.2, ref, width=0.4, color="#bbbbbb", label="reference")
            ax.legend(fontsize=8)
        ax.set_xticks(range(len(cases)), [str(c["case"]) for c in cases], rotation=90, fontsize=7)
        ax.set(ylabel="mitoses / mm²", title="Mitotic density per case")
        plots["density_per_case"] = _figure_png(fig)
    return plots


def _stacked(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (x, y) points with marker areas proportional to how many tiles share them."""
    pts, counts = np.unique(np.column_stack([x, y]), axis=0, return_counts=True)
    return pts[:, 0], pts[:, 1], 18.0 * counts


def _thumbnail(row: dict) -> bytes | None:
    """Overlay of a tile (detections by :func:`spindledx.mitosis.outputs.draw_overlay`, reference points as
    cyan crosses), downscaled to :data:`THUMBNAIL_PX`."""
    import cv2

    from spindledx.detection.types import Detection
    from spindledx.imaging.reader import read_image
    from spindledx.mitosis.outputs import draw_overlay
    from spindledx.mitosis.score import TileScore

    try:
        tile = read_image(row["image"], mpp=row.get("mpp"))
    except Exception:  # a thumbnail is optional; the row already carries any read error
        return None
    dets = tuple(Detection(m["x"], m["y"], m["score"]) for m in row.get("mitoses") or [])
    result = TileScore(image=row["image"], width=tile.width, height=tile.height, mpp=tile.mpp,
                       mpp_source=tile.mpp_source, area_mm2=row["area_mm2"], mitoses=dets, count=len(dets),
                       mitoses_per_mm2=row["mitoses_per_mm2"], mitoses_per_10hpf=row["mitoses_per_10hpf"],
                       hpf_area_mm2=row["hpf_area_mm2"], fnclcc_mitotic_score=row["fnclcc_mitotic_score"])
    canvas = draw_overlay(tile.rgb, result)
    size = max(6, round(10 / tile.mpp))
    for x, y in row.get("_reference_points") or []:
        cv2.drawMarker(canvas, (round(x), round(y)), REFERENCE_COLOR_RGB, cv2.MARKER_CROSS, size,
                       max(2, size // 8))
    scale = THUMBNAIL_PX / max(canvas.shape[:2])
    if scale < 1:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return png.tobytes() if ok else None


# --------------------------------------------------------------------------------------------------- html


def _esc(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _table(records: Sequence[dict], columns: Sequence[str]) -> str:
    if not records:
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in records)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> object:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _img(uri_png: bytes | None, alt: str) -> str:
    if uri_png is None:
        return f"<p class='muted'>{html.escape(alt)}: not enough data</p>"
    return f"<img src='{_png_data_uri(uri_png)}' alt='{html.escape(alt)}'>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f3f3f3}.muted{color:#777}.kv td:first-child{font-weight:600}.grid{display:flex;flex-wrap:wrap;
gap:12px}figure{margin:0}figcaption{font-size:.8em;max-width:360px}.warn{color:#a40}
"""


# after load, record how many images failed to decode (read by the headless-browser test via --dump-dom)
_IMAGE_CHECK_JS = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (im) { return !im.complete || im.naturalWidth === 0; }).length;
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(broken));
});
</script>"""


def render_html(rows: Sequence[dict], summary: dict, *, specs_by_key: dict | None = None,
                title: str = "spindledx batch report") -> str:
    """The self-contained report page."""
    specs_by_key = specs_by_key or {}
    plots = _plots(rows, summary)
    det = summary.get("detection")
    counts = summary.get("counts")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p class='muted'>Decision aid for trained pathologists; not a diagnosis. Counts are per tile area; "
             f"per 10 HPF means per 10 fields of {summary.get('hpf_area_mm2', 0):.4f} mm².</p>"]
    status = "interrupted — partial results" if summary.get("interrupted") else "complete"
    kv = [("tiles", summary.get("n_tiles")), ("scored", summary.get("n_done")),
          ("failed", summary.get("n_failed")), ("QA-flagged", (summary.get("quality") or {}).get("n_flagged")),
          ("status", status)]
    parts.append("<section id='summary'><h2>Summary</h2><table class='kv'>"
                 + "".join(f"<tr><td>{k}</td><td>{_esc(v)}</td></tr>" for k, v in kv) + "</table></section>")
    parts.append("<section id='detection'><h2>Detection (MIDOG rule)</h2>")
    if det:
        parts.append(f"<p>Hit = one-to-one match within {summary.get('match_radius_um')} µm.</p>"
                     + _table([det], ["n_tiles", "tp", "fp", "fn", "precision", "recall", "f1"]))
    else:
        parts.append("<p class='muted'>no tiles with reference points</p>")
    parts.append("</section><section id='counts'><h2>Count agreement</h2>")
    if counts:
        parts.append(_table([counts], ["n", "mae", "bias", "sd", "loa_low", "loa_high", "spearman_rho",
                                       "spearman_p"]))
        parts.append("<div class='grid'>" + _img(plots.get("count_vs_expected"), "count vs expected")
                     + _img(plots.get("bland_altman"), "Bland–Altman") + "</div>")
    else:
        parts.append("<p class='muted'>no tiles with an expected count</p>")
    parts.append("</section><section id='quality'><h2>Image quality</h2>")
    parts.append(_img(plots.get("qa_flags"), "QA flag counts"))
    from spindledx.qa.quality import QUALITY_CHECKS

    parts.append(_table([{"flag": c.flag, "measure": c.measure, "rule": f"{c.comparison} {c.threshold:g}",
                          "unit": c.unit} for c in QUALITY_CHECKS], ["flag", "measure", "rule", "unit"]))
    parts.append(_guard_html(rows, summary))
    parts.append("</section><section id='cases'><h2>Cases</h2>")
    parts.append("<p>Density = mitoses over the case's scored tile area; FNCLCC mitotic score from its per-10-HPF "
                 "equivalent. Where <code>area_below_10hpf</code> is yes, less than 10 HPF was counted and the "
                 "score is indicative only (FNCLCC counts 10 HPF in the most active area).</p>")
    parts.append(_img(plots.get("density_per_case"), "density per case"))
    parts.append(_table(summary.get("cases", []), ["case", "n_tiles", "n_failed", "count", "expected_count",
                                                   "area_mm2", "mitoses_per_mm2", "mitoses_per_10hpf",
                                                   "fnclcc_mitotic_score", "area_below_10hpf", "atypical_count",
                                                   "atypical_fraction", "flags"]))
    parts.append("</section><section id='ihc'><h2>IHC interpretation</h2>")
    ihc_cases = [c for c in summary.get("cases", []) if c.get("panel")]
    agreement = summary.get("ihc_agreement")
    if agreement:
        parts.append(f"<p>Recorded diagnosis is the top entity in {agreement['top1_agree']}/{agreement['n_cases']}"
                     f" cases and in the top three in {agreement['top3_agree']}/{agreement['n_cases']}.</p>")
    parts.append(_table(ihc_cases, ["case", "panel", "site", "diagnosis", "ihc_top", "top1_agrees",
                                    "top3_agrees", "ihc_error"]))
    parts.append("</section><section id='outliers'><h2>Outliers worth a second look</h2>")
    parts.append(_table(summary.get("outliers", []), ["key", "case", "count", "expected_count", "count_error",
                                                      "reason"]))
    parts.append("</section><section id='thumbnails'><h2>Largest disagreements</h2>"
                 "<p class='muted'>yellow circles: detections (score); cyan crosses: reference figures</p>"
                 "<div class='grid'>")
    for row in _worst(rows):
        spec = specs_by_key.get(row["key"])
        row = {**row, "_reference_points": getattr(spec, "points", None)}
        png = _thumbnail(row)
        if png is None:
            continue
        caption = (f"{row['key']}: count {row.get('count')}, reference {row.get('expected_count')}"
                   + (f", TP {row['tp']} FP {row['fp']} FN {row['fn']}" if row.get("tp") is not None else "")
                   + (f"; QA: {', '.join(row['flags'])}" if row.get("flags") else ""))
        parts.append(f"<figure>{_img(png, row['key'])}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div></section><section id='failures'><h2>Failed tiles</h2>")
    parts.append(_table(summary.get("failed", []), ["key", "error_kind", "error"]))
    parts.append("</section>" + _IMAGE_CHECK_JS + "</body></html>")
    return "\n".join(parts)


def _guard_html(rows: Sequence[dict], summary: dict) -> str:
    """Count-plausibility and out-of-distribution flags, in words (a flagged count must not feed a grade unseen)."""
    from spindledx.detection import guard

    flagged = [r for r in rows if not r.get("error") and r.get("guard_flags")]
    head = (f"<h3>Count plausibility and stain/texture guard</h3><p>Density bound {guard.DENSITY_BOUND_PER_MM2:.0f} "
            f"mitoses/mm² ({html.escape(guard.DENSITY_BOUND_SOURCE)}), Poisson test at "
            f"{guard.DENSITY_FALSE_ALARM:g}; out-of-distribution when the stain/texture distance to the detector's "
            "training images exceeds its 99th percentile. ")
    if not flagged:
        return head + "No tile and no case is flagged.</p>"
    items = "".join(f"<li><b>{html.escape(str(r['key']))}</b>: {html.escape(m)}</li>"
                    for r in flagged for m in (r.get("flag_messages") or []))
    cases = [c for c in summary.get("cases", []) if c.get("flags")]
    case_items = "".join(f"<li>case <b>{html.escape(str(c['case']))}</b>: {html.escape(', '.join(c['flags']))}"
                         " — its FNCLCC score is shown but must not be used without checking the overlays</li>"
                         for c in cases)
    return head + f"{len(flagged)} tile(s) flagged:</p><ul class='guard'>{items}{case_items}</ul>"


def _worst(rows: Sequence[dict], n: int = N_THUMBNAILS) -> list[dict]:
    ok = [r for r in rows if not r.get("error")]

    def badness(r: dict) -> tuple:
        miss = (r.get("fp") or 0) + (r.get("fn") or 0)
        return (abs(r.get("count_error") or 0), miss, len(r.get("flags") or []))

    ranked = sorted((r for r in ok if any(badness(r))), key=badness, reverse=True)
    return ranked[:n]
