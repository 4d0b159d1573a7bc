"""``review.html``: a keyboard-first gallery where a pathologist confirms the detector's candidates.

Every candidate (:mod:`spindledx.review.candidates`) is shown as a square crop of :data:`CROP_UM` µm centred on
the figure, at the image's native resolution, ordered by detector score across all images; candidates just
below the threshold follow the detections after a separator. Keys: arrows (or j/k) move, ``y``/``n``/``u`` =
mitosis / not mitosis / unsure (and move on), ``z`` undoes the last decision; clicking a crop selects it and the
toolbar buttons decide. Decisions persist in ``localStorage`` (keyed by the run id) and export as
``decisions.json`` with the reviewer's name and the date; ``spindledx review DIR --import decisions.json``
recomputes the counts (:mod:`spindledx.case.decisions`). One file: crops are inline JPEG ``data:`` URIs, the
script and style are inline, nothing is fetched, so it works from ``file://`` offline.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.pages import document, esc, notice
from spindledx.review.candidates import check_image_identity, run_id

CROP_UM = 64.0
CROP_JPEG_QUALITY = 90
DECISIONS_FORMAT = "spindledx-decisions/1"


def crop(rgb: np.ndarray, x: float, y: float, side_px: int) -> np.ndarray:
    """``side_px`` square of ``rgb`` centred on ``(x, y)`` (pixels), padded with white outside the image."""
    h, w = rgb.shape[:2]
    half = side_px // 2
    x0, y0 = int(round(x)) - half, int(round(y)) - half
    out = np.full((side_px, side_px, 3), 255, np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side_px), min(h, y0 + side_px)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def _jpeg_uri(rgb: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY,
                                                                           CROP_JPEG_QUALITY])
    if not ok:
        raise OSError("could not encode a crop")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _read_rgb(doc: dict[str, Any]) -> np.ndarray:
    from spindledx.imaging.reader import read_image

    return read_image(check_image_identity(doc), mpp=doc["mpp"]).rgb


def _slide_crops(doc: dict[str, Any], side: int) -> list[np.ndarray]:
    """Level-0 windows of a whole slide around each candidate (white outside the slide)."""
    from spindledx.imaging.slide import open_slide

    path = check_image_identity(doc)
    half = side // 2
    with open_slide(path, mpp=doc["mpp"]) as slide:
        return [slide.read_level(0, int(round(c["x"])) - half, int(round(c["y"])) - half, side, side)
                for c in doc["candidates"]]


def review_items(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """All candidates of all images with their crop, ordered: detections by score, then the rest by score."""
    items = []
    for doc in docs:
        if not doc["candidates"]:
            continue
        side = max(16, int(round(CROP_UM / doc["mpp"])))
        if doc.get("kind") == "slide":
            crops = _slide_crops(doc, side)
        else:
            rgb = _read_rgb(doc)
            ox, oy = doc.get("origin") or (0.0, 0.0)
            crops = [crop(rgb, c["x"] - ox, c["y"] - oy, side) for c in doc["candidates"]]
        for c, rgb_crop in zip(doc["candidates"], crops, strict=True):
            items.append({**c, "stem": doc["stem"], "threshold": doc["threshold"], "crop": _jpeg_uri(rgb_crop)})
    items.sort(key=lambda c: (not c["detected"], -c["score"], c["stem"], c["id"]))
    return items


_REVIEW_CSS = """
.bar-top{position:sticky;top:0;z-index:5;background:#fff;border-bottom:2px solid var(--line);padding:.5em 0;
display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
.bar-top button{font:inherit;padding:.25em .7em;border:1px solid #999;border-radius:4px;background:#f7f7f7;
cursor:pointer}.bar-top input{font:inherit;padding:.2em .4em}
#tally{font-variant-numeric:tabular-nums}.gal{display:flex;flex-wrap:wrap;gap:10px;margin-top:.8em}
.card{width:182px;border:3px solid transparent;border-radius:5px;padding:3px;background:#fafafa;cursor:pointer;
position:relative}.card .im{position:relative;width:170px;height:170px}.card img{width:170px;height:170px;
display:block;image-rendering:auto}
.card .im::after{content:"";position:absolute;left:50%;top:50%;width:23.4%;height:23.4%;transform:translate(-50%,-50%);
border:1px dashed rgba(255,255,255,.85);border-radius:50%;pointer-events:none}
.card .lab{font-size:.74em;line-height:1.25;color:#333}.card.cur{border-color:#1f5fa8;box-shadow:0 0 0 2px #9cc1ea}
.card.d-y{background:#e3f4e3}.card.d-n{background:#f9e1e1}.card.d-u{background:#fff2cc}
.card .dec{position:absolute;top:6px;right:6px;font-weight:700;font-size:.8em;padding:0 .35em;border-radius:3px;
background:#fff}.card.d-y .dec{color:#176b17}.card.d-n .dec{color:#a01818}.card.d-u .dec{color:#8a6400}
.sep{flex-basis:100%;border-top:2px dashed #bbb;color:var(--muted);font-size:.85em;padding-top:.3em}
kbd{border:1px solid #aaa;border-bottom-width:2px;border-radius:3px;padding:0 .3em;font-size:.85em;background:#fff}
"""

_REVIEW_JS = r"""
(function () {
  var data = JSON.parse(document.getElementById('review-data').textContent);
  var key = 'spindledx-review-' + data.run_id;
  var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
  var byId = {}; var detected = {};
  data.candidates.forEach(function (c) { detected[c.id] = c.detected; });
  cards.forEach(function (el, i) { byId[el.dataset.id] = i; });
  var state = {decisions: {}, reviewer: ''};
  try { var saved = JSON.parse(localStorage.getItem(key) || 'null'); if (saved && saved.decisions) state = saved; }
  catch (e) { /* storage unavailable or corrupt: start empty */ }
  var history = []; var cur = 0;
  var tally = document.getElementById('tally'); var who = document.getElementById('reviewer');
  var LABEL = {y: 'mitosis', n: 'not', u: 'unsure'};
  who.value = state.reviewer || '';
  function save() { try { localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode */ } }
  function paint(i) {
    var el = cards[i]; var d = state.decisions[el.dataset.id];
    el.className = 'card' + (d ? ' d-' + d : '') + (i === cur ? ' cur' : '');
    el.querySelector('.dec').textContent = d ? LABEL[d] : '';
  }
  function counts() {
    var y = 0, n = 0, u = 0, left = 0, count = 0;
    for (var id in detected) {
      var d = state.decisions[id];
      if (d === 'y') { y++; count++; } else if (d === 'n') { n++; }
      else { if (d === 'u') u++; else left++; if (detected[id]) count++; }
    }
    tally.textContent = 'reviewed ' + (y + n + u) + ' of ' + cards.length + ' \u00b7 mitosis ' + y +
      ' \u00b7 not ' + n + ' \u00b7 unsure ' + u + ' \u00b7 count now ' + count +
      ' (detector: ' + data.detector_count + ')';
  }
  function select(i, scroll) {
    if (!cards.length) return;
    i = Math.max(0, Math.min(cards.length - 1, i));
    var old = cur; cur = i; paint(old); paint(cur);
    if (scroll !== false) cards[cur].scrollIntoView({block: 'nearest'});
  }
  function decide(d) {
    if (!cards.length) return;
    var id = cards[cur].dataset.id;
    history.push([id, state.decisions[id]]);
    state.decisions[id] = d; save(); paint(cur); counts();
    if (cur < cards.length - 1) select(cur + 1);
  }
  function undo() {
    var last = history.pop(); if (!last) return;
    if (last[1] === undefined) delete state.decisions[last[0]]; else state.decisions[last[0]] = last[1];
    save(); select(byId[last[0]]); counts();
  }
  function exportDecisions() {
    state.reviewer = who.value.trim(); save();
    var list = cards.map(function (el) {
      return {id: el.dataset.id, decision: state.decisions[el.dataset.id] || null};
    }).filter(function (r) { return r.decision; });
    var out = {format: data.decisions_format, run_id: data.run_id, model_sha256: data.model_sha256,
      reviewer: state.reviewer, date: new Date().toISOString(), n_candidates: cards.length, decisions: list};
    var blob = new Blob([JSON.stringify(out, null, 1)], {type: 'application/json'});
    var a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = 'decisions.json';
    document.body.appendChild(a); a.click(); a.remove();
  }
  document.addEventListener('keydown', function (e) {
    if (e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA')) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (k === 'ArrowRight' || k === 'ArrowDown' || k === 'j') select(cur + 1);
    else if (k === 'ArrowLeft' || k === 'ArrowUp' || k === 'k') select(cur - 1);
    else if (k === 'y' || k === 'n' || k === 'u') decide(k);
    else if (k === 'z') undo();
    else if (k === 'Home') select(0);
    else if (k === 'End') select(cards.length - 1);
    else return;
    e.preventDefault();
  });
  document.getElementById('gal').addEventListener('click', function (e) {
    var el = e.target.closest('.card'); if (el) select(byId[el.dataset.id], false);
  });
  ['y', 'n', 'u'].forEach(function (d) {
    document.getElementById('btn-' + d).addEventListener('click', function () { decide(d); });
  });
  document.getElementById('btn-z').addEventListener('click', undo);
  document.getElementById('btn-export').addEventListener('click', exportDecisions);
  who.addEventListener('change', function () { state.reviewer = who.value.trim(); save(); });
  var start = 0;
  if (location.hash) {
    var t = document.getElementById(location.hash.slice(1));
    if (t && t.classList.contains('card')) start = byId[t.dataset.id];
  }
  cards.forEach(function (el, i) {
    paint(i);
    var im = el.querySelector('img');  // decode every crop up front, so moving on never waits for a decode
    if (im && im.decode) im.decode().catch(function () { /* a crop that cannot decode shows its alt text */ });
  });
  select(start, !!location.hash); counts();
})();
"""


def render_review_html(docs: Sequence[dict[str, Any]], *, title: str = "Review of mitotic figure candidates") -> str:
    """The review page for the candidates files of one output folder."""
    rid = run_id(docs)
    items = review_items(docs)
    thresholds = sorted({float(d["threshold"]) for d in docs})
    floors = sorted({float(d["review_floor"]) for d in docs})
    detector_count = sum(1 for c in items if c["detected"])
    model = (docs[0].get("model") or {}) if docs else {}
    first_of: set[str] = set()
    cards = []
    separator_done = False
    for i, c in enumerate(items):
        if not c["detected"] and not separator_done:
            cards.append(f"<div class='sep'>below the detection threshold ({esc(thresholds)}): not counted unless "
                         "you mark them as mitosis</div>")
            separator_done = True
        anchor = ""
        if c["stem"] not in first_of:
            first_of.add(c["stem"])
            anchor = f" id='img-{html.escape(c['stem'])}'"
        label = (f"#{i + 1} · score {c['score']:.2f} · {'detected' if c['detected'] else 'below threshold'}<br>"
                 f"{html.escape(c['stem'])} ({c['x']:.0f}, {c['y']:.0f})")
        cards.append(f"<div class='card' data-id='{html.escape(c['id'])}'{anchor}><div class='im'>"
                     f"<img src='{c['crop']}' alt='candidate {i + 1}' loading='eager'></div>"
                     f"<span class='dec'></span><div class='lab'>{label}</div></div>")
    payload = {"run_id": rid, "decisions_format": DECISIONS_FORMAT, "model_sha256": model.get("model_sha256"),
               "detector_count": detector_count,
               "candidates": [{"id": c["id"], "detected": bool(c["detected"])} for c in items]}
    no_cands = [d["stem"] for d in docs if not d["candidates"]]
    flagged = [f"{d['stem']} ({', '.join(f.replace('_', ' ') for f in d['flags'])})" for d in docs if d.get("flags")]
    body = [
        notice(f"{len(items)} candidates from {len(docs)} image(s), ordered by detector score: {detector_count} "
               f"detected (score ≥ {esc(thresholds)}), {len(items) - detector_count} just below (score ≥ "
               f"{esc(floors)}). Each crop is {CROP_UM:g} µm wide at the image's native resolution, the figure "
               "in the dashed circle (7.5 µm radius).", kind="info"),
        "<div class='bar-top no-print'><span><kbd>←</kbd><kbd>→</kbd> move · <kbd>y</kbd> mitosis · <kbd>n</kbd> "
        "not · <kbd>u</kbd> unsure · <kbd>z</kbd> undo</span>"
        "<button id='btn-y' type='button'>mitosis (y)</button><button id='btn-n' type='button'>not (n)</button>"
        "<button id='btn-u' type='button'>unsure (u)</button><button id='btn-z' type='button'>undo (z)</button>"
        "<label>reviewer <input id='reviewer' type='text' size='14' autocomplete='name'></label>"
        "<button id='btn-export' type='button'>export decisions.json</button>"
        "<span id='tally'></span></div>",
    ]
    if flagged:
        body.insert(1, notice("The detector's guard flagged these images; their candidates deserve a careful look: "
                              + "; ".join(flagged), kind="bad"))
    if any(d.get("kind") in ("detections only", "slide") and d["threshold"] == d["review_floor"] for d in docs):
        body.insert(1, notice("This run kept only its detections: nothing below the threshold can be reviewed here "
                              "(use `spindledx case` or `spindledx score --out` for candidates just below it).",
                              kind="info"))
    if no_cands:
        body.append("<p class='muted'>No candidates on: " + ", ".join(
            f"<span id='img-{html.escape(s)}'>{html.escape(s)}</span>" for s in no_cands) + "</p>")
    body.append("<div class='gal' id='gal'>" + "".join(cards) + "</div>")
    body.append("<p class='small muted'>Decisions are kept in this browser (localStorage) until you export them; "
                "then run <code>spindledx review OUT_DIR --import decisions.json</code>. Run "
                f"<code>{html.escape(rid)}</code>; detector model {_model_text(model)}.</p>")
    data = json.dumps(payload).replace("</", "<\\/")
    body.append(f"<script type='application/json' id='review-data'>{data}</script>")
    return document(title, "".join(body), subtitle=f"run {rid}", script=_REVIEW_JS, extra_css=_REVIEW_CSS)


def _model_text(model: dict[str, Any]) -> str:
    """The detector model as the page names it: name, version, sha256 and what it was adapted from (escaped)."""
    name = f"{esc(model['model_name'])} " if model.get("model_name") else ""
    text = f"{name}{esc(model.get('model_version'))} (sha256 {esc((model.get('model_sha256') or '')[:12])}…)"
    adapted = model.get("adapted_from")
    if isinstance(adapted, dict):
        text += (f", adapted from {esc(adapted.get('name'))} {esc(adapted.get('version'))} "
                 f"(sha256 {esc(str(adapted.get('sha256') or '')[:12])}…)")
    return text


def write_review_page(out_dir: str | Path, docs: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write ``review.html`` into ``out_dir`` from its candidates files; returns the path."""
    from spindledx.files import atomic_write_text as write_text_atomic
    from spindledx.review.candidates import load_candidate_files

    out_dir = Path(out_dir)
    docs = list(docs) if docs is not None else load_candidate_files(out_dir)
    return write_text_atomic(out_dir / "review.html", render_review_html(docs))
