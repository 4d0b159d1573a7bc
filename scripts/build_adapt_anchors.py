"""Build the anchor set of ``spindledx adapt``: pooled features of the shipped model's training material.

The adapted model's head is fitted on a laboratory's decisions together with these anchors, so that a set of
decisions that are all (or mostly) rejections cannot simply push every score down: the anchors' positives keep
their figures' scores up. The anchors are derived data of the shipped model, like its weights: the shipped model's
pooled 128-feature vector (one view, the crop as given) of

* every annotated figure of the 35 MiDeSeC fields (positives, group = the field's file name),
* per field, the 8 highest-scoring candidates farther than 7.5 µm from every figure (hard negatives) and 7 other
  such candidates drawn at random (group = the field's file name),
* 200 atnorm-md figure patches drawn at random (positives from several tumour types and scanners, group
  ``atnorm-md``; 64 x 64 centre crops).

Groups let an evaluation leave out the anchors of the fields it holds out (``scripts/evaluate_adapt.py``). Features
are stored as float16 (base64, row-major) with the shipped model's sha256; nothing of the images is stored.

Usage::

    PYTHONPATH=src .venv/bin/python scripts/build_adapt_anchors.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from spindledx.adapt.features import FeatureExtractor
from spindledx.detection.candidates import WORKING_MPP, find_candidates
from spindledx.detection.model import DEFAULT_DESCRIPTION, MODELS_DIR, read_description
from spindledx.detection.patches import extract_patches, to_model_input
from spindledx.files import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "spindledx" / "adapt" / "data" / "anchors.json"
SEED = 20261205
HARD, RANDOM, ATNORM = 8, 7, 200


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    desc = read_description(DEFAULT_DESCRIPTION)
    extractor = FeatureExtractor((MODELS_DIR / desc.onnx_file).read_bytes(), threads=2)
    size = desc.patch_size
    gt = pd.read_csv(args.data / "midesec-train" / "mitoses.csv")
    feats, labels, groups, kinds = [], [], [], []
    for i in range(35):
        name = f"P0_{i:02d}.png"
        rgb = read_rgb(args.data / "midesec-train" / name)
        figures = gt.loc[gt.image == name, ["cx", "cy"]].to_numpy(np.float64)
        cand = find_candidates(rgb, WORKING_MPP)
        dist, _ = cKDTree(figures).query(cand)
        far = cand[dist > 7.5 / WORKING_MPP]
        f_far, z_far = extractor.features(to_model_input(extract_patches(rgb, far, size=size)))
        order = np.argsort(-z_far)
        rest = order[HARD:]
        pick = np.concatenate([order[:HARD], rng.choice(rest, size=min(RANDOM, len(rest)), replace=False)])
        f_pos, _ = extractor.features(to_model_input(extract_patches(rgb, figures, size=size)))
        for f, lab, kind in ((f_pos, 1, "figure"), (f_far[pick[:HARD]], 0, "hard negative"),
                             (f_far[pick[HARD:]], 0, "negative")):
            feats.append(f)
            labels += [lab] * len(f)
            groups += [name] * len(f)
            kinds += [kind] * len(f)
    paths = sorted((args.data / "atnorm-md" / "Normal").glob("*.webp")) + sorted(
        (args.data / "atnorm-md" / "Atypical").glob("*.webp"))
    chosen = [paths[j] for j in sorted(rng.choice(len(paths), size=ATNORM, replace=False))]
    crops = []
    for p in chosen:
        rgb = read_rgb(p)
        if rgb.shape[:2] != (128, 128):
            rgb = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
        crops.append(rgb[64 - size // 2:64 + size // 2, 64 - size // 2:64 + size // 2])
    f_at, _ = extractor.features(to_model_input(np.stack(crops)))
    feats.append(f_at)
    labels += [1] * len(f_at)
    groups += ["atnorm-md"] * len(f_at)
    kinds += ["figure"] * len(f_at)
    matrix = np.concatenate(feats).astype(np.float16)
    doc = {
        "format": "spindledx-adapt-anchors/1",
        "feature_extractor_sha256": desc.sha256,
        "model": {"name": "spindledx-mitosis-cnn", "version": desc.version, "sha256": desc.sha256},
        "features_tensor": extractor.cut.features,
        "width": int(matrix.shape[1]),
        "n": int(matrix.shape[0]),
        "built_by": f"scripts/build_adapt_anchors.py (seed {SEED}) from ../shared/data: midesec-train (35 fields: "
                    f"every annotated figure; per field {HARD} hardest and {RANDOM} random candidates > 7.5 µm from "
                    f"every figure) and {ATNORM} random atnorm-md figure patches (64 px centre crops); one view each",
        "labels": labels,
        "groups": groups,
        "kinds": kinds,
        "features_float16_base64": base64.b64encode(np.ascontiguousarray(matrix).tobytes()).decode("ascii"),
    }
    atomic_write_text(args.out, json.dumps(doc, separators=(",", ":")))
    print(f"{args.out}: {doc['n']} anchors ({sum(labels)} figures), {args.out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
