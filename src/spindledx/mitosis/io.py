"""Reading H&E tiles and their resolution (µm per pixel), and resampling between resolutions.

* PNG / JPEG are decoded with Pillow (a dependency of scikit-image); the PNG ``pHYs`` chunk (pixels per metre)
  gives the resolution when present.
* TIFF, including tiled and pyramidal (OME-TIFF, Aperio SVS) files, is read with tifffile: the base (full
  resolution) level only. The resolution comes, in order of preference, from the OME-XML ``PhysicalSizeX`` /
  ``PhysicalSizeY`` (OME data model), the Aperio ``ImageDescription`` (``MPP = 0.2520``) and the TIFF
  ``XResolution`` / ``YResolution`` tags with ``ResolutionUnit`` inch or centimetre (TIFF 6.0, section 8).
* Without usable metadata the resolution is assumed to be :data:`ASSUMED_MPP` (0.25 µm/px, a 40x scan) and the
  tile carries a warning saying so; ``mpp=`` overrides everything.

Images that are not RGB H&E (grayscale, unreadable, truncated, empty, too large for tile reading) raise
:class:`spindledx.errors.BadInputError` with one line naming the file.
"""

from __future__ import annotations

import math
import re
import warnings as _warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from spindledx.counting import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP, check_mpp
from spindledx.errors import BadInputError

ASSUMED_MPP = 0.25
"""Resolution assumed when neither ``--mpp`` nor the file says it (µm/px, typical of 40x scanners)."""

MAX_TILE_PIXELS = 100_000_000
"""Largest image (pixels) read as one tile; larger images are whole slides for ``spindledx slide``."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""File suffixes treated as images when a folder is scanned."""

MPP_SOURCES = ("override", "metadata", "assumed")

_TIFF_SUFFIXES = {".tif", ".tiff", ".svs", ".ome.tif", ".ome.tiff"}
_UM_PER_UNIT = {"m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "um": 1.0, "μm": 1.0, "nm": 1e-3, "pm": 1e-6,
                "in": 25400.0, "inch": 25400.0}


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
    """

    rgb: np.ndarray
    mpp: float
    mpp_source: str
    path: str
    width: int
    height: int
    warnings: tuple[str, ...] = field(default=())


def tile_from_array(rgb: np.ndarray, mpp: float, *, name: str = "<array>") -> Tile:
    """Wrap an in-memory RGB ``uint8`` array (H, W, 3) of known resolution as a :class:`Tile`."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BadInputError(f"{name}: expected an RGB uint8 array of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return Tile(rgb=rgb, mpp=check_mpp(mpp), mpp_source="override", path=name, width=int(rgb.shape[1]),
                height=int(rgb.shape[0]))


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
    name = str(path)
    if mpp is not None:
        try:
            check_mpp(mpp)
        except BadInputError as exc:
            raise BadInputError(f"--mpp: {exc}") from None
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
        pixels, meta_mpp = _read_tiff(path, notes)
    else:
        pixels, meta_mpp = _read_pillow(path, notes)
    rgb = _to_rgb8(pixels, name, notes)
    if mpp is not None:
        if meta_mpp is not None and abs(meta_mpp - mpp) / meta_mpp > 0.05:
            notes.append(f"{name}: --mpp {mpp:g} overrides the file's {meta_mpp:g} µm/px")
        mpp_value, source = float(mpp), "override"
    elif meta_mpp is not None:
        mpp_value, source = meta_mpp, "metadata"
    else:
        mpp_value, source = ASSUMED_MPP, "assumed"
        notes.append(f"{name}: no resolution in the file; assuming {ASSUMED_MPP} µm/px (a 40x scan) — "
                     "give --mpp if that is wrong, every density depends on it")
    return Tile(rgb=rgb, mpp=mpp_value, mpp_source=source, path=name, width=int(rgb.shape[1]),
                height=int(rgb.shape[0]), warnings=tuple(notes))


def resample(rgb: np.ndarray, mpp_from: float, mpp_to: float) -> np.ndarray:
    """Resample an image from ``mpp_from`` to ``mpp_to`` µm/px.

    Uses ``cv2.INTER_AREA`` when shrinking (pixel-area averaging, no aliasing) and ``cv2.INTER_LINEAR`` when
    enlarging. The output size is ``round(size * mpp_from / mpp_to)``; a pixel at ``(x, y)`` of the output
    corresponds to ``(x, y) * mpp_to / mpp_from`` in the input (see :func:`scale_factor`). Returns the input
    unchanged when the two resolutions agree within 0.1 %.
    """
    factor = scale_factor(mpp_from, mpp_to)
    if abs(factor - 1.0) < 1e-3:
        return rgb
    height, width = rgb.shape[:2]
    new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(rgb, new_size, interpolation=interpolation)


def scale_factor(mpp_from: float, mpp_to: float) -> float:
    """Pixel-coordinate scale from an image at ``mpp_from`` to the same field at ``mpp_to`` (µm/px)."""
    return check_mpp(mpp_from) / check_mpp(mpp_to)


# --------------------------------------------------------------------------------------------------- readers


def _read_pillow(path: Path, notes: list[str]) -> tuple[np.ndarray, float | None]:
    from PIL import Image, UnidentifiedImageError

    name = str(path)
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                _check_size(width, height, name)
                meta_mpp = _mpp_from_dpi(im.info.get("dpi"), name, notes) if im.format == "PNG" else None
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


def _read_tiff(path: Path, notes: list[str]) -> tuple[np.ndarray, float | None]:
    import tifffile

    name = str(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            level = series.levels[0] if getattr(series, "levels", None) else series
            shape, axes = tuple(level.shape), str(level.axes)
            height, width = _tiff_height_width(shape, axes, name)
            _check_size(width, height, name)
            meta_mpp = _tiff_mpp(tif, name, notes)
            pixels = level.asarray()
    except BadInputError:
        raise
    except MemoryError:
        raise BadInputError(f"{name}: too large to read as one tile; use `spindledx slide`") from None
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError, struct.error, codec errors
        raise BadInputError(f"{name}: cannot read the TIFF ({_one_line(exc)}); the file may be truncated or "
                            "corrupt") from None
    return _tiff_to_hwc(pixels, axes, name), meta_mpp


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


def _to_rgb8(pixels: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    """Convert decoded pixels to RGB uint8: drop alpha, scale 16-bit / float, refuse grayscale."""
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 2)):
        raise BadInputError(f"{name}: grayscale image; H&E needs colour (RGB)")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise BadInputError(f"{name}: expected an RGB image, got array shape {pixels.shape}")
    if pixels.shape[2] == 4:
        notes.append(f"{name}: alpha channel ignored")
        pixels = pixels[:, :, :3]
    if pixels.dtype == np.uint8:
        rgb = np.ascontiguousarray(pixels)
    elif pixels.dtype == np.uint16:
        rgb = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        notes.append(f"{name}: 16-bit image scaled to 8 bits")
    elif np.issubdtype(pixels.dtype, np.floating):
        finite = np.isfinite(pixels)
        if not finite.all() or pixels.min() < 0 or pixels.max() > 1.0:
            raise BadInputError(f"{name}: floating-point image outside [0, 1]; save it as 8-bit RGB")
        rgb = np.round(pixels * 255.0).astype(np.uint8)
    else:
        raise BadInputError(f"{name}: unsupported pixel type {pixels.dtype}; save it as 8-bit RGB")
    sample = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)].astype(np.int16)
    if (np.abs(sample[:, :, 0] - sample[:, :, 1]).max() == 0 and np.abs(sample[:, :, 1] - sample[:, :, 2]).max() == 0
            and _is_gray(rgb)):
        raise BadInputError(f"{name}: grayscale content (R = G = B); H&E needs colour")
    return rgb


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]))


# --------------------------------------------------------------------------------------------------- metadata


def _plausible(mpp: float | None, what: str, name: str, notes: list[str]) -> float | None:
    """Return ``mpp`` rounded to 1e-6 µm if plausible; otherwise note that the metadata was ignored."""
    if mpp is None or not math.isfinite(mpp) or mpp <= 0:
        return None
    if not (MIN_PLAUSIBLE_MPP <= mpp <= MAX_PLAUSIBLE_MPP):
        notes.append(f"{name}: ignored {what} resolution of {mpp:.4g} µm/px (not a microscope scan resolution, "
                     "probably a screen default)")
        return None
    return round(float(mpp), 6)


def _mean_xy(mpp_x: float | None, mpp_y: float | None, name: str, notes: list[str]) -> float | None:
    if mpp_x is None:
        return mpp_y
    if mpp_y is None:
        return mpp_x
    if abs(mpp_x - mpp_y) / max(mpp_x, mpp_y) > 0.01:
        notes.append(f"{name}: non-square pixels ({mpp_x:g} x {mpp_y:g} µm); using the mean")
        return (mpp_x + mpp_y) / 2.0
    return mpp_x


def _mpp_from_dpi(dpi: tuple[float, float] | None, name: str, notes: list[str]) -> float | None:
    """PNG ``pHYs`` in pixels per metre, reported by Pillow as dots per inch: mpp = 25400 / dpi."""
    if not dpi:
        return None
    try:
        values = [25400.0 / float(d) if float(d) > 0 else None for d in dpi[:2]]
    except (TypeError, ValueError):
        return None
    mpp = _mean_xy(values[0], values[1] if len(values) > 1 else None, name, notes)
    return _plausible(mpp, "PNG pHYs", name, notes)


def _tiff_mpp(tif, name: str, notes: list[str]) -> float | None:
    """Resolution of a TIFF: OME-XML, then Aperio ImageDescription, then X/YResolution tags."""
    if tif.is_ome and tif.ome_metadata:
        mpp = _ome_mpp(tif.ome_metadata)
        if mpp is not None:
            return _plausible(mpp, "OME-XML", name, notes)
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    description = page.description or ""
    match = re.search(r"\bMPP\s*=\s*([0-9.eE+-]+)", description)
    if match:
        try:
            return _plausible(float(match.group(1)), "Aperio", name, notes)
        except ValueError:
            pass
    return _plausible(_tag_mpp(page, name, notes), "TIFF resolution-tag", name, notes)


def _ome_mpp(ome_xml: str) -> float | None:
    """``PhysicalSizeX`` / ``PhysicalSizeY`` of the first OME ``Pixels`` element, converted to µm."""
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        sizes = []
        for axis in ("X", "Y"):
            value = element.get(f"PhysicalSize{axis}")
            if value is None:
                continue
            unit = element.get(f"PhysicalSize{axis}Unit", "µm")
            factor = _UM_PER_UNIT.get(unit)
            if factor is None:
                return None
            sizes.append(float(value) * factor)
        if sizes:
            return sum(sizes) / len(sizes)
        return None
    return None


def _tag_mpp(page, name: str, notes: list[str]) -> float | None:
    """TIFF 6.0 XResolution / YResolution (pixels per ResolutionUnit; 2 = inch, 3 = centimetre)."""
    tags = page.tags
    if "XResolution" not in tags:
        return None
    unit_tag = tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2
    um_per_unit = {2: 25400.0, 3: 10000.0}.get(unit)
    if um_per_unit is None:
        return None  # unit "none": only an aspect ratio

    def per_pixel(tag_name: str) -> float | None:
        tag = tags.get(tag_name)
        if tag is None:
            return None
        value = tag.value
        if isinstance(value, tuple):
            if len(value) != 2 or not value[1]:
                return None
            pixels_per_unit = value[0] / value[1]
        else:
            pixels_per_unit = float(value)
        return um_per_unit / pixels_per_unit if pixels_per_unit > 0 else None

    return _mean_xy(per_pixel("XResolution"), per_pixel("YResolution"), name, notes)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
