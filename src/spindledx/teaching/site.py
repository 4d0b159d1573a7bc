"""``spindledx kb site --out DIR``: the knowledge base as a static, self-contained site.

Pages: ``index.html``, ``matrix.html`` (entity × marker heat map), ``panel.html`` (the panel form,
:mod:`spindledx.teaching.panel_form`), ``quiz.html``, ``entities/<id>.html``,
``markers/<marker>.html`` and ``compare/<a>--<b>.html`` (A versus B for :data:`~spindledx.teaching.compare.
TEACHING_PAIRS`).  Local assets only (``assets/site.css``, ``assets/site.js``, the search index, the quiz data and the
panel model as ``<script>`` files, which browsers load from ``file://``): no server, no network, no external fonts.

Writing follows the project's output rules: every file is written to a temporary name in its folder and moved
into place (atomic), nothing is written outside ``--out``, and ``--out`` must be new, empty, or a previous site
(recognised by its ``site.json`` manifest, whose stale files are removed). ``summary.json`` describes the build
in the one summary shape of :mod:`spindledx.summary`.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from spindledx.errors import BadInputError
from spindledx.files import atomic_write_bytes
from spindledx.ihc.interpret import PanelResult
from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base, normalize_name
from spindledx.ihc.model import default_constants
from spindledx.provenance import provenance
from spindledx.summary import write_summary
from spindledx.teaching import pages
from spindledx.teaching.compare import compare_entities, teaching_pairs
from spindledx.teaching.html import Frame, json_for_script, source_segments
from spindledx.teaching.panel_form import model_export, panel_page
from spindledx.teaching.quiz import QUIZ_CASE_SETS, build_questions, literature_label, load_quiz_cases

MANIFEST = "site.json"
ASSETS = ("site.css", "site.js", "panel.js")
QUIZ_SEED = 14  # fixed order of the quiz questions on the page (reproducible site)


@dataclass(frozen=True)
class SiteBuild:
    """What :func:`build_site` wrote: folder, file count, total size and build time."""

    out: Path
    n_pages: int
    n_files: int
    total_bytes: int
    seconds: float


def _search_index(kb: KnowledgeBase, links: pages.SiteLinks) -> list[dict]:
    items = []
    for e in kb.entities.values():
        names = [e.name, e.id, *e.aliases]
        items.append({"label": e.name, "kind": "entity", "href": links.entity[e.id], "names": names,
                      "keys": [normalize_name(x) for x in names]})
    for m in kb.markers.values():
        names = [m.name, *m.synonyms]
        items.append({"label": m.name, "kind": "marker", "href": links.marker[m.name], "names": names,
                      "keys": [normalize_name(x) for x in names]})
    for a, b in links.pairs:
        ea, eb = kb.entities[a], kb.entities[b]
        names = [f"{ea.name} vs {eb.name}", *(f"{x} vs {y}" for x in ea.aliases[:1] for y in eb.aliases[:1])]
        items.append({"label": f"{ea.name} versus {eb.name}", "kind": "A vs B", "href": links.pair[(a, b)],
                      "names": names, "keys": [normalize_name(x) for x in names]})
    return items


def _quiz_data(kb: KnowledgeBase) -> tuple[list[dict], tuple[tuple[str, str], ...]]:
    cases = list(load_quiz_cases(kb=kb))
    random.Random(QUIZ_SEED).shuffle(cases)
    questions, skipped = build_questions(cases, kb=kb)
    data = []
    for q in questions:
        item = q.to_json(kb=kb)
        answer = item["answer"]
        answer["case_source_segments"] = source_segments(answer.pop("case_source"))
        shown = []
        for ev in answer["evidence"]:  # only what the quiz page shows, to keep the site light
            shown.append({"kind": ev["kind"], "marker": ev["marker"], "result": ev["result"],
                          "likelihood": ev["likelihood"], "likelihood_ratio": ev["likelihood_ratio"],
                          "effect": ev["effect"], "literature": literature_label(ev), "note": ev["note"],
                          "source_segments": source_segments(ev["source"])})
        answer["evidence"] = shown
        item["input"] = _interpreter_input(q.result)
        data.append(item)
    return data, skipped


def _interpreter_input(result: PanelResult) -> dict:
    """The input of the page's interpreter (``SPX_PANEL.interpret`` of ``assets/panel.js``) for one quiz case: the
    stains as the Python interpreter read them ([marker, event, result]), the site and the findings."""
    f = result.findings
    return {"site": result.site or "", "obs": [[o.marker, o.event, o.result] for o in result.panel.observations],
            "age": f.age_years, "sex": f.sex, "mitoses": f.mitoses_per_10hpf, "necrosis": f.necrosis,
            "atypia": f.atypia, "patterns": list(f.patterns)}


ROW_FIELDS = ("kind", "marker", "literature")  # an evidence row's fields that repeat across questions


def pack_quiz(questions: list[dict]) -> dict:
    """The quiz data as written to ``assets/quiz-data.js``: the questions, without the interpreter's numbers.

    The page computes each answer (differential, rank and probability of the expected entity, likelihood, ratio and
    effect of each evidence row) with the interpreter of the panel form (``assets/panel.js`` on
    ``assets/panel-model.js``) from the question's ``input``; the data keeps what the model does not hold: the
    choices, the expected entity, the warnings, the case source and per evidence row its result as read and the
    literature label, note and source.  Repeated strings are stored once: entities (id and name), notes, source
    segment lists, pitfall lists and the repeating part of an evidence row (:data:`ROW_FIELDS` with its note and
    source index) go into tables referenced by index.  ``assets/site.js`` (``unpackQuiz``) rebuilds the questions
    given here; ``tests/test_teaching_site.py`` compares them with the Python answer in a browser.
    """
    names = ("entities", "notes", "sources", "pitfalls", "rows")
    index: dict[str, dict[str, int]] = {name: {} for name in names}
    values: dict[str, list] = {name: [] for name in names}

    def ref(table: str, value) -> int:
        key = json.dumps(value, sort_keys=True)
        if key not in index[table]:
            index[table][key] = len(values[table])
            values[table].append(value)
        return index[table][key]

    def entity(item: dict) -> int:
        return ref("entities", [item["id"], item["name"]])

    def evidence(ev: dict) -> list:
        row = [*(ev[k] for k in ROW_FIELDS), ref("notes", ev["note"]), ref("sources", ev["source_segments"])]
        return [ref("rows", row), ev["result"]]

    packed = []
    for q in questions:
        a = q["answer"]
        packed.append({
            **{k: q[k] for k in ("id", "set", "kind", "panel", "site", "clinical", "input")},
            "choices": [entity(c) for c in q["choices"]], "expected": entity(a["expected"]),
            "top": len(a["differential"]), "evidence": [evidence(ev) for ev in a["evidence"]],
            "pitfalls": ref("pitfalls", a["pitfalls"]), "warnings": a["warnings"],
            "case_source_segments": a["case_source_segments"],
        })
    return {**values, "row_fields": list(ROW_FIELDS), "questions": packed}


def render_site(kb: KnowledgeBase | None = None) -> dict[str, str]:
    """Every file of the site as {relative path: text}, without writing anything."""
    kb = kb or load_knowledge_base()
    pairs = teaching_pairs(kb)
    links = pages.SiteLinks(kb, pairs)
    prov = provenance(include_model=False)
    labels = {"spindledx": prov["spindledx_version"], "knowledge base": prov["kb_version"], "built": prov["date"]}
    footer = tuple(labels.items())

    def frame(title: str, root: str = "", scripts: tuple[str, ...] = ()) -> Frame:
        return Frame(title=title, root=root, footer=footer, scripts=scripts)

    files: dict[str, str] = {}
    for name in ASSETS:
        files[f"assets/{name}"] = resources.files("spindledx.teaching").joinpath("assets", name).read_text("utf-8")
    files["assets/search-index.js"] = f"window.SPX_INDEX = {json_for_script(_search_index(kb, links))};\n"
    quiz, skipped = _quiz_data(kb)
    files["assets/quiz-data.js"] = f"window.SPX_QUIZ_DATA = {json_for_script(pack_quiz(quiz))};\n"
    sets = {name: sum(1 for q in quiz if q["set"] == name) for name in QUIZ_CASE_SETS}
    files["index.html"] = pages.index_page(kb, links, n_questions=len(quiz), provenance=labels, frame=frame("Home"))
    model = model_export(kb, default_constants(), entity_links=links.entity, marker_links=links.marker,
                         fact_anchor=links.fact_anchor, elicited_anchor=links.elicited_anchor,
                         pair_anchor=links.pair_anchor)
    files["assets/panel-model.js"] = f"window.SPX_MODEL = {json_for_script(model)};\n"
    files["panel.html"] = panel_page(kb, frame=frame("Panel form", scripts=("assets/panel-model.js",
                                                                             "assets/panel.js")))
    files["matrix.html"] = pages.matrix_page(kb, links, frame=frame("Entity × marker matrix"))
    files["quiz.html"] = pages.quiz_page(sets, skipped, frame=frame("Quiz", scripts=(
        "assets/panel-model.js", "assets/panel.js", "assets/quiz-data.js")))
    for e, entity in kb.entities.items():
        files[links.entity[e]] = pages.entity_page(kb, e, links, frame=frame(entity.name, "../"))
    for m in kb.markers:
        files[links.marker[m]] = pages.marker_page(kb, m, links, frame=frame(m, "../"))
    for a, b in pairs:
        comparison = compare_entities(a, b, kb=kb)
        files[links.pair[(a, b)]] = pages.compare_page(
            kb, comparison, links, frame=frame(f"{comparison.a_name} versus {comparison.b_name}", "../"))
    return files


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _previous_files(out: Path) -> list[str]:
    """Files of a previous site in ``out`` (from its manifest); BadInputError if ``out`` is something else."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"out {out}: exists and is not a folder", parameters="out")
    if not out.exists() or not any(out.iterdir()):
        return []
    manifest = out / MANIFEST
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        if previous.get("generator") != "spindledx kb site":
            raise ValueError("not a site manifest")
        return [str(f) for f in previous["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"out {out}: folder is not empty and is not a spindledx site; choose a new or empty "
                            "folder", parameters="out") from exc


def build_site(out: str | Path, *, kb: KnowledgeBase | None = None) -> SiteBuild:
    """Render the site and write it into ``out`` (see module docstring for the writing rules).

    Returns
    -------
    SiteBuild
        The folder, number of HTML pages and files, total bytes written and wall-clock build time (s).

    Example: ``build = build_site("kb_site"); print(build.out / "index.html")`` (``spindledx kb site``)
    """
    start = time.perf_counter()
    out = Path(out)
    previous = _previous_files(out)
    kb = kb or load_knowledge_base()
    files = render_site(kb)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    total = 0
    for rel, text in files.items():
        target = (out / rel).resolve()
        if root not in target.parents:  # slugs are [a-z0-9-]: only a link inside --out can lead outside it
            raise BadInputError(f"out {out}: {rel} leads outside the folder (a symbolic link?); spindledx does not "
                                "write through links", parameters="out")
        data = text.encode("utf-8")
        total += len(data)
        _write_atomic(target, data)
    for rel in previous:
        if rel not in files and rel != MANIFEST:
            stale = (out / rel).resolve()
            if root in stale.parents and stale.is_file():
                stale.unlink()
    seconds = time.perf_counter() - start
    prov = provenance(include_model=False)
    manifest = {"generator": "spindledx kb site", "provenance": prov,
                "files": sorted(files), "total_bytes": total, "build_seconds": round(seconds, 3)}
    data = json.dumps(manifest, indent=1).encode("utf-8")
    _write_atomic(out / MANIFEST, data)
    n_pages = sum(1 for rel in files if rel.endswith(".html"))
    summary = write_summary(out, "kb site", provenance=prov, inputs=[f"knowledge base {prov['kb_version']}"],
                            outputs=[out / rel for rel in (*files, MANIFEST)],
                            counts={"pages": n_pages, "files": len(files) + 1, "bytes": total + len(data)},
                            results={"index": "index.html", "manifest": MANIFEST, "build_seconds": round(seconds, 3)})
    return SiteBuild(out=out, n_pages=n_pages, n_files=len(files) + 2,
                     total_bytes=total + len(data) + summary.stat().st_size, seconds=time.perf_counter() - start)
