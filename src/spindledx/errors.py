"""Exceptions shared by every stage.

The CLI turns :class:`BadInputError` into one line on stderr and exit code 2 (DESIGN.md, "Exit codes");
anything else is an unexpected failure (exit code 1).
"""


class BadInputError(ValueError):
    """The user gave input that cannot be processed (unreadable image, unknown marker, bad mpp, ...).

    The message must be one clear line that says what is wrong and, where possible, what to do instead.
    """
