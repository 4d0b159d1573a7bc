"""Penultimate-layer features and logits of a detector model, computed by onnxruntime on an edited ONNX graph.

The shipped classifier (``scripts/train_mitosis.py``: five conv blocks, global average pooling, one linear logit,
sigmoid) is cut at the pooled feature vector: the graph is edited with the ``onnx`` package so that the pooled
features and the logit are graph outputs (:func:`feature_graph`), and a second graph maps features to the logit
(:func:`head_graph`), so that a model adapted from another adapted model starts from that model's logit. The
tensor names are found from the graph's structure (the ``Sigmoid`` that makes the probability, the ``Gemm`` or
``MatMul`` that makes its logit) or read from the card of a model this package adapted (``adapt.features``,
``adapt.logit``).

Views: the 8 dihedral transforms of :func:`spindledx.detection.patches.dihedral_views`, the views the gated
test-time averaging of :func:`spindledx.detection.model.gated_tta` scores. Stain augmentation (:func:`stain_jitter`)
is the per-sample HED-space jitter of the shipped model's training (H and E scaled 0.5-1.6x, shifted +-0.05, the
stain matrix perturbed +-15%; Ruifrok & Johnston, Anal Quant Cytol Histol 2001;23:291), so that a head fitted on
one laboratory's crops does not learn that laboratory's stain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spindledx.detection.patches import dihedral_views, to_model_input
from spindledx.errors import BadInputError

#: The training extra's install line, named whenever ``onnx`` is missing.
INSTALL_HINT = "pip install 'spindledx[train]'"

#: RGB optical density -> (H, E, residual) matrix of the shipped model's training augmentation.
HED_FROM_RGB_OD = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32)


def require_onnx() -> Any:
    """The ``onnx`` module, or BadInputError naming the install line of the training extra."""
    try:
        import onnx
    except ImportError:
        raise BadInputError(f"adapting a model needs the training extra: {INSTALL_HINT}") from None
    return onnx


@dataclass(frozen=True)
class GraphCut:
    """Where a classifier graph is cut: its pooled feature tensor, its logit tensor and the feature width."""

    features: str
    logit: str
    width: int


def find_cut(model: Any, hint: dict[str, Any] | None = None) -> GraphCut:
    """The feature and logit tensors of a classifier graph (``onnx.ModelProto``).

    ``hint`` is the card's ``adapt`` block (tensor names written by :mod:`spindledx.adapt.compose`); otherwise the
    logit is the input of the ``Sigmoid`` nearest the output (through ``Squeeze``/``Reshape``/``Flatten``), made by
    a ``Gemm`` or ``MatMul`` whose first input is the feature tensor.

    Raises
    ------
    BadInputError
        A graph with no such structure (another architecture): only a sigmoid-on-linear classifier is adapted.
    """
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    if hint and hint.get("features") in producer and hint.get("logit") in producer:
        return GraphCut(hint["features"], hint["logit"], int(hint.get("width") or _width(model, hint["features"])))
    sigmoids = [n for n in nodes if n.op_type == "Sigmoid"]
    for sig in reversed(sigmoids):
        logit = sig.input[0]
        node = producer.get(logit)
        while node is not None and node.op_type in ("Squeeze", "Reshape", "Flatten", "Identity"):
            node = producer.get(node.input[0])
        if node is None or node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2:
            continue
        weight = inits.get(node.input[1])
        if weight is None:
            continue
        from onnx import numpy_helper

        w = numpy_helper.to_array(weight)
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute)
        width = int(w.shape[1] if transposed else w.shape[0])
        return GraphCut(node.input[0], logit, width)
    raise BadInputError("the model's graph has no linear logit under a sigmoid to adapt (adapt works on the shipped "
                        "model and on models adapted from it)")


def _width(model: Any, name: str) -> int:
    for vi in list(model.graph.value_info) + list(model.graph.output):
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].dim_value:
                return int(dims[1].dim_value)
    raise BadInputError(f"the width of the model's feature tensor {name} is not recorded")


def _value_info(onnx: Any, name: str, width: int | None) -> Any:
    shape = ["n", width] if width else ["n"]
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def feature_graph(model: Any, cut: GraphCut) -> bytes:
    """The graph with the feature and logit tensors as its outputs (serialised ``onnx.ModelProto``)."""
    onnx = require_onnx()
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    del edited.graph.output[:]
    edited.graph.output.extend([_value_info(onnx, cut.features, cut.width), _value_info(onnx, cut.logit, None)])
    return edited.SerializeToString()


def head_graph(model: Any, cut: GraphCut) -> bytes:
    """The part of the graph from the feature tensor to the logit (``onnx.utils.Extractor``), serialised."""
    onnx = require_onnx()
    from onnx.utils import Extractor

    inferred = onnx.shape_inference.infer_shapes(model)
    return Extractor(inferred).extract_model([cut.features], [cut.logit]).SerializeToString()


class FeatureExtractor:
    """onnxruntime sessions on a classifier's edited graphs: ``features(x)``, ``head(features)``.

    Parameters
    ----------
    onnx_bytes
        The model's ONNX file content.
    hint
        The card's ``adapt`` block, if any.
    threads
        onnxruntime intra-op threads.
    """

    def __init__(self, onnx_bytes: bytes, *, hint: dict[str, Any] | None = None, threads: int = 2) -> None:
        import onnxruntime as ort

        onnx = require_onnx()
        self.model = onnx.load_from_string(onnx_bytes)
        self.cut = find_cut(self.model, hint)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._feat = ort.InferenceSession(feature_graph(self.model, self.cut), opts,
                                          providers=["CPUExecutionProvider"])
        self._head = ort.InferenceSession(head_graph(self.model, self.cut), opts, providers=["CPUExecutionProvider"])
        self._input = self._feat.get_inputs()[0].name
        self._head_input = self._head.get_inputs()[0].name

    def features(self, x: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features ``(N, D)`` and logits ``(N,)`` of float32 NCHW model input."""
        feats, logits = [], []
        for i in range(0, len(x), batch_size):
            f, z = self._feat.run(None, {self._input: np.ascontiguousarray(x[i:i + batch_size])})
            feats.append(np.asarray(f, np.float32).reshape(len(f), -1))
            logits.append(np.asarray(z, np.float32).reshape(-1))
        if not feats:
            return np.zeros((0, self.cut.width), np.float32), np.zeros(0, np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def head(self, features: np.ndarray) -> np.ndarray:
        """The model's own logit for features ``(N, D)`` (e.g. the stored anchor features)."""
        if len(features) == 0:
            return np.zeros(0, np.float32)
        z = self._head.run(None, {self._head_input: np.ascontiguousarray(features, dtype=np.float32)})[0]
        return np.asarray(z, np.float32).reshape(-1)


def view_features(extractor: FeatureExtractor, patches: np.ndarray, *, ways: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of the ``ways`` dihedral views of uint8 patches ``(N, S, S, 3)``.

    Returns
    -------
    features, logits
        ``(ways, N, D)`` and ``(ways, N)``; view 0 is the patch as given.
    """
    x = to_model_input(patches)
    views = dihedral_views(x, ways) if len(x) else [x] * ways
    out = [extractor.features(v) for v in views]
    return np.stack([f for f, _ in out]), np.stack([z for _, z in out])


def stain_jitter(patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-sample HED-space stain jitter of uint8 patches ``(N, S, S, 3)`` (the shipped model's training
    augmentation: H and E concentrations scaled 0.5-1.6x, residual 0.8-1.2x, shifted +-0.05, the stain matrix
    perturbed +-15% per entry), returned as uint8."""
    n = len(patches)
    if n == 0:
        return patches.copy()
    x = patches.astype(np.float32) / 255.0
    od = -np.log(np.clip(x, 1 / 255.0, 1.0))
    conc = od @ np.linalg.inv(HED_FROM_RGB_OD)  # (N, S, S, 3 stains)
    scale = rng.uniform(0.5, 1.6, (n, 1, 1, 3)).astype(np.float32)
    scale[..., 2] = rng.uniform(0.8, 1.2, (n, 1, 1)).astype(np.float32)
    conc = conc * scale + rng.uniform(-0.05, 0.05, (n, 1, 1, 3)).astype(np.float32)
    matrix = HED_FROM_RGB_OD[None] * rng.uniform(0.85, 1.15, (n, 3, 3)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=2, keepdims=True)
    od = np.einsum("nhws,nsc->nhwc", np.maximum(conc, 0.0), matrix)
    return np.clip(np.rint(np.exp(-od) * 255.0), 0, 255).astype(np.uint8)
