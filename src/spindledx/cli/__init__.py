"""The command line: a thin typer layer over the library entry points.

This package is the only one that imports typer. Each module declares one command group's options and calls the
library (``score`` -> :func:`spindledx.score_images`, ``case`` -> :func:`spindledx.run_case`, ...); shared
option types and exit codes are in :mod:`spindledx.cli.options`. This module builds the app and maps errors to
exit codes (:class:`~spindledx.cli.options.ExitCode`; the contract is in docs/architecture.md). The library is
imported inside the command functions, so ``spindledx --help`` loads no numeric stack.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import typer

from spindledx import __version__
from spindledx.cli.options import ExitCode, cli_message
from spindledx.errors import BadInputError

app = typer.Typer(
    name="spindledx",
    help="Mitotic counts on H&E tiles, IHC panel differentials and batch QA for spindle-cell tumours.\n\n"
         "Example: spindledx panel \"actin+ desmin+ CK-pan- CD34- CD117- S-100-\" --site lung",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

MAX_MESSAGE_CHARS = 300
"""Longest error line printed (a 100k-character argument is not echoed in full)."""


kb_app = typer.Typer(
    name="kb",
    help="The knowledge base: `kb site` (a static teaching site) and `kb coverage` (entity x marker matrix).\n\n"
         "Example: spindledx kb site --out kb_site",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(kb_app, name="kb")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"spindledx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """spindledx command-line interface."""


def _register_commands() -> None:
    from spindledx.cli import adapt, batch, case, grade, ihc, score, slide, teaching

    for module in (ihc, grade, score, batch, slide, case, adapt, teaching):
        module.register(app)
    ihc.register_kb(kb_app)
    teaching.register_kb(kb_app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (2 for bad input, 1 for an unexpected failure)."""
    import logging

    # damaged files get one error line from spindledx, never tifffile's own log lines
    logging.getLogger("tifffile").setLevel(logging.CRITICAL + 1)
    if sys.stdout is None or not _usable(1):
        typer.echo("error: standard output is closed; the results would be lost (redirect it to a file or "
                   "/dev/null instead)", err=True)
        return ExitCode.BAD_INPUT
    if sys.stdin is None or not _usable(0):  # stdin closed: reading it gives end of input, never a crash
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - the process's standard input
    previous = _terminate_as_interrupt()
    was_devnull = _is_devnull(1)
    try:
        return _main(argv)
    except BrokenPipeError:
        return _broken_pipe()
    except SystemExit as exc:
        # rich ends a print to a closed pipe by pointing stdout at /dev/null and raising SystemExit(1)
        if exc.code == 1 and not was_devnull and _is_devnull(1):
            return BROKEN_PIPE_EXIT
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _usable(fd: int) -> bool:
    """Whether file descriptor ``fd`` is open."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _is_devnull(fd: int) -> bool:
    """Whether file descriptor ``fd`` is /dev/null."""
    try:
        st, null = os.fstat(fd), os.stat(os.devnull)
    except OSError:
        return False
    return (st.st_ino, st.st_dev, st.st_rdev) == (null.st_ino, null.st_dev, null.st_rdev)


BROKEN_PIPE_EXIT = ExitCode.BROKEN_PIPE
"""Exit code after the reader of standard output went away (``spindledx kb coverage | head -1``): 128 + SIGPIPE,
as a shell reports a process killed by the signal; nothing is printed."""


def _broken_pipe() -> int:
    """Quiet end after a closed pipe: standard output is pointed at /dev/null so that the interpreter's final
    flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return BROKEN_PIPE_EXIT


def _terminate_as_interrupt() -> object:
    """Handle SIGTERM like Ctrl-C (runs stop cleanly, write their tables and stop their workers); returns the
    previous handler, or None when not in the main thread."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return None


def _numeric_options() -> set[str]:
    """The flags of every number option of every command (from the registered commands)."""
    import numbers

    names: set[str] = set()

    def walk(command: object) -> None:
        for sub in (getattr(command, "commands", None) or {}).values():
            walk(sub)
        for param in getattr(command, "params", None) or ():
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if isinstance(annotation, type) and annotation is not bool and issubclass(annotation, numbers.Number):
                names.update(o for o in getattr(param, "opts", ()) if o.startswith("-"))

    try:
        walk(typer.main.get_command(app))
    except Exception:  # introspection of another typer version: fall back to the common flags
        names = {"--mpp", "--threshold", "--hpf-area-mm2", "--field-number", "--objective", "--area-mm2",
                 "--work-mpp", "--tile-um", "--margin-um", "--radius-um", "--jobs", "-j"}
    return names


def check_number_arguments(argv: list[str]) -> None:
    """Refuse number options whose text Python would read as a number no user means: digit separators
    (``--mpp 1_0`` is 10 to ``float()``, ``--jobs 1_6`` is 16).

    Raises
    ------
    BadInputError
        Naming the option and its text.
    """
    numeric = _numeric_options()
    for i, token in enumerate(argv):
        flag, sep, value = token.partition("=")
        if flag not in numeric:
            continue
        if not sep:
            if i + 1 >= len(argv):
                continue
            value = argv[i + 1]
        if "_" in value:  # nan / inf reach the option's own check, which states its range
            raise BadInputError(f"{flag} {value!r} is not a number (write it with digits and at most one '.', e.g. "
                                "0.25)")


def _main(argv: list[str] | None) -> int:
    try:
        check_number_arguments(list(sys.argv[1:] if argv is None else argv))
        code = app(args=argv, standalone_mode=False, prog_name="spindledx")
    except BadInputError as exc:
        typer.echo(f"error: {one_line(cli_message(exc))}", err=True)
        return ExitCode.BAD_INPUT
    except typer.TyperException as exc:  # usage errors of typer's bundled click: bad option, missing argument
        typer.echo(f"error: {one_line(_usage_message(exc))}", err=True)
        return ExitCode.BAD_INPUT
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as exc:  # disk full, permission denied, ... on the user's files and folders
        if os.environ.get("SPINDLEDX_DEBUG"):
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        typer.echo(f"error: {one_line(exc.strerror or str(exc))}{one_line(where)}", err=True)
        bad_input = isinstance(exc, PermissionError | FileNotFoundError | IsADirectoryError | NotADirectoryError) \
            or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG)
        return ExitCode.BAD_INPUT if bad_input else ExitCode.FAILURE
    except Exception as exc:
        if os.environ.get("SPINDLEDX_DEBUG"):
            raise
        typer.echo(f"unexpected error ({type(exc).__name__}): {one_line(str(exc))}  "
                   "[set SPINDLEDX_DEBUG=1 for a traceback]", err=True)
        return ExitCode.FAILURE
    return code if isinstance(code, int) else ExitCode.OK


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` on one line, cut to ``limit`` characters."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage_message(exc: Exception) -> str:
    """typer/click's message with the command it concerns and where to look for help."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "spindledx"
    return f"{command}: {message} (see {command} --help)"
