"""Train and evaluate the atypical/normal head for detected mitotic figures (small CNN -> ONNX).

Data (read from ../shared/data, never copied):
  * ami-br: 3,720 figure patches with a Normal/Atypical consensus label; ``amibr_train_split.csv`` names the slide of
    2,894 of them. The same 20% of its slides that ``train_mitosis.py`` holds out (same seed, same draw) are held out
    here too: never trained on, never used to choose anything; balanced accuracy is reported on them.
  * atnorm-md: 2,107 figure patches (several tumour types) with the majority of five experts; no slide information,
    so training only (patches that are near-duplicates of held-out ami-br patches are dropped).

Training: 15% of the training ami-br slides are kept aside as validation (early model choice and the decision
threshold, which maximises balanced accuracy there); the rest plus the ami-br patches without slide information plus
atnorm-md are trained on with class-balanced sampling. The input is what the detector sees: the 64×64 RGB patch at
0.25 µm/px centred on the figure (augmented by shift ±4 px, dihedral views, HED stain jitter as in
``train_mitosis.py --strong-aug``). The ONNX graph is a single view; inference averages the 8 dihedral views.

Usage::

    .venv/bin/python scripts/train_atypical.py --out RUN_DIR [--epochs 14] [--ship]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_mitosis as tm  # noqa: E402  (scripts/train_mitosis.py: augmentation, data paths)
import training_data  # noqa: E402

from spindledx.detection.patches import dihedral_views, to_model_input  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = tm.DATA
MODELS = REPO / "src" / "spindledx" / "detection" / "models"
VERSION = "1.0.0"


class AtypicalNet(nn.Module):
    """Four conv blocks (16-32-48-64 channels, ~45k parameters), global average pooling, linear logit."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 16, 32, 48, 64]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i + 1])]
            layers += [nn.ReLU(inplace=True), nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(chans[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


class SigmoidNet(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def load_amibr_labelled(seed: int):
    """(patches, atypical, slide or '', held-out mask) with the held-out slide draw of ``train_mitosis.load_amibr``."""
    split = pd.read_csv(DATA / "ami-br" / "amibr_train_split.csv")
    rng = np.random.default_rng(seed)
    slides = np.array(sorted(split.slide.unique()))
    held_slides = set(rng.choice(slides, size=int(round(0.2 * len(slides))), replace=False))
    slide_of = dict(zip(split.dataset_uid, split.slide, strict=True))
    imgs, atyp, slide = [], [], []
    for label in ("Normal", "Atypical"):
        for p in sorted((DATA / "ami-br" / label).glob("*.png")):
            imgs.append(training_data.read_rgb(p))
            atyp.append(label == "Atypical")
            slide.append(slide_of.get(p.name, ""))
    slide = np.array(slide)
    held = np.isin(slide, sorted(held_slides))
    return np.stack(imgs), np.array(atyp), slide, held, sorted(held_slides)


@torch.no_grad()
def predict8(net: nn.Module, patches96: np.ndarray) -> np.ndarray:
    """Mean probability over the 8 dihedral views of the 64×64 centre crops."""
    net.eval()
    x = to_model_input(np.ascontiguousarray(patches96[:, 16:80, 16:80]))
    total = np.zeros(len(x))
    views = dihedral_views(x, 8)
    for v in views:
        t = torch.from_numpy(np.ascontiguousarray(v))
        total += torch.cat([torch.sigmoid(net(t[i : i + 512])) for i in range(0, len(t), 512)]).numpy()
    return total / len(views)


def balanced_accuracy(y: np.ndarray, p: np.ndarray, thr: float) -> dict:
    pred = p >= thr
    tpr = float((pred & y).sum() / max(y.sum(), 1))
    tnr = float((~pred & ~y).sum() / max((~y).sum(), 1))
    return {"balanced_accuracy": round((tpr + tnr) / 2, 4), "atypical_recall": round(tpr, 4),
            "normal_recall": round(tnr, 4), "n_atypical": int(y.sum()), "n_normal": int((~y).sum())}


def best_ba_threshold(y: np.ndarray, p: np.ndarray) -> float:
    grid = np.unique(np.round(p, 4))
    scores = [balanced_accuracy(y, p, t)["balanced_accuracy"] for t in grid]
    return float(grid[int(np.argmax(scores))])


def slide_bootstrap(y: np.ndarray, p: np.ndarray, slide: np.ndarray, thr: float, n: int = 1000) -> list[float]:
    """95% interval of balanced accuracy resampling whole held-out slides."""
    rng = np.random.default_rng(0)
    ids = np.unique(slide)
    idx = {s: np.flatnonzero(slide == s) for s in ids}
    out = []
    for _ in range(n):
        pick = np.concatenate([idx[s] for s in rng.choice(ids, len(ids))])
        if y[pick].all() or not y[pick].any():
            continue
        out.append(balanced_accuracy(y[pick], p[pick], thr)["balanced_accuracy"])
    return [round(float(np.percentile(out, 2.5)), 4), round(float(np.percentile(out, 97.5)), 4)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--per-epoch", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=20261127, help="same as train_mitosis.py: same held-out slides")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ship", action="store_true", help="copy the ONNX + description into the package models/")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    imgs, atyp, slide, held, held_slides = load_amibr_labelled(args.seed)
    at_imgs, at_atyp, _ = training_data.load_atnorm(DATA)
    dup = training_data.near_duplicates(at_imgs, imgs[held])
    rng = np.random.default_rng(args.seed + 7)
    train_slides = np.array(sorted(set(slide[~held]) - {""}))
    val_slides = set(rng.choice(train_slides, size=int(round(0.15 * len(train_slides))), replace=False))
    val = np.isin(slide, sorted(val_slides))
    fit = ~held & ~val
    x_fit = np.concatenate([imgs[fit], at_imgs[~dup]])[:, 16:112, 16:112]
    y_fit = np.concatenate([atyp[fit], at_atyp[~dup]])
    x_val, y_val = imgs[val][:, 16:112, 16:112], atyp[val]
    x_test, y_test, s_test = imgs[held][:, 16:112, 16:112], atyp[held], slide[held]
    tm.log(f"fit {len(x_fit)} ({int(y_fit.sum())} atypical), val {len(x_val)} ({len(val_slides)} slides), "
           f"test {len(x_test)} ({len(held_slides)} held-out slides), atnorm dropped {int(dup.sum())}")
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    net = AtypicalNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    bs = 128
    steps = args.per_epoch // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.epochs * steps, pct_start=0.15)
    lossf = nn.BCEWithLogitsLoss()
    pos, neg = np.flatnonzero(y_fit), np.flatnonzero(~y_fit)
    best = (-1.0, None, 0)
    history = []
    for ep in range(args.epochs):
        te = time.time()
        idx = np.concatenate([rng.choice(pos, args.per_epoch // 2), rng.choice(neg, args.per_epoch // 2)])
        idx = idx[rng.permutation(len(idx))]
        xs = tm.crop_and_geom(x_fit[idx], rng, shift=4)
        ys = y_fit[idx].astype(np.float32)
        net.train()
        tot = 0.0
        for b in range(steps):
            sl = slice(b * bs, (b + 1) * bs)
            x = torch.from_numpy(xs[sl]).permute(0, 3, 1, 2).float() / 255.0
            x = tm.stain_augment(x, g, strong=True)
            logit = net(x)
            loss = lossf(logit, torch.from_numpy(ys[sl]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        p_val = predict8(net, x_val)
        thr = best_ba_threshold(y_val, p_val)
        ba = balanced_accuracy(y_val, p_val, thr)["balanced_accuracy"]
        history.append({"epoch": ep + 1, "loss": round(tot / steps, 4), "val_ba": ba, "val_threshold": thr})
        tm.log(f"epoch {ep + 1}/{args.epochs} loss {tot / steps:.4f} val BA {ba:.3f} (thr {thr:.3f}) "
               f"{time.time() - te:.0f}s")
        if ba > best[0]:
            best = (ba, {k: v.clone() for k, v in net.state_dict().items()}, ep + 1)
    net.load_state_dict(best[1])
    net.eval()
    p_val = predict8(net, x_val)
    thr = best_ba_threshold(y_val, p_val)
    p_test = predict8(net, x_test)
    report = {
        "version": VERSION,
        "held_out_slides": held_slides,
        "validation_slides": sorted(val_slides),
        "chosen_epoch": best[2],
        "threshold": round(thr, 4),
        "threshold_rule": "maximises balanced accuracy on the validation slides (8-view mean probability)",
        "validation": balanced_accuracy(y_val, p_val, thr),
        "test_heldout_slides": balanced_accuracy(y_test, p_test, thr)
        | {"bootstrap_95ci_by_slide": slide_bootstrap(y_test, p_test, s_test, thr)},
        "test_at_0.5_for_information": balanced_accuracy(y_test, p_test, 0.5),
        "training": {"fit_patches": len(x_fit), "fit_atypical": int(y_fit.sum()), "atnorm_dropped": int(dup.sum()),
                     "epochs": args.epochs, "per_epoch": args.per_epoch},
        "history": history,
        "train_seconds": round(time.time() - t0, 1),
    }
    tm.log("held-out slides:", report["test_heldout_slides"])
    onnx_path = args.out / "atypical_cnn.onnx"
    torch.onnx.export(SigmoidNet(net).eval(), (torch.zeros(2, 3, 64, 64),), str(onnx_path), input_names=["patches"],
                      output_names=["prob"], dynamic_axes={"patches": {0: "n"}, "prob": {0: "n"}}, opset_version=17,
                      dynamo=False)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    desc = {
        "name": "spindledx-atypical-cnn",
        "version": VERSION,
        "onnx_file": "atypical_cnn.onnx",
        "sha256": sha,
        "input": {"patch_size": 64, "working_mpp": 0.25,
                  "layout": "NCHW float32 RGB in [0, 1] (uint8 / 255), patch centred on a detected figure",
                  "output": "probability that the figure is atypical (single view; 8 dihedral views averaged)"},
        "tta": 8,
        "tta_gate": 0.0,
        "threshold": round(thr, 4),
        "threshold_source": report["threshold_rule"],
        "evaluation": {"heldout_amibr_slides": report["test_heldout_slides"], "n_slides": len(held_slides)},
        "training_data": "ami-br (slides not held out) + atnorm-md; labels: expert consensus / majority of five",
    }
    (args.out / "atypical_model.json").write_text(json.dumps(desc, indent=2) + "\n")
    (args.out / "atypical_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.ship:
        MODELS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(onnx_path, MODELS / "atypical_cnn.onnx")
        shutil.copyfile(args.out / "atypical_model.json", MODELS / "atypical_model.json")
        tm.log("shipped into", MODELS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
