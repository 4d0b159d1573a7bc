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
