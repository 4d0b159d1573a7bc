"""``spindledx grade``: FNCLCC scores and grade from a mitotic count (see :mod:`spindledx.counting`)."""

from __future__ import annotations

import dataclasses
import json

import typer
from rich.console import Console
from rich.table import Table

from spindledx import counting
from spindledx.cli import options as opts
from spindledx.errors import BadInputError


def grade(
    mitoses: float = typer.Option(..., "--mitoses", min=0, help="Mitotic figures counted."),
    area_mm2: float | None = typer.Option(None, "--area-mm2", help="Area counted, mm² (overrides --hpf)."),
    hpf: float = typer.Option(10.0, "--hpf", help="Number of high-power fields counted."),
    field_number: opts.FieldNumber = None,
    objective: opts.Objective = None,
    hpf_area: opts.HpfArea = None,
    necrosis: str = typer.Option(..., "--necrosis", help="Tumour cell necrosis: none (or no), <50 or >=50 (% of the "
                                                "tumour); yes needs its extent."),
    differentiation: int | None = typer.Option(None, "--differentiation", min=1, max=3,
                                               help="FNCLCC differentiation score 1-3."),
    entity: str | None = typer.Option(None, "--entity", help="Entity (id, name or alias, as in `panel`), to look "
                                      "up the differentiation score."),
    pattern: str = typer.Option("conventional", "--pattern", help="Histological pattern for --entity."),
    allow_unusual_hpf: opts.AllowUnusualHpf = False,
    use_flagged_count: opts.UseFlaggedCount = False,
    fmt: opts.Report = opts.ReportFormat.table,
) -> None:
    """FNCLCC grade: differentiation + mitotic score + necrosis, stating the area the count refers to.

    A count over less than 10 HPF of area, or beyond any tumour's density, gives no grade (exit 0, with the
    reason and the grade the count would give).

    Example: spindledx grade --mitoses 12 --necrosis "<50" --entity leiomyosarcoma
    """
    if differentiation is None:
        if entity is None:
            raise BadInputError("give --differentiation 1|2|3 or --entity (with --pattern)")
        from spindledx.ihc.lookups import resolve_entity

        entity = resolve_entity(entity)
        differentiation = counting.differentiation_score_for(entity, pattern)
    fmt = fmt.value
    field_area = counting.resolve_hpf_area_mm2(hpf_area, field_number, objective,
                                               allow_unusual_hpf=allow_unusual_hpf)
    result = counting.fnclcc_grade(mitoses=mitoses, differentiation_score=differentiation, necrosis=necrosis,
                                   area_mm2=area_mm2, n_hpf=hpf, hpf_area=field_area,
                                   use_flagged_count=use_flagged_count)
    if fmt == "json":
        doc = dataclasses.asdict(result)
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    if result.grade is not None:
        title = f"FNCLCC grade {result.grade}" + (" (from a flagged count)" if result.flags else "")
    else:
        would = result.extrapolated_grade if result.status == "extrapolated" else result.flagged_grade
        title = f"No FNCLCC grade ({result.status}; the count would give {would})"
    table = Table(title=title, show_header=True)
    table.add_column("parameter")
    table.add_column("score", justify="right")
    table.add_column("basis")
    table.add_row("differentiation", str(result.differentiation_score), entity or "given")
    table.add_row("mitotic count", str(result.mitotic_score),
                  f"{result.mitoses_per_10hpf:.1f}/10 HPF = {result.mitoses_per_mm2:.2f}/mm²")
    table.add_row("necrosis", str(result.necrosis_score), necrosis)
    table.add_row("total", str(result.total), "2-3 → G1, 4-5 → G2, 6-8 → G3")
    console = Console()
    console.print(table)
    console.print(f"Area: {result.area_note}")
    if result.reason:
        from rich.text import Text

        console.print(Text.assemble(("no grade: ", "bold"), result.reason))
    for caveat in result.caveats:
        console.print(f"[yellow]caveat:[/yellow] {caveat}")


def register(app: typer.Typer) -> None:
    """Add ``grade`` to the spindledx app."""
    app.command("grade")(grade)
