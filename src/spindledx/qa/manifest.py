"""Batch input: a folder of tiles or a manifest (CSV / Parquet), validated up front.

Manifest columns (one row per tile; paths relative to the manifest's folder):

``image`` (required), ``case``, ``mpp`` (µm/px), ``expected_count`` (reference mitotic count), ``annotations``
(CSV of reference points for that tile, columns ``x, y`` or ``cx, cy``), ``panel`` (IHC results, e.g.
``"actin+ desmin+ CD34-"``), ``diagnosis`` (recorded entity id), ``site``. ``panel``, ``diagnosis`` and ``site``
describe the case: rows of one case must not disagree.

:func:`load_manifest` and :func:`tiles_from_folder` check every row before any image is read and raise one
:class:`~spindledx.errors.BadInputError` listing all bad rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spindledx import counting
from spindledx.errors import BadInputError
from spindledx.files import printable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_EXPECTED_COUNT = 100_000
"""Largest reference count accepted for one tile (a whole slide holds a few thousand figures at most)."""


def _clip(value: object, limit: int = 60) -> str:
    """``value`` as text, cut to ``limit`` characters for an error message."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


MANIFEST_COLUMNS = ("image", "case", "mpp", "expected_count", "annotations", "panel", "diagnosis", "site", "roi",
                    "roi_class")
CASE_COLUMNS = ("panel", "diagnosis", "site")
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class TileSpec:
    """One tile of a batch.

    Attributes
    ----------
    key
        Identity of the tile in the batch (the image path as written in the manifest, or relative to the folder);
        used to resume.
    image
        Absolute path of the image.
    row
        Manifest row number (1 = first data row; 0 for folder input).
    case
        Case identifier (defaults to the image stem).
    mpp
        Resolution override in µm/px (None: the file's metadata or the reader's assumption).
    expected_count
        Reference mitotic count, if known (from the manifest or the number of reference points).
    points
        Reference mitotic figures as ``((x, y), ...)`` in image pixels, or None when not annotated.
    panel, diagnosis, site
        Case-level IHC panel text, recorded diagnosis (entity id) and site.
    roi, roi_class
        Region of interest of the image (absolute path of a QuPath GeoJSON export) and the annotation class to use;
        the tile is then counted inside the region only.
    """

    key: str
    image: str
    row: int = 0
    case: str = ""
    mpp: float | None = None
    expected_count: int | None = None
    points: tuple[tuple[float, float], ...] | None = None
    panel: str | None = None
    diagnosis: str | None = None
    site: str | None = None
    roi: str | None = None
    roi_class: str | None = None


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: object) -> str | None:
    return None if _blank(value) else str(value).strip()


def read_points_csv(path: str | Path, *, image: str | None = None) -> dict[str, tuple[tuple[float, float], ...]]:
    """Read reference points from a CSV with ``x, y`` (or ``cx, cy``) columns and an optional ``image`` column.

    Returns a mapping image name -> points; without an ``image`` column everything is filed under ``image``
    (or ``""``). Raises BadInputError when the file or its columns are wrong.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such annotations file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        raise BadInputError(f"{path}: not a readable CSV of points (image, x, y)") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror})") from None
    _refuse_repeated_columns(path, [str(c).lower().strip() for c in table.columns])
    cols = {str(c).lower().strip(): c for c in table.columns}
    xcol = cols.get("x", cols.get("cx"))
    ycol = cols.get("y", cols.get("cy"))
    if xcol is None or ycol is None:  # the header is not echoed: the file may be anything
        raise BadInputError(f"{path}: annotations need a header with columns x, y (or cx, cy) and optionally "
                            f"image; this file's {len(table.columns)} column(s) have none of those names")
    xs = pd.to_numeric(table[xcol], errors="coerce")
    ys = pd.to_numeric(table[ycol], errors="coerce")
    if not (np.isfinite(xs.to_numpy(float)).all() and np.isfinite(ys.to_numpy(float)).all()):
        raise BadInputError(f"{path}: point coordinates must be finite numbers (pixels)")
    names = table[cols["image"]].astype(str).map(lambda s: Path(s).name) if "image" in cols else None
    out: dict[str, list[tuple[float, float]]] = {}
    for i in range(len(table)):
        name = names.iloc[i] if names is not None else (image or "")
        out.setdefault(name, []).append((float(xs.iloc[i]), float(ys.iloc[i])))
    return {k: tuple(v) for k, v in out.items()}


def _check_panel(text: str, site: str | None, parse: Callable[[str], object] | None) -> str | None:
    """Problem with a case's panel (unknown marker or result word via ``parse_panel``) or site, else None."""
    if parse is None:
        from spindledx.ihc import parse_panel

        parse = parse_panel
    try:
        parse(text)
    except BadInputError as exc:
        return f"panel: {exc}"
    if site is not None:
        from spindledx.ihc import interpret_panel

        try:
            interpret_panel(text, site=site)
        except BadInputError as exc:
            return f"site: {exc}"
    return None


def _check_site(site: str) -> list[str]:
    """``["site: ..."]`` for an unknown site (checked also when the case has no panel), else ``[]``."""
    from spindledx.ihc.vocabulary import resolve_site

    try:
        resolve_site(site)
    except BadInputError as exc:
        return [f"site: {exc}"]
    return []


def _resolve_diagnosis(text: str) -> tuple[str | None, str | None]:
    """``(entity_id, None)`` for a known entity name, id or alias, else ``(None, problem)``."""
    from spindledx.ihc.lookups import resolve_entity

    try:
        return resolve_entity(text), None
    except BadInputError as exc:
        return None, f"diagnosis: {exc}"


def _raise_problems(source: str, problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:MAX_LISTED_PROBLEMS]
    more = f"; ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise BadInputError(f"{source}: {len(problems)} bad row(s): " + "; ".join(shown) + more)


def _refuse_repeated_columns(path: Path, names: list[str]) -> None:
    """Refuse a table with two columns of one name (letter case and spaces ignored: ``image`` and ``IMAGE``), of
    which one would otherwise be dropped silently."""
    import re

    base = [re.sub(r"\.\d+$", "", n) if re.sub(r"\.\d+$", "", n) in names else n for n in names]  # pandas' x.1
    repeated = sorted({n for n in base if base.count(n) > 1})
    if repeated:
        raise BadInputError(f"{path}: the column '{repeated[0]}' appears more than once (letter case ignored); keep "
                            "one")


def load_manifest(path: str | Path, *, default_mpp: float | None = None,
                  parse_panel: Callable[[str], object] | None = None) -> list[TileSpec]:
    """Read and validate a manifest CSV or Parquet file.

    Parameters
    ----------
    path
        ``.csv`` or ``.parquet`` file with the columns of :data:`MANIFEST_COLUMNS` (only ``image`` required).
    default_mpp
        Resolution for rows without an ``mpp`` value (None: the file's metadata or the reader's assumption).
    parse_panel
        IHC panel parser raising BadInputError on unknown markers (default :func:`spindledx.ihc.parse_panel`).

    Returns
    -------
    list of TileSpec
        In manifest order.

    Raises
    ------
    BadInputError
        One message listing every bad row (missing image or annotation file, bad mpp or expected count, unknown
        marker or site, unknown diagnosis, duplicate image, case-level fields that disagree within a case).
        Diagnoses are stored as entity ids (names and aliases are resolved).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such manifest file")
    if default_mpp is not None:
        counting.check_mpp(default_mpp)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise BadInputError(f"{path}: reading a Parquet manifest needs pyarrow: pip install "
                                    "'spindledx[parquet]', or give the manifest as CSV") from None
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except BadInputError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise BadInputError(f"{path}: not a readable manifest ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    _refuse_repeated_columns(path, list(table.columns))
    if "image" not in table.columns:
        raise BadInputError(f"{path}: the manifest needs an 'image' column; found {', '.join(table.columns)}")
    unknown = [c for c in table.columns if c not in MANIFEST_COLUMNS]
    if unknown:
        raise BadInputError(f"{path}: unknown column(s) {', '.join(unknown)}; known: {', '.join(MANIFEST_COLUMNS)}")
    if table.empty:
        raise BadInputError(f"{path}: the manifest has no rows")
    base = path.parent
    all_images = [t for t in (_text(v) for v in table["image"]) if t]
    problems: list[str] = []
    specs: list[TileSpec] = []
    seen: dict[str, int] = {}
    case_fields: dict[str, dict[str, tuple[str | None, int]]] = {}
    panel_checked: dict[tuple[str, str | None], str | None] = {}
    diagnoses: dict[str, tuple[str | None, str | None]] = {}
    for i, rec in enumerate(table.to_dict("records"), start=1):
        errs: list[str] = []
        image_text = _text(rec.get("image"))
        image_path = None
        if image_text is None:
            errs.append("image is empty")
        else:
            image_path = (base / image_text).resolve()
            if not image_path.is_file():
                errs.append(f"image '{_clip(image_text)}' not found")
            same = str(image_path)  # ./t1.png and t1.png are one file
            if same in seen:
                errs.append(f"image '{_clip(image_text)}' repeats row {seen[same]} (the same file)")
            else:
                seen[same] = i
        mpp = default_mpp
        if not _blank(rec.get("mpp")):
            try:
                mpp = counting.check_mpp(float(rec["mpp"]))
            except BadInputError as exc:
                errs.append(str(exc))
            except (TypeError, ValueError):
                errs.append(f"mpp '{rec['mpp']}' is not a number")
        expected = None
        if not _blank(rec.get("expected_count")):
            try:
                value = float(rec["expected_count"])
                if not (0 <= value <= MAX_EXPECTED_COUNT and value == int(value)):
                    raise ValueError
                expected = int(value)
            except (TypeError, ValueError, OverflowError):
                errs.append(f"expected_count '{_clip(rec['expected_count'])}' is not an integer between 0 and "
                            f"{MAX_EXPECTED_COUNT:,}")
        points = None
        ann = _text(rec.get("annotations"))
        if ann is not None:
            try:
                by_image = read_points_csv(base / ann, image=Path(image_text or "").name)
                if len(by_image) == 1 and "" in by_image:
                    points = by_image[""]
                else:
                    points = by_image.get(Path(image_text or "").name, ())
            except BadInputError as exc:
                errs.append(f"annotations: {exc}")
        roi = _text(rec.get("roi"))
        if roi is not None:
            roi = str((base / roi).resolve())
            if not Path(roi).is_file():
                errs.append(f"roi '{_clip(_text(rec.get('roi')) or '')}' not found")
        roi_class = _text(rec.get("roi_class"))
        if roi_class is not None and roi is None:
            errs.append("roi_class without roi")
        if roi is not None and points is not None and not errs:
            try:  # reference figures outside the region are not part of what is counted
                import numpy as np

                from spindledx.imaging.roi import load_roi

                xy = np.asarray(points, float).reshape(-1, 2)
                inside = load_roi(roi, roi_class).contains(xy[:, 0], xy[:, 1]) if len(xy) else []
                points = tuple(p for p, k in zip(points, inside, strict=True) if k)
            except BadInputError as exc:
                errs.append(f"roi: {exc}")
        case = _text(rec.get("case")) or (default_case(image_text, all_images) if image_text else f"row{i}")
        fields = {c: _text(rec.get(c)) for c in CASE_COLUMNS}
        if fields["diagnosis"] is not None:
            if fields["diagnosis"] not in diagnoses:
                diagnoses[fields["diagnosis"]] = _resolve_diagnosis(fields["diagnosis"])
            entity_id, problem = diagnoses[fields["diagnosis"]]
            if problem:
                errs.append(problem)
            else:
                fields["diagnosis"] = entity_id
        known = case_fields.setdefault(case, {})
        for col, val in fields.items():
            if val is None:
                continue
            prev = known.get(col)
            if prev is not None and prev[0] != val:
                errs.append(f"case '{case}' has {col} '{val}' but row {prev[1]} says '{prev[0]}'")
            elif prev is None:
                known[col] = (val, i)
        if fields["site"] is not None and fields["panel"] is None:
            errs.extend(_check_site(fields["site"]))
        if fields["panel"] is not None:
            key = (fields["panel"], fields["site"])
            if key not in panel_checked:
                panel_checked[key] = _check_panel(fields["panel"], fields["site"], parse_panel)
            if panel_checked[key]:
                errs.append(panel_checked[key])
        if errs:
            problems.append(f"row {i}: " + ", ".join(errs))
            continue
        specs.append(TileSpec(key=image_text, image=str(image_path), row=i, case=case, mpp=mpp,
                              expected_count=expected if expected is not None else (
                                  len(points) if points is not None else None),
                              points=points, roi=roi, roi_class=roi_class, **fields))
    _raise_problems(str(path), problems)
    # case-level fields given on one row apply to every row of the case
    return [_with_case_fields(s, case_fields.get(s.case, {})) for s in specs]


def _with_case_fields(spec: TileSpec, known: dict[str, tuple[str | None, int]]) -> TileSpec:
    values = {c: (getattr(spec, c) or (known[c][0] if c in known else None)) for c in CASE_COLUMNS}
    if all(values[c] == getattr(spec, c) for c in CASE_COLUMNS):
        return spec
    return TileSpec(key=spec.key, image=spec.image, row=spec.row, case=spec.case, mpp=spec.mpp,
                    expected_count=spec.expected_count, points=spec.points, roi=spec.roi, roi_class=spec.roi_class,
                    **values)


def tiles_from_folder(folder: str | Path, *, mpp: float | None = None,
                      annotations: str | Path | None = None) -> list[TileSpec]:
    """Every image in ``folder`` (not recursive, sorted by name) as a TileSpec.

    Parameters
    ----------
    folder
        Folder of PNG / JPEG / TIFF tiles.
    mpp
        Resolution override for all tiles.
    annotations
        CSV of reference points for the whole set with columns ``image`` and ``x, y`` (or ``cx, cy``), e.g.
        ``../shared/data/midesec-train/mitoses.csv``. Tiles without a row are annotated with zero figures; rows
        for images not in the folder are ignored (a subset of a set may be run).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"{folder}: not a folder")
    if mpp is not None:
        counting.check_mpp(mpp)
    from spindledx.engine.folder import is_own_output

    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not is_own_output(p))
    if not images:
        raise BadInputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    by_image = read_points_csv(annotations) if annotations is not None else None
    names = [printable(p.name) for p in images]  # a name that is not UTF-8 is shown with \xNN escapes
    specs = []
    for p, name in zip(images, names, strict=True):
        points = None if by_image is None else by_image.get(name, by_image.get(p.name, ()))
        specs.append(TileSpec(key=name, image=str(p.resolve()), case=default_case(name, names), mpp=mpp,
                              expected_count=None if points is None else len(points), points=points))
    return specs


def default_case(image: str, images: list[str]) -> str:
    """Case of a tile without one: its file stem, or its file name when another image shares the stem
    (``tile.png`` and ``tile.jpg`` are not pooled into one case)."""
    stem = Path(image).stem
    shared = sum(1 for other in images if Path(other).stem == stem and Path(other).name != Path(image).name)
    return Path(image).name if shared else stem


def points_array(points: tuple[tuple[float, float], ...] | None) -> np.ndarray:
    """Reference points as an ``(n, 2)`` float array (empty when None)."""
    return np.asarray(points if points else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
