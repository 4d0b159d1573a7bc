"""Batch runner: score + quality-check every tile, locally (processes) or on Dask, resumably.

Each finished tile is appended to ``OUT/tiles.jsonl`` at once (one JSON object per line, flushed and fsynced),
so an interrupted run (Ctrl-C, a killed worker or machine) loses nothing that was done. A rerun with the same
``OUT`` skips tiles that already have a successful row and retries the failed ones; the last row of a tile wins.
A tile that cannot be read or scored becomes a row with ``error`` set and the batch goes on.

The per-tile work is :func:`process_tile`, a pure function of its arguments, so local and Dask runs give the
same rows (only ``seconds`` differs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spindledx import counting
from spindledx.detection.types import Detector
from spindledx.engine.progress import ProgressBar
from spindledx.engine.store import ResultLog, RunLock, check_run_file, file_identity, signature
from spindledx.engine.workers import run_dask, run_local
from spindledx.errors import BadInputError
from spindledx.files import printable
from spindledx.qa.manifest import TileSpec, points_array

JSONL_NAME = "tiles.jsonl"
RUN_NAME = "run.json"

#: ``reader(path, mpp=None) -> Tile`` (default :func:`spindledx.imaging.reader.read_image`).
Reader = Callable[..., Any]
#: ``scorer(tile) -> dict`` with the ``score`` fields of docs/architecture.md (default
#: :func:`spindledx.mitosis.score.score_image`).
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
    model
        A model card (JSON beside its ONNX file, the model contract of ``docs/guide/models.md``) to score with
        instead of the shipped model; every process that scores tiles loads it itself (checksum verified, cached
        per process, :func:`spindledx.detection.model.load_model_file`).
    model_sha256
        The sha256 of that card's ONNX file when the run started: a worker that finds another one scores no tile
        with it (the row carries the error).
    """

    match_radius_um: float = 7.5
    hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2
    threshold: float | None = None
    model: str | None = None
    model_sha256: str | None = None


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


def _score(tile: Any, detector: Detector | None, scorer: Scorer | None, options: RunOptions,
           model_threads: int, spec: TileSpec | None = None) -> dict:
    if scorer is not None:
        result = scorer(tile)
    else:
        from spindledx.mitosis.score import score_image

        if detector is None:
            detector = _run_detector(options, model_threads)
        region = None
        if spec is not None and spec.roi is not None:
            from spindledx.imaging.roi import load_roi

            region = load_roi(spec.roi, spec.roi_class)
        result = score_image(tile, detector=detector, hpf_area_mm2=options.hpf_area_mm2,
                             threshold=options.threshold, roi=region)
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def _run_detector(options: RunOptions, model_threads: int) -> Detector:
    """The detector of the run's options: the model card's (loaded once per process and thread setting, its
    sha256 checked against the one the run started with) or the shipped one."""
    from spindledx.detection import shipped

    if options.model is None:
        return shipped.shipped_detector(options.threshold, threads=model_threads)
    detector = shipped.shipped_detector(options.threshold, threads=model_threads, model=options.model)
    found = detector.model_description.sha256
    if options.model_sha256 is not None and found != options.model_sha256:
        raise BadInputError(f"{printable(options.model)}: the model card now names sha256 {found[:12]}…, not the "
                            f"{options.model_sha256[:12]}… this run started with; start a new run")
    return detector


def _match(pred: list[dict], spec: TileSpec, mpp: float, radius_um: float) -> tuple[int, int, int]:
    import numpy as np

    from spindledx.mitosis.evaluate import match_points

    pred_xy = np.asarray([(m["x"], m["y"]) for m in pred], dtype=float).reshape(-1, 2)
    match = match_points(pred_xy, points_array(spec.points), radius_um / mpp)
    return match.tp, match.fp, match.fn


def tile_signature(spec: TileSpec) -> str:
    """Signature of everything a tile's row depends on besides the run options: the image file (identity and
    content), its resolution, case, reference count and points, and the case-level panel, diagnosis and site."""
    return signature({"image": os.path.realpath(spec.image), "file": file_identity(spec.image), "mpp": spec.mpp,
                      "case": spec.case, "expected_count": spec.expected_count,
                      "points": None if spec.points is None else [list(map(float, p)) for p in spec.points],
                      "panel": spec.panel, "diagnosis": spec.diagnosis, "site": spec.site}
                     | ({} if spec.roi is None else {"roi": spec.roi, "roi_file": file_identity(spec.roi),
                                                      "roi_class": spec.roi_class}))


def base_row(spec: TileSpec) -> dict:
    """The identity columns of a tile's row."""
    return {"key": spec.key, "image": printable(spec.image), "input_signature": tile_signature(spec), "row": spec.row,
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
        scored = _score(tile, detector, scorer, options, model_threads, spec)
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


def run_signature(options: RunOptions, *, injected: bool) -> dict:
    """What must not change between a run and its resumption: options and the model's name, version and
    checksum (the shipped model's, or that of the card given as ``options.model``)."""
    sig: dict[str, Any] = {"match_radius_um": options.match_radius_um, "hpf_area_mm2": options.hpf_area_mm2,
                           "threshold": options.threshold}
    if injected:
        sig["detector"] = "injected"
    elif options.model is not None:
        from spindledx.detection.model import read_description

        desc = read_description(options.model)
        sig["detector"] = "model card"
        sig["model_name"] = desc.extra.get("name")
        sig["model_version"] = desc.version
        sig["model_sha256"] = options.model_sha256 or desc.sha256
        sig["model_threshold"] = desc.threshold
    else:
        try:
            from spindledx.detection.model import shipped_description

            desc = shipped_description()
            sig["detector"] = f"shipped model {desc.version} sha256 {desc.sha256} threshold {desc.threshold}"
        except BadInputError:
            sig["detector"] = "shipped model (description unreadable)"
    return sig


def _check_resume(out_dir: Path, signature: dict) -> None:
    check_run_file(out_dir / RUN_NAME, signature, what="a run")


def _still_done(row: dict | None, spec: TileSpec) -> bool:
    """A stored row counts as done when it succeeded with the same inputs (:func:`tile_signature`)."""
    if row is None or row.get("error") is not None:
        return False
    return row.get("input_signature") == tile_signature(spec)


def _worker_died(spec: TileSpec, exc: BaseException) -> dict:
    row = base_row(spec)
    row.update(error=f"worker process died ({type(exc).__name__}: {exc}); rerun to retry", error_kind="failure",
               seconds=None)
    return row


def _run_local(todo: list[TileSpec], jobs: int, kwargs: dict) -> Iterator[dict]:
    kwargs = kwargs if jobs <= 1 else {**kwargs, "model_threads": 1}
    for _, row in run_local(process_tile, todo, jobs=jobs, kwargs=kwargs, on_error=_worker_died):
        yield row


def _run_dask(todo: list[TileSpec], address: str, kwargs: dict) -> Iterator[dict]:
    kwargs = {**kwargs, "model_threads": 1}
    for _, row in run_dask(process_tile, todo, address=address, jobs=2, kwargs=kwargs, on_error=_worker_died):
        yield row


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
        ``out_dir`` holds a run made with other options or another model (``run.json``).

    Returns
    -------
    BatchOutcome
        ``interrupted`` is True after Ctrl-C; the rows done so far are kept and the caller should write
        the outputs and re-raise.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir):
        return _run_batch(specs, out_dir, jobs=jobs, dask=dask, detector=detector, scorer=scorer, reader=reader,
                          options=options, progress=progress, on_row=on_row)


def _run_batch(specs: list[TileSpec], out_dir: Path, *, jobs: int, dask: str | None, detector: Detector | None,
               scorer: Scorer | None, reader: Reader | None, options: RunOptions, progress: bool,
               on_row: Callable[[dict], None] | None) -> BatchOutcome:
    _check_resume(out_dir, run_signature(options, injected=detector is not None or scorer is not None))
    store = ResultLog(out_dir / JSONL_NAME)
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
    """A finished (or interrupted) batch: its outcome, the summary object, the written files and the provenance
    the outputs carry."""

    outcome: BatchOutcome
    summary: dict
    paths: dict
    provenance: dict = field(default_factory=dict)


def _provenance(options: RunOptions, *, injected: bool) -> dict:
    """Versions, threshold and date for the batch outputs: the model's name, version and sha256 (a model card's,
    with ``adapted_from`` for a model made by ``spindledx adapt``, and the card's path), or an injected detector
    named as such."""
    from spindledx.provenance import provenance

    if injected:
        prov = provenance(include_model=False)
        return {"spindledx_version": prov["spindledx_version"], "model_name": "injected detector",
                "threshold": options.threshold, "kb_version": prov["kb_version"], "date": prov["date"]}
    if options.model is not None:
        from spindledx.detection.model import read_description

        prov = provenance(model_description=read_description(options.model), threshold=options.threshold)
        return {**prov, "model_card": printable(options.model)}
    return provenance(threshold=options.threshold)


def run_and_write(specs: list[TileSpec], out_dir: str | Path, *, jobs: int = 1, dask: str | None = None,
                  detector: Detector | None = None, scorer: Scorer | None = None, reader: Reader | None = None,
                  options: RunOptions = RunOptions(), progress: bool = True,
                  interpret: Callable[..., object] | None = None) -> BatchReport:
    """:func:`run_batch`, then write ``tiles.csv``, ``tiles.parquet``, ``summary.json`` and ``report.html``.

    The outputs are written also after Ctrl-C (from the rows done so far; ``summary["interrupted"]`` is True).
    """
    with RunLock(out_dir):
        return _run_and_write(specs, Path(out_dir), jobs=jobs, dask=dask, detector=detector, scorer=scorer,
                              reader=reader, options=options, progress=progress, interpret=interpret)


def _run_and_write(specs: list[TileSpec], out_dir: Path, *, jobs: int, dask: str | None, detector: Detector | None,
                   scorer: Scorer | None, reader: Reader | None, options: RunOptions, progress: bool,
                   interpret: Callable[..., object] | None) -> BatchReport:
    from spindledx.qa.agreement import summarize
    from spindledx.qa.report import write_outputs

    outcome = run_batch(specs, out_dir, jobs=jobs, dask=dask, detector=detector, scorer=scorer, reader=reader,
                        options=options, progress=progress)
    specs_by_key = {s.key: s for s in specs}
    summary = summarize(outcome.rows, specs_by_key, match_radius_um=options.match_radius_um,
                        hpf_area_mm2=options.hpf_area_mm2, interrupted=outcome.interrupted,
                        n_planned=len(specs), interpret=interpret)
    prov = _provenance(options, injected=detector is not None or scorer is not None)
    paths = write_outputs(outcome.rows, summary, out_dir, specs_by_key=specs_by_key, provenance=prov)
    paths["summary"] = _write_summary(outcome, summary, specs, out_dir, options=options, provenance=prov,
                                      written=[*paths.values(), out_dir / JSONL_NAME, out_dir / RUN_NAME])
    return BatchReport(outcome=outcome, summary=summary, paths=paths, provenance=prov)


def _write_summary(outcome: BatchOutcome, summary: dict, specs: list[TileSpec], out_dir: Path, *,
                   options: RunOptions, provenance: dict, written: list[Path]) -> Path:
    """``summary.json`` of the batch in the one summary shape (:mod:`spindledx.summary`), written last: the
    agreement statistics of :func:`spindledx.qa.agreement.summarize` as ``results``."""
    from dataclasses import asdict

    from spindledx.summary import write_summary

    ok = [r for r in outcome.rows if not r.get("error")]
    counts = {"tiles": summary["n_tiles"], "scored": summary["n_done"], "failed": summary["n_failed"],
              "bad_input": summary["n_bad_input"], "resumed": outcome.n_skipped,
              "mitoses": sum(int(r.get("count") or 0) for r in ok),
              "qa_flagged": summary["quality"]["n_flagged"]}
    return write_summary(out_dir, "batch", provenance=provenance, inputs=[printable(s.image) for s in specs],
                         options=asdict(options), outputs=[p for p in written if p.exists()], counts=counts,
                         results=summary, flags=[f for r in ok for f in (r.get("guard_flags") or [])],
                         warnings=sorted({w for r in ok for w in (r.get("warnings") or [])}),
                         errors=[(r["key"], r["error"]) for r in outcome.rows if r.get("error")],
                         status="interrupted" if outcome.interrupted else
                         "failed" if specs and not ok else "complete")
