"""Teaching commands: ``compare A B``, ``quiz`` and ``kb site --out DIR``, options over
:mod:`spindledx.teaching`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from spindledx.cli.options import Quiz, QuizSet, Report, ReportFormat
from spindledx.cli.output import console as _console
from spindledx.cli.output import echo_json as _echo_json
from spindledx.cli.output import pct as _pct
from spindledx.errors import BadInputError

if TYPE_CHECKING:
    from spindledx.teaching.quiz import QuizQuestion

def compare(
    a: str = typer.Argument(..., help="First entity (id, name or alias), e.g. leiomyosarcoma."),
    b: str = typer.Argument(..., help="Second entity, e.g. gist."),
    site: str | None = typer.Option(None, "--site", help="Use the site-specific literature rows of this site."),
    fmt: Report = ReportFormat.table,
    top: int = typer.Option(12, "--top", min=1, help="Markers to show (and to include in JSON)."),
) -> None:
    """A versus B: markers ranked by how well they separate two entities (likelihood ratios, sources).

    Example: spindledx compare leiomyosarcoma gist --top 6
    """
    from spindledx.teaching.compare import compare_entities

    comparison = compare_entities(a, b, site=site)
    if fmt == "json":
        _echo_json(comparison.to_json(top=top))
        return
    console = _console()
    console.print(f"[bold]{comparison.a_name}[/bold] versus [bold]{comparison.b_name}[/bold]"
                  + (f" (site: {comparison.site})" if comparison.site else ""))
    t = Table(title="Markers ranked by separation (J = symmetric KL divergence, bits)")
    for col, justify in (("#", "right"), ("marker", "left"), ("+ favours", "left"), ("P(+|A)", "right"),
                         ("P(+|B)", "right"), ("LR+", "right"), ("LR-", "right"), ("J bits", "right"),
                         ("A literature", "left"), ("B literature", "left"), ("refs", "left")):
        t.add_column(col, justify=justify)
    refs: list[str] = []

    def ref(source: str) -> str:
        if not source:
            return "-"
        if source not in refs:
            refs.append(source)
        return str(refs.index(source) + 1)

    def lit(side) -> str:
        text = ("bg " if side.basis == "background" else "") + _pct(side.fraction_positive)
        text += f" of {side.n_cases}" if side.n_cases else ""
        return text + (f" ({side.evidence})" if side.evidence else "")

    for rank, m in enumerate(comparison.markers[:top], start=1):
        fav = {"a": comparison.a, "b": comparison.b}.get(m.favours_if_positive, "neither")
        t.add_row(str(rank), m.marker, fav, f"{m.a.p_positive:.2f}", f"{m.b.p_positive:.2f}",
                  f"{m.lr_positive:.2f}", f"{m.lr_negative:.2f}", f"{m.j_divergence_bits:.2f}", lit(m.a), lit(m.b),
                  f"A[{ref(m.a.source)}] B[{ref(m.b.source)}]")
    console.print(t)
    for rank, m in enumerate(comparison.markers[:top], start=1):
        for caveat in m.caveats:
            console.print(f"  [yellow]#{rank} {m.marker}:[/yellow] {caveat}", highlight=False)
    if comparison.morphology:
        t = Table(title="Morphology (LR = P(value|A) / P(value|B); patterns: when described)")
        for col, justify in (("feature", "left"), ("value", "left"), ("P(A)", "right"), ("P(B)", "right"),
                             ("LR", "right"), ("refs", "left")):
            t.add_column(col, justify=justify)
        for r in comparison.morphology:
            t.add_row(r.feature, r.value, f"{r.p_a:.2f}", f"{r.p_b:.2f}", f"{r.likelihood_ratio:.2f}",
                      f"A[{ref(r.a.source)}] B[{ref(r.b.source)}]")
        console.print(t)
        console.print("Feature separation (J, bits): " + ", ".join(
            f"{f} {j:.2f}" for f, j in comparison.morphology_j_bits), highlight=False)
    for i, source in enumerate(refs, start=1):
        console.print(f"  [{i}] {source}", highlight=False, markup=False)
    if comparison.no_data:
        missing = ", ".join(f"{m} (no data: {ids[0]})" for m, ids in comparison.no_data)
        console.print(f"[dim]Not comparable: {missing}[/dim]", highlight=False)


def _print_reveal(q: QuizQuestion, answer: str | None) -> None:
    from spindledx.teaching.quiz import literature_label

    console = _console()
    info = q.reveal()
    exp = info["expected"]
    if answer is not None:
        verdict = "[green]Correct[/green]" if q.is_correct(answer) else "[red]Not this time[/red]"
        console.print(f"{verdict}: the published diagnosis is [bold]{exp['name']}[/bold]; the interpreter ranks it "
                      f"#{exp['rank']} ({exp['probability']:.0%}).")
    t = Table(title="Interpreter's differential")
    for col in ("#", "entity", "probability"):
        t.add_column(col)
    for i, d in enumerate(info["differential"], start=1):
        t.add_row(str(i), d["name"], f"{d['probability']:.1%}")
    console.print(t)
    t = Table(title=f"Evidence for {exp['name']}")
    for col in ("kind", "finding", "result", "P(result|entity)", "LR", "effect", "literature", "source"):
        t.add_column(col)
    for ev in info["evidence"]:
        t.add_row(ev["kind"], ev["marker"], ev["result"], f"{ev['likelihood']:.2f}", f"{ev['likelihood_ratio']:.2f}",
                  ev["effect"], literature_label(ev), ev["source"][:100] or "-")
    console.print(t)
    console.print(f"Case source: {info['case_source']}", highlight=False, markup=False)


def _read_answer(q: QuizQuestion) -> str | None:
    """Read one answer from stdin: a choice number or an entity name; None at end of input or 'q'."""
    from spindledx.ihc.lookups import resolve_entity

    for _ in range(5):
        typer.echo(f"Your diagnosis (1-{len(q.choices)}, an entity name, or q to stop): ", nl=False)
        line = sys.stdin.readline()
        if not sys.stdin.isatty():
            typer.echo(line.rstrip("\n"))  # echo piped answers so the transcript reads like a session
        if not line:
            typer.echo("")
            return None
        text = line.strip()
        if text.lower() in ("q", "quit", "exit"):
            return None
        if text.isdigit() and 1 <= int(text) <= len(q.choices):
            return q.choices[int(text) - 1]
        try:
            return resolve_entity(text)
        except BadInputError as exc:
            typer.echo(f"  {exc}")
    return None


def quiz(
    n: int = typer.Option(10, "--n", min=1, help="Number of cases."),
    entity: str | None = typer.Option(None, "--entity", help="Only cases with this diagnosis."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the case order (reproducible quiz)."),
    case_set: QuizSet = typer.Option(QuizSet.all, "--set", case_sensitive=False,
                                     help="The case set, or all (every set but reports-d, the test set)."),
    fmt: Quiz = ReportFormat.table,
) -> None:
    """A quiz on the project's published cases: pick a diagnosis, then see the interpreter's reasoning.

    Example: spindledx quiz --n 10 --seed 1
    """
    from spindledx.provenance import provenance
    from spindledx.teaching.quiz import QUIZ_CASE_SETS, quiz_questions

    sets = QUIZ_CASE_SETS if case_set is QuizSet.all else (case_set.value,)
    questions = quiz_questions(n, entity=entity, seed=seed, case_sets=sets)
    if fmt == "json":
        _echo_json({"provenance": provenance(include_model=False), "questions": [q.to_json() for q in questions]})
        return
    from spindledx.ihc.knowledge import load_knowledge_base

    console = _console()
    kb = load_knowledge_base()
    answered = correct = 0
    for i, q in enumerate(questions, start=1):
        console.rule(f"Case {i} of {len(questions)}")
        console.print(q.clinical_line(), highlight=False, markup=False)
        console.print(f"Panel: {q.case.panel}", highlight=False, markup=False)
        for k, c in enumerate(q.choices, start=1):
            console.print(f"  {k}. {kb.entities[c].name}", highlight=False, markup=False)
        answer = _read_answer(q)
        if answer is None:
            break
        answered += 1
        correct += q.is_correct(answer)
        _print_reveal(q, answer)
        console.print(f"[bold]Score: {correct} / {answered}[/bold]")
    typer.echo(f"Final score: {correct} / {answered}")


def site(out: Path = typer.Option(..., "--out", help="Folder for the site (new, empty, or a previous site).")) -> None:
    """Write the knowledge base as a static, self-contained site (opens from file://).

    Example: spindledx kb site --out kb_site
    """
    from spindledx.teaching.site import build_site

    build = build_site(out)
    typer.echo(f"wrote {build.n_pages} pages ({build.n_files} files, {build.total_bytes / 1e6:.2f} MB) to "
               f"{build.out} in {build.seconds:.2f} s; open {build.out / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``quiz`` to the spindledx app."""
    app.command("compare")(compare)
    app.command("quiz")(quiz)


def register_kb(kb_app: typer.Typer) -> None:
    """Add ``kb site``."""
    kb_app.command("site")(site)
