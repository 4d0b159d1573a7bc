"""Who owns an output folder: one rule for every command that writes one.

A run writes only into

* a folder that does not exist or is empty, or
* a folder that holds a run of the same command with the same signature (the settings that change its results);
  the run then resumes (``batch``, ``slide``) or writes the same outputs again (``score``, ``case``).

Anything else (another command's folder, the same command with other inputs or settings, a folder of the user's
own files) is refused with one line, unless the user asks to ``overwrite``: the files the previous run listed
as its outputs (``summary.json``) and its resume state are then removed (never a file spindledx did not write),
and the folder belongs to the new run.

The owner is recorded in ``OUT/.spindledx-run.json`` (command, signature, settings) when the run starts, and the
folder lock (:class:`spindledx.engine.store.RunLock`) is held for the whole run, so two runs on one folder
cannot interleave. :func:`is_own_output` lets folder scans skip the images a run wrote (overlays, thumbnails),
so that a run never reads its own outputs as inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from spindledx.engine.store import LOCK_NAME, RunLock, _finite_only, signature
from spindledx.errors import BadInputError
from spindledx.files import atomic_write_text, check_output_target, printable, read_json

OWNER_NAME = ".spindledx-run.json"
OWNER_FORMAT = "spindledx-run/1"
OUTPUT_IMAGE_SUFFIXES = ("_overlay.png", "_thumbnail.png", "_heatmap.png")
"""Images spindledx writes into an output folder (never read back as inputs)."""
_IGNORED = {LOCK_NAME, OWNER_NAME}


def _owner(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / OWNER_NAME
    if not path.exists() and not path.is_symlink():
        return None
    try:
        doc = read_json(path, what="a spindledx run record", max_bytes=1 << 20)
    except BadInputError:
        return {}
    return doc if isinstance(doc, dict) and doc.get("format") == OWNER_FORMAT else {}


def _legacy_owner(out_dir: Path) -> str | None:
    """The command of a folder written before run records existed (its ``summary.json``), else None."""
    path = out_dir / "summary.json"
    if not path.is_file() or path.is_symlink():
        return None
    try:
        doc = read_json(path, what="a summary", max_bytes=64 << 20)
    except BadInputError:
        return None
    if isinstance(doc, dict) and str(doc.get("schema", "")).startswith("spindledx-summary/"):
        return str(doc.get("command"))
    return None


def _entries(out_dir: Path) -> list[str]:
    """Names in the folder besides hidden ones (the lock, the run record, temporary files of interrupted atomic
    writes, a file manager's notes): spindledx never writes over a hidden file."""
    return sorted(n for n in os.listdir(out_dir) if n not in _IGNORED and not n.startswith("."))


def _changed(previous: dict[str, Any], settings: dict[str, Any]) -> str:
    old = previous.get("settings") if isinstance(previous.get("settings"), dict) else {}
    keys = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
    return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "") if keys else "settings"


def check_owner(out_dir: Path, command: str, settings: dict[str, Any], *, overwrite: bool,
                hint: str = "", hint_parameters: tuple[str, ...] = ()) -> bool:
    """Apply the ownership rule to ``out_dir`` (which exists); returns True when a previous run is replaced.

    Raises
    ------
    BadInputError
        The folder holds something else and ``overwrite`` is False.
    """
    sig = signature({"command": command, **settings})
    owner = _owner(out_dir)
    extra = f"{hint}" if hint else ""
    if owner:
        if owner.get("command") == command and owner.get("signature") == sig:
            return False
        if overwrite:
            return True
        if owner.get("command") != command:
            raise BadInputError(f"{printable(out_dir)} holds the outputs of `spindledx {owner.get('command')}`; "
                                f"choose another out_dir, or overwrite=True to replace them{extra}",
                                parameters=("out_dir", "overwrite", *hint_parameters))
        raise BadInputError(f"{printable(out_dir)} holds a `spindledx {command}` run with other inputs or settings "
                            f"({_changed(owner, settings)}); choose another out_dir, or overwrite=True to replace "
                            f"it{extra}", parameters=("out_dir", "overwrite", *hint_parameters))
    names = _entries(out_dir)
    if not names:
        return False
    legacy = _legacy_owner(out_dir) if owner is None else None
    if legacy == command:
        return False  # a folder of this command written before run records: its own checks (run.json) apply
    if overwrite:
        return True
    if legacy is not None or owner == {}:
        what = f"the outputs of `spindledx {legacy}`" if legacy else "a damaged spindledx run record"
        raise BadInputError(f"{printable(out_dir)} holds {what}; choose another out_dir, or overwrite=True to "
                            f"replace them{extra}", parameters=("out_dir", "overwrite", *hint_parameters))
    shown = ", ".join(printable(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")
    raise BadInputError(f"{printable(out_dir)} is not empty and holds no spindledx run ({len(names)} entries: "
                        f"{shown}); choose a new or empty out_dir, or overwrite=True to write into it{extra}",
                        parameters=("out_dir", "overwrite", *hint_parameters))


def _listed_outputs(out_dir: Path) -> list[Path]:
    """Files the previous run listed as its outputs (``summary.json`` and the run record's list)."""
    names: set[str] = set()
    for name, key in (("summary.json", "outputs"), ("review_summary.json", "outputs"), (OWNER_NAME, "outputs")):
        path = out_dir / name
        if not path.is_file() or path.is_symlink():
            continue
        try:
            doc = read_json(path, what="a summary", max_bytes=64 << 20)
        except BadInputError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get(key), list):
            names.update(str(n) for n in doc[key] if isinstance(n, str))
        if name != OWNER_NAME and isinstance(doc, dict) and str(doc.get("schema", "")).startswith("spindledx"):
            names.add(name)
    return [out_dir / n for n in sorted(names) if n and not Path(n).is_absolute() and ".." not in Path(n).parts]


def clear_previous_run(out_dir: Path, state: Iterable[str] = ()) -> None:
    """Remove what a previous run wrote: the files its summary lists and the named resume ``state`` (files, or
    folders holding only ``*.jsonl`` files). Links are removed, never followed; the user's files stay."""
    root = Path(os.path.realpath(out_dir))
    for path in [*_listed_outputs(out_dir), *(out_dir / s for s in state)]:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if Path(os.path.realpath(path.parent)) != root and not str(os.path.realpath(path.parent)).startswith(
                str(root) + os.sep):
            continue
        if stat.S_ISDIR(st.st_mode):
            if all(p.is_file() and not p.is_symlink() and (p.suffix in (".jsonl", ".json", ".tmp")
                                                          or p.name.startswith("."))
                   for p in path.rglob("*")):
                shutil.rmtree(path)
            continue
        with contextlib.suppress(OSError):
            path.unlink()


def write_owner(out_dir: Path, command: str, settings: dict[str, Any], outputs: Iterable[str] = ()) -> Path:
    """Record ``command`` and its signature as the owner of ``out_dir``."""
    doc = {"format": OWNER_FORMAT, "command": command, "signature": signature({"command": command, **settings}),
           "settings": json.loads(json.dumps(_finite_only(settings), default=str, allow_nan=False)),
           "outputs": sorted(outputs)}
    return atomic_write_text(out_dir / OWNER_NAME, json.dumps(doc, indent=1, ensure_ascii=False))


@contextlib.contextmanager
def output_folder(out_dir: str | Path, command: str, settings: dict[str, Any], *, overwrite: bool = False,
                  state: Iterable[str] = (), hint: str = "",
                  hint_parameters: tuple[str, ...] = ()) -> Iterator[Path]:
    """Claim ``out_dir`` for a run of ``command`` (created when missing) and hold its lock until the block ends.

    Parameters
    ----------
    out_dir
        The output folder.
    command
        The command as typed after ``spindledx`` (``"score"``, ``"case"``, ...).
    settings
        Everything the run's results depend on (inputs, options); equal settings resume or redo the same run.
    overwrite
        Replace whatever the folder holds (the previous run's listed outputs and ``state`` are removed first).
    state
        Names of the command's resume state (``tiles.jsonl``, ``run.json``, ``tiles``), removed on overwrite.
    hint, hint_parameters
        Text added to a refusal (e.g. another parameter that also allows the run) and the parameters it names.

    Raises
    ------
    BadInputError
        ``out_dir`` is not a folder, is in use by another run, or belongs to another run (see the module).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"{printable(out_dir)}: exists and is not a folder", parameters="out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir):
        check_output_target(out_dir / OWNER_NAME)
        if check_owner(out_dir, command, settings, overwrite=overwrite, hint=hint,
                       hint_parameters=hint_parameters):
            clear_previous_run(out_dir, state)
        write_owner(out_dir, command, settings)
        yield out_dir


def guest_lock(out_dir: str | Path) -> RunLock:
    """The lock of another command's folder, for a command that adds files to it (``review``)."""
    return RunLock(out_dir)


def is_own_output(path: str | Path, root: str | Path | None = None) -> bool:
    """Whether ``path`` is an image a spindledx run wrote (an overlay, thumbnail or heat map in a folder holding a
    run record or a spindledx summary), so that folder scans never read a run's outputs as inputs.

    ``root`` bounds the folders looked at (the folder the scan started from); default: the file's own folder.
    """
    path = Path(path)
    if not path.name.lower().endswith(OUTPUT_IMAGE_SUFFIXES):
        return False
    stop = Path(os.path.abspath(root)) if root is not None else None
    folder = Path(os.path.abspath(path.parent))
    while True:
        if (folder / OWNER_NAME).exists() or _legacy_owner(folder) is not None:
            return True
        if stop is None or folder == stop or folder.parent == folder or not folder.is_relative_to(stop):
            return False
        folder = folder.parent


def collect_images(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Expand image paths: files as given, folders recursively (png/jpg/jpeg/tif/tiff, sorted, hidden files skipped,
    and the images spindledx wrote into an output folder skipped: :func:`is_own_output`).

    The same file given twice (``./t1.png`` and ``t1.png``, or a file and its folder) is kept once, so its area is
    not counted twice. Returns the images and one note per dropped repeat.

    Raises
    ------
    BadInputError
        A missing path or a folder without images.
    """
    from spindledx.imaging.reader import IMAGE_SUFFIXES

    images: list[Path] = []
    notes: list[str] = []
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts)
                           and not is_own_output(p, path))
            if not found:
                raise BadInputError(f"{path}: no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) in this folder")
        elif path.exists():
            found = [path]
        else:
            raise BadInputError(f"{path}: no such file or folder")
        for image in found:
            key = os.path.realpath(image)
            if key in seen:
                notes.append(f"{image}: the same file as {seen[key]}; scored once")
                continue
            seen[key] = image
            images.append(image)
    if not images:
        raise BadInputError("no images given")
    return images, notes
