"""The one reader of H&E tiles: pixels as RGB ``uint8`` and their resolution (µm per pixel) with its basis.

* PNG / JPEG are decoded with Pillow (a dependency of scikit-image); the PNG ``pHYs`` chunk (pixels per metre)
  gives the resolution when present.
* TIFF, including tiled and pyramidal (OME-TIFF, Aperio SVS) files, is read with tifffile: the base (full
  resolution) level only; palette (indexed-colour) TIFFs are expanded through their colour map; 16-bit samples
  are scaled by the bit depth they use (``BitsPerSample``, or the data range for 10/12/14-bit data stored in
  16-bit words). The resolution comes from :mod:`spindledx.imaging.resolution` (OME-XML, Aperio, TIFF tags).
* Without usable metadata the resolution is assumed to be :data:`ASSUMED_MPP` (0.25 µm/px, a 40x scan) and the
  tile carries a warning saying so; ``mpp=`` overrides everything.

Images that are not RGB H&E (grayscale, unreadable, truncated, empty, too large for tile reading) raise
:class:`spindledx.errors.BadInputError` with one line naming the file.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spindledx.counting import check_mpp
from spindledx.errors import BadInputError
from spindledx.files import printable
from spindledx.imaging.resolution import Resolution, png_candidate, resolve, tiff_candidates

ASSUMED_MPP = 0.25
"""Resolution assumed when neither ``--mpp`` nor the file says it (µm/px, typical of 40x scanners)."""

MAX_TILE_PIXELS = 100_000_000
"""Largest image (pixels) read as one tile; larger images are whole slides for ``spindledx slide``."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""File suffixes treated as images when a folder is scanned."""

MPP_SOURCES = ("override", "metadata", "assumed")


@dataclass(frozen=True, eq=False)
class Tile:
    """An RGB tile with its resolution.

    Attributes
    ----------
    rgb
        ``uint8`` array of shape (height, width, 3).
    mpp
        Micrometres per pixel.
    mpp_source
        ``"override"`` (given by the caller), ``"metadata"`` (read from the file) or ``"assumed"``
        (:data:`ASSUMED_MPP`).
    path
        The path the tile was read from (or a name for in-memory arrays).
    width, height
        Size in pixels.
    warnings
        Messages for the user (assumed resolution, dropped alpha channel, ...), one line each.
    mpp_basis
        What the resolution rests on: the metadata field (e.g. ``"OME PhysicalSizeX"``), ``"given"`` or
        ``"assumed 40x"``.
    """

    rgb: np.ndarray
    mpp: float
    mpp_source: str
    path: str
    width: int
    height: int
    warnings: tuple[str, ...] = field(default=())
    mpp_basis: str = ""


def tile_from_array(rgb: np.ndarray, mpp: float, *, name: str = "<array>") -> Tile:
    """Wrap an in-memory RGB ``uint8`` array (H, W, 3) of known resolution as a :class:`Tile`."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BadInputError(f"{name}: expected an RGB uint8 array of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return Tile(rgb=rgb, mpp=check_mpp(mpp), mpp_source="override", path=name, width=int(rgb.shape[1]),
                height=int(rgb.shape[0]), mpp_basis="given")


def read_image(path: str | Path, mpp: float | None = None) -> Tile:
    """Read an H&E tile (PNG, JPEG or TIFF) as RGB ``uint8`` with its resolution.

    Parameters
    ----------
    path
        Image file. TIFF files may be tiled or pyramidal (the base level is read).
    mpp
        Resolution in µm/px overriding the file's metadata (validated with :func:`counting.check_mpp`).

    Returns
    -------
    Tile
        Pixels, resolution, where the resolution came from, and warnings for the user.

    Raises
    ------
    BadInputError
        Missing, empty, truncated or non-image files, grayscale images, images above :data:`MAX_TILE_PIXELS`,
        and implausible ``mpp``.
    """
    path = Path(path)
    name = printable(path)
    if mpp is not None:
        check_mpp(mpp)
    try:
        return _read_image(path, name, mpp)
    except OSError as exc:  # permission denied, name too long, I/O error ...
        raise BadInputError(f"{name}: cannot read the file ({exc.strerror or type(exc).__name__})") from None


def _read_image(path: Path, name: str, mpp: float | None) -> Tile:
    if not path.exists():
        raise BadInputError(f"{name}: no such file")
    if path.is_dir():
        raise BadInputError(f"{name}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise BadInputError(f"{name}: empty file (0 bytes), not an image")
    with open(path, "rb") as fh:
        head = fh.read(4)
    notes: list[str] = []
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        pixels, meta, bits = _read_tiff(path, notes)
    else:
        (pixels, meta), bits = _read_pillow(path, notes), None
    rgb = _to_rgb8(pixels, name, notes, bits=bits)
    if mpp is not None:
        if meta is not None and abs(meta.mpp - mpp) / meta.mpp > 0.05:
            notes.append(f"{name}: mpp {mpp:g} given overrides the file's {meta.mpp:g} µm/px ({meta.basis})")
        mpp_value, source, basis = float(mpp), "override", "given"
    elif meta is not None:
        mpp_value, source, basis = meta.mpp, "metadata", meta.basis
    else:
        mpp_value, source, basis = ASSUMED_MPP, "assumed", "assumed 40x"
        notes.append(f"{name}: no resolution in the file; assuming {ASSUMED_MPP} µm/px (a 40x scan) — "
                     "give --mpp if that is wrong, every density depends on it")
    return Tile(rgb=rgb, mpp=mpp_value, mpp_source=source, path=name, width=int(rgb.shape[1]),
                height=int(rgb.shape[0]), warnings=tuple(notes), mpp_basis=basis)


# --------------------------------------------------------------------------------------------------- readers


def _read_pillow(path: Path, notes: list[str]) -> tuple[np.ndarray, Resolution | None]:
    from PIL import Image, UnidentifiedImageError

    name = printable(path)
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                _check_size(width, height, name)
                dpi = png_candidate(im.info.get("dpi")) if im.format == "PNG" else None
                meta_mpp = resolve([dpi] if dpi else [], name=name, notes=notes)
                mode = im.mode
                if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"):
                    raise BadInputError(f"{name}: grayscale image (mode {mode}); H&E needs colour (RGB)")
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif mode not in ("RGB", "RGBA"):
                    im = im.convert("RGB")
                im.load()
                pixels = np.asarray(im)
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(f"{name}: too large to read as one tile; use `spindledx slide` for whole slides") \
            from None
    except UnidentifiedImageError:
        raise BadInputError(f"{name}: not an image file spindledx can read (PNG, JPEG or TIFF)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{name}: cannot decode the image ({_one_line(exc)}); the file may be truncated "
                            "or corrupt") from None
    return pixels, meta_mpp


def _read_tiff(path: Path, notes: list[str]) -> tuple[np.ndarray, Resolution | None, int | None]:
    """Pixels (palette expanded), resolution and bits per sample of a TIFF's base level."""
    import tifffile

    name = printable(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            level = series.levels[0] if getattr(series, "levels", None) else series
            shape, axes = tuple(level.shape), str(level.axes)
            height, width = _tiff_height_width(shape, axes, name)
            _check_size(width, height, name)
            candidates, _ = tiff_candidates(tif)
            meta_mpp = resolve(candidates, name=name, notes=notes)
            page = level.keyframe
            pixels = level.asarray()
            bits = int(page.bitspersample) if page.bitspersample else None
            pixels, axes = _tiff_colour_space(page, pixels, axes, name, notes)
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
                colormap = np.asarray(page.colormap)  # (3, 2**bits), 16-bit colour values (TIFF 6.0, section 5)
                colormap = (colormap.astype(np.float64) * 255.0 / 65535.0).round().astype(np.uint8)
                pixels = np.moveaxis(colormap[:, pixels], 0, -1)
                axes, bits = axes + "S", 8
                notes.append(f"{name}: palette (indexed-colour) TIFF expanded through its colour map")
    except BadInputError:
        raise
    except MemoryError:
        raise BadInputError(f"{name}: too large to read as one tile; use `spindledx slide`") from None
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError, struct.error, codec errors
        raise BadInputError(f"{name}: cannot read the TIFF ({_one_line(exc)}); the file may be truncated or "
                            "corrupt") from None
    return _tiff_to_hwc(pixels, axes, name), meta_mpp, bits


_RGB_LIKE_PHOTOMETRIC = {"RGB", "PALETTE", "MINISBLACK", "MINISWHITE", "YCBCR"}
"""TIFF colour spaces read as they decode (YCbCr is decoded to RGB by tifffile; grey is refused later)."""


def _tiff_colour_space(page: object, pixels: np.ndarray, axes: str, name: str,
                       notes: list[str]) -> tuple[np.ndarray, str]:
    """Pixels in RGB: CMYK (``Photometric`` separated, ink set CMYK) converted to RGB; other colour spaces (CIE
    L*a*b*, other ink sets, LogLuv, ...) refused, never read as if they were RGB (a CMYK image read as RGB plus
    alpha has other colours, and the detector finds other figures)."""
    photometric = getattr(getattr(page, "photometric", None), "name", str(getattr(page, "photometric", "")))
    if photometric in _RGB_LIKE_PHOTOMETRIC:
        return pixels, axes
    tags = getattr(page, "tags", None)
    inkset_tag = tags.get("InkSet") if tags is not None else None
    inkset = int(inkset_tag.value) if inkset_tag is not None else 1  # TIFF 6.0: 1 (CMYK) when absent
    if photometric == "SEPARATED" and inkset == 1 and int(getattr(page, "samplesperpixel", 0)) in (4, 5):
        hwc = _tiff_to_hwc(pixels, axes, name)
        if hwc.ndim != 3 or hwc.shape[2] not in (4, 5) or hwc.dtype not in (np.uint8, np.uint16):
            raise BadInputError(f"{name}: CMYK TIFF with an unexpected layout {hwc.shape} {hwc.dtype}; save it as "
                                "RGB")
        top = 255.0 if hwc.dtype == np.uint8 else 65535.0
        cmyk = hwc[..., :4].astype(np.float32) / top
        rgb = 255.0 * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])
        notes.append(f"{name}: CMYK TIFF converted to RGB (without a colour profile; colours are approximate — "
                     "an RGB scan is better)")
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8), "YXS"
    raise BadInputError(f"{name}: TIFF in the {photometric or 'unknown'} colour space; H&E tiles must be RGB "
                        "(save the image as RGB)")


def _tiff_height_width(shape: tuple[int, ...], axes: str, name: str) -> tuple[int, int]:
    if "Y" in axes and "X" in axes:
        return int(shape[axes.index("Y")]), int(shape[axes.index("X")])
    if len(shape) >= 2:
        return int(shape[0]), int(shape[1])
    raise BadInputError(f"{name}: TIFF has no 2-D image (shape {shape})")


def _tiff_to_hwc(pixels: np.ndarray, axes: str, name: str) -> np.ndarray:
    """Reduce a tifffile array with ``axes`` (e.g. ``YXS``, ``SYX``, ``CYX``, ``TZCYX``) to (H, W) or (H, W, C)."""
    if len(axes) != pixels.ndim:
        axes = "YXS"[: pixels.ndim] if pixels.ndim <= 3 else ""
    # drop singleton leading dimensions (T, Z, Q, I ...)
    keep = [i for i, a in enumerate(axes) if a in "YXSC" or pixels.shape[i] != 1]
    drop = tuple(i for i in range(pixels.ndim) if i not in keep)
    if drop:
        pixels = pixels.squeeze(axis=drop)
        axes = "".join(a for i, a in enumerate(axes) if i in keep)
    channel_axes = [i for i, a in enumerate(axes) if a in "SC"]
    if set(axes) - set("YXSC"):
        raise BadInputError(f"{name}: TIFF with axes {axes} (stack or time series), not one RGB tile")
    if len(channel_axes) > 1:
        # e.g. C=1 and S=3: squeeze the singleton
        singles = tuple(i for i in channel_axes if pixels.shape[i] == 1)
        pixels = pixels.squeeze(axis=singles)
        axes = "".join(a for i, a in enumerate(axes) if i not in singles)
        channel_axes = [i for i, a in enumerate(axes) if a in "SC"]
    if channel_axes:
        order = [axes.index("Y"), axes.index("X"), channel_axes[0]]
        pixels = np.transpose(pixels, order)
    return pixels


def _check_size(width: int, height: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise BadInputError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > MAX_TILE_PIXELS:
        raise BadInputError(f"{name}: {width}x{height} px ({width * height / 1e6:.0f} MP) is too large for tile "
                            f"scoring (limit {MAX_TILE_PIXELS / 1e6:.0f} MP); use `spindledx slide` for whole slides")


def _to_rgb8(pixels: np.ndarray, name: str, notes: list[str], *, bits: int | None = None) -> np.ndarray:
    """Convert decoded pixels to RGB uint8: drop alpha, scale 16-bit / float, refuse grayscale.

    16-bit words are scaled by the bit depth in use: ``bits`` (TIFF ``BitsPerSample``) when below 16, otherwise
    the smallest of 10, 12, 14, 16 bits that holds the largest value (scanner cameras store 12-bit data in
    16-bit words; scaling those as 16-bit gives a near-black image).
    """
    check_rgb(pixels, name)
    if pixels.shape[2] == 4:
        notes.append(f"{name}: alpha channel ignored")
        pixels = pixels[:, :, :3]
    if pixels.dtype == np.uint8:
        rgb = np.ascontiguousarray(pixels)
    elif pixels.dtype == np.uint16:
        depth = word_bit_depth(int(pixels.max()), bits)
        rgb = words_to_uint8(pixels, depth)
        notes.append(f"{name}: {depth}-bit image (in 16-bit words) scaled to 8 bits")
    elif np.issubdtype(pixels.dtype, np.floating):
        finite = np.isfinite(pixels)
        if not finite.all() or pixels.min() < 0 or pixels.max() > 1.0:
            raise BadInputError(f"{name}: floating-point image outside [0, 1]; save it as 8-bit RGB")
        rgb = np.round(pixels * 255.0).astype(np.uint8)
    else:
        raise BadInputError(f"{name}: unsupported pixel type {pixels.dtype}; save it as 8-bit RGB")
    check_colour(rgb, name)
    return rgb


WORD_BIT_DEPTHS = (10, 12, 14, 16)
"""Bit depths that scanner cameras store in 16-bit words."""


def word_bit_depth(max_value: int, bits_per_sample: int | None = None) -> int:
    """Bit depth in use of samples stored in 16-bit words.

    ``bits_per_sample`` (TIFF ``BitsPerSample``) when it is between 9 and 15, else the smallest of
    :data:`WORD_BIT_DEPTHS` that holds ``max_value``: scanner cameras store 12-bit data in 16-bit words with
    ``BitsPerSample`` 16, and scaling those by 65535 gives a near-black image.
    """
    if bits_per_sample is not None and 8 < bits_per_sample < 16:
        return int(bits_per_sample)
    return next(b for b in WORD_BIT_DEPTHS if int(max_value) < (1 << b))


def words_to_uint8(pixels: np.ndarray, depth: int) -> np.ndarray:
    """16-bit words holding ``depth``-bit samples as uint8 0-255 (rounded; values above the depth clipped)."""
    top = (1 << depth) - 1
    return ((np.minimum(pixels, top).astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)


def check_rgb(pixels: np.ndarray, name: str) -> None:
    """Refuse arrays that are not colour images: one or two channels (grayscale), or another layout."""
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 2)):
        raise BadInputError(f"{name}: grayscale image; H&E needs colour (RGB)")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise BadInputError(f"{name}: expected an RGB image, got array shape {pixels.shape}")


def check_colour(rgb: np.ndarray, name: str) -> None:
    """Refuse an RGB image whose three channels are equal everywhere (grayscale content saved as RGB).

    A 64 x 64 sample is compared first, so that colour images (nearly all) cost no full-size comparison.
    """
    sample = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)]
    if (np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2])
            and np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
        raise BadInputError(f"{name}: grayscale content (R = G = B); H&E needs colour")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
