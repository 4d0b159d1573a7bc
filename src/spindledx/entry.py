"""Console-script entry point: ``spindledx --version`` / ``-V`` answers without importing the CLI stack (typer,
the stages and their numeric libraries); everything else goes to :func:`spindledx.cli.main`."""

from __future__ import annotations

import sys


def run() -> None:  # pragma: no cover - exercised by bench/bench_startup.py and the installed console script
    """``spindledx`` console script."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from spindledx import __version__

        print(f"spindledx {__version__}")
        sys.exit(0)
    from spindledx.cli import main

    sys.exit(main())
