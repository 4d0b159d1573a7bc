"""CLI commands of the `qa` stage (registered by :mod:`spindledx.cli`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the spindledx app."""
