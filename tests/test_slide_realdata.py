"""The whole-slide path on real H&E: a pyramidal TIFF mosaic of midesec fields, with the shipped detector.

The mosaic is built at test time in a temporary folder from ``../shared/data`` (never copied into the repo).
It checks that tiling a real field through the slide pipeline finds what the detector finds on the whole field,
and that the annotated figures are counted the same way; it skips when the data or the model is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from spindledx.errors import BadInputError
from spindledx.mitosis.evaluate import MIDOG_RADIUS_UM, f1_scores, load_points_csv, match_points
from spindledx.slide.pipeline import analyze_slide, default_detector
from spindledx.slide.synthetic import write_pyramidal_tiff

pytestmark = pytest.mark.realdata

MPP = 0.25  # assumed for midesec (data README)
FIELDS = ("P0_00", "P0_01", "P0_02", "P0_03")
BORDER = 256


@pytest.fixture(scope="module")
def detector():
    det = default_detector()
    try:
        det.prepare()
    except (BadInputError, ImportError) as exc:
        pytest.skip(f"shipped mitosis model unavailable: {exc}")
    return det


def test_slide_pipeline_on_a_mosaic_of_real_fields(shared_data, detector, tmp_path):
    import cv2

    folder = shared_data / "midesec-train"
    truth_by_field = load_points_csv(folder / "mitoses.csv")
    mosaic = np.full((2 * 1024 + 2 * BORDER, 2 * 1024 + 2 * BORDER, 3), 242, np.uint8)
    truth, per_field = [], []
    for k, name in enumerate(FIELDS):
        rgb = cv2.cvtColor(cv2.imread(str(folder / f"{name}.png")), cv2.COLOR_BGR2RGB)
        ox, oy = BORDER + (k % 2) * 1024, BORDER + (k // 2) * 1024
        mosaic[oy:oy + 1024, ox:ox + 1024] = rgb
        gt = truth_by_field.get(f"{name}.png", truth_by_field.get(name, np.zeros((0, 2))))
        truth.append(gt + (ox, oy))
        per_field.extend((d.x + ox, d.y + oy) for d in detector(rgb, MPP))
    truth = np.vstack(truth)
    per_field = np.array(per_field, float).reshape(-1, 2)
    path = write_pyramidal_tiff(tmp_path / "mosaic.tif", mosaic, mpp=MPP, n_levels=2)

    result = analyze_slide(path, detector=detector, out_dir=tmp_path / "run", area_mm2=0.25)
    slide_xy = result.detections[:, :2]
    radius_px = MIDOG_RADIUS_UM / MPP
    agreement = match_points(slide_xy, per_field, radius_px)
    _, _, f1_agreement = f1_scores(agreement.tp, agreement.fp, agreement.fn)
    slide_vs_truth = match_points(slide_xy, truth, radius_px)
    field_vs_truth = match_points(per_field, truth, radius_px)
    print(f"slide {len(slide_xy)} vs whole-field {len(per_field)} detections: agreement F1 {f1_agreement:.3f}; "
          f"TP vs {len(truth)} annotated: slide {slide_vs_truth.tp}, whole fields {field_vs_truth.tp}")
    # Tiles see the same pixels as the whole field except for the per-tile candidate percentile and the context
    # across field edges that the mosaic adds: most detections must be the same ones.
    assert f1_agreement >= 0.8
    assert abs(slide_vs_truth.tp - field_vs_truth.tp) <= max(2, len(truth) // 5)
    assert result.tissue.area_mm2 == pytest.approx(4 * 1024 * 1024 * MPP**2 / 1e6, rel=0.1)
    hot = result.hotspots[0]
    assert hot.count == int((np.hypot(slide_xy[:, 0] * MPP + MPP / 2 - hot.centre_x_um,
                                      slide_xy[:, 1] * MPP + MPP / 2 - hot.centre_y_um) <= hot.radius_um).sum())
