"""The ``slide`` command as a library call: :func:`analyze_slide` analyses a whole-slide image in an output folder
(resumable) and writes its tables, GeoJSON, heat map and ``summary.json``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spindledx import counting
from spindledx.errors import BadInputError
from spindledx.slide.defaults import DEFAULT_MARGIN_UM, DEFAULT_MIN_TISSUE_FRACTION, DEFAULT_TILE_UM, DEFAULT_WORK_MPP

if TYPE_CHECKING:
    from spindledx.slide.pipeline import SlideResult


@dataclass(frozen=True)
class SlideRun:
    """What :func:`analyze_slide` did: the analysis and the files written (``{kind: path}``)."""

    result: SlideResult
    paths: dict[str, Path]
    out_dir: Path
    detector: Any = None

    def to_json(self) -> dict[str, Any]:
        """The ``slide --format json`` document."""
        payload = self.result.to_json()
        payload["files"] = {kind: str(p) for kind, p in self.paths.items()}
        return payload


def analyze_slide(path: str | Path, *, out_dir: str | Path | None = None, mpp: float | None = None,
                  area_mm2: float | None = None, shapes: tuple[str, ...] = ("circle",),
                  min_tissue_fraction: float = DEFAULT_MIN_TISSUE_FRACTION,
                  hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2, threshold: float | None = None,
                  jobs: int = 1, dask: str | None = None, restart: bool = False, progress: bool = False,
                  work_mpp: float = DEFAULT_WORK_MPP, tile_um: float = DEFAULT_TILE_UM,
                  margin_um: float = DEFAULT_MARGIN_UM, backend: str = "auto", roi: str | Path | None = None,
                  roi_class: str | None = None, model: str | Path | None = None, overwrite: bool = False,
                  detector: Any | None = None, shape_label: str | None = None) -> SlideRun:
    """Find the mitotic hotspot of a whole-slide image, count there and on average over the tissue, and write the
    outputs (what ``spindledx slide`` does). The analysis alone, without an output folder, is
    :func:`spindledx.slide.pipeline.analyze_slide`.

    Parameters
    ----------
    path
        Whole-slide image: SVS, NDPI, MRXS, pyramidal/OME/plain TIFF.
    out_dir
        Output folder (default ``<slide name>_slide`` in the current folder); per-tile detections are kept there,
        so a second call resumes.
    mpp
        Level-0 µm/px, overriding the metadata.
    area_mm2, shapes, min_tissue_fraction, hpf_area_mm2
        Hotspot window area (default 10 HPF), window shapes (circle, square, fields), minimum tissue fraction of
        a window and the HPF area.
    threshold
        Minimum detection score (default: the model's).
    jobs, dask
        Worker processes, or a Dask cluster (``"local"`` or a scheduler address).
    restart
        Discard detections saved by an earlier run.
    progress
        Progress bar on stderr.
    work_mpp, tile_um, margin_um
        Detector working resolution, tile core side and overlap.
    backend
        Slide reader (``auto``, ``openslide``, ``tiffslide``, ``tifffile``).
    roi, roi_class
        Region(s) of interest (GeoJSON as QuPath exports annotations) and the class of the annotations to use: the
        counted area is the tissue within them.
    model
        A model card (the model contract) instead of the shipped model.
    overwrite
        Write into an ``out_dir`` that holds other files or another run.
    detector
        A detector instead of the shipped model.
    shape_label
        The window choice as recorded in the summary's options (default: the shapes joined by ``+``).

    Example: ``run = analyze_slide("tumour.svs", jobs=2); print(run.result.hotspots[0].count)``
    """
    path = Path(path)
    if mpp is not None:
        counting.check_mpp(mpp)
    counting.check_mpp(work_mpp)
    if not path.exists():
        raise BadInputError(f"slide not found: {path}")
    out = Path(out_dir) if out_dir is not None else Path.cwd() / f"{path.stem}_slide"
    from spindledx.slide.area import load_region

    region = load_region(roi, roi_class)
    if detector is None:
        from spindledx.detection import shipped

        detector = shipped.shipped_detector(threshold, threads=1 if (jobs > 1 or dask) else 2, model=model)
    from spindledx.engine.folder import output_folder
    from spindledx.slide.pipeline import MANIFEST, TILES_DIR

    # the saved detections depend on these; the hotspot settings only re-analyse them
    settings = {"slide": os.path.realpath(path), "mpp": mpp, "threshold": threshold, "work_mpp": work_mpp,
                "tile_um": tile_um, "margin_um": margin_um, "backend": backend,
                "model": None if model is None else os.path.realpath(model)}
    with output_folder(out, "slide", settings, overwrite=overwrite or restart, state=(TILES_DIR, MANIFEST),
                       hint=" (or restart=True to discard the saved detections)",
                       hint_parameters=("restart",)):
        from spindledx.provenance import detector_provenance
        from spindledx.slide import pipeline
        from spindledx.slide.outputs import write_outputs, write_slide_summary

        result = pipeline.analyze_slide(path, mpp=mpp, detector=detector, out_dir=out, work_mpp=work_mpp,
                                        tile_um=tile_um, margin_um=margin_um, area_mm2=area_mm2,
                                        hpf_area=hpf_area_mm2, shapes=tuple(shapes),
                                        min_tissue_fraction=min_tissue_fraction, jobs=jobs, dask=dask,
                                        restart=restart, progress=progress, backend=backend, roi=region)
        paths = write_outputs(result, out)
        paths["summary"] = write_slide_summary(
            result, out, paths.values(), provenance=detector_provenance(detector, threshold=threshold),
            options={"mpp": mpp, "threshold": threshold, "area_mm2": area_mm2,
                     "shape": shape_label or "+".join(shapes), "min_tissue_fraction": min_tissue_fraction,
                     "hpf_area_mm2": hpf_area_mm2, "work_mpp": work_mpp, "tile_um": tile_um,
                     "margin_um": margin_um, "backend": backend, "roi": None if region is None else region.source})
    return SlideRun(result=result, paths=paths, out_dir=out, detector=detector)
