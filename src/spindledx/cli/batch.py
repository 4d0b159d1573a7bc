"""``batch``: options over :func:`spindledx.qa.batch.run_batch`, and its summary lines."""

from __future__ import annotations

from pathlib import Path

import typer

from spindledx import counting
from spindledx.cli import options as opts
from spindledx.errors import BadInputError


def batch(
    source: Path = typer.Argument(..., help="Folder of tiles, or a manifest (.csv / .parquet) with an 'image' "
                                            "column and optional case, mpp, expected_count, annotations, panel, "
                                            "diagnosis, site."),
    out: Path = opts.out_option("Output folder (tiles.jsonl, tiles.csv/.parquet, summary.json, report.html). "
                                "Rerunning with the same folder resumes.", required=True),
    jobs: opts.Jobs = None,
    dask: opts.Dask = None,
    mpp: opts.Mpp = None,
    annotations: Path = typer.Option(None, "--annotations", help="Folder input only: CSV of reference points for "
                                                                 "the set (image, x, y or cx, cy)."),
    threshold: opts.Threshold = None,
    hpf_area_mm2: opts.HpfArea = None,
    field_number: opts.FieldNumber = None,
    objective: opts.Objective = None,
    allow_unusual_hpf: opts.AllowUnusualHpf = False,
    progress: opts.Progress = None,
    model: opts.Model = None,
    overwrite: opts.Overwrite = False,
) -> None:
    """Score a set of tiles with QA flags, agreement statistics and an HTML report.

    Every tile is scored with the shipped detector, or with the model given by --model (also in --jobs worker
    processes and on --dask workers); the outputs name the model.

    Example: spindledx batch sample_slides/manifest.csv --out batch_out

    Example: spindledx batch sample_slides/manifest.csv --model adapted_model --out batch_adapted
    """
    from spindledx.mitosis.evaluate import detection_scores
    from spindledx.qa.batch import run_batch

    if mpp is not None:
        counting.check_mpp(mpp)
    hpf_area = counting.resolve_hpf_area_mm2(hpf_area_mm2, field_number, objective,
                                             allow_unusual_hpf=allow_unusual_hpf)
    opts.check_out_dir(out)
    opts.check_dask(dask)
    report = run_batch(source, out_dir=out, jobs=opts.resolve_jobs(jobs), dask=dask, mpp=mpp,
                       annotations=annotations, threshold=threshold, hpf_area_mm2=hpf_area,
                       model=model, progress=opts.resolve_progress(progress), overwrite=overwrite)
    s = report.summary
    det = s.get("detection")
    counts = s.get("counts")
    lines = [f"{s['n_done']} of {s['n_tiles']} tiles scored ({report.outcome.n_skipped} already done), "
             f"{s['quality']['n_flagged']} QA-flagged, {s['n_failed']} failed"]
    if det:
        # from the counts, not the 4-decimal summary fields, so the line reads exactly as `spindledx evaluate`'s
        precision, recall, f1 = detection_scores(det["tp"], det["fp"], det["fn"])
        lines.append(f"detection (MIDOG rule, {s['match_radius_um']} µm): TP {det['tp']} FP {det['fp']} "
                     f"FN {det['fn']}  precision {_score(precision)} recall {_score(recall)} F1 {_score(f1)}")
    if counts:
        lines.append(f"counts: MAE {counts['mae']:.2f}, bias {counts['bias']:+.2f}"
                     + (f" (95% limits {counts['loa_low']:+.2f} to {counts['loa_high']:+.2f})"
                        if counts.get("loa_low") is not None else "")
                     + (f", Spearman {counts['spearman_rho']:.2f}" if counts.get("spearman_rho") is not None
                        else ""))
    if s.get("ihc_agreement"):
        a = s["ihc_agreement"]
        lines.append(f"IHC: recorded diagnosis top-1 in {a['top1_agree']}/{a['n_cases']} cases, "
                     f"top-3 in {a['top3_agree']}/{a['n_cases']}")
    if model is not None:
        prov = report.provenance
        lines.append(f"model: {prov.get('model_name')} {prov.get('model_version')} (sha256 "
                     f"{str(prov.get('model_sha256') or '')[:12]}…), given with --model: its accuracy is its card's")
    lines.append(f"report: {report.paths['report']}")
    if "parquet" not in report.paths:
        lines.append("tiles.parquet not written: pyarrow is not installed (pip install 'spindledx[parquet]')")
    typer.echo("\n".join(lines))
    if report.outcome.interrupted:
        typer.echo(f"interrupted: {len(report.outcome.rows)} of {s['n_tiles']} tiles are done and kept in {out}; "
                   "run the same command again to resume", err=True)
        raise typer.Abort()  # the CLI maps this to exit code 130
    failed = s["failed"]
    if failed:
        bad = sum(1 for f in failed if f["error_kind"] == "bad_input")
        message = (f"{len(failed)} of {s['n_tiles']} tiles failed ({bad} unreadable or bad input); see the 'error' "
                   f"column of {report.paths['csv']}")
        if bad == len(failed):
            raise BadInputError(message)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(opts.ExitCode.FAILURE)


def _score(value: float | None) -> str:
    """A precision / recall / F1 as printed: 3 decimals, or "undefined" (no detections or no reference)."""
    return "undefined" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    """Add ``batch`` to the spindledx app."""
    app.command("batch")(batch)
