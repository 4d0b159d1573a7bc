"""The ``batch`` command as a library call: :func:`run_batch` scores a folder of tiles or a manifest with QA
flags, agreement statistics and an HTML report, resuming an interrupted run in the same output folder."""

from __future__ import annotations

import os
from pathlib import Path

from spindledx import counting
from spindledx.errors import BadInputError
from spindledx.qa.runner import BatchReport


def run_batch(source: str | Path, *, out_dir: str | Path, jobs: int = 1, dask: str | None = None,
              mpp: float | None = None, annotations: str | Path | None = None, threshold: float | None = None,
              hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, model: str | Path | None = None,
              progress: bool = False, overwrite: bool = False) -> BatchReport:
    """Score a set of tiles with QA flags, agreement statistics and an HTML report (what ``spindledx batch``
    does). The tile-level engine is :func:`spindledx.qa.runner.run_batch`.

    Parameters
    ----------
    source
        Folder of tiles, or a manifest (.csv / .parquet) with an ``image`` column and optional case, mpp,
        expected_count, annotations, panel, diagnosis, site.
    out_dir
        Output folder (``tiles.jsonl``, ``tiles.csv``/``.parquet``, ``summary.json``, ``report.html``); a second
        call with the same folder resumes.
    jobs, dask
        Worker processes, or a Dask cluster (``"local"`` or a scheduler address).
    mpp
        Resolution in µm/px for tiles without one.
    annotations
        Folder input only: CSV of reference points (image, x, y or cx, cy).
    threshold, hpf_area_mm2
        Minimum detection score (default: the model's) and the HPF area.
    model
        A model card (JSON beside its ONNX file, the model contract) or a folder holding one, as ``spindledx
        adapt`` writes it, to score every tile with instead of the shipped model. It is checked (checksum, input
        shape) before any tile is scored; worker processes and Dask workers load it themselves.
    progress
        Progress bar on stderr.
    overwrite
        Write into an ``out_dir`` that holds other files or another run.

    Returns
    -------
    BatchReport
        ``outcome`` (rows, interrupted), ``summary`` (the ``results`` of ``summary.json``) and ``paths``.

    Example: ``report = run_batch("sample_slides/manifest.csv", out_dir="batch_out"); print(report.paths["report"])``
    """
    from spindledx.qa.manifest import load_manifest, tiles_from_folder
    from spindledx.qa.runner import JSONL_NAME, RUN_NAME, RunOptions, run_and_write

    source = Path(source)
    if mpp is not None:
        counting.check_mpp(mpp)
    if source.is_dir():
        specs = tiles_from_folder(source, mpp=mpp, annotations=None if annotations is None else Path(annotations))
    elif source.is_file():
        if annotations is not None:
            raise BadInputError("annotations is for folder input; give a manifest 'annotations' column instead",
                                parameters="annotations")
        specs = load_manifest(source, default_mpp=mpp)
    else:
        raise BadInputError(f"{source}: no such file or folder")
    from spindledx.detection.model import load_model_file, load_shipped_model, resolve_model_card
    from spindledx.engine.folder import output_folder

    # fail fast with one message (no trained detector shipped; a card that is missing, corrupt or breaks the
    # model contract), not once per tile
    if model is None:
        load_shipped_model()
        options = RunOptions(threshold=threshold, hpf_area_mm2=hpf_area_mm2)
        identity = None
    else:
        card = os.path.realpath(resolve_model_card(model))
        desc = load_model_file(card).description
        options = RunOptions(threshold=threshold, hpf_area_mm2=hpf_area_mm2, model=card, model_sha256=desc.sha256)
        identity = f"{desc.extra.get('name') or 'model'} {desc.version} sha256 {desc.sha256}"
    settings = {"source": os.path.realpath(source), "annotations": None if annotations is None else
                os.path.realpath(annotations), "mpp": mpp, "threshold": threshold, "hpf_area_mm2": hpf_area_mm2}
    if identity is not None:  # absent for the shipped model, so earlier runs of it still resume
        settings["model"] = identity
    with output_folder(out_dir, "batch", settings, overwrite=overwrite, state=(JSONL_NAME, RUN_NAME)):
        return run_and_write(specs, Path(out_dir), jobs=jobs, dask=dask, options=options, progress=progress)
