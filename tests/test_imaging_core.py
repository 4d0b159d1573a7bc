"""The imaging core: one µm/px parser for tiles and slides, bit depth, palette TIFF, grayscale slides (issue 11,
defects 5, 12 and 13)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from spindledx.errors import BadInputError
from spindledx.imaging.reader import read_image
from spindledx.imaging.resolution import Candidate, resolve
from spindledx.imaging.slide import open_slide


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(30, 230, size=(40, 50, 3), dtype=np.uint8)


def test_12_bit_data_in_16_bit_words_is_scaled_by_its_own_range(tmp_path, rgb):
    """Defect 12: a 12-bit camera image stored as uint16 was divided by 65535 (near-black, count 0)."""
    path = tmp_path / "twelve.tif"
    tifffile.imwrite(path, (rgb.astype(np.uint32) * 4095 // 255).astype(np.uint16), photometric="rgb")
    tile = read_image(path, mpp=0.25)
    assert np.abs(tile.rgb.astype(int) - rgb.astype(int)).max() <= 1
    assert any("12-bit" in w for w in tile.warnings)


def test_palette_tiff_is_expanded_not_called_grayscale(tmp_path):
    """Defect 13: an indexed-colour TIFF was refused as 'grayscale'."""
    colours = np.array([[200, 60, 150], [240, 200, 230], [90, 30, 120]], np.uint16)
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :3] = colours.T * 257
    index = np.tile(np.array([0, 1, 2, 1], np.uint8), (16, 4))
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, index, photometric="palette", colormap=colormap)
    tile = read_image(path, mpp=0.25)
    assert tile.rgb.shape == (16, 16, 3)
    assert tile.rgb[0, 0].tolist() == [200, 60, 150] and tile.rgb[0, 1].tolist() == [240, 200, 230]


def test_non_square_pixels_are_refused_not_averaged(tmp_path, rgb):
    """Defect 12: 0.25 x 0.5 µm pixels were averaged to 0.375 µm/px, silently mis-stating every area."""
    path = tmp_path / "aniso.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", resolution=(1e4 / 0.25, 1e4 / 0.5), resolutionunit="CENTIMETER")
    with pytest.raises(BadInputError, match="non-square pixels"):
        read_image(path)


def test_invalid_resolution_is_reported_as_invalid_not_absent():
    """Defect 13: a zero or NaN resolution was reported as 'no resolution in the file'."""
    notes: list[str] = []
    assert resolve([Candidate("TIFF XResolution/ResolutionUnit", float("nan"), float("nan"))], name="x.tif",
                   notes=notes) is None
    assert len(notes) == 1 and "invalid resolution" in notes[0]
    chosen = resolve([Candidate("OME PhysicalSizeX", 0.0), Candidate("PNG pHYs", 0.25, 0.25)], name="y",
                     notes=notes)
    assert chosen.mpp == 0.25 and chosen.basis == "PNG pHYs"


def test_tile_and_slide_read_the_same_metadata_the_same_way(tmp_path, rgb):
    """One parser: an Aperio description wins over the TIFF tags in both readers."""
    path = tmp_path / "aperio.tif"
    big = np.tile(rgb, (4, 4, 1))
    tifffile.imwrite(path, big, photometric="rgb", description="Aperio Image Library |AppMag = 40|MPP = 0.2500",
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    tile = read_image(path)
    with open_slide(path, backend="tifffile") as slide:
        assert tile.mpp == slide.info.mpp == 0.25
        assert tile.mpp_basis == slide.info.mpp_source == "ImageDescription MPP"


def test_slide_refuses_a_grayscale_image_that_score_refuses(tmp_path, rgb):
    """Defect 5: `slide` accepted a grayscale TIFF that `score` refuses."""
    path = tmp_path / "gray.tif"
    tifffile.imwrite(path, np.tile(rgb[..., 0], (4, 4)), resolution=(1e4 / 0.5, 1e4 / 0.5),
                     resolutionunit="CENTIMETER")
    with pytest.raises(BadInputError, match="grayscale"):
        read_image(path)
    for backend in ("auto", "tifffile", "tiffslide"):
        with pytest.raises(BadInputError, match="grayscale"):
            open_slide(path, backend=backend)


@pytest.mark.parametrize("layout", ["subifds", "pages"])
def test_12_bit_slide_in_16_bit_words_is_scaled_like_a_tile(tmp_path, layout):
    """Defect 12 on the slide path: a 12-bit-in-16-bit pyramidal TIFF was divided by 65535 (tifffile; OpenSlide
    read it as near-black too) or refused as corrupt (tiffslide); it is now read with the tile reader's scaling,
    and the slide pipeline finds the same figures as on the 8-bit slide."""
    from spindledx.slide.pipeline import analyze_slide
    from spindledx.slide.synthetic import dark_disk_detector, make_slide_rgb, write_pyramidal_tiff

    figures = np.array([[300.0, 300.0], [700.0, 500.0]])
    rgb = make_slide_rgb(1024, 768, tissue_boxes=[(50, 50, 970, 700)], figures=figures, figure_radius_px=12,
                         seed=6)
    words = (rgb.astype(np.uint32) * 4095 // 255).astype(np.uint16)
    path16 = write_pyramidal_tiff(tmp_path / "s16.tif", words, mpp=0.25, layout=layout)
    path8 = write_pyramidal_tiff(tmp_path / "s8.tif", rgb, mpp=0.25, layout=layout)
    with open_slide(path16) as slide:
        assert slide.info.backend == "tifffile" and slide.info.bits_per_sample == 12
        window = slide.read_level(0, 0, 0, 1024, 768)
        assert np.abs(window.astype(int) - rgb.astype(int)).max() <= 1
        smallest = len(slide.info.level_dimensions) - 1
        w, h = slide.info.level_dimensions[smallest]
        assert abs(float(slide.read_level(smallest, 0, 0, w, h).mean()) - float(rgb.mean())) < 3
    with pytest.raises(BadInputError, match="tifffile"):
        open_slide(path16, backend="tiffslide")
    counts = [len(analyze_slide(p, detector=dark_disk_detector, out_dir=tmp_path / p.stem, area_mm2=0.02)
                  .detections) for p in (path8, path16)]
    assert counts == [2, 2]
