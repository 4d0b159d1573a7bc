"""Printing helpers shared by the commands: a console of legible width, JSON on stdout, percentages."""

from __future__ import annotations

import json

import typer
from rich.console import Console


def console() -> Console:
    """A rich console; 140 columns when output is not a terminal (pipes, files, tests) so tables stay legible."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=140)


def echo_json(payload: object) -> None:
    """``payload`` as indented JSON on stdout (UTF-8 kept)."""
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def pct(value: float | None) -> str:
    """A fraction as a whole percentage, or ``-``."""
    return "-" if value is None else f"{value:.0%}"
