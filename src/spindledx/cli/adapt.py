"""``adapt``: a detector adapted to a laboratory's review decisions, over :func:`spindledx.adapt.run.adapt_model`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from spindledx.cli import options as opts


def adapt(
    sources: list[str] = typer.Argument(..., metavar="SOURCE...", help="Reviewed folders (`review DIR --import` "
                                        "done), or FOLDER=DECISIONS.json."),
    out: Path = typer.Option(..., "--out", help="New or empty folder for the adapted model (ONNX + card)."),
    model: Path | None = typer.Option(None, "--model", help="The model the folders were run with (a card, or a "
                                      "folder holding one); default the shipped model."),
    name: str | None = typer.Option(None, "--name", help="Name of the adapted model (default: <model>-adapted)."),
    fmt: opts.Report = opts.ReportFormat.table,
) -> None:
    """Adapt the detector to a laboratory's review decisions (confirmed = mitosis, rejected = not).

    Written only when better than the starting model on held-out images, without a significant loss of recall;
    otherwise exit 2 with the figures.

    Use it with --model OUT wherever --model is taken. Needs the train extra of spindledx (onnx).

    Example: spindledx adapt case_1 case_2 case_3 --out lab_model
    """
    from spindledx.adapt.run import AdaptRefusedError, adapt_model

    try:
        result = adapt_model(sources, out, model=model, name=name)
    except AdaptRefusedError as exc:
        typer.echo(f"error: {exc}", err=True)
        if exc.table:
            typer.echo(exc.table, err=True)
        raise typer.Exit(opts.ExitCode.BAD_INPUT) from None
    if fmt.value == "json":
        card = result["card"]
        typer.echo(json.dumps({"card": str(result["paths"]["card"]), "onnx": str(result["paths"]["onnx"]),
                               "name": card["name"], "version": card["version"], "sha256": card["sha256"],
                               "threshold": card["threshold"], "adapted_from": card["adapted_from"],
                               "validation": card["adaptation"]["validation"]}, indent=2, ensure_ascii=False))
        return
    typer.echo(result["table"])
    typer.echo(f"adapted model: {result['paths']['card']} (use it with --model {out})")


def register(app: typer.Typer) -> None:
    """Add ``adapt`` to the spindledx app."""
    app.command("adapt")(adapt)
