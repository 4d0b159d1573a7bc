"""The anchor set: pooled features of the shipped model's training figures and candidates (package data).

Built by ``scripts/build_adapt_anchors.py`` from the MiDeSeC fields and atnorm-md patches the shipped model was
trained on (one view each, float16). Each anchor has a label (1 figure, 0 not), a group (the MiDeSeC field's file
name, or ``atnorm-md``) so that an evaluation can leave out the fields it holds out, and the sha256 of the model
whose features they are: they are used only with that feature extractor.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

ANCHORS_FILE = resources.files("spindledx.adapt") / "data" / "anchors.json"


@dataclass(frozen=True)
class Anchors:
    """Features ``(N, D)`` float32, labels ``(N,)``, groups ``(N,)`` and the feature extractor's sha256."""

    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    feature_extractor_sha256: str
    built_by: str

    def without(self, groups: set[str] | frozenset[str]) -> Anchors:
        """The anchors outside ``groups``."""
        keep = ~np.isin(self.groups, sorted(groups))
        return Anchors(self.features[keep], self.labels[keep], self.groups[keep], self.feature_extractor_sha256,
                       self.built_by)

    def __len__(self) -> int:
        return len(self.labels)


@functools.lru_cache(maxsize=1)
def load_anchors() -> Anchors:
    """The packaged anchor set (read once per process)."""
    doc = json.loads(ANCHORS_FILE.read_text(encoding="utf-8"))
    raw = np.frombuffer(base64.b64decode(doc["features_float16_base64"]), dtype=np.float16)
    features = raw.reshape(int(doc["n"]), int(doc["width"])).astype(np.float32)
    return Anchors(features, np.asarray(doc["labels"], np.int8), np.asarray(doc["groups"]),
                   str(doc["feature_extractor_sha256"]), str(doc["built_by"]))
