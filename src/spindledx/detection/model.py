"""The shipped mitosis patch classifier: a JSON description + an ONNX file, checksum-verified, run by onnxruntime.

Models are described by data (tiatoolbox style): ``mitosis_model.json`` names the ONNX file and records its
sha256, input patch size, working resolution (µm/px), decision threshold, version and cross-validation metrics.
The shipped pair is package data (``spindledx/detection/models/``), read with :mod:`importlib.resources`, so an
installed wheel carries its model. :func:`load_model` refuses a file whose sha256 differs from the description;
:func:`load_shipped_model` is the one cached loader of the shipped model. No pickles.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.detection.patches import dihedral_views, to_model_input
from spindledx.errors import BadInputError

#: The shipped model's folder inside the installed package (package data; may be a zip member).
MODELS_DIR: Traversable = resources.files("spindledx.detection") / "models"
DEFAULT_DESCRIPTION: Traversable = MODELS_DIR / "mitosis_model.json"


#: Test-time averaging schemes measured by ``scripts/train_mitosis.py`` in every CV fold: name -> (dihedral views,
#: gate). Gate None: all views for every candidate (views inside the exported graph); gate g: every candidate scored
#: once, the views averaged only where that score is >= g (:func:`gated_tta`; a description with ``tta_gate``).
TTA_SCHEMES: dict[str, tuple[int, float | None]] = {
    "tta1": (1, None),
    "tta2": (2, None),
    "tta4": (4, None),
    "tta8": (8, None),
    "gated8": (8, 0.1),
}


#: Extra views of :func:`gated_tta` scored per round when a decision threshold is given (views 2-3, then one view
#: at a time): after each round, patches that can no longer reach the threshold are left out of the next. Checking
#: after every view from the third on scores 8 % fewer patches per field than rounds of 3 and 4 views on the
#: MiDeSeC fields and the synthetic slide tiles (``bench/bench_slide.py``); no check is useful after two views,
#: since two views can rule out only thresholds above 0.75.
TTA_ROUNDS = (2, 1, 1, 1, 1, 1)
#: Patches per onnxruntime call: 32 keeps a batch's activations in the processor's cache (about 10 % faster per
#: patch than 256 with 1 or 2 threads); a patch's probability does not depend on the batch it is in.
BATCH_SIZE = 32
#: Safety margin of that test on the probability scale (far above float32 rounding of the mean, about 6e-8).
TTA_BOUND_MARGIN = 1e-6


def gated_tta(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, ways: int, gate: float,
              threshold: float | None = None) -> np.ndarray:
    """Probabilities with test-time augmentation spent only where it can change the decision.

    Every patch is scored once; patches whose single-view probability is at least ``gate`` are scored again in
    all ``ways`` dihedral views (:func:`~spindledx.detection.patches.dihedral_views`) and get the mean of the
    ``ways`` views. Most candidates are plain nuclei far below any useful threshold, so ``ways = 8`` costs about
    two single-view passes instead of eight.

    With a decision ``threshold``, the extra views are scored in rounds (:data:`TTA_ROUNDS`) and a patch stops as
    soon as its mean cannot reach the threshold any more even if every remaining view scored 1, i.e.
    ``(sum of its views so far + views left) / ways < threshold - TTA_BOUND_MARGIN``. Every patch that can reach
    the threshold gets all ``ways`` views, summed in the same order as without a threshold, so its probability is
    the same to the bit and the set of patches at or above the threshold is unchanged; a patch that stopped early
    gets the mean of the views it had, which is below the threshold (57 % of the extra views are saved on the
    MiDeSeC fields at the shipped threshold).

    Parameters
    ----------
    predict
        Maps a float32 NCHW batch to probabilities ``(N,)`` (one view, no averaging).
    x
        float32 ``(N, 3, S, S)`` model input.
    ways
        Number of dihedral views averaged (1, 2, 4 or 8).
    gate
        Single-view probability from which the other views are computed.
    threshold
        Decision threshold applied to the result by the caller, or None for the full mean of every gated patch
        (what threshold searches need).

    Returns
    -------
    numpy.ndarray
        float32 ``(N,)``.
    """
    p = np.asarray(predict(x), dtype=np.float32).reshape(-1)
    if ways == 1 or len(p) == 0:
        return p
    sel = np.flatnonzero(p >= gate)
    if len(sel) == 0:
        return p
    total = p[sel].astype(np.float64)  # float64 sum over the views, in view order
    n_views = np.ones(len(sel), dtype=np.int64)
    rounds = [ways - 1] if threshold is None else _rounds(ways - 1)
    alive = np.arange(len(sel))  # positions in sel still being scored
    done = 1
    for size in rounds:
        # views done .. done + size - 1 of the live patches, one call per view (a patch's probability does not
        # depend on the batch it is in; copying each strided view is faster than concatenating them)
        for view in dihedral_views(x[sel[alive]], ways, contiguous=False)[done:done + size]:
            total[alive] += np.asarray(predict(np.ascontiguousarray(view)), dtype=np.float64).reshape(-1)
        n_views[alive] += size
        done += size
        if threshold is not None and done < ways:
            reachable = (total[alive] + (ways - done)) / ways >= threshold - TTA_BOUND_MARGIN
            alive = alive[reachable]
            if len(alive) == 0:
                break
    p = p.copy()
    p[sel] = (total / n_views).astype(np.float32)
    return p


def _rounds(extra_views: int) -> list[int]:
    """:data:`TTA_ROUNDS` cut to ``extra_views`` views in all (e.g. ``[1]`` for 2-way averaging)."""
    out, left = [], extra_views
    for size in TTA_ROUNDS:
        if left <= 0:
            break
        out.append(min(size, left))
        left -= out[-1]
    if left > 0:
        out.append(left)
    return out


class ModelChecksumError(BadInputError):
    """The ONNX file does not match the sha256 recorded in its description."""


def _as_resource(path: str | Path | Traversable) -> Path | Traversable:
    """A :class:`~pathlib.Path` for a string, the object itself for a path or package resource."""
    return Path(path) if isinstance(path, str) else path


def sha256_file(path: str | Path | Traversable) -> str:
    """Hex sha256 of a file (a path or an :mod:`importlib.resources` resource)."""
    h = hashlib.sha256()
    with _as_resource(path).open("rb") as fh:
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
    tta_gate: float | None = None
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
                tta_gate=None if d.get("tta_gate") is None else float(d["tta_gate"]),
                extra={k: v for k, v in d.items() if k not in {"onnx_file", "sha256", "input", "threshold", "version"}},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"invalid mitosis model description: missing or bad field {exc}") from exc


class MitosisModel:
    """onnxruntime session for the patch classifier; ``predict(patches) -> probabilities``."""

    def __init__(self, description: ModelDescription, onnx_path: Path | Traversable, *, threads: int = 2) -> None:
        import onnxruntime as ort

        self.description = description
        self.onnx_path = onnx_path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # threads sleep between operators instead of spinning: on a machine shared with other work, spinning
        # threads wait for a core held by another process (one 2176 px slide tile took 3.2 s spinning, 1.2 s
        # not, with the load average at 16 on 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # bytes, not a file name: works for package data inside a zip as well as for a file on disk. An 8-bit
        # (QDQ) graph runs with its float and integer parts where the graph puts them: onnxruntime's QDQ
        # propagation would move the shipped graph's first quantisation above its float max pooling, which then
        # runs as a slow unblocked 8-bit pooling (about 1.6x slower in all). Float graphs are not affected.
        self._session = ort.InferenceSession(_as_resource(onnx_path).read_bytes(), opts,
                                             providers=["CPUExecutionProvider"],
                                             disabled_optimizers=["QDQPropagationTransformer"])
        self._input = self._session.get_inputs()[0].name
        self._check_contract()

    def _check_contract(self) -> None:
        """Refuse an ONNX file whose input is not ``(N, 3, S, S)`` float with ``S`` the card's patch size."""
        inputs = self._session.get_inputs()
        shape = list(inputs[0].shape)
        size = self.description.patch_size
        ok = (len(inputs) == 1 and len(shape) == 4 and "float" in str(inputs[0].type)
              and all(d == want for d, want in zip(shape[1:], (3, size, size), strict=True) if isinstance(d, int)))
        if not ok or len(self._session.get_outputs()) < 1:
            raise BadInputError(f"model {getattr(self.onnx_path, 'name', self.onnx_path)}: input {shape} "
                                f"({inputs[0].type}) does not follow the model contract: one float input "
                                f"(N, 3, {size}, {size}) RGB in [0, 1], as the card's patch_size says")

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

    def _run(self, x: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
        out = np.empty(len(x), dtype=np.float32)
        for i in range(0, len(x), batch_size):
            batch = x[i : i + batch_size]
            out[i : i + batch_size] = np.asarray(self._session.run(None, {self._input: batch})[0]).reshape(-1)
        return out

    def predict(self, patches: np.ndarray, *, batch_size: int = BATCH_SIZE,
                threshold: float | None = None) -> np.ndarray:
        """Mitosis probability for uint8 patches ``(N, S, S, 3)``; returns float32 ``(N,)``.

        When the description sets ``tta_gate``, the ONNX graph is a single view and the ``tta`` dihedral views
        are averaged by :func:`gated_tta`; otherwise any averaging is inside the graph. With ``threshold``, a
        patch whose mean can no longer reach it stops early (:func:`gated_tta`): the patches at or above the
        threshold and their probabilities are the same, the others only stay below it.
        """
        if len(patches) == 0:
            return np.zeros(0, dtype=np.float32)
        x = to_model_input(patches)
        run = functools.partial(self._run, batch_size=batch_size)
        d = self.description
        if d.tta_gate is not None and d.tta > 1:
            return gated_tta(run, x, ways=d.tta, gate=d.tta_gate, threshold=threshold)
        return run(x)


def verify_checksum(onnx_path: str | Path | Traversable, expected_sha256: str) -> None:
    """Raise :class:`ModelChecksumError` when the file's sha256 is not ``expected_sha256``."""
    path = _as_resource(onnx_path)
    if not path.is_file():
        raise BadInputError(f"mitosis model file not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise ModelChecksumError(
            f"mitosis model {path.name} sha256 {actual[:12]}… does not match its description "
            f"({expected_sha256[:12]}…); the file is corrupt or was replaced — reinstall or retrain"
        )


def read_description(description_path: str | Path | Traversable | None = None) -> ModelDescription:
    """Parse a model description (default: the shipped ``mitosis_model.json``) without loading the ONNX file."""
    path = _as_resource(DEFAULT_DESCRIPTION if description_path is None else description_path)
    if not path.is_file():
        raise BadInputError(f"mitosis model description not found: {path} (train with `make train`)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"mitosis model description {path} is not valid JSON: {exc}") from exc
    return ModelDescription.from_dict(raw)


def load_model(description_path: str | Path | Traversable | None = None, *, threads: int = 2) -> MitosisModel:
    """Load the model described by ``description_path`` (default: the shipped package data).

    The ONNX file is resolved relative to the JSON file and its sha256 is verified before use. When the card has
    an ``int8`` entry (``onnx_file``, ``sha256``: an 8-bit graph built from the card's graph, e.g. by
    ``scripts/quantize_mitosis_model.py``), that graph is verified as well and is the one run; the card's own graph
    and sha256 still name the model (provenance, adaptation). Every call builds a new onnxruntime session; stages
    use the cached :func:`load_shipped_model`.
    """
    if description_path is None:
        path, folder = DEFAULT_DESCRIPTION, MODELS_DIR
    else:
        path = _as_resource(description_path)
        folder = Path(description_path).parent if isinstance(description_path, str | Path) else path.parent
    desc = read_description(path)
    onnx_path = folder / desc.onnx_file
    verify_checksum(onnx_path, desc.sha256)
    int8 = desc.extra.get("int8")
    if int8 is not None:
        if not (isinstance(int8, dict) and all(isinstance(int8.get(k), str) for k in ("onnx_file", "sha256"))):
            raise BadInputError("invalid mitosis model description: int8 needs onnx_file and sha256")
        onnx_path = folder / int8["onnx_file"]
        verify_checksum(onnx_path, int8["sha256"])
    return MitosisModel(desc, onnx_path, threads=threads)


@functools.lru_cache(maxsize=8)
def _load_model_file(path: str, mtime_ns: int, threads: int) -> MitosisModel:
    return load_model(path, threads=threads)


def resolve_model_card(path: str | Path) -> Path:
    """The model card named by ``path``: the JSON file itself, or the one card (a JSON object naming an
    ``onnx_file``) in a folder, as ``spindledx adapt`` writes it.

    Raises
    ------
    BadInputError
        No such file or folder, or a folder holding no card or more than one.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    cards = []
    for candidate in sorted(path.glob("*.json")):
        try:
            doc = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and "onnx_file" in doc:
            cards.append(candidate)
    if len(cards) != 1:
        found = "no model card" if not cards else f"{len(cards)} model cards ({cards[0].name}, {cards[1].name})"
        raise BadInputError(f"{path}: {found}; a model folder holds one card (JSON naming its onnx_file) beside "
                            "its ONNX file")
    return cards[0]


def load_model_file(path: str | Path, *, threads: int = 2) -> MitosisModel:
    """A model card (JSON) and its ONNX file from disk (the model contract, ``docs/guide/models.md``), checksum
    verified and loaded once per process, file version and thread setting. ``path`` may be a folder holding one
    card (:func:`resolve_model_card`)."""
    import os

    real = os.path.realpath(resolve_model_card(path))
    if not os.path.isfile(real):
        raise BadInputError(f"{path}: no such model card (a JSON file naming its ONNX file)")
    return _load_model_file(real, os.stat(real).st_mtime_ns, threads)


@functools.lru_cache(maxsize=4)
def load_shipped_model(threads: int = 2) -> MitosisModel:
    """The shipped model (package data), checksum-verified and loaded once per process and thread setting.

    Parameters
    ----------
    threads
        onnxruntime intra-op threads (1 in worker processes, 2 in a single process).
    """
    return load_model(None, threads=threads)


@functools.lru_cache(maxsize=1)
def shipped_description() -> ModelDescription:
    """The shipped model's description (cached; does not load or verify the ONNX file)."""
    return read_description(None)
