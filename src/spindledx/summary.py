"""``summary.json``: one shape for the summary of every command that writes an output folder.

``score --out``, ``batch``, ``slide``, ``case`` and ``kb site`` write ``summary.json`` into their output folder;
``review DIR --import`` writes ``review_summary.json`` (it writes into another command's folder, whose
``summary.json`` it must not replace). Every summary is built by :func:`write_summary` and checked by
:func:`check_summary` before it is written, so the shape cannot drift between commands:

============  ================================================================================================
key           value
============  ================================================================================================
schema        :data:`SCHEMA` (``"spindledx-summary/1"``)
command       the command (``"score"``, ``"batch"``, ``"slide"``, ``"case"``, ``"review --import"``, ``"kb site"``)
created       UTC time the summary was written, ISO 8601 (``2026-11-29T10:00:00Z``)
status        ``"complete"``; ``"interrupted"`` (partial results kept; the same command resumes); or ``"failed"``
              (the run ended but not one of its inputs could be used: nothing was scored)
provenance    :data:`PROVENANCE_KEYS` (spindledx, detector model and knowledge-base versions; ``None`` where a
              command uses no model) plus what the command adds (threshold, date, ...)
inputs        the inputs as given (file names made printable)
options       the settings that change the results (µm/px override, threshold, HPF area, ...)
outputs       the files written, relative to the output folder, sorted (the summary itself excluded)
counts        figures for the run as a whole (name -> number or ``None``)
results       the command's own result document (``score``: the per-image list of the ``--format json``
              contract; ``batch``: its agreement statistics; ``slide``: the ``--format json`` object; ...)
flags         plausibility / out-of-distribution flags raised anywhere in the run (sorted, unique)
warnings      one-line messages
errors        one ``{"input", "error"}`` per input that could not be used
============  ================================================================================================

The output contracts of docs/architecture.md (e.g. the ``score --format json`` list) are separate and
unchanged: ``results`` carries them inside the summary.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = "spindledx-summary/1"
SUMMARY_NAME = "summary.json"
REVIEW_SUMMARY_NAME = "review_summary.json"
STATUSES = ("complete", "interrupted", "failed")
PROVENANCE_KEYS = ("spindledx_version", "model_name", "model_version", "model_sha256", "kb_version")
KEY_TYPES: dict[str, type | tuple[type, ...]] = {
    "schema": str, "command": str, "created": str, "status": str, "provenance": dict, "inputs": list,
    "options": dict, "outputs": list, "counts": dict, "results": (list, dict), "flags": list, "warnings": list,
    "errors": list,
}
"""Every top-level key of a summary and its JSON type; no other key is allowed."""


def relative_outputs(paths: Iterable[str | Path], out_dir: str | Path) -> list[str]:
    """Output files as POSIX paths relative to ``out_dir``, unique and sorted.

    Raises
    ------
    ValueError
        When a path lies outside ``out_dir`` (outputs never leave the output folder).
    """
    root = Path(out_dir).resolve()
    names = set()
    for path in paths:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            raise ValueError(f"output {path} is not inside the output folder {out_dir}")
        names.add(resolved.relative_to(root).as_posix())
    return sorted(names)


def build_summary(command: str, *, provenance: Mapping[str, Any], out_dir: str | Path,
                  outputs: Iterable[str | Path] = (), inputs: Iterable[str] = (),
                  options: Mapping[str, Any] | None = None, counts: Mapping[str, Any] | None = None,
                  results: list | dict | None = None, flags: Iterable[str] = (), warnings: Iterable[str] = (),
                  errors: Iterable[tuple[str, str]] = (), status: str = "complete",
                  now: _dt.datetime | None = None) -> dict[str, Any]:
    """The summary object of one command run (see the module docstring for the keys).

    Parameters
    ----------
    command
        The command, as typed after ``spindledx``.
    provenance
        :func:`spindledx.provenance`-style dict; its :data:`PROVENANCE_KEYS` missing from it are set to None.
    out_dir
        The output folder (``outputs`` are stored relative to it).
    errors
        ``(input, message)`` per input that could not be used.
    now
        Creation time (default: now, UTC).
    """
    created = (now or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    doc = {
        "schema": SCHEMA,
        "command": command,
        "created": created.isoformat().replace("+00:00", "Z"),
        "status": status,
        "provenance": {**dict.fromkeys(PROVENANCE_KEYS), **provenance},
        "inputs": [str(i) for i in inputs],
        "options": dict(options or {}),
        "outputs": relative_outputs(outputs, out_dir),
        "counts": dict(counts or {}),
        "results": [] if results is None else results,
        "flags": sorted(set(flags)),
        "warnings": [str(w) for w in warnings],
        "errors": [{"input": str(name), "error": str(message)} for name, message in errors],
    }
    check_summary(doc)
    return doc


def check_summary(doc: Any) -> None:
    """Raise ValueError naming every way ``doc`` departs from the one summary shape."""
    if not isinstance(doc, dict):
        raise ValueError(f"not a spindledx summary: a JSON object is expected, not {type(doc).__name__}")
    problems = [f"missing key '{k}'" for k in KEY_TYPES if k not in doc]
    problems += [f"unexpected key '{k}'" for k in doc if k not in KEY_TYPES]
    problems += [f"'{k}' must be {_type_name(t)}" for k, t in KEY_TYPES.items()
                 if k in doc and not isinstance(doc[k], t)]
    if problems:
        raise ValueError("not a spindledx summary: " + "; ".join(problems))
    if doc["schema"] != SCHEMA:
        problems.append(f"schema is {doc['schema']!r}, expected {SCHEMA!r}")
    if doc["status"] not in STATUSES:
        problems.append(f"status {doc['status']!r} is not one of {', '.join(STATUSES)}")
    try:
        _dt.datetime.fromisoformat(doc["created"])
    except ValueError:
        problems.append(f"created {doc['created']!r} is not an ISO 8601 time")
    problems += [f"provenance lacks '{k}'" for k in PROVENANCE_KEYS if k not in doc["provenance"]]
    problems += [f"output {p!r} is not a relative path inside the output folder" for p in doc["outputs"]
                 if not isinstance(p, str) or Path(p).is_absolute() or ".." in Path(p).parts]
    problems += [f"count '{k}' is not a number" for k, v in doc["counts"].items()
                 if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v))]
    problems += [f"{key} entry {v!r} is not a string" for key in ("inputs", "flags", "warnings")
                 for v in doc[key] if not isinstance(v, str)]
    problems += [f"error entry {e!r} is not {{'input', 'error'}}" for e in doc["errors"]
                 if not (isinstance(e, dict) and set(e) == {"input", "error"})]
    if problems:
        raise ValueError("not a spindledx summary: " + "; ".join(problems))


def write_summary(out_dir: str | Path, command: str, *, name: str = SUMMARY_NAME, **fields: Any) -> Path:
    """Build the summary (:func:`build_summary`, same keyword arguments) and write it atomically as
    ``out_dir/name``; returns the path."""
    from spindledx.files import atomic_write_text

    doc = build_summary(command, out_dir=out_dir, **fields)
    return atomic_write_text(Path(out_dir) / name, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False))


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string"}
    return " or ".join(names[x] for x in (t if isinstance(t, tuple) else (t,)))
