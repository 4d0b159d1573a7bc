"""Batch runner: score + quality-check every tile, locally (processes) or on Dask, resumably.

Each finished tile is appended to ``OUT/tiles.jsonl`` at once (one JSON object per line, flushed and fsynced),
so an interrupted run (Ctrl-C, a killed worker or machine) loses nothing that was done. A rerun with the same
``OUT`` skips tiles that already have a successful row and retries the failed ones; the last row of a tile wins.
A tile that cannot be read or scored becomes a row with ``error`` set and the batch goes on.

The per-tile work is :func:`process_tile`, a pure function of its arguments, so local and Dask runs give the
same rows (only ``seconds`` differs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spindledx import counting
from spindledx.detection.types import Detector
from spindledx.engine.progress import ProgressBar
from spindledx.errors import BadInputError
from spindledx.qa.manifest import TileSpec, points_array

JSONL_NAME = "tiles.jsonl"
RUN_NAME = "run.json"

#: ``reader(path, mpp=None) -> Tile`` (default :func:`spindledx.imaging.reader.read_image`).
Reader = Callable[..., Any]
#: ``scorer(tile) -> dict`` with the DESIGN.md ``score`` fields (default :func:`spindledx.mitosis.score.score_image`).
Scorer = Callable[[Any], Any]


@dataclass(frozen=True)
class RunOptions:
    """Settings that change the rows of a batch.

    Attributes
    ----------
    match_radius_um
        Hit radius of the MIDOG rule (7.5 µm; Aubreville et al., Med Image Anal 2023).
    hpf_area_mm2
        HPF area for per-10-HPF figures.
    threshold
        Detection score threshold (None: the detector's own).
    """

    match_radius_um: float = 7.5
    hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2
    threshold: float | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """What a run did: rows of every tile of the batch (manifest order) and counts."""

    rows: tuple[dict, ...]
    n_new: int
    n_skipped: int
    interrupted: bool
    failed: tuple[dict, ...] = field(default=())


def _default_reader(path: str, mpp: float | None = None) -> Any:
    from spindledx.imaging.reader import read_image

    return read_image(path, mpp=mpp)


def _shipped_detector(threshold: float | None, threads: int) -> Detector:
    """The shipped detector; its model is loaded once per worker process (:func:`load_shipped_model`)."""
    from spindledx.detection.detect import ModelDetector

    return ModelDetector(threshold=threshold, threads=threads)


def _score(tile: Any, detector: Detector | None, scorer: Scorer | None, options: RunOptions,
           model_threads: int) -> dict:
    if scorer is not None:
        result = scorer(tile)
    else:
        from spindledx.mitosis.score import score_image

        if detector is None:
            detector = _shipped_detector(options.threshold, model_threads)
        result = score_image(tile, detector=detector, hpf_area_mm2=options.hpf_area_mm2,
                             threshold=options.threshold)
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def _match(pred: list[dict], spec: TileSpec, mpp: float, radius_um: float) -> tuple[int, int, int]:
    import numpy as np

    from spindledx.mitosis.evaluate import match_points

    pred_xy = np.asarray([(m["x"], m["y"]) for m in pred], dtype=float).reshape(-1, 2)
    match = match_points(pred_xy, points_array(spec.points), radius_um / mpp)
    return match.tp, match.fp, match.fn


def file_stamp(path: str) -> str | None:
    """``size:mtime_ns`` of a file (None if it cannot be read): a changed image is scored again on resume."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def base_row(spec: TileSpec) -> dict:
    """The identity columns of a tile's row."""
    return {"key": spec.key, "image": spec.image, "file_stamp": file_stamp(spec.image), "row": spec.row,
            "case": spec.case, "expected_count": spec.expected_count,
            "n_reference_points": None if spec.points is None else len(spec.points)}


def process_tile(spec: TileSpec, *, detector: Detector | None = None, scorer: Scorer | None = None,
                 reader: Reader | None = None, options: RunOptions = RunOptions(), model_threads: int = 2) -> dict:
    """Read, score and quality-check one tile; never raises for a bad tile (the row carries the error).

    ``model_threads`` is the ONNX thread count of the shipped model (1 in worker processes, so that N workers
    use N cores); it does not change the results.

    Returns
    -------
    dict
        JSON-ready row: identity, the ``score`` fields, TP/FP/FN and count error where a reference exists,
        quality measures (``q_*``) and ``flags`` (image-quality flags followed by the count's ``guard_flags``,
        :mod:`spindledx.detection.guard`, each explained in ``flag_messages``), ``atypical_count`` /
        ``atypical_fraction`` and ``ood_score``, ``error`` / ``error_kind`` (``bad_input`` or ``failure``) and
        ``seconds``. ``KeyboardInterrupt`` is not caught.
    """
    from spindledx.qa.quality import assess_quality

    start = time.perf_counter()
    row = base_row(spec)
    try:
        tile = (reader or _default_reader)(spec.image, mpp=spec.mpp)
        scored = _score(tile, detector, scorer, options, model_threads)
        for key in ("width", "height", "mpp", "mpp_source", "area_mm2", "count", "mitoses_per_mm2",
                    "mitoses_per_10hpf", "hpf_area_mm2", "fnclcc_mitotic_score", "mitoses", "warnings"):
            row[key] = scored.get(key)
        row["count_error"] = None if spec.expected_count is None else int(row["count"]) - spec.expected_count
        if spec.points is not None:
            row["tp"], row["fp"], row["fn"] = _match(row["mitoses"], spec, float(row["mpp"]),
                                                     options.match_radius_um)
        for key in ("atypical_count", "atypical_fraction", "ood_score", "flag_messages"):
            row[key] = scored.get(key)
        row["guard_flags"] = list(scored.get("flags") or [])
        quality = assess_quality(tile.rgb, float(tile.mpp)).to_dict()
        row["flags"] = quality.pop("flags") + row["guard_flags"]
        row.update({f"q_{k}": v for k, v in quality.items()})
        row["error"] = None
        row["error_kind"] = None
    except BadInputError as exc:
        row.update(error=str(exc), error_kind="bad_input")
    except Exception as exc:  # one bad tile must not stop the batch; the row records what happened
        row.update(error=f"{type(exc).__name__}: {exc}", error_kind="failure")
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


class ResultStore:
    """Append-only JSON-lines file of tile rows (flushed and fsynced per row); the last row of a key wins."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict]:
        """Rows by key; a truncated last line (a crash mid-write) is ignored."""
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "key" in row:
                    rows[row["key"]] = row
        return rows

    def append(self, row: dict) -> None:
        """Append one row durably (non-finite numbers are stored as null)."""
        line = json.dumps(_finite_only(row), ensure_ascii=False, allow_nan=False, default=_json_default)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _finite_only(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v) for v in value]
    return value


def run_signature(options: RunOptions, *, injected: bool) -> dict:
    """What must not change between a run and its resumption: options and the shipped model's checksum."""
    sig: dict[str, Any] = {"match_radius_um": options.match_radius_um, "hpf_area_mm2": options.hpf_area_mm2,
                           "threshold": options.threshold}
    if injected:
        sig["detector"] = "injected"
    else:
        try:
            from spindledx.detection.model import shipped_description

            desc = shipped_description()
            sig["detector"] = f"shipped model {desc.version} sha256 {desc.sha256} threshold {desc.threshold}"
        except BadInputError:
            sig["detector"] = "shipped model (description unreadable)"
    return sig


def _check_resume(out_dir: Path, signature: dict) -> None:
    path = out_dir / RUN_NAME
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = None
        if previous is not None and previous != signature:
            changed = ", ".join(k for k in signature if previous.get(k) != signature[k])
            raise BadInputError(f"{out_dir} holds a run with different settings ({changed}); use a new --out "
                                "or delete that folder to start again")
    else:
        path.write_text(json.dumps(signature, indent=2))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def _still_done(row: dict | None, spec: TileSpec) -> bool:
    """A stored row counts as done when it succeeded, for the same image file and the same reference."""
    if row is None or row.get("error") is not None:
        return False
    return (row.get("file_stamp") == file_stamp(spec.image) and row.get("expected_count") == spec.expected_count
            and row.get("n_reference_points") == (None if spec.points is None else len(spec.points)))


def _run_local(todo: list[TileSpec], jobs: int, kwargs: dict) -> Iterator[dict]:
    if jobs <= 1:
        for spec in todo:
            yield process_tile(spec, **kwargs)
        return
    kwargs = {**kwargs, "model_threads": 1}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(process_tile, spec, **kwargs): spec for spec in todo}
        try:
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except BrokenProcessPool as exc:
                    row = base_row(futures[fut])
                    row.update(error=f"worker process died ({exc}); rerun to retry", error_kind="failure",
                               seconds=None)
                    yield row
        except BaseException:
            for fut in futures:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(todo: list[TileSpec], address: str, kwargs: dict) -> Iterator[dict]:
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_as_completed

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    kwargs = {**kwargs, "model_threads": 1}
    try:
        futures = {client.submit(process_tile, spec, pure=False, **kwargs): spec for spec in todo}
        try:
            for fut in dask_as_completed(list(futures)):
                try:
                    yield fut.result()
                except Exception as exc:  # e.g. KilledWorker: the tile is retried on the next run
                    row = base_row(futures[fut])
                    row.update(error=f"{type(exc).__name__}: {exc}; rerun to retry", error_kind="failure",
                               seconds=None)
                    yield row
        finally:
            client.cancel(list(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(specs: list[TileSpec], out_dir: str | Path, *, jobs: int = 1, dask: str | None = None,
              detector: Detector | None = None, scorer: Scorer | None = None, reader: Reader | None = None,
              options: RunOptions = RunOptions(), progress: bool = True,
              on_row: Callable[[dict], None] | None = None) -> BatchOutcome:
    """Process every tile not yet done in ``out_dir`` and return all rows of the batch.

    Parameters
    ----------
    specs
        Tiles (from :mod:`spindledx.qa.manifest`).
    out_dir
        Output folder; ``tiles.jsonl`` there is read to resume and appended to.
    jobs
        Local worker processes (1: in this process).
    dask
        ``"local"`` for a 2-worker LocalCluster (processes, 1 thread each) or a scheduler address
        (``tcp://host:8786``); overrides ``jobs``.
    detector, scorer, reader
        Injected callables (defaults: the shipped detector, :func:`~spindledx.mitosis.score.score_image`,
        :func:`~spindledx.imaging.reader.read_image`). They must be picklable for ``jobs > 1`` or Dask.
    options
        :class:`RunOptions`.
    progress
        Show a rich progress bar (tiles/s, ETA) on stderr.
    on_row
        Called with each new row in this process (after it is stored).

    Raises
    ------
    BadInputError
        ``out_dir`` holds a run made with other options or another shipped model (``run.json``).

    Returns
    -------
    BatchOutcome
        ``interrupted`` is True after Ctrl-C; the rows done so far are kept and the caller should write
        the outputs and re-raise.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_resume(out_dir, run_signature(options, injected=detector is not None or scorer is not None))
    store = ResultStore(out_dir / JSONL_NAME)
    previous = store.read()
    todo = [s for s in specs if not _still_done(previous.get(s.key), s)]
    kwargs = {"detector": detector, "scorer": scorer, "reader": reader, "options": options}
    rows = dict(previous)
    n_new = 0
    interrupted = False
    try:
        with ProgressBar(progress, len(specs), done=len(specs) - len(todo), unit="tiles") as advance:
            source: Iterable[dict] = (_run_dask(todo, dask, kwargs) if dask else
                                      _run_local(todo, jobs, kwargs))
            for row in source:
                store.append(row)
                rows[row["key"]] = row
                n_new += 1
                if on_row is not None:
                    on_row(row)
                advance()
    except KeyboardInterrupt:
        interrupted = True
    ordered = tuple(rows[s.key] for s in specs if s.key in rows)
    failed = tuple(r for r in ordered if r.get("error"))
    return BatchOutcome(rows=ordered, n_new=n_new, n_skipped=len(specs) - len(todo), interrupted=interrupted,
                        failed=failed)


@dataclass(frozen=True)
class BatchReport:
    """A finished (or interrupted) batch: its outcome, the summary object and the written files."""

    outcome: BatchOutcome
    summary: dict
    paths: dict


def _provenance(options: RunOptions, *, injected: bool) -> dict:
    """Versions, threshold and date for the batch outputs (an injected detector is named as such)."""
    from spindledx.pages import provenance

    if injected:
        prov = provenance(include_model=False)
        return {"spindledx_version": prov["spindledx_version"], "model_name": "injected detector",
                "threshold": options.threshold, "kb_version": prov["kb_version"], "date": prov["date"]}
    return provenance(threshold=options.threshold)


def run_and_write(specs: list[TileSpec], out_dir: str | Path, *, jobs: int = 1, dask: str | None = None,
                  detector: Detector | None = None, scorer: Scorer | None = None, reader: Reader | None = None,
                  options: RunOptions = RunOptions(), progress: bool = True,
                  interpret: Callable[..., object] | None = None) -> BatchReport:
    """:func:`run_batch`, then write ``tiles.csv``, ``tiles.parquet``, ``summary.json`` and ``report.html``.

    The outputs are written also after Ctrl-C (from the rows done so far; ``summary["interrupted"]`` is True).
    """
    from spindledx.qa.agreement import summarize
    from spindledx.qa.report import write_outputs

    outcome = run_batch(specs, out_dir, jobs=jobs, dask=dask, detector=detector, scorer=scorer, reader=reader,
                        options=options, progress=progress)
    specs_by_key = {s.key: s for s in specs}
    summary = summarize(outcome.rows, specs_by_key, match_radius_um=options.match_radius_um,
                        hpf_area_mm2=options.hpf_area_mm2, interrupted=outcome.interrupted,
                        n_planned=len(specs), interpret=interpret)
    paths = write_outputs(outcome.rows, summary, out_dir, specs_by_key=specs_by_key,
                          provenance=_provenance(options, injected=detector is not None or scorer is not None))
    return BatchReport(outcome=outcome, summary=summary, paths=paths)
