"""The shipped mitosis patch classifier: a JSON description + an ONNX file, checksum-verified, run by onnxruntime.

Models are described by data (tiatoolbox style): ``models/mitosis_model.json`` names the ONNX file and records
its sha256, input patch size, working resolution (µm/px), decision threshold, version and cross-validation
metrics. :func:`load_model` refuses a file whose sha256 differs from the description. No pickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.errors import BadInputError
from spindledx.mitosis.patches import to_model_input

#: ``models/`` at the repository root (the package is installed editable from ``src/``).
MODELS_DIR = Path(__file__).resolve().parents[3] / "models"
DEFAULT_DESCRIPTION = MODELS_DIR / "mitosis_model.json"


class ModelChecksumError(BadInputError):
    """The ONNX file does not match the sha256 recorded in its description."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelDescription:
    """Parsed ``mitosis_model.json``."""

    onnx_file: str
    sha256: str
    patch_size: int
    working_mpp: float
    threshold: float
    version: str
    tta: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelDescription:
        try:
            return cls(
                onnx_file=str(d["onnx_file"]),
                sha256=str(d["sha256"]).lower(),
                patch_size=int(d["input"]["patch_size"]),
                working_mpp=float(d["input"]["working_mpp"]),
                threshold=float(d["threshold"]),
                version=str(d["version"]),
                tta=int(d.get("tta", 1)),
                extra={k: v for k, v in d.items() if k not in {"onnx_file", "sha256", "input", "threshold", "version"}},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"invalid mitosis model description: missing or bad field {exc}") from exc


class MitosisModel:
    """onnxruntime session for the patch classifier; ``predict(patches) -> probabilities``."""

    def __init__(self, description: ModelDescription, onnx_path: Path, *, threads: int = 2) -> None:
        import onnxruntime as ort

        self.description = description
        self.onnx_path = Path(onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.onnx_path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    @classmethod
    def from_description(cls, desc: dict[str, Any] | ModelDescription, onnx_path: str | Path) -> MitosisModel:
        """Build from an in-memory description and an explicit ONNX path (checksum verified)."""
        d = desc if isinstance(desc, ModelDescription) else ModelDescription.from_dict(desc)
        verify_checksum(onnx_path, d.sha256)
        return cls(d, Path(onnx_path))

    @property
    def threshold(self) -> float:
        return self.description.threshold

    @property
    def patch_size(self) -> int:
        return self.description.patch_size

    @property
    def working_mpp(self) -> float:
        return self.description.working_mpp

    def predict(self, patches: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Mitosis probability for uint8 patches ``(N, S, S, 3)``; returns float32 ``(N,)``."""
        n = len(patches)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        for i in range(0, n, batch_size):
            x = to_model_input(patches[i : i + batch_size])
            out[i : i + batch_size] = np.asarray(self._session.run(None, {self._input: x})[0]).reshape(-1)
        return out


def verify_checksum(onnx_path: str | Path, expected_sha256: str) -> None:
    """Raise :class:`ModelChecksumError` when the file's sha256 is not ``expected_sha256``."""
    path = Path(onnx_path)
    if not path.is_file():
        raise BadInputError(f"mitosis model file not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise ModelChecksumError(
            f"mitosis model {path.name} sha256 {actual[:12]}… does not match its description "
            f"({expected_sha256[:12]}…); the file is corrupt or was replaced — reinstall or retrain"
        )


def load_model(description_path: str | Path | None = None, *, threads: int = 2) -> MitosisModel:
    """Load the model described by ``description_path`` (default ``models/mitosis_model.json``).

    The ONNX file is resolved relative to the JSON file and its sha256 is verified before use.
    """
    path = Path(description_path) if description_path is not None else DEFAULT_DESCRIPTION
    if not path.is_file():
        raise BadInputError(f"mitosis model description not found: {path} (train with `make train`)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadInputError(f"mitosis model description {path} is not valid JSON: {exc}") from exc
    desc = ModelDescription.from_dict(raw)
    onnx_path = path.parent / desc.onnx_file
    verify_checksum(onnx_path, desc.sha256)
    return MitosisModel(desc, onnx_path, threads=threads)
