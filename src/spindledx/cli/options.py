"""Option types shared by every command, so one flag means one thing everywhere (and ``--help`` shows choices).

Each alias is an :data:`typing.Annotated` type carrying its :func:`typer.Option`; a command declares e.g.
``jobs: Jobs = None``. Values are checked by the library functions (which speak of parameters); the CLI maps
their :class:`~spindledx.errors.BadInputError` and typer's usage errors to one line and exit code 2.
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ExitCode(IntEnum):
    """Exit codes of every command (the contract in docs/architecture.md)."""

    OK = 0
    FAILURE = 1
    """Unexpected failure (``SPINDLEDX_DEBUG=1`` re-raises it with a traceback)."""
    BAD_INPUT = 2
    """Bad input or usage: one line on stderr, no traceback."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM: runs stop cleanly and write their tables."""
    BROKEN_PIPE = 141
    """The reader of standard output went away (128 + SIGPIPE, as a shell reports it); nothing is printed."""


class OutputFormat(StrEnum):
    """``--format`` of commands that can print detections as CSV."""

    table = "table"
    json = "json"
    csv = "csv"


class ReportFormat(StrEnum):
    """``--format`` of commands with a table or a JSON document."""

    table = "table"
    json = "json"


class HotspotShape(StrEnum):
    """``--shape`` of the hotspot window."""

    circle = "circle"
    square = "square"
    fields = "fields"
    both = "both"
    all = "all"

    @property
    def shapes(self) -> tuple[str, ...]:
        """The window shapes searched."""
        return {"both": ("circle", "square"), "all": ("circle", "square", "fields")}.get(self.value, (self.value,))


class CaseShape(StrEnum):
    """``case --shape``: the hotspot windows of ``slide`` that give one count."""

    circle = "circle"
    square = "square"
    fields = "fields"


class CaseSet(StrEnum):
    """``panel-cases --set``: the built-in case sets."""

    original = "original"
    holdout = "holdout"
    all = "all"
    reports = "reports"
    reports_b = "reports-b"
    reports_c = "reports-c"
    reports_d = "reports-d"


class QuizSet(StrEnum):
    """``quiz --set``: the case sets a quiz draws from (``all``: every set but the test set)."""

    original = "original"
    holdout = "holdout"
    reports = "reports"
    reports_b = "reports-b"
    reports_c = "reports-c"
    all = "all"


class SlideBackend(StrEnum):
    """``--backend`` slide reader."""

    auto = "auto"
    openslide = "openslide"
    tiffslide = "tiffslide"
    tifffile = "tifffile"


Format = Annotated[OutputFormat, typer.Option("--format", help="Output on stdout.", case_sensitive=False)]
Report = Annotated[ReportFormat, typer.Option("--format", help="Output on stdout.", case_sensitive=False)]
Quiz = Annotated[ReportFormat, typer.Option("--format", case_sensitive=False,
                                            help="table (interactive, answers read from stdin) or json (questions "
                                                 "with answers).")]
Shape = Annotated[HotspotShape, typer.Option("--shape", help="Hotspot window: circle, square, fields (2 x 5 block "
                                             "of HPF-sized squares), both (circle + square) or all.",
                                             case_sensitive=False)]
Backend = Annotated[SlideBackend, typer.Option("--backend", help="Slide reader.", case_sensitive=False)]
Mpp = Annotated[float | None, typer.Option("--mpp", help="Resolution in µm/px, overriding the files' metadata "
                                           "(0.25 for 40x, 0.5 for 20x scans).")]
Jobs = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: min(2, CPUs)).")]
Progress = Annotated[bool | None, typer.Option("--progress/--no-progress",
                                               help="Progress bar on stderr (default: when stderr is a terminal).")]
Threshold = Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.0,
                                                 help="Minimum detection score (default: the model's).")]
HpfArea = Annotated[float | None, typer.Option("--hpf-area-mm2", help="Area of one HPF in mm² (default: from the "
                                               "field number and objective, 22 / 40x = 0.238 mm²).")]
FieldNumber = Annotated[float | None, typer.Option("--field-number", help="Eyepiece field number in mm (default 22).")]
Objective = Annotated[float | None, typer.Option("--objective", help="Objective magnification (default 40).")]
AllowUnusualHpf = Annotated[bool, typer.Option("--allow-unusual-hpf", help="Accept an HPF area outside 0.15-0.35 mm² "
                                              "(the 40x fields in use).")]
UseFlaggedCount = Annotated[bool, typer.Option("--use-flagged-count", help="Use a flagged count (implausible "
                                               "density, out-of-distribution, ...) for the grade and the "
                                               "differential anyway; it stays marked as flagged.")]
Roi = Annotated[Path | None, typer.Option("--roi", help="Region(s) of interest: GeoJSON as QuPath exports "
                                          "annotations (Polygon/MultiPolygon, holes kept); only this region is "
                                          "counted.")]
RoiClass = Annotated[str | None, typer.Option("--roi-class", help="With --roi: use only the annotations of this "
                                              "QuPath classification (e.g. Tumor).")]
Model = Annotated[Path | None, typer.Option("--model", help="Detector to use instead of the shipped one: a model "
                                            "card (JSON) next to its ONNX file, following the model contract, or a "
                                            "folder holding one (as `spindledx adapt` writes it).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Write into an --out folder that holds other files or "
                                        "another run (the files that run listed as its outputs are replaced).")]
Dask = Annotated[str | None, typer.Option("--dask", help="Run on Dask: 'local' (a local cluster) or a scheduler "
                                          "address (tcp://host:8786).")]


def out_option(help_text: str, *, required: bool = False) -> object:
    """The ``--out`` folder option (each command states what it writes there)."""
    return typer.Option(... if required else None, "--out", help=help_text)


def default_jobs() -> int:
    """min(2, CPUs): the machine is shared."""
    return max(1, min(2, os.cpu_count() or 1))


def resolve_jobs(jobs: int | None) -> int:
    """``--jobs`` or its default :func:`default_jobs`."""
    return default_jobs() if jobs is None else jobs


def resolve_progress(progress: bool | None) -> bool:
    """``--progress/--no-progress`` or its default: on when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def check_dask(address: str | None) -> str | None:
    """``--dask``: None, ``local`` or a scheduler address ``scheme://host:port`` (checked before any work).

    Raises
    ------
    BadInputError
        Anything else (``--dask junk``), with the accepted forms.
    """
    import re

    from spindledx.errors import BadInputError

    if address is None or address == "local":
        return address
    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss|inproc)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", address):
        raise BadInputError(f"--dask {address[:80]!r}: expected 'local' or a scheduler address such as "
                            "tcp://host:8786")
    return address


def check_out_dir(out: Path | None) -> None:
    """Refuse an ``--out`` that exists and is not a folder (one line, exit 2)."""
    from spindledx.errors import BadInputError

    if out is not None and out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out}: exists and is not a folder")


FLAGS_OF_PARAMETERS = {"hpf_area": "--hpf-area-mm2", "field_number_mm": "--field-number",
                       "objective_magnification": "--objective", "out_dir": "--out"}
"""Library parameter -> command-line flag, where the flag is not ``--`` + the name with ``-`` for ``_``."""


def flag_of(parameter: str) -> str:
    """The command-line flag of a library parameter (``restart`` -> ``--restart``, ``hpf_area`` ->
    ``--hpf-area-mm2``)."""
    return FLAGS_OF_PARAMETERS.get(parameter, "--" + parameter.replace("_", "-"))


def cli_message(exc: Exception) -> str:
    """The message of a library error with the parameters it names (``BadInputError.parameters``) rewritten as
    this CLI's flags: ``restart=True`` -> ``--restart``, ``hpf_area`` -> ``--hpf-area-mm2``."""
    import re

    text = str(exc)
    for name in getattr(exc, "parameters", ()):
        pattern = rf"(?<![\w-]){re.escape(name)}(?:=True)?(?![\w\[])"
        text = re.sub(pattern, flag_of(name).replace("\\", r"\\"), text, count=1)
    return text
