"""Shared helpers of the case/review tests: tiny synthetic tiles and a fake detector (no model, no CPU cost)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from spindledx.detection.types import Detection
from spindledx.mitosis.synthetic import make_tile

MPP = 0.25
THRESHOLD = 0.5
FLOOR = 0.3
FAKE_MODEL = {"model_name": "fake-test-detector", "model_version": "test-1", "model_sha256": "ab" * 32,
              "threshold": THRESHOLD}
PANEL = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"


def fill_glass(rgb: np.ndarray) -> np.ndarray:
    """The tile with its near-white background painted as pale stroma, so that all of it is tissue."""
    out = rgb.copy()
    out[rgb.astype(int).sum(axis=2) > 690] = (226, 160, 196)
    return out


def write_tiles(folder: Path, n: int = 2, size_px: int = 256, *, filled: bool = False) -> list[Path]:
    """``n`` synthetic H&E tiles (PNG) in ``folder`` (``filled``: no glass, all of each tile is tissue)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rgb, _ = make_tile(size_px=size_px, n_mitoses=1, seed=70 + i, mpp=MPP)
        if filled:
            rgb = fill_glass(rgb)
        path = folder / f"tile{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def grid_detector(n_side: int, *, spacing_px: float = 40.0, low: float = 0.32, high: float = 0.98):
    """Fake detector: ``n_side`` x ``n_side`` points on a grid, scores spread evenly from ``high`` to ``low``."""

    def detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
        n = n_side * n_side
        scores = np.linspace(high, low, n)
        return [Detection(20.0 + spacing_px * (k % n_side), 20.0 + spacing_px * (k // n_side), float(scores[k]))
                for k in range(n)]

    return detector


def fixed_detector(rgb: np.ndarray, mpp: float) -> list[Detection]:
    """Fake detector: two detections above the test threshold, two candidates just below it, one far below."""
    h, w = rgb.shape[:2]
    return [Detection(w / 2, h / 2, 0.9), Detection(40.0, 40.0, 0.7), Detection(200.0, 60.0, 0.45),
            Detection(60.0, 200.0, 0.35), Detection(120.0, 220.0, 0.1)]


def use_detector(monkeypatch, detector) -> None:
    """Make `spindledx case` use ``detector`` with the test threshold and review floor."""
    from spindledx.case import run

    monkeypatch.setattr(run, "case_detector",
                        lambda threshold, margin: (detector, THRESHOLD if threshold is None else threshold,
                                                   FLOOR, dict(FAKE_MODEL)))
