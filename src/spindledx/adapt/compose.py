"""One ONNX graph for the adapted model: the starting graph with the head added between its logit and sigmoid.

The head's folded weight and bias (:meth:`spindledx.adapt.head.Head.folded`) become a ``Gemm`` on the pooled
feature tensor; its output is added to the starting logit and every node that read the starting logit reads the sum
instead. Input, output, views and gate are unchanged, so the adapted model runs under the same model contract
(``docs/guide/models.md``) with onnxruntime alone, and test-time averaging and its gate work as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spindledx.adapt.features import GraphCut, require_onnx
from spindledx.adapt.head import Head


def compose(model: Any, cut: GraphCut, head: Head, *, tag: str) -> tuple[Any, GraphCut]:
    """The starting ``onnx.ModelProto`` with the head composed in, and the cut of the new graph (same features,
    the new logit), for a later adaptation. ``tag`` makes the new tensor names unique."""
    onnx = require_onnx()
    from onnx import helper, numpy_helper

    w, b = head.folded()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    names = {k: f"adapt_{tag}_{k}" for k in ("w", "b", "shape", "gemm", "correction", "logit")}
    g.initializer.extend([numpy_helper.from_array(w.reshape(1, -1).astype(np.float32), names["w"]),
                          numpy_helper.from_array(np.array([b], np.float32), names["b"]),
                          numpy_helper.from_array(np.array([-1], np.int64), names["shape"])])
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == cut.logit:
                node.input[i] = names["logit"]
    new_nodes = [
        helper.make_node("Gemm", [cut.features, names["w"], names["b"]], [names["gemm"]], transB=1,
                         name=names["gemm"]),
        helper.make_node("Reshape", [names["gemm"], names["shape"]], [names["correction"]], name=names["correction"]),
        helper.make_node("Add", [cut.logit, names["correction"]], [names["logit"]], name=names["logit"]),
    ]
    position = next(i for i, n in enumerate(g.node) if cut.logit in n.output) + 1
    for offset, node in enumerate(new_nodes):
        g.node.insert(position + offset, node)
    onnx.checker.check_model(out)
    return out, GraphCut(cut.features, names["logit"], cut.width)
