"""``slide``: options over :func:`spindledx.slide.run.analyze_slide`, rendered as a rich table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from spindledx import counting
from spindledx.cli import options as opts
from spindledx.slide.defaults import DEFAULT_MARGIN_UM, DEFAULT_MIN_TISSUE_FRACTION, DEFAULT_TILE_UM, DEFAULT_WORK_MPP

if TYPE_CHECKING:
    from spindledx.slide.pipeline import SlideResult


def slide(
    path: Path = typer.Argument(..., help="Whole-slide image: SVS, NDPI, MRXS, pyramidal/OME/plain TIFF."),
    mpp: opts.Mpp = None,
    out: Path | None = opts.out_option("Output folder (default: <slide name>_slide/). Per-tile detections are kept "
                                       "there, so rerunning resumes."),
    fmt: opts.Report = opts.ReportFormat.table,
    area_mm2: float | None = typer.Option(None, "--area-mm2", help="Hotspot window area (default: 10 HPF)."),
    shape: opts.Shape = opts.HotspotShape.circle,
    min_tissue_fraction: float = typer.Option(DEFAULT_MIN_TISSUE_FRACTION, "--min-tissue-fraction", min=0.0,
                                              max=1.0, help="Hotspot windows must be at least this much on tissue."),
    hpf_area_mm2: opts.HpfArea = None,
    field_number: opts.FieldNumber = None,
    objective: opts.Objective = None,
    allow_unusual_hpf: opts.AllowUnusualHpf = False,
    threshold: opts.Threshold = None,
    jobs: opts.Jobs = None,
    dask: opts.Dask = None,
    restart: bool = typer.Option(False, "--restart", help="Discard detections saved by an earlier run."),
    progress: opts.Progress = None,
    work_mpp: float = typer.Option(DEFAULT_WORK_MPP, "--work-mpp", help="Detector working resolution, µm/px."),
    tile_um: float = typer.Option(DEFAULT_TILE_UM, "--tile-um", help="Tile core side in µm."),
    margin_um: float = typer.Option(DEFAULT_MARGIN_UM, "--margin-um", help="Tile overlap on each side, µm."),
    backend: opts.Backend = opts.SlideBackend.auto,
    roi: opts.Roi = None,
    roi_class: opts.RoiClass = None,
    model: opts.Model = None,
    overwrite: opts.Overwrite = False,
) -> None:
    """Find the mitotic hotspot of a whole-slide image: count there and on average over the tissue.

    Example: spindledx slide tumour.svs --out tumour_slide --jobs 2
    """
    from spindledx.detection.detect import detector_caveat
    from spindledx.slide.run import analyze_slide

    fmt = fmt.value
    jobs = opts.resolve_jobs(jobs)
    if mpp is not None:
        counting.check_mpp(mpp)
    counting.check_mpp(work_mpp)
    opts.check_out_dir(out)
    opts.check_dask(dask)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    run = analyze_slide(path, out_dir=out, mpp=mpp, area_mm2=area_mm2, shapes=shape.shapes,
                        min_tissue_fraction=min_tissue_fraction, hpf_area_mm2=hpf_area, threshold=threshold,
                        jobs=jobs, dask=dask, restart=restart, progress=opts.resolve_progress(progress),
                        work_mpp=work_mpp, tile_um=tile_um, margin_um=margin_um, backend=backend.value,
                        roi=roi, roi_class=roi_class, model=model, overwrite=overwrite, shape_label=shape.value)
    result, paths = run.result, run.paths
    for hotspot in result.hotspots:
        for warning in hotspot.warnings:
            typer.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        typer.echo(json.dumps(run.to_json(), indent=2, ensure_ascii=False))
        return
    _render_table(result)
    caveat = detector_caveat(run.detector)
    if caveat:
        typer.echo(caveat)
    Console(stderr=True).print(f"outputs written to {run.out_dir}/ ({', '.join(p.name for p in paths.values())})")


def _render_table(result: SlideResult) -> None:
    info = result.info
    console = Console()
    console.print(f"[bold]{Path(info.path).name}[/bold]: {info.width} x {info.height} px, {info.mpp:g} µm/px "
                  f"({info.mpp_source}), objective {info.objective_power or 'unknown'}, read with {info.backend}; "
                  f"tissue {result.tissue.area_mm2:.2f} mm², {result.n_tiles} tiles "
                  f"({result.n_tiles_resumed} resumed), {len(result.detections)} detections")
    table = Table(title="Mitotic count", show_header=True)
    for column, justify in (("method", "left"), ("area mm²", "right"), ("count", "right"), ("per mm²", "right"),
                            ("per 10 HPF", "right"), ("FNCLCC mitotic score", "right")):
        table.add_column(column, justify=justify)
    flags = result.checks.flags if result.checks is not None else ()
    for h in result.hotspots:
        table.add_row(f"hotspot ({h.shape}, {h.tissue_fraction:.0%} tissue)", f"{h.area_mm2:.3f}", str(h.count),
                      f"{h.mitoses_per_mm2:.2f}", f"{h.mitoses_per_10hpf:.1f}",
                      f"{h.mitotic_score} (flagged)" if flags else str(h.mitotic_score))
    a = result.average
    table.add_row("average over the counted area", f"{a.area_mm2:.3f}", str(a.count), f"{a.mitoses_per_mm2:.2f}",
                  f"{a.mitoses_per_10hpf:.1f}", f"{a.mitotic_score} (flagged)" if flags else str(a.mitotic_score))
    console.print(table)
    if result.answer is not None:
        c = result.answer
        console.print(f"Count: {c['count']} mitoses in {c['area_mm2']:.3f} mm² ({c['method']}) = "
                      f"{c['mitoses_per_mm2']:.2f}/mm² = {c['mitoses_per_10hpf']:.1f}/10 HPF (95 % "
                      f"{c['mitoses_per_10hpf_ci95'][0]:.1f}-{c['mitoses_per_10hpf_ci95'][1]:.1f}; {c['n_hpf']:.2f} HPF"
                      + (", extrapolated" if c["extrapolated"] else "") + ")"
                      + (f"; flagged: {', '.join(c['flags'])}" if c["flags"] else ""), highlight=False)
    if result.checks is not None:
        checks = result.checks.to_json(len(result.detections))
        if checks["atypical_count"] is not None:
            share = checks["atypical_fraction"]
            console.print(f"Atypical figures: {checks['atypical_count']} of {len(result.detections)}"
                          + ("" if share is None else f" ({100 * share:.0f}%)"))
        for message in result.checks.flag_messages:
            console.print(f"[bold]flag[/bold]: {message}", markup=True, highlight=False)
    console.print(f"HPF = {a.hpf_area_mm2:.4f} mm²; per 10 HPF = per {10 * a.hpf_area_mm2:.2f} mm². Report the "
                  "method (hotspot or average) and the area with the count (Cree et al. 2021). Tissue is not "
                  "tumour: the average includes any non-tumour tissue on the slide.")


def register(app: typer.Typer) -> None:
    """Add ``slide`` to the spindledx app."""
    app.command("slide")(slide)
