"""Writing output files safely: atomic replacement and spreadsheet-safe CSV cells.

* Atomic writes: the content goes to a temporary file in the same folder, is flushed and fsynced, then renamed
  over the target (``os.replace`` is atomic on POSIX), so a crash or a full disk never leaves a truncated file
  behind: either the old file or the complete new one is there (the temporary file is removed on failure).
* Links: an output file that exists as a symbolic link or as anything but a regular file is refused before
  anything is written (:func:`check_output_target`), and files updated in place (the run lock, the result log)
  are opened with ``O_NOFOLLOW`` (:func:`open_no_follow`), so a run never writes through a link to a file
  outside its output folder. Names taken from files (an image stem in a candidates file) are checked like names
  taken from the user (:func:`check_file_name`).
* CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is read as a formula by
  spreadsheet programs; such text cells get a leading apostrophe (OWASP, "CSV Injection"). Numbers are written
  as numbers (a negative number is not a formula).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path
        Final file.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    encoding, newline
        As for :func:`open` (text mode only).
    """
    check_output_target(path)
    with _temporary_sibling(Path(path), ".tmp") as (fd, tmp):
        # text that cannot be encoded (e.g. a file name with undecodable bytes) is escaped, never a crash
        text_args = {"encoding": encoding, "newline": newline, "errors": "backslashreplace"}
        with os.fdopen(fd, mode, **({} if "b" in mode else text_args)) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def _temporary_sibling(path: Path, suffix: str) -> Iterator[tuple[int, str]]:
    """A temporary file next to ``path`` (open descriptor, name) that replaces ``path`` when the block succeeds
    and is removed when it fails, so ``path`` is either the old file or the complete new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=suffix, dir=path.parent)
    try:
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_with(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Atomically create ``path`` with a writer that takes a file name (``DataFrame.to_parquet``, ``savefig``).

    ``write`` is called with a temporary name in the same folder, which then replaces ``path``.
    """
    path = Path(path)
    check_output_target(path)
    with _temporary_sibling(path, path.suffix or ".tmp") as (fd, tmp):
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    return path


def csv_safe(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _safe_part(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_`` (no leading dot)."""
    cleaned = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in text)
    return cleaned.lstrip(".") or "_"


def output_stems(paths: list[Path], *, max_chars: int = 100) -> list[str]:
    """One distinct, safe file-name stem per input path, for output files written side by side in one folder.

    The stem is the file's stem when that is unique; otherwise the path relative to the inputs' common folder
    with its suffix (``a/x.png`` -> ``a__x.png``, ``x.jpg`` -> ``x.jpg``). Stems contain no path separator, do not
    start with a dot, are at most ``max_chars`` long (a hash keeps cut names apart) and are distinct even ignoring
    case (``-2``, ``-3`` ... are appended), so outputs never leave their folder or overwrite each other.
    """
    import hashlib

    resolved = [Path(os.path.abspath(p)) for p in paths]
    stems = [p.stem for p in resolved]
    if len({s.lower() for s in stems}) != len(stems) and resolved:
        root = Path(os.path.commonpath([str(p.parent) for p in resolved]))
        stems = ["__".join(p.relative_to(root).parts) for p in resolved]
    out: list[str] = []
    taken: set[str] = set()
    for raw in stems:
        stem = _safe_part(raw)
        if len(stem) > max_chars:
            stem = stem[: max_chars - 9] + "-" + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        candidate, n = stem, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` (e.g. a file name that is not valid UTF-8, held with surrogate escapes) in a form that can be
    printed and written as UTF-8: undecodable bytes become ``\\xNN``."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_output_target(path: str | Path) -> None:
    """Refuse to write ``path`` when it exists as a symbolic link or as anything but a regular file.

    Raises
    ------
    BadInputError
        ``path`` is a link (writing would follow it, or silently replace it), a folder, a FIFO, a device, ...
    """
    from spindledx.errors import BadInputError

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # the write itself reports permission and similar errors
    if stat.S_ISLNK(st.st_mode):
        raise BadInputError(f"{printable(path)}: is a symbolic link; spindledx does not write through links "
                            "(remove the link or choose another output folder)")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"{printable(path)}: exists and is not a regular file; spindledx writes only regular "
                            "files (remove it or choose another output folder)")


def open_no_follow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` of a regular file that is never a symbolic link (``O_NOFOLLOW``); returns the descriptor.

    Raises
    ------
    BadInputError
        ``path`` is a link or not a regular file (nothing was read or written through it).
    """
    import errno

    from spindledx.errors import BadInputError

    check_output_target(path)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInputError(f"{printable(path)}: is a symbolic link; spindledx does not write through links "
                                "(remove the link or choose another output folder)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInputError(f"{printable(path)}: exists and is not a regular file; spindledx writes only regular "
                            "files (remove it or choose another output folder)")
    return fd


def check_file_name(name: str, *, what: str) -> str:
    """``name`` when it is a safe single file-name part (letters, digits, ``.``, ``_``, ``-``; no leading dot, no
    path separator, at most 150 characters), as :func:`output_stems` makes them.

    Raises
    ------
    BadInputError
        For anything else (``../x``, ``/abs``, an empty name, ...), naming ``what`` the name came from.
    """
    from spindledx.errors import BadInputError

    if not isinstance(name, str) or not name or len(name) > 150 or _safe_part(name) != name:
        shown = printable(str(name))[:80]
        raise BadInputError(f"{what}: the name {shown!r} is not a plain file name (letters, digits, '.', '_', '-')")
    return name


def read_bounded(path: str | Path, *, max_bytes: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (a FIFO, a device or ``/dev/zero`` is refused before
    anything is read, and a file that grows while read is cut at the limit and refused).

    Raises
    ------
    BadInputError
        Missing, not a regular file, or larger than ``max_bytes``.
    """
    from spindledx.errors import BadInputError

    name = printable(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{name}: is a folder, not {what}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadInputError(f"{name}: is a folder, not {what}")
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(f"{name}: not a regular file; {what} must be a file")
        if st.st_size > max_bytes:
            raise BadInputError(f"{name}: {st.st_size} bytes is too large for {what} (limit {max_bytes} bytes)")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise BadInputError(f"{name}: too large for {what} (limit {max_bytes} bytes)")
    return data


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON input."""


def _json_depth_ok(text: str, limit: int) -> bool:
    """Whether the nesting of ``[``/``{`` outside strings in ``text`` stays within ``limit`` (cheap pre-check, so
    that a hostile file cannot exhaust the parser's recursion)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def read_json(path: str | Path, *, what: str, max_bytes: int = 64 << 20) -> Any:
    """Parse a JSON input file with bounds: at most ``max_bytes``, nesting at most :data:`MAX_JSON_DEPTH`, and
    no ``NaN`` / ``Infinity`` (not JSON; they would make every output that copies them invalid JSON).

    Raises
    ------
    BadInputError
        One line naming the file and ``what`` it should have been.
    """
    import json

    from spindledx.errors import BadInputError

    name = printable(path)
    data = read_bounded(path, max_bytes=max_bytes, what=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{name}: not UTF-8 text; not {what}") from None
    if not _json_depth_ok(text, MAX_JSON_DEPTH):
        raise BadInputError(f"{name}: nested more than {MAX_JSON_DEPTH} levels deep; not {what}")

    def refuse_constant(value: str) -> Any:
        raise ValueError(f"{value} is not a JSON number")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"{name}: not a readable JSON file ({' '.join(str(exc).split())[:120]}); {what} was "
                            "expected") from None
