"""Atomic writes for the case and review outputs (the package's :mod:`spindledx.files` when present)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

try:  # the core's writer (lands with the engine refactor)
    from spindledx.files import atomic_write_bytes, atomic_write_text  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - until then
    def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
        """Write ``data`` to a temporary file in the same folder, then rename it over ``path``."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
        """Text version of :func:`atomic_write_bytes`."""
        return atomic_write_bytes(path, text.encode(encoding))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """UTF-8 text written atomically."""
    return atomic_write_text(path, text)
