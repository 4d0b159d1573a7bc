"""Batch outputs: ``tiles.csv`` / ``tiles.parquet``, ``summary.json`` and a self-contained ``report.html``.

The HTML page embeds everything (plots drawn with matplotlib's Agg backend and tile thumbnails as base64 PNG
``data:`` URIs), so it can be mailed or archived as one file. Section ids: ``summary``, ``detection``,
``counts``, ``quality``, ``cases``, ``ihc``, ``outliers``, ``thumbnails``, ``failures``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spindledx.files import atomic_write_text, atomic_write_with, csv_safe, output_stems

#: Sections always present; "detection", "counts", "cases", "ihc", "outliers" and "failures" appear when they have data.
SECTION_IDS = ("summary", "quality", "tiles", "provenance")
OPTIONAL_SECTION_IDS = ("detection", "counts", "cases", "ihc", "outliers", "failures")
THUMBNAIL_PX = 320
TABLE_THUMBNAIL_PX = 220
THUMBNAIL_JPEG_QUALITY = 78  # thumbnails only: the full-resolution overlays stay PNG files beside the report
MAX_TILE_THUMBNAILS = 300
#: The batch writes review.html (and candidates files) when it found at most this many figures.
MAX_REVIEW_DETECTIONS = 600
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
                  title: str = "spindledx batch report", provenance: dict | None = None) -> dict[str, Path]:
    """Write the tables, the review page and its candidates files (when the batch found at most
    :data:`MAX_REVIEW_DETECTIONS` figures) and the report; returns the paths by name (candidates files as
    ``candidates:<name>``). ``summary.json`` is written by the batch runner after these
    (:func:`spindledx.qa.runner.run_and_write`).

    ``provenance``: spindledx / model / knowledge-base versions, threshold and date
    (:func:`spindledx.provenance`), shown in the report and the review page; the tables name the model in
    ``model_name``, ``model_version`` and ``model_sha256`` columns.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = tiles_frame(rows)
    if provenance is not None and len(frame):  # every row names the model that scored it, as the summary does
        for key in ("model_name", "model_version", "model_sha256"):
            frame[key] = provenance.get(key)
    paths = {"csv": out_dir / "tiles.csv", "parquet": out_dir / "tiles.parquet", "report": out_dir / "report.html"}
    # every file is written to a temporary name and renamed: a full disk never leaves a truncated table or page
    atomic_write_text(paths["csv"], spreadsheet_safe(frame).to_csv(index=False))
    if parquet_available():
        atomic_write_with(paths["parquet"], lambda tmp: frame.to_parquet(tmp, index=False))
    else:  # the `parquet` extra is not installed: CSV only (the batch command says so)
        del paths["parquet"]
    if provenance is not None:
        summary = {**summary, "provenance": provenance}
    review_href = None
    n_found = sum(len(r.get("mitoses") or []) for r in rows if not r.get("error"))
    if n_found <= MAX_REVIEW_DETECTIONS and rows:
        review_href, candidates = _write_review(rows, out_dir, provenance or {})
        paths.update({f"candidates:{c.name}": c for c in candidates})
        if review_href:
            paths["review"] = out_dir / review_href
    atomic_write_text(paths["report"], render_html(rows, summary, specs_by_key=specs_by_key or {}, title=title,
                                                   provenance=provenance, review_href=review_href))
    return paths


def _write_review(rows: Sequence[dict], out_dir: Path, provenance: dict) -> tuple[str | None, list[Path]]:
    """Candidates files from the rows' detections and ``review.html``: the page's name (None when no tile could
    be cropped, e.g. its image has gone) and the candidates files written."""
    from spindledx.errors import BadInputError
    from spindledx.review.candidates import candidates_from_detections, write_candidates
    from spindledx.review.page import write_review_page

    docs = []
    stems = _tile_stems(rows)
    for row in rows:
        if row.get("error") or not row.get("width"):
            continue
        docs.append(candidates_from_detections(
            image=row["image"], stem=_tile_stem(row, stems), width=row["width"], height=row["height"], mpp=row["mpp"],
            detections=row.get("mitoses") or [], threshold=provenance.get("threshold"), model=provenance))
    if not docs:
        return None, []
    written = [write_candidates(doc, out_dir) for doc in docs]
    try:
        return write_review_page(out_dir, docs).name, written
    except BadInputError:
        return None, written


def parquet_available() -> bool:
    """True when pyarrow (the ``parquet`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``frame`` whose text cells cannot run as spreadsheet formulas (:func:`spindledx.files.csv_safe`)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(csv_safe)
    return out


# ------------------------------------------------------------------------------------------------- images


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
    names = [n for n in flag_counts if flag_counts[n]]
    if names:  # a chart only when some tile was flagged
        values = [flag_counts[n] for n in names]
        fig, ax = plt.subplots(figsize=(5.0, 0.5 * len(names) + 1.4))
        ax.barh([n.replace("_", " ") for n in names], values, color="#b0569c")
        ax.set(xlabel="tiles flagged", title=f"Image-quality flags ({len(ok)} tiles scored)",
               xlim=(0, max(values) * 1.15))
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
    cyan crosses), downscaled to :data:`THUMBNAIL_PX`, as JPEG bytes (a PNG of an H&E field barely compresses)."""
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
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_JPEG_QUALITY])
    return jpeg.tobytes() if ok else None


# --------------------------------------------------------------------------------------------------- html

_STAT_WORDS = {"n": "tiles compared", "mae": "mean absolute error (figures per tile)",
               "bias": "mean difference, spindledx − reference", "sd": "standard deviation of the differences",
               "loa_low": "95 % limits of agreement, lower", "loa_high": "95 % limits of agreement, upper",
               "spearman_rho": "Spearman rank correlation", "spearman_p": "p value of the rank correlation"}


def _entity_words(entity_id: object) -> str:
    return str(entity_id).replace("_", " ") if entity_id else "–"


def _ihc_cell(case: dict) -> str:
    named = case.get("ihc_top_named")
    if named:
        return "; ".join(f"{n.get('name') or _entity_words(n['id'])} {100 * float(n['probability']):.0f} %"
                         for n in named)
    return ", ".join(_entity_words(e) for e in case.get("ihc_top") or []) or "–"


def _tile_stems(rows: Sequence[dict]) -> dict[str, str]:
    """One distinct file-name stem per tile key (``spindledx.files.output_stems``), so that the review files of
    ``a.png`` and ``a.jpg`` (or ``sub/b.png`` and ``sub__b.png``) never overwrite each other; the report's links
    and the review page's anchors use the same mapping."""
    keys = [str(row.get("key") or row.get("image")) for row in rows]
    return dict(zip(keys, output_stems([Path(k) for k in keys]), strict=True))


def _tile_stem(row: dict, stems: dict[str, str]) -> str:
    return stems[str(row.get("key") or row.get("image"))]


def render_html(rows: Sequence[dict], summary: dict, *, specs_by_key: dict | None = None,
                title: str = "spindledx batch report", provenance: dict | None = None,
                review_href: str | None = None, max_thumbnails: int = MAX_TILE_THUMBNAILS) -> str:
    """The self-contained report page (template ``report/report.html.j2`` of :mod:`spindledx.pages`; one script,
    the table sorter).

    Sections appear only when they have data, except the summary, the per-tile table and the provenance.
    ``review_href``: the review page the tile thumbnails link to (``review.html`` when it was written).
    """
    from spindledx.pages import render
    from spindledx.qa.quality import QUALITY_CHECKS

    specs_by_key = specs_by_key or {}
    det = summary.get("detection")
    counts = summary.get("counts")
    quality = summary.get("quality") or {}
    prov = provenance or {}
    status = ("interrupted: partial results" if summary.get("interrupted") else
              "failed: no tile could be scored" if summary.get("n_tiles") and not summary.get("n_done") else
              "complete")
    model = (f"{prov.get('model_name') or 'detector'} {prov.get('model_version') or ''}".strip()
             if prov.get("model_version") else prov.get("model_name"))
    summary_pairs = [("tiles in the manifest", summary.get("n_tiles")), ("tiles scored", summary.get("n_done")),
                     ("tiles that failed", summary.get("n_failed")),
                     ("tiles flagged by image-quality checks", quality.get("n_flagged")), ("status", status),
                     ("detector model", model), ("detection threshold", prov.get("threshold")),
                     ("date", prov.get("date"))]
    detection = None
    if det:
        detection = {"match_radius_um": summary.get("match_radius_um"),
                     "pairs": [("tiles with reference figures", det.get("n_tiles")), ("true positives", det.get("tp")),
                               ("false positives", det.get("fp")),
                               ("false negatives (missed figures)", det.get("fn")),
                               ("precision", det.get("precision")), ("recall (sensitivity)", det.get("recall")),
                               ("F1 score", det.get("f1"))]}
    flag_counts = quality.get("flag_counts") or {}
    checks = [{"flag": c.flag.replace("_", " "), "measure": c.measure.replace("_", " "),
               "rule": f"{c.comparison} {c.threshold:g} {c.unit}", "tiles": flag_counts.get(c.flag, 0)}
              for c in QUALITY_CHECKS]
    cases = summary.get("cases") or []
    case_rows = [{**c, "fnclcc_mitotic_score": (f"{c['fnclcc_mitotic_score']} (extrapolated)"
                                                 if c.get("area_below_10hpf") and
                                                 c.get("fnclcc_mitotic_score") is not None
                                                 else c.get("fnclcc_mitotic_score")),
                  "flags": ", ".join(c.get("flags") or []) or None,
                  "flagged": "yes: do not grade unseen" if c.get("flags") else "no",
                  "atypical": (None if c.get("atypical_count") is None else
                               f"{c['atypical_count']}" + ("" if c.get("atypical_fraction") is None else
                                                           f" ({100 * c['atypical_fraction']:.0f}%)")),
                  "extrapolated": "yes: extrapolated" if c.get("area_below_10hpf") else
                  ("no" if c.get("area_below_10hpf") is not None else None)} for c in cases]
    ihc_cases = [c for c in cases if c.get("panel")]
    ihc = None
    if ihc_cases:
        ihc = {"agreement": summary.get("ihc_agreement"),
               "rows": [{"case": c["case"], "panel": c["panel"],
                         "site": _entity_words(c.get("site")) if c.get("site") else None,
                         "dx": _entity_words(c.get("diagnosis")) if c.get("diagnosis") else None,
                         "ihc": _ihc_cell(c), "top1": c.get("top1_agrees"), "top3": c.get("top3_agrees"),
                         "error": c.get("ihc_error")} for c in ihc_cases]}
    words = {"bad_input": "unreadable or bad input", "failure": "unexpected failure"}
    failures = [{**f, "kind": words.get(f.get("error_kind"), f.get("error_kind"))} for f in summary.get("failed") or []]
    return render("report/report.html.j2", title=title, subtitle=f"spindledx batch · {prov.get('date', '')}",
                  hpf_area_mm2=float(summary.get("hpf_area_mm2") or 0.2376), summary_pairs=summary_pairs,
                  detection=detection,
                  counts={"pairs": [(_STAT_WORDS.get(k, k), v) for k, v in counts.items()]} if counts else None,
                  plots=_plots(rows, summary), quality_checks=checks, guard=_guard(rows, summary),
                  cases={"rows": case_rows} if cases else None, ihc=ihc, outliers=summary.get("outliers") or [],
                  tiles=_tile_table(rows, specs_by_key, review_href, max_thumbnails), failures=failures,
                  provenance=prov)


def _guard(rows: Sequence[dict], summary: dict) -> dict:
    """Count-plausibility and out-of-distribution flags in words (a flagged count must not feed a grade unseen)."""
    from spindledx.detection import guard

    flagged = [r for r in rows if not r.get("error") and r.get("guard_flags")]
    return {"bound": guard.DENSITY_BOUND_PER_MM2, "source": guard.DENSITY_BOUND_SOURCE,
            "false_alarm": f"{guard.DENSITY_FALSE_ALARM:g}", "n_flagged": len(flagged),
            "tiles": [(str(r["key"]), m) for r in flagged for m in (r.get("flag_messages") or [])],
            "cases": [(str(c["case"]), list(c["flags"])) for c in summary.get("cases") or [] if c.get("flags")]}


def _tile_table(rows: Sequence[dict], specs_by_key: dict, review_href: str | None, max_thumbnails: int) -> dict:
    """The per-tile table: records (``thumb``: overlay JPEG bytes, ``stem``: the review page's anchor), columns,
    and the notes above it."""
    recs = []
    stems = _tile_stems(rows)
    for i, row in enumerate(rows):
        thumb = None
        if not row.get("error") and i < max_thumbnails:
            spec = specs_by_key.get(row["key"])
            thumb = _thumbnail({**row, "_reference_points": getattr(spec, "points", None)})
        recs.append({"thumb": thumb, "stem": _tile_stem(row, stems), "key": row["key"], "case": row.get("case"),
                     "count": row.get("count"), "ref": row.get("expected_count"), "tp": row.get("tp"),
                     "fp": row.get("fp"), "fn": row.get("fn"), "density": row.get("mitoses_per_mm2"),
                     "atypical": row.get("atypical_count"),
                     "flags": ", ".join(f.replace("_", " ") for f in row.get("flags") or []) or None,
                     "error": row.get("error")})
    columns = [("thumb", "overlay"), ("key", "tile"), ("case", "case"), ("count", "figures", "num"),
               ("ref", "reference", "num"), ("tp", "hits", "num"), ("fp", "false positives", "num"),
               ("fn", "missed", "num"), ("density", "per mm²", "num")]
    if any(r["atypical"] is not None for r in recs):
        columns.append(("atypical", "atypical figures", "num"))
    columns += [("flags", "flags (image quality, count guard)"), ("error", "error")]
    return {"rows": recs, "columns": columns, "review_href": review_href, "n_rows": len(rows),
            "max_thumbnails": max_thumbnails, "thumbnail_px": TABLE_THUMBNAIL_PX,
            "messages": sorted({m for r in rows for m in r.get("flag_messages") or []})}
