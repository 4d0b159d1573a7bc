"""IHC commands: ``panel`` (differential), ``marker`` / ``entity`` (teaching lookups), ``markers`` /
``entities`` (lists), ``panel-cases`` (accuracy and calibration on the built-in case sets) and ``kb coverage``.
Options over :mod:`spindledx.ihc`, rendered as a rich table or JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from spindledx.cli.options import CaseSet, Report, ReportFormat
from spindledx.cli.output import console as _console
from spindledx.cli.output import echo_json as _echo_json
from spindledx.cli.output import pct as _pct
from spindledx.errors import BadInputError
from spindledx.ihc.knowledge import PATTERNS

if TYPE_CHECKING:
    from spindledx.ihc.interpret import PanelResult

NOTE_CHARS = 140  # table only: the JSON output keeps the whole note
_EFFECT_STYLE = {"supports": "green", "against": "red", "neutral": "dim"}


def _event_words(result: PanelResult, obs, words: dict[str, str]) -> str:
    """The model event of one observation in words (loss markers: lost/retained; Ki-67: index above 10 % or not)."""
    kind = result.panel_kinds.get(obs.marker, "ihc")
    if kind == "loss":
        return "lost" if obs.event == "pos" else "retained"
    if kind == "proliferation":
        return f"{obs.result} ({'above' if obs.event == 'pos' else 'at most'} 10 %)"
    if kind == "molecular":
        return "detected" if obs.event == "pos" else "not detected"
    return words.get(obs.event, obs.event)


def _render_panel(result: PanelResult, top: int, explain: int) -> None:
    console = _console()
    words = {"pos": "positive", "neg": "negative", "focal": "focal", "diffuse": "diffuse"}
    parsed = "; ".join(f"{o.marker} {_event_words(result, o, words)}" + (
        f" [dim](from '{escape(o.token)}')[/dim]" if o.token.replace(" ", "") != f"{o.marker}{o.result}" else "")
        for o in result.panel.observations)
    console.print(f"[bold]Read:[/bold] {parsed}")
    if result.panel.ignored:
        console.print(f"[yellow]Ignored (not read):[/yellow] {escape(', '.join(result.panel.ignored))}")
    n = len(result.differential)
    basis = f"site prior ({result.site})" if result.site else f"population prior over {n} entities"
    console.print(f"[bold]Prior:[/bold] {basis}")
    given = result.findings.to_json()
    if given:
        parts = [f"{k} {v['input']} = {v['per_10hpf']}/10 HPF ({v['band']})" if k == "mitoses" else
                 f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in given.items()]
        console.print(f"[bold]Findings:[/bold] {'; '.join(parts)}")
    table = Table(title="Differential (posterior probability)", show_lines=False)
    for col, justify in (("#", "right"), ("entity", "left"), ("probability", "right"), ("prior", "right"),
                         ("fit", "right"), ("supports", "left"), ("against", "left")):
        table.add_column(col, justify=justify)
    for rank, entry in enumerate(result.differential[:top], start=1):
        sup = ", ".join(e.marker for e in entry.evidence if e.effect == "supports")
        against = ", ".join(e.marker for e in entry.evidence if e.effect == "against")
        table.add_row(str(rank), f"{entry.name} [dim]({entry.id})[/dim]", f"{entry.probability:.1%}",
                      f"{entry.prior:.1%}", f"{entry.fit:.2f}", sup, against)
    console.print(table)
    for entry in result.differential[:explain]:
        t = Table(title=f"Why {entry.name} ({entry.probability:.1%})", show_lines=False)
        for col in ("kind", "item", "result", "P(result|entity)", "LR", "effect", "literature", "evidence",
                    "note / source"):
            t.add_column(col)
        for ev in entry.evidence:
            if ev.kind == "prior":
                label = "frequency" if ev.basis == "population" else "weight"
                lit = "-" if ev.fraction_positive is None else f"{label} {ev.fraction_positive:g}"
            elif ev.basis == "no data":
                lit = "no data"
            elif ev.fraction_positive is None:
                lit = f"n={ev.n_cases}" if ev.n_cases else "-"
            else:
                lit = (f"{_pct(ev.fraction_positive)}" + (f" of {ev.n_cases}" if ev.n_cases else "") +
                       (" [site]" if ev.basis == "site" else "") + (" [bg]" if "background" in ev.basis else "") +
                       (f" [{ev.basis}]" if ev.basis.startswith("elicited") else ""))
            style = _EFFECT_STYLE[ev.effect]
            item = ev.marker if ev.kind == "stain" else f"{ev.marker} ({ev.event})"
            note = ev.note if len(ev.note) <= NOTE_CHARS else ev.note[:NOTE_CHARS - 1] + "…"
            t.add_row(ev.kind, item, ev.result, f"{ev.likelihood:.2f}", f"{ev.likelihood_ratio:.2f}",
                      f"[{style}]{ev.effect}[/{style}]", lit, ev.evidence_level or "-",
                      escape(note) + (f" [dim]{escape(ev.source[:90])}[/dim]" if ev.source else ""))
        console.print(t)
        for pitfall in entry.pitfalls:
            console.print(f"  [magenta]pitfall:[/magenta] {pitfall}")
    if result.next_markers:
        lead = [e for e, _ in result.next_markers[0].expected_positive]
        t = Table(title="Next markers (expected information gain over the current posterior)")
        t.add_column("marker")
        t.add_column("gain (bits)", justify="right")
        for e in lead:
            t.add_column(f"P(+) {e}", justify="right")
        for m in result.next_markers:
            label = m.marker + (" (molecular)" if m.kind == "molecular" else "")
            t.add_row(label, f"{m.expected_information_gain:.3f}", *[f"{p:.0%}" for _, p in m.expected_positive])
        console.print(t)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"[dim]Decision aid for trained pathologists; probabilities assume one of the {n} entities in the "
                  "knowledge base and conditionally independent findings (correlated markers down-weighted).[/dim]")


def _read_panel_text(text: str) -> str:
    """The panel argument, or standard input when it is ``-``."""
    if text != "-":
        return text
    data = sys.stdin.read()
    if not data.strip():
        raise BadInputError("empty panel on standard input")
    return data


def panel(
    text: str = typer.Argument(..., help='Panel, e.g. "actin+ desmin+ CK-pan- CD34- CD117- S-100-"; - reads stdin.'),
    site: str | None = typer.Option(None, "--site", help="Site: lung, pleura, uterus, gi_tract, retroperitoneum, "
                                    "skin, soft_tissue, pulmonary_artery (without it: population prior)."),
    age: str | None = typer.Option(None, "--age", help="Age in years (0-120)."),
    sex: str | None = typer.Option(None, "--sex", help="F or M."),
    mitoses: str | None = typer.Option(None, "--mitoses", help="Mitotic count: 12/10HPF, 3/50HPF (fields of "
                                       "0.2376 mm²) or 4/mm2."),
    necrosis: str | None = typer.Option(None, "--necrosis", help="Tumour cell necrosis: yes or no."),
    atypia: str | None = typer.Option(None, "--atypia", help="none, mild, moderate or marked."),
    pattern: list[str] | None = typer.Option(None, "--pattern", help="Pattern(s), repeatable or comma-separated: "
                                             + ", ".join(PATTERNS) + "."),
    fmt: Report = ReportFormat.table,
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown", help="Skip unknown markers with a warning."),
    top: int = typer.Option(5, "--top", min=1, help="Entities to show (and to include in JSON)."),
    explain: int = typer.Option(3, "--explain", min=0, help="Top entities explained item by item (table)."),
) -> None:
    """Ranked, explained differential for an IHC panel (with clinical and H&E findings), and the next markers.

    Example: spindledx panel "actin+ desmin+ CK-pan- CD34- CD117- S-100-" --site lung --age 68 --sex F
    """
    from spindledx.ihc.interpret import interpret_panel

    result = interpret_panel(_read_panel_text(text), site=site, ignore_unknown=ignore_unknown, age=age, sex=sex,
                             mitoses=mitoses, necrosis=necrosis, atypia=atypia, pattern=pattern)
    if fmt == "json":
        _echo_json(result.to_json(top=top))
        return
    _render_panel(result, top, min(explain, top))


def _lookup(function: str, name: str, fmt: ReportFormat) -> dict | None:
    """``spindledx.ihc.lookups.<function>(name)``; printed as JSON (and None returned) for ``--format json``."""
    from spindledx.ihc import lookups

    info = getattr(lookups, function)(name)
    if fmt == "json":
        _echo_json(info)
        return None
    return info


def _facts_table(title: str, first: str) -> Table:
    """Empty table of literature facts: ``first`` (entity or marker), site, fraction positive, n, evidence, ..."""
    t = Table(title=title)
    for col in (first, "site", "positive", "n", "evidence", "focal share", "note", "ref"):
        t.add_column(col)
    return t


def marker(
    name: str = typer.Argument(..., help="Marker name or synonym, e.g. desmin, CK-pan, c-KIT."),
    fmt: Report = ReportFormat.table,
) -> None:
    """Which entities stain for a marker, with fractions, n and sources.

    Example: spindledx marker c-KIT
    """
    info = _lookup("marker_info", name, fmt)
    if info is None:
        return
    console = _console()
    console.print(f"[bold]{info['marker']}[/bold] ({info['kind']}); synonyms: {', '.join(info['synonyms']) or '-'}")
    if info["note"]:
        console.print(info["note"])
    t = _facts_table(f"{info['marker']}: fraction positive by entity", "entity")
    refs: list[str] = []
    for f in info["facts"]:
        if f["source"] not in refs:
            refs.append(f["source"])
        t.add_row(f["entity"], f["site"] or "", _pct(f["fraction_positive"]), str(f["n_cases"] or "-"),
                  f["evidence"], _pct(f["focal_share"]), f["note"], str(refs.index(f["source"]) + 1))
    console.print(t)
    for i, ref in enumerate(refs, start=1):
        console.print(f"  [{i}] {ref}", highlight=False, markup=False)
    bg = info["background"]
    if bg:
        console.print(f"Entities without data use the background {_pct(bg['fraction_positive'])} "
                      f"({bg['evidence']}: {bg['source']}).")
    elif info["entities_without_data"]:
        console.print(f"No data for {len(info['entities_without_data'])} entities: neutral for them.")


def entity(
    name: str = typer.Argument(..., help="Entity id, name or alias, e.g. leiomyosarcoma, GIST, SFT."),
    fmt: Report = ReportFormat.table,
) -> None:
    """An entity's typical panel, pitfalls and sources.

    Example: spindledx entity SFT
    """
    info = _lookup("entity_info", name, fmt)
    if info is None:
        return
    console = _console()
    console.print(f"[bold]{info['name']}[/bold] ({info['id']}); aliases: {', '.join(info['aliases'])}")
    console.print(info["summary"])
    t = _facts_table(f"{info['name']}: typical panel", "marker")
    refs = info["sources"]
    for f in info["facts"]:
        t.add_row(f["marker"], f["site"] or "", _pct(f["fraction_positive"]), str(f["n_cases"] or "-"),
                  f["evidence"], _pct(f["focal_share"]), f["note"], str(refs.index(f["source"]) + 1))
    console.print(t)
    for pitfall in info["pitfalls"]:
        console.print(f"[magenta]pitfall:[/magenta] {pitfall}")
    console.print("[bold]Sources:[/bold]")
    for i, source in enumerate(refs, start=1):
        console.print(f"  [{i}] {source}", highlight=False, markup=False)


def _print_listing(fmt: ReportFormat, rows: list[dict], noun: str, columns: dict[str, Callable[[dict], str]]) -> None:
    """Print a lookup listing as JSON or as a table with one column per ``columns`` entry."""
    if fmt == "json":
        _echo_json(rows)
        return
    t = Table(title=f"{len(rows)} {noun}")
    for col in columns:
        t.add_column(col)
    for r in rows:
        t.add_row(*(cell(r) for cell in columns.values()))
    _console().print(t)


def markers(fmt: Report = ReportFormat.table) -> None:
    """List the canonical markers and their synonyms.

    Example: spindledx markers --format json
    """
    from spindledx.ihc import lookups

    _print_listing(fmt, lookups.list_markers(), "markers", {
        "marker": lambda r: r["marker"], "kind": lambda r: r["kind"],
        "entities with data": lambda r: str(r["entities_with_data"]), "synonyms": lambda r: ", ".join(r["synonyms"])})


def entities(fmt: Report = ReportFormat.table) -> None:
    """List the entities of the knowledge base.

    Example: spindledx entities
    """
    from spindledx.ihc import lookups

    _print_listing(fmt, lookups.list_entities(), "entities", {
        "id": lambda r: r["id"], "name": lambda r: r["name"], "facts": lambda r: str(r["n_facts"]),
        "aliases": lambda r: ", ".join(r["aliases"])})


def panel_cases(
    fmt: Report = ReportFormat.table,
    case_set: CaseSet = typer.Option(CaseSet.original, "--set", case_sensitive=False,
                                     help="Built-in cases: original, holdout, all (the 100 literature panels), "
                                          "reports, reports-b, reports-c (published case reports with their "
                                          "findings, used for calibration) or reports-d (published case reports "
                                          "kept apart from calibration: the test set)."),
    cases_csv: str | None = typer.Option(None, "--cases", help="CSV of cases instead of the built-in panels."),
    ignore_unknown: bool = typer.Option(False, "--ignore-unknown", help="Skip unknown markers (always on for "
                                        "the case-report sets, as a new user would run them)."),
    per_entity: bool = typer.Option(False, "--per-entity", help="Also print accuracy and Brier per entity."),
) -> None:
    """Top-1 / top-3 accuracy and calibration on the test panels or the published case reports.

    Example: spindledx panel-cases --set all --per-entity
    """
    from spindledx.ihc.evaluate import REPORT_SETS, evaluate_cases, load_cases

    try:
        cases = load_cases(cases_csv, case_set=case_set.value)
    except (OSError, KeyError, ValueError) as exc:
        raise BadInputError(f"cannot read cases: {exc}") from exc
    if not cases:
        raise BadInputError("no cases in the file")
    ev = evaluate_cases(cases, ignore_unknown=ignore_unknown or (cases_csv is None and case_set.value in REPORT_SETS))
    if fmt == "json":
        _echo_json(ev.to_json())
        return
    console = _console()
    n = ev.n
    top1 = sum(o.rank == 1 for o in ev.outcomes)
    top3 = sum(o.rank <= 3 for o in ev.outcomes)
    console.print(f"[bold]{n} cases[/bold]: top-1 {top1}/{n} = {ev.top1:.1%}, top-3 {top3}/{n} = {ev.top3:.1%}, "
                  f"Brier {ev.brier:.3f}, log loss {ev.log_loss:.3f}, ECE {ev.ece:.3f}")
    refused = [o for o in ev.outcomes if o.error]
    if refused:
        console.print(f"[yellow]{len(refused)} case(s) refused by the interpreter, counted as misses[/yellow]")
    for kind in sorted({o.case.kind for o in ev.outcomes}):
        sub = [o for o in ev.outcomes if o.case.kind == kind]
        console.print(f"  {kind}: top-1 {sum(o.rank == 1 for o in sub)}/{len(sub)}, "
                      f"top-3 {sum(o.rank <= 3 for o in sub)}/{len(sub)}")
    t = Table(title="Reliability (cases binned by top-1 probability)")
    for col in ("bin", "cases", "mean confidence", "top-1 accuracy"):
        t.add_column(col, justify="right")
    for b in ev.reliability:
        t.add_row(f"[{b.low:.2f}, {min(b.high, 1.0):.2f}{']' if b.high > 1 else ')'}", str(b.n),
                  "-" if b.n == 0 else f"{b.mean_confidence:.2f}", "-" if b.n == 0 else f"{b.accuracy:.2f}")
    console.print(t)
    if per_entity:
        t = Table(title="Per entity")
        for col in ("entity", "cases", "top-1", "top-3", "Brier"):
            t.add_column(col, justify="left" if col == "entity" else "right")
        for e, row in ev.per_entity().items():
            t.add_row(e, str(row["n"]), f"{row['top1']}/{row['n']}", f"{row['top3']}/{row['n']}", f"{row['brier']:.3f}")
        console.print(t)
    t = Table(title="Cases not ranked first")
    for col in ("case", "kind", "expected", "rank", "P(expected)", "predicted", "P(top)"):
        t.add_column(col)
    for o in ev.outcomes:
        if o.rank > 1:
            t.add_row(o.case.id, o.case.kind, o.case.expected, str(o.rank), f"{o.expected_probability:.2f}",
                      o.ranked[0] if o.ranked else f"error: {o.error}", f"{o.top_probability:.2f}")
    console.print(t)


def kb_coverage_command(fmt: Report = ReportFormat.table) -> None:
    """Per entity: how many marker figures rest on literature data, on the expert elicitation, or on nothing.

    Example: spindledx kb coverage --format json
    """
    from spindledx.ihc.coverage import kb_coverage

    report = kb_coverage()
    if fmt == "json":
        _echo_json(report)
        return
    console = _console()
    tot = report["totals"]
    console.print(f"[bold]{tot['entities']} entities x {tot['markers']} markers = {tot['pairs']} pairs[/bold]: "
                  f"{tot['with_data']} with literature data, {tot['elicited']} elicited, "
                  f"{tot['elicited_with_data']} elicited and updated by data, {tot['estimate']} estimates, "
                  f"{tot['background_only']} with a background figure only, {tot['missing']} missing; "
                  f"covered {tot['covered_fraction']:.1%}")
    if report["missing_files"]:
        console.print(f"[yellow]absent data files:[/yellow] {', '.join(report['missing_files'])}")
    for row in report["skipped_rows"]:
        console.print(f"[yellow]skipped:[/yellow] {row}")
    t = Table(title="What each entity's marker figures rest on")
    for col, justify in (("entity", "left"), ("data", "right"), ("elicited", "right"), ("elicited + data", "right"),
                         ("estimate", "right"), ("background", "right"), ("missing", "right")):
        t.add_column(col, justify=justify)
    for ent in report["entities"]:
        t.add_row(ent["id"], *(str(len(ent[k])) for k in ("with_data", "elicited", "elicited_with_data", "estimate",
                                                          "background_only", "missing")))
    console.print(t)


def register_kb(kb_app: typer.Typer) -> None:
    """Add this stage's ``kb`` sub-commands (``kb coverage``)."""
    kb_app.command("coverage")(kb_coverage_command)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the spindledx app."""
    app.command("panel")(panel)
    app.command("marker")(marker)
    app.command("entity")(entity)
    app.command("markers")(markers)
    app.command("entities")(entities)
    app.command("panel-cases")(panel_cases)
