"""Build the shipped detector's INT8 graph from its float graph and check it against the float model.

Usage::

    .venv/bin/python scripts/quantize_mitosis_model.py            # build, check, write the card
    .venv/bin/python scripts/quantize_mitosis_model.py --check    # check the shipped INT8 graph only

Needs the ``onnx`` package (``pip install 'spindledx[quantize]'``) to build; the shipped detector needs only
onnxruntime to run the result. Reads the 35 MiDeSeC training fields from ``../shared/data/midesec-train`` (the
fields the float model was trained on; read there, never copied).

What it builds (onnxruntime static quantisation, ``onnxruntime.quantization.quantize_static``, QDQ format):
weights of convolutions 2-5 and of the final dense layer as signed 8-bit integers per output channel,
activations as signed 8-bit integers per tensor with ranges from min-max calibration on the patches at every
candidate of the 35 fields (single view, about 12,800 patches). The first convolution, its ReLU and its max
pooling stay in float: with three input channels an 8-bit convolution is slower than the float one in
onnxruntime, and the 8-bit tensors start after the first pooling, where they are four times smaller.

What it checks, float graph against INT8 graph, both with the card's test-time averaging (``gated8``) on every
candidate of the 35 fields: the largest and the 99th-percentile absolute difference of the single-view and the
averaged probabilities, and the agreement of the decisions (gate of the averaging, and the decision threshold).
The figures go into the card's ``quantization`` entry; the detections and F1 of both graphs are compared by
``spindledx evaluate`` (``docs/evaluation.md``).

The card (``src/spindledx/detection/models/mitosis_model.json``) keeps naming the float graph (``onnx_file``,
``sha256``: the model, in provenance and for adaptation) and gets an ``int8`` entry with the INT8 graph's file,
sha256, method and these checks; :func:`spindledx.detection.model.load_model` verifies both files and runs the INT8
graph. Threshold, test-time averaging and candidates are unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIELDS = REPO.parent / "shared" / "data" / "midesec-train"
SHIPPED = REPO / "src" / "spindledx" / "detection" / "models"
CARD = SHIPPED / "mitosis_model.json"
INT8_ONNX = "mitosis_cnn_int8.onnx"
#: Nodes kept in float: the first convolution block (see the module docstring).
FLOAT_NODES = ["/net/features/features.0/Conv", "/net/features/features.2/Relu", "/net/features/features.3/MaxPool"]


def field_patches(model) -> list[np.ndarray]:
    """float32 model input at every candidate of each of the 35 fields (single view), one array per field."""
    from spindledx.detection.candidates import find_candidates
    from spindledx.detection.patches import extract_patches, to_model_input
    from spindledx.imaging.reader import read_image

    out = []
    for path in sorted(FIELDS.glob("*.png")):
        rgb = read_image(path, mpp=model.working_mpp).rgb
        out.append(to_model_input(extract_patches(rgb, find_candidates(rgb, model.working_mpp),
                                                  size=model.patch_size)))
    return out


def build(float_path: Path, int8_path: Path, patches: list[np.ndarray]) -> None:
    """Static QDQ quantisation of ``float_path`` into ``int8_path``, calibrated on ``patches``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [{"patches": x[i:i + 64]} for x in patches for i in range(0, len(x), 64)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=FLOAT_NODES)


def compare(float_model, int8_model, patches: list[np.ndarray]) -> dict:
    """Single-view and ``gated8`` probabilities of both graphs on the same patches; differences and agreement."""
    from spindledx.detection.model import gated_tta

    d = float_model.description
    single_f, single_q, mean_f, mean_q = [], [], [], []
    for x in patches:
        single_f.append(float_model._run(x))
        single_q.append(int8_model._run(x))
        mean_f.append(gated_tta(float_model._run, x, ways=d.tta, gate=d.tta_gate))
        mean_q.append(gated_tta(int8_model._run, x, ways=d.tta, gate=d.tta_gate))
    sf, sq, mf, mq = (np.concatenate(a).astype(np.float64) for a in (single_f, single_q, mean_f, mean_q))
    gap_single, gap_mean = np.abs(sq - sf), np.abs(mq - mf)
    above_f, above_q = mf >= d.threshold, mq >= d.threshold
    return {
        "patches": int(len(sf)),
        "fields": len(patches),
        "single_view_max_abs_dp": round(float(gap_single.max()), 4),
        "single_view_p99_abs_dp": round(float(np.percentile(gap_single, 99)), 4),
        "gated8_max_abs_dp": round(float(gap_mean.max()), 4),
        "gated8_p99_abs_dp": round(float(np.percentile(gap_mean, 99)), 4),
        "gate_agreement": round(float(np.mean((sf >= d.tta_gate) == (sq >= d.tta_gate))), 5),
        "threshold_agreement": round(float(np.mean(above_f == above_q)), 5),
        "above_threshold_float": int(above_f.sum()),
        "above_threshold_int8": int(above_q.sum()),
        "above_threshold_both": int((above_f & above_q).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the shipped INT8 graph, build nothing")
    args = parser.parse_args(argv)
    from spindledx.detection.model import MitosisModel, ModelDescription, sha256_file, verify_checksum

    if not FIELDS.is_dir():
        print(f"needs the MiDeSeC fields in {FIELDS}", file=sys.stderr)
        return 2
    card = json.loads(CARD.read_text(encoding="utf-8"))
    float_path = SHIPPED / card["onnx_file"]
    verify_checksum(float_path, card["sha256"])
    description = ModelDescription.from_dict(card)
    float_model = MitosisModel(description, float_path)
    patches = field_patches(float_model)
    int8_path = SHIPPED / INT8_ONNX
    if args.check:
        verify_checksum(int8_path, card["int8"]["sha256"])
    else:
        build(float_path, int8_path, patches)
    int8_model = MitosisModel(description, int8_path)
    check = compare(float_model, int8_model, patches)
    print(json.dumps(check, indent=1))
    if args.check:
        return 0
    card["int8"] = {
        "onnx_file": INT8_ONNX,
        "sha256": sha256_file(int8_path),
        "method": "onnxruntime quantize_static, QDQ, int8 weights per output channel, int8 activations per "
                  "tensor, min-max calibration; first convolution block kept in float",
        "calibration": "single-view patches at every candidate of the 35 MiDeSeC training fields",
        "float_nodes": FLOAT_NODES,
        "check_against_float": check,
        "built_by": "scripts/quantize_mitosis_model.py",
    }
    CARD.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {int8_path.name} (sha256 {card['int8']['sha256'][:12]}) and the int8 entry of {CARD.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
