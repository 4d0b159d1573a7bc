"""Reading tiles: formats, resolution metadata (exact mpp), overrides, warnings and bad images."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from spindledx.errors import BadInputError
from spindledx.imaging.reader import ASSUMED_MPP, read_image, tile_from_array
from spindledx.imaging.resample import resample, scale_factor


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def test_png_roundtrip_with_phys_gives_exact_mpp(tmp_path, rgb):
    path = tmp_path / "tile.png"
    Image.fromarray(rgb).save(path, dpi=(25400 / 0.25, 25400 / 0.25))  # pHYs 4,000,000 px/m
    tile = read_image(path)
    assert np.array_equal(tile.rgb, rgb)
    assert (tile.width, tile.height) == (64, 48)
    assert tile.mpp == 0.25 and tile.mpp_source == "metadata"
    assert tile.warnings == ()


def test_png_without_metadata_assumes_with_warning(tmp_path, rgb):
    path = tmp_path / "tile.png"
    Image.fromarray(rgb).save(path)
    tile = read_image(path)
    assert tile.mpp == ASSUMED_MPP and tile.mpp_source == "assumed"
    assert any("assuming 0.25" in w and "--mpp" in w for w in tile.warnings)


def test_screen_dpi_is_ignored_not_trusted(tmp_path, rgb):
    path = tmp_path / "tile.png"
    Image.fromarray(rgb).save(path, dpi=(72, 72))
    tile = read_image(path)
    assert tile.mpp_source == "assumed"
    assert any("ignored" in w for w in tile.warnings)


def test_override_wins_and_is_validated(tmp_path, rgb):
    path = tmp_path / "tile.png"
    Image.fromarray(rgb).save(path, dpi=(25400 / 0.25, 25400 / 0.25))
    tile = read_image(path, mpp=0.5)
    assert tile.mpp == 0.5 and tile.mpp_source == "override"
    assert any("overrides" in w for w in tile.warnings)
    with pytest.raises(BadInputError, match="mpp"):
        read_image(path, mpp=300.0)


@pytest.mark.parametrize(("resolution", "unit", "expected"), [
    ((40000, 40000), "CENTIMETER", 0.25),
    ((20000, 20000), "CENTIMETER", 0.5),
    ((25400 / 0.2527, 25400 / 0.2527), "INCH", 0.2527),
])
def test_tiff_resolution_tags_give_exact_mpp(tmp_path, rgb, resolution, unit, expected):
    path = tmp_path / "tile.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", resolution=resolution, resolutionunit=unit)
    tile = read_image(path)
    assert tile.mpp == pytest.approx(expected, abs=1e-6)
    assert tile.mpp_source == "metadata"
    assert np.array_equal(tile.rgb, rgb)


def test_ome_tiff_physical_size(tmp_path, rgb):
    path = tmp_path / "tile.ome.tif"
    tifffile.imwrite(path, rgb, ome=True, photometric="rgb",
                     metadata={"axes": "YXS", "PhysicalSizeX": 0.2431, "PhysicalSizeY": 0.2431})
    tile = read_image(path)
    assert tile.mpp == pytest.approx(0.2431) and tile.mpp_source == "metadata"


def test_ome_tiff_units_are_converted(tmp_path, rgb):
    path = tmp_path / "tile.ome.tif"
    tifffile.imwrite(path, rgb, ome=True, photometric="rgb",
                     metadata={"axes": "YXS", "PhysicalSizeX": 250.0, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 250.0, "PhysicalSizeYUnit": "nm"})
    assert read_image(path).mpp == pytest.approx(0.25)


def test_aperio_description_mpp(tmp_path, rgb):
    path = tmp_path / "tile.svs"
    tifffile.imwrite(path, rgb, photometric="rgb",
                     description="Aperio Image Library v12.0.5\r\n64x48 -> 64x48 |AppMag = 40|MPP = 0.2520|")
    tile = read_image(path)
    assert tile.mpp == pytest.approx(0.252) and tile.mpp_source == "metadata"


def test_tiled_pyramidal_tiff_reads_base_level(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(256, 320, 3), dtype=np.uint8)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(base, tile=(64, 64), subifds=1, photometric="rgb", resolution=(40000, 40000),
                 resolutionunit="CENTIMETER")
        tw.write(base[::2, ::2], tile=(64, 64), subfiletype=1, photometric="rgb")
    tile = read_image(path)
    assert tile.rgb.shape == (256, 320, 3)
    assert np.array_equal(tile.rgb, base)
    assert tile.mpp == pytest.approx(0.25)


def test_planar_tiff_and_16_bit_and_alpha(tmp_path, rgb):
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.transpose(rgb, (2, 0, 1)), photometric="rgb", planarconfig="separate")
    assert np.array_equal(read_image(planar).rgb, rgb)
    deep = tmp_path / "deep.tif"
    tifffile.imwrite(deep, rgb.astype(np.uint16) * 257, photometric="rgb")
    tile = read_image(deep)
    assert np.array_equal(tile.rgb, rgb) and any("16-bit" in w for w in tile.warnings)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(rgba)
    tile = read_image(rgba)
    assert np.array_equal(tile.rgb, rgb) and any("alpha" in w for w in tile.warnings)


def test_jpeg_reads(tmp_path, rgb):
    path = tmp_path / "tile.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    tile = read_image(path)
    assert tile.rgb.shape == rgb.shape and tile.mpp_source == "assumed"


def _truncated_png(tmp_path, rgb):
    good = tmp_path / "good.png"
    Image.fromarray(rgb).save(good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.png"
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "grayscale", "gray_rgb", "missing", "tiff_junk"])
def test_bad_images_raise_one_line_naming_the_file(tmp_path, rgb, kind):
    if kind == "truncated":
        path = _truncated_png(tmp_path, rgb)
    elif kind == "text":
        path = tmp_path / "notes.png"
        path.write_text("this is not an image\n")
    elif kind == "empty":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
    elif kind == "grayscale":
        path = tmp_path / "gray.png"
        Image.fromarray(rgb[:, :, 0]).save(path)
    elif kind == "gray_rgb":
        path = tmp_path / "gray_rgb.png"
        Image.fromarray(np.repeat(rgb[:, :, :1], 3, axis=2)).save(path)
    elif kind == "missing":
        path = tmp_path / "nope.png"
    else:
        path = tmp_path / "junk.tif"
        path.write_bytes(b"II*\x00" + b"\xff" * 40)
    with pytest.raises(BadInputError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_huge_image_points_to_slide(tmp_path, monkeypatch, rgb):
    import spindledx.imaging.reader as io_module

    monkeypatch.setattr(io_module, "MAX_TILE_PIXELS", 1000)
    path = tmp_path / "big.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(BadInputError, match="spindledx slide"):
        read_image(path)
    tif = tmp_path / "big.tif"
    tifffile.imwrite(tif, rgb, photometric="rgb")
    with pytest.raises(BadInputError, match="spindledx slide"):
        read_image(tif)


def test_resample_sizes_and_identity(rgb):
    assert resample(rgb, 0.25, 0.25) is rgb
    half = resample(rgb, 0.25, 0.5)
    assert half.shape == (24, 32, 3)
    double = resample(rgb, 0.5, 0.25)
    assert double.shape == (96, 128, 3)
    assert scale_factor(0.5, 0.25) == 2.0
    flat = np.full((40, 40, 3), 123, np.uint8)
    assert np.all(resample(flat, 0.25, 0.4) == 123)  # area averaging keeps a flat field flat


def test_tile_from_array_validates():
    tile = tile_from_array(np.zeros((8, 9, 3), np.uint8), 0.5, name="x")
    assert (tile.width, tile.height, tile.mpp, tile.mpp_source) == (9, 8, 0.5, "override")
    with pytest.raises(BadInputError):
        tile_from_array(np.zeros((8, 9), np.uint8), 0.5)


def test_real_midesec_field_reads_with_assumed_mpp(shared_data):
    tile = read_image(shared_data / "midesec-train" / "P0_00.png")
    assert tile.rgb.shape == (1024, 1024, 3) and tile.rgb.dtype == np.uint8
    assert tile.mpp_source == "assumed" and tile.mpp == ASSUMED_MPP  # the set states no scanner resolution
    mean = tile.rgb.reshape(-1, 3).mean(axis=0)
    assert mean[1] < mean[0] and mean[1] < mean[2]  # H&E: green absorbed most
