"""Whole-slide building blocks: reader scale, raster resampling, tiles, tissue mask, hotspot search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
from skimage.draw import disk, line

from spindledx.counting import DEFAULT_HPF_AREA_MM2, fnclcc_mitotic_score, per_10_hpf
from spindledx.errors import BadInputError
from spindledx.imaging.resolution import ome_candidate
from spindledx.imaging.slide import SlideInfo, open_slide
from spindledx.slide.hotspot import find_hotspot
from spindledx.slide.synthetic import make_slide_rgb, write_pyramidal_tiff
from spindledx.slide.tiling import make_raster, plan_tiles, read_raster
from spindledx.slide.tissue import tissue_mask


@pytest.fixture(scope="module")
def small_rgb() -> np.ndarray:
    return make_slide_rgb(1200, 900, tissue_boxes=[(100, 100, 1100, 800)], figures=np.array([[600.0, 450.0]]),
                          nuclei_per_mpx=200, seed=3)


# ---------------------------------------------------------------- reader


@pytest.mark.parametrize(("layout", "backend"), [("subifds", "tiffslide"), ("pages", "openslide")])
def test_reader_scale_from_tiff_resolution_tags(tmp_path, small_rgb, layout, backend):
    path = write_pyramidal_tiff(tmp_path / f"s_{layout}.tif", small_rgb, mpp=0.25, layout=layout, factor=2)
    with open_slide(path) as slide:
        info = slide.info
        assert info.backend == backend
        assert info.mpp == pytest.approx(0.25)
        assert "mpp" in info.mpp_source
        assert (info.width, info.height) == (1200, 900)
        assert len(info.level_dimensions) == 3  # OpenSlide would see one level only for SubIFDs: tiffslide then
        assert info.level_downsamples[1] == pytest.approx(2.0)
        region = slide.read_level(0, 590, 440, 20, 20)
        assert region.shape == (20, 20, 3) and region.mean() < 100  # the dark figure at (600, 450)


@pytest.mark.parametrize(("backend", "factor"), [("openslide", 2), ("tiffslide", 3), ("tifffile", 3)])
def test_reader_reads_reduced_levels_exactly(tmp_path, small_rgb, backend, factor):
    """Factor 3 on 1100 px gives 366 and 122 px levels: non-integer downsamples (3.0027, 9.008), which tiffslide
    and tifffile read pixel-exactly; OpenSlide interpolates sub-pixel there, so it is checked at factor 2."""
    path = write_pyramidal_tiff(tmp_path / "p.tif", small_rgb[:, :1100], mpp=0.25, layout="pages", factor=factor)
    with tifffile.TiffFile(path) as tif:
        level2 = tif.series[0].levels[2].asarray()
    with open_slide(path, backend=backend) as slide:
        assert slide.info.level_dimensions[2] == (level2.shape[1], level2.shape[0])
        for x, y in ((0, 0), (1, 1), (7, 3), (30, 41)):
            np.testing.assert_array_equal(slide.read_level(2, x, y, 40, 30), level2[y:y + 30, x:x + 40])


def test_reader_ome_physical_size(tmp_path, small_rgb):
    path = write_pyramidal_tiff(tmp_path / "s.ome.tif", small_rgb, mpp=0.5, ome=True, factor=2)
    with open_slide(path) as slide:
        assert slide.info.backend == "tifffile"
        assert slide.info.vendor == "ome-tiff"
        assert slide.info.mpp == pytest.approx(0.5)
        assert slide.info.mpp_source == "OME PhysicalSizeX"
        np.testing.assert_array_equal(slide.read_level(0, 0, 0, 1200, 900), small_rgb)


def test_mpp_from_ome_converts_units():
    xml = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Instrument><Objective '
           'NominalMagnification="40"/></Instrument><Image><Pixels PhysicalSizeX="250" PhysicalSizeXUnit="nm"/>'
           '</Image></OME>')
    candidate, objective = ome_candidate(xml)
    assert (candidate.mpp_x, objective) == (pytest.approx(0.25), 40.0)


def test_reader_plain_tiff_and_white_outside(tmp_path, small_rgb):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, small_rgb, photometric="rgb", resolution=(1e4 / 0.5, 1e4 / 0.5),
                     resolutionunit="CENTIMETER")
    with open_slide(path) as slide:
        assert slide.info.backend == "tifffile"
        assert slide.info.mpp == pytest.approx(0.5)
        assert slide.info.mpp_source == "TIFF XResolution/ResolutionUnit"
        window = slide.read_level(0, -10, -10, 30, 30)
        assert (window[:10] == 255).all() and (window[:, :10] == 255).all()
        np.testing.assert_array_equal(window[10:, 10:], small_rgb[:20, :20])


def test_reader_refuses_missing_scale_unless_given(tmp_path, small_rgb):
    path = write_pyramidal_tiff(tmp_path / "noscale.tif", small_rgb, mpp=None, layout="pages", factor=2)
    with pytest.raises(BadInputError, match="give it with mpp") as refused:
        open_slide(path)
    assert "--" not in str(refused.value) and refused.value.parameters == ("mpp",)
    with open_slide(path, mpp=0.26) as slide:
        assert slide.info.mpp == 0.26 and slide.info.mpp_source == "override"
    with pytest.raises(BadInputError, match="plausible"):
        open_slide(path, mpp=72.0)


def test_reader_rejects_missing_and_non_slide_files(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        open_slide(tmp_path / "nope.svs")
    junk = tmp_path / "junk.svs"
    junk.write_text("not a slide")
    with pytest.raises(BadInputError, match="cannot read"):
        open_slide(junk, mpp=0.25)


# ---------------------------------------------------------------- raster and tiles


def _info(mpp: float, downsamples: tuple[float, ...], size: tuple[int, int] = (4000, 3000)) -> SlideInfo:
    dims = tuple((int(size[0] / d), int(size[1] / d)) for d in downsamples)
    return SlideInfo(path="x", backend="t", vendor="v", width=size[0], height=size[1], mpp=mpp, mpp_source="m",
                     objective_power=None, level_dimensions=dims, level_downsamples=downsamples)


def test_make_raster_uses_integer_factors():
    r = make_raster(_info(0.5, (1.0, 4.0)), 0.25)
    assert (r.level, r.upsample, r.downsample, r.mpp, r.width) == (0, 2, 1, 0.25, 8000)
    r = make_raster(_info(0.2527, (1.0, 4.0)), 0.25)  # within tolerance: level 0 as is, true mpp kept
    assert (r.upsample, r.downsample, r.mpp) == (1, 1, 0.2527)
    r = make_raster(_info(0.25, (1.0, 4.0, 16.0)), 2.0)  # level 1 (1 µm/px) block-averaged by 2
    assert (r.level, r.downsample, r.mpp, r.level0_per_px) == (1, 2, 2.0, 8.0)
    x0, y0 = r.to_level0(np.array([0.0, 10.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(x0, [3.5, 83.5])  # centre of the first 8x8 block of level-0 pixels
    np.testing.assert_allclose(r.from_level0(x0, y0)[0], [0.0, 10.0])


@pytest.mark.parametrize(("mpp", "target"), [(0.5, 0.25), (0.25, 0.5)])
def test_read_raster_pixels_do_not_depend_on_the_window(tmp_path, small_rgb, mpp, target):
    path = write_pyramidal_tiff(tmp_path / "r.tif", small_rgb, mpp=mpp, n_levels=1, layout="pages")
    with open_slide(path) as slide:
        raster = make_raster(slide.info, target)
        a = read_raster(slide, raster, 101, 77, 300, 260)
        b = read_raster(slide, raster, 250, 200, 300, 260)
        np.testing.assert_array_equal(a[123:, 149:], b[:137, :151])  # the shared region, read twice


def test_plan_tiles_cores_partition_the_raster():
    width, height = 1000, 700
    tiles = plan_tiles(width, height, core_px=256, margin_px=40)
    cover = np.zeros((height, width), int)
    for t in tiles:
        cover[t.core_y0:t.core_y1, t.core_x0:t.core_x1] += 1
        assert t.x == t.core_x0 - 40 and t.width == t.core_x1 - t.core_x0 + 80
    assert (cover == 1).all()
    assert len(tiles) == 4 * 3
    keep = np.zeros((3, 4), bool)
    keep[1, 2] = True
    (only,) = plan_tiles(width, height, core_px=256, margin_px=40, keep=keep)
    assert (only.row, only.col, only.key) == (1, 2, "r0001_c0002")
    # the keep rule is half-open: a point on the boundary x = 512 belongs to the right-hand core only
    left = next(t for t in tiles if (t.row, t.col) == (0, 1))
    right = next(t for t in tiles if (t.row, t.col) == (0, 2))
    assert not left.in_core(512.0, 10.0) and right.in_core(512.0, 10.0) and left.in_core(511.999, 10.0)


# ---------------------------------------------------------------- tissue


def _thumb_with_marks() -> np.ndarray:
    rgb = np.full((200, 300, 3), 242, np.uint8)
    rgb[40:160, 50:200] = (210, 140, 190)  # eosin-pink tissue
    rgb[70:90, 80:100] = (150, 100, 175)  # haematoxylin-rich area (must stay tissue)
    rgb[100:106, 120:126] = (45, 17, 50)  # dense, dark but saturated haematoxylin (not black ink)
    rgb[120:123, 150:153] = (27, 48, 75)  # a few dark bluish nuclei (not a pen stroke)
    for (r0, c0, r1, c1), colour in (((20, 220, 180, 230), (40, 160, 60)),   # green pen
                                     ((20, 250, 180, 262), (30, 60, 170)),   # blue pen
                                     ((185, 20, 185, 280), (20, 20, 20))):   # black ink
        for dr in range(-3, 4):
            rr, cc = line(r0 + (dr if r0 == r1 else 0), c0 + (0 if r0 == r1 else dr),
                          r1 + (dr if r0 == r1 else 0), c1 + (0 if r0 == r1 else dr))
            ok = (rr >= 0) & (rr < 200) & (cc >= 0) & (cc < 300)
            rgb[rr[ok], cc[ok]] = colour
    rr, cc = disk((20, 20), 2)
    rgb[rr, cc] = (210, 140, 190)  # a tiny speck of debris
    return rgb


def test_tissue_mask_keeps_tissue_and_drops_pen_and_specks():
    mask, threshold, pen_fraction = tissue_mask(_thumb_with_marks(), 8.0, min_object_um2=5_000)
    truth = np.zeros((200, 300), bool)
    truth[40:160, 50:200] = True
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95
    assert not mask[:, 210:].any()  # pen strokes
    assert not mask[180:, :].any()  # black ink line
    assert not mask[15:26, 15:26].any()  # speck
    assert mask[95:111, 115:131].all() and mask[115:128, 145:158].all()  # no holes punched in dark tissue
    assert 0.0 < threshold <= 0.15 and pen_fraction > 0.01


def test_tissue_mask_of_a_slide_covered_by_tissue_keeps_it_all():
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal((200, 130, 180), 25, size=(150, 150, 3)), 0, 255).astype(np.uint8)
    mask, _, _ = tissue_mask(rgb, 8.0)
    assert mask.mean() > 0.97


# ---------------------------------------------------------------- hotspot


def _brute_force(points, mask, cell, radius=None, sizes=()):
    """Highest exact count over every window position on the grid whose tissue fraction is >= 0.8."""
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rc = (radius or 0.0) / cell
    n_cells = sum(1 for dy in range(-h, h + 1) for dx in range(-w, w + 1) if dx * dx + dy * dy <= rc * rc)
    best = -1
    for iy in range(h):
        for ix in range(w):
            if radius is not None:
                frac = mask[(xx - ix) ** 2 + (yy - iy) ** 2 <= rc * rc].sum() / n_cells
                cx, cy = (ix + 0.5) * cell, (iy + 0.5) * cell
                inside = ((points[:, 0] - cx) ** 2 + (points[:, 1] - cy) ** 2) <= radius ** 2
                if frac >= 0.8 - 1e-9:
                    best = max(best, int(inside.sum()))
            else:
                for width, height in sizes:
                    kw, kh = round(width / cell), round(height / cell)
                    y0, x0 = iy - kh // 2, ix - kw // 2
                    frac = mask[(yy >= y0) & (yy < y0 + kh) & (xx >= x0) & (xx < x0 + kw)].sum() / (kh * kw)
                    cx, cy = (x0 + kw / 2) * cell, (y0 + kh / 2) * cell
                    inside = (np.abs(points[:, 0] - cx) <= width / 2) & (np.abs(points[:, 1] - cy) <= height / 2)
                    if frac >= 0.8 - 1e-9:
                        best = max(best, int(inside.sum()))
    return best


def _cluster_points(seed=0):
    rng = np.random.default_rng(seed)
    background = rng.uniform(0, 1600, size=(60, 2))
    cluster = rng.normal((1100.0, 500.0), 60.0, size=(40, 2))
    return np.vstack([background, cluster])


def test_circle_hotspot_finds_the_cluster_and_reports_counting_figures():
    points = _cluster_points()
    mask = np.ones((40, 40), bool)  # 40 cells of 40 µm = 1.6 mm square of tissue
    area = 0.5
    hot = find_hotspot(points, mask, 40.0, area_mm2=area, shape="circle")
    radius = math.sqrt(area * 1e6 / math.pi)
    assert hot.radius_um == pytest.approx(radius)
    # every position within ~200 µm of the cluster centre holds the whole cluster; background decides the rest
    assert math.hypot(hot.centre_x_um - 1100, hot.centre_y_um - 500) < radius / 2
    inside = np.hypot(points[:, 0] - hot.centre_x_um, points[:, 1] - hot.centre_y_um) <= radius
    assert hot.count == inside.sum() >= 40
    assert hot.mitoses_per_mm2 == pytest.approx(hot.count / area)
    assert hot.mitoses_per_10hpf == pytest.approx(per_10_hpf(hot.count / area, DEFAULT_HPF_AREA_MM2))
    assert hot.mitotic_score == fnclcc_mitotic_score(hot.mitoses_per_10hpf)
    outline = hot.outline_um()
    assert np.allclose(np.hypot(outline[:, 0] - hot.centre_x_um, outline[:, 1] - hot.centre_y_um), radius)


@pytest.mark.parametrize("shape", ["circle", "square", "fields"])
def test_hotspot_equals_brute_force_maximum(shape):
    rng = np.random.default_rng(5)
    points = np.vstack([rng.uniform(0, 600, size=(80, 2)), rng.normal((420.0, 180.0), 40.0, size=(25, 2))])
    mask = np.ones((30, 30), bool)
    mask[:, :6] = False  # a strip of glass
    area = 0.06
    hot = find_hotspot(points, mask, 20.0, area_mm2=area, shape=shape)
    if shape == "circle":
        expected = _brute_force(points, mask, 20.0, radius=math.sqrt(area * 1e6 / math.pi))
    elif shape == "square":
        expected = _brute_force(points, mask, 20.0, sizes=[(math.sqrt(area * 1e6),) * 2])
    else:  # ten squares of area / 10 in a 2 x 5 block, either orientation
        side = math.sqrt(area * 1e6 / 10)
        expected = _brute_force(points, mask, 20.0, sizes=[(5 * side, 2 * side), (2 * side, 5 * side)])
        assert sorted([hot.width_um, hot.height_um]) == pytest.approx([2 * side, 5 * side])
    assert hot.count == expected


def test_hotspot_ignores_clusters_outside_tissue():
    rng = np.random.default_rng(2)
    tissue_points = rng.uniform((0, 0), (800, 1600), size=(30, 2))
    glass_cluster = rng.normal((1300.0, 800.0), 40.0, size=(50, 2))  # e.g. debris detected on glass
    mask = np.zeros((40, 40), bool)
    mask[:, :20] = True
    hot = find_hotspot(np.vstack([tissue_points, glass_cluster]), mask, 40.0, area_mm2=0.2)
    assert hot.tissue_fraction >= 0.8
    assert hot.centre_x_um < 800 and hot.count < 30
    assert not hot.warnings


def test_hotspot_warns_when_no_window_is_mostly_tissue():
    mask = np.zeros((20, 20), bool)
    mask[8:12, 8:12] = True
    hot = find_hotspot(np.array([[400.0, 400.0]]), mask, 40.0, area_mm2=0.5)
    assert hot.warnings and "inside tissue" in hot.warnings[0]
    assert hot.count == 1


def test_hotspot_rejects_bad_options():
    with pytest.raises(BadInputError):
        find_hotspot(np.zeros((0, 2)), np.ones((5, 5), bool), 10.0, shape="hexagon")
    with pytest.raises(BadInputError):
        find_hotspot(np.zeros((0, 2)), np.ones((5, 5), bool), 10.0, area_mm2=-1)
