"""Exceptions shared by every stage.

The CLI turns :class:`BadInputError` into one line on stderr and exit code 2 (docs/architecture.md, "Contracts");
anything else is an unexpected failure (exit code 1).

Library messages speak of the library's parameters (``restart=True``, ``hpf_area``, ``dask``), never of command
line flags: a library user has no flags. An error about a parameter names it in ``parameters``, and the CLI
rewrites those names into its flags (:func:`spindledx.cli.options.cli_message`).
"""

from __future__ import annotations

from collections.abc import Iterable


class BadInputError(ValueError):
    """The user gave input that cannot be processed (unreadable image, unknown marker, bad mpp, ...).

    The message must be one clear line that says what is wrong and, where possible, what to do instead.

    Parameters
    ----------
    message
        The line, naming library parameters as written in their function (``hpf_area``, ``restart=True``).
    parameters
        The parameter names the message uses, so that the CLI can name its own flags instead.
    """

    def __init__(self, message: str, *, parameters: str | Iterable[str] = ()) -> None:
        super().__init__(message)
        self.parameters: tuple[str, ...] = (parameters,) if isinstance(parameters, str) else tuple(parameters)
