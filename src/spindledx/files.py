"""Writing output files safely: atomic replacement and spreadsheet-safe CSV cells.

* Atomic writes: the content goes to a temporary file in the same folder, is flushed and fsynced, then renamed
  over the target (``os.replace`` is atomic on POSIX), so a crash or a full disk never leaves a truncated file
  behind: either the old file or the complete new one is there (the temporary file is removed on failure).
* CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is read as a formula by
  spreadsheet programs; such text cells get a leading apostrophe (OWASP, "CSV Injection"). Numbers are written
  as numbers (a negative number is not a formula).
"""

from __future__ import annotations

import contextlib
import os
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
