"""The run store of the tile engine: an append-only log of results, signatures, a lock on the output folder.

* :class:`ResultLog`: one JSON object per line, each flushed and fsynced, so an interrupted run loses nothing
  it finished. A torn last line (a crash or a full disk mid-write) is cut off before the next append, so it can
  never swallow the next row. The last row of a key wins.
* :func:`file_identity` and :func:`signature`: a result is reused only when everything it depends on is the same:
  the input file (size, modification time and a sha256 of its first and last MiB), the resolution, case,
  reference annotations, the model's sha256 and the options.
* :class:`RunLock`: an exclusive ``flock`` on ``OUT/.spindledx.lock``, so two runs on one output folder cannot
  interleave (the second stops at once with one line).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from spindledx.errors import BadInputError
from spindledx.files import atomic_write_text, check_output_target, open_no_follow

LOCK_NAME = ".spindledx.lock"
_EDGE_BYTES = 1 << 20


def file_identity(path: str | os.PathLike[str]) -> str | None:
    """``size:mtime_ns:sha256(first and last MiB)`` of a file, or None when it cannot be read.

    A replaced file differs in modification time, and a file copied over with its time preserved still differs
    in its content hash unless the change lies only in its middle.
    """
    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            h.update(fh.read(_EDGE_BYTES))
            if st.st_size > 2 * _EDGE_BYTES:
                fh.seek(-_EDGE_BYTES, os.SEEK_END)
                h.update(fh.read(_EDGE_BYTES))
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()[:16]}"


def content_identity(path: str | os.PathLike[str]) -> str | None:
    """``size:sha256(first and last MiB)`` of a file (its :func:`file_identity` without the modification time, so
    that a copy or a ``touch`` keeps it), or None when it cannot be read."""
    identity = file_identity(path)
    if identity is None:
        return None
    size, _, digest = identity.split(":")
    return f"{size}:{digest}"


def signature(values: dict[str, Any]) -> str:
    """sha256 (hex, 16 characters) of the canonical JSON of ``values``: equal inputs give equal signatures."""
    text = json.dumps(values, sort_keys=True, ensure_ascii=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def _finite_only(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


class ResultLog:
    """Append-only JSON-lines log of result rows keyed by ``key`` (flushed and fsynced per row)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict]:
        """Rows by key (the last row of a key wins); a torn last line is cut from the file, other bad lines are
        skipped."""
        rows: dict[str, dict] = {}
        check_output_target(self.path)  # a link or a special file is refused before it is read or cut
        if not self.path.exists():
            return rows
        with os.fdopen(open_no_follow(self.path, os.O_RDWR), "r+b") as fh:
            data = fh.read()
            good_end = data.rfind(b"\n") + 1  # bytes after the last newline: a torn line
            if good_end < len(data):
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        for line in data[:good_end].decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                rows[str(row["key"])] = row
        return rows

    def append(self, row: dict) -> None:
        """Append one row durably (non-finite numbers are stored as null)."""
        line = json.dumps(_finite_only(row), ensure_ascii=False, allow_nan=False, default=_json_default)
        fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "r+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end > 0:  # never glue a row onto a line a crash left without its newline
                fh.seek(end - 1)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write(line.encode("utf-8", "surrogateescape") + b"\n")
            fh.flush()
            os.fsync(fh.fileno())


def check_run_file(path: Path, expected: dict[str, Any], *, what: str) -> None:
    """Write ``expected`` to ``path`` (atomically) or refuse when ``path`` holds other settings.

    Raises
    ------
    BadInputError
        ``path`` exists with different values: names the settings that differ.
    """
    check_output_target(path)
    if path.exists():
        try:
            from spindledx.files import read_json

            previous = read_json(path, what="a run file", max_bytes=16 << 20)
        except BadInputError:
            previous = None
        if isinstance(previous, dict) and previous != expected:
            changed = ", ".join(k for k in expected if previous.get(k) != expected[k]) or "settings"
            raise BadInputError(f"{path.parent} holds {what} with different settings ({changed}); use a new out_dir "
                                "or delete that folder to start again", parameters="out_dir")
        if previous == expected:
            return
    atomic_write_text(path, json.dumps(expected, indent=2, ensure_ascii=False, default=str))


_HELD: dict[str, int] = {}


class RunLock:
    """Exclusive lock on an output folder for the time of a run (``fcntl.flock``; released when the process
    ends, even on a crash). Re-entrant within one process (a run that writes its tables under the same lock)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fh: Any = None
        self._key = os.path.abspath(self.path)

    def __enter__(self) -> RunLock:
        import fcntl

        if _HELD.get(self._key):
            _HELD[self._key] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = os.fdopen(open_no_follow(self.path, os.O_RDWR | os.O_CREAT), "r+")  # held for the run
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise BadInputError(f"{self.path.parent} is in use by another spindledx run ({holder}); wait for it "
                                "or choose another out_dir", parameters="out_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh
        _HELD[self._key] = 1
        return self

    def __exit__(self, *exc: object) -> None:
        _HELD[self._key] = _HELD.get(self._key, 1) - 1
        if self._fh is not None and _HELD[self._key] <= 0:
            _HELD.pop(self._key, None)
            self._fh.close()  # closing releases the flock
            self._fh = None
