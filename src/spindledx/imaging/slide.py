"""Whole-slide image reading with a physical scale (µm/px) from the slide's own metadata.

Three well-kept readers, tried in this order by :func:`open_slide` (``backend="auto"``):

* OpenSlide (openslide-python with the openslide-bin wheel) for the vendor formats it knows (Aperio SVS,
  Hamamatsu NDPI, MIRAX MRXS, ...) and tiled generic TIFF;
* tiffslide when OpenSlide misses pyramid levels stored as TIFF SubIFDs (and as a last resort);
* tifffile (windowed reads through its zarr store) for OME-TIFF and the plain TIFF OpenSlide does not open.

The scale is taken from the reader's properties (``openslide.mpp-x/y``, ``tiffslide.mpp-x/y``, ``aperio.MPP``),
then the TIFF's own metadata (OME ``PhysicalSizeX/Y``, Aperio description, ``XResolution/YResolution``), all
parsed by :mod:`spindledx.imaging.resolution` (the parser tiles use too). Without any usable value the slide is
refused with a :class:`~spindledx.errors.BadInputError` unless the caller gives ``mpp``. Grayscale slides are
refused as :func:`spindledx.imaging.reader.read_image` refuses grayscale tiles, and 16-bit samples (e.g. 12-bit
camera data in 16-bit words) are scaled by the bit depth in use, as tiles are
(:func:`spindledx.imaging.reader.word_bit_depth`); only tifffile reads them (OpenSlide and tiffslide return
near-black or fail), so such a slide is opened with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spindledx.counting import check_mpp
from spindledx.errors import BadInputError
from spindledx.imaging.reader import word_bit_depth, words_to_uint8
from spindledx.imaging.resolution import (
    Candidate,
    objective_from_properties,
    property_candidates,
    resolve,
    tiff_candidates,
)

BACKENDS = ("auto", "openslide", "tiffslide", "tifffile")
BACKGROUND_RGB = 255  # fill for pixels outside the scanned area (glass is white in brightfield)


@dataclass(frozen=True)
class SlideInfo:
    """What is known about a slide before reading pixels.

    Attributes
    ----------
    path
        File read.
    backend
        ``"openslide"``, ``"tiffslide"`` or ``"tifffile"``.
    vendor
        Format reported by the reader (e.g. ``"aperio"``, ``"generic-tiff"``, ``"ome-tiff"``).
    width, height
        Level-0 (full resolution) size in pixels.
    mpp
        Level-0 resolution in µm/px.
    mpp_source
        Where ``mpp`` came from (metadata key, or ``"override"`` when the caller gave it, as for tiles).
    objective_power
        Nominal scanning objective magnification from the metadata, or None.
    level_dimensions
        ``(width, height)`` of each pyramid level, level 0 first.
    level_downsamples
        Downsample factor of each level relative to level 0.
    bits_per_sample
        Bit depth in use of the samples (8, or e.g. 12 for 12-bit data stored in 16-bit words).
    """

    path: str
    backend: str
    vendor: str
    width: int
    height: int
    mpp: float
    mpp_source: str
    objective_power: float | None
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    bits_per_sample: int = 8

    def level_mpp(self, level: int) -> float:
        """Resolution of ``level`` in µm/px."""
        return self.mpp * self.level_downsamples[level]

    def best_level(self, target_mpp: float, *, tolerance: float = 0.1) -> int:
        """Coarsest level whose resolution is still at least as fine as ``target_mpp`` (within ``tolerance``).

        This is OpenSlide's ``get_best_level_for_downsample`` rule: never read a level coarser than needed, so
        that the working resolution is reached by downsampling (or level 0 is upsampled when it is too coarse).
        """
        best = 0
        for level in range(len(self.level_downsamples)):
            if self.level_mpp(level) <= target_mpp * (1.0 + tolerance):
                best = level if self.level_mpp(level) >= self.level_mpp(best) else best
        return best

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"path": self.path, "backend": self.backend, "vendor": self.vendor, "width": self.width,
                "height": self.height, "mpp": self.mpp, "mpp_source": self.mpp_source,
                "objective_power": self.objective_power,
                "level_dimensions": [list(d) for d in self.level_dimensions],
                "level_downsamples": list(self.level_downsamples), "bits_per_sample": self.bits_per_sample}


def _rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    """Composite OpenSlide's premultiplied RGBA on white (transparent = not scanned)."""
    rgb = rgba[..., :3].astype(np.uint16)
    alpha = rgba[..., 3:4].astype(np.uint16)
    out = rgb + (BACKGROUND_RGB * (255 - alpha)) // 255
    return np.clip(out, 0, 255).astype(np.uint8)


class WholeSlide:
    """An open whole-slide image: exact pixel reads at any pyramid level, white outside the scanned area.

    Use :func:`open_slide` to create one; use it as a context manager or call :meth:`close`.
    """

    def __init__(self, info: SlideInfo, handle: Any, tiff: Any = None, levels: list[Any] | None = None) -> None:
        self.info = info
        self._handle = handle
        self._tiff = tiff
        self._levels = levels or []

    def __enter__(self) -> WholeSlide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        if self._handle is not None and hasattr(self._handle, "close"):
            self._handle.close()
        if self._tiff is not None:
            self._tiff.close()
        self._handle = self._tiff = None

    def read_level(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """RGB uint8 ``(height, width, 3)`` window of ``level`` whose top-left pixel is ``(x, y)`` in that level.

        Pixels outside the level are white, so callers can read windows that overhang the slide edge.
        """
        if width <= 0 or height <= 0:
            return np.full((max(height, 0), max(width, 0), 3), BACKGROUND_RGB, np.uint8)
        lw, lh = self.info.level_dimensions[level]
        out = np.full((height, width, 3), BACKGROUND_RGB, np.uint8)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, lw), min(y + height, lh)
        if x1 <= x0 or y1 <= y0:
            return out
        try:
            block = self._read_block(level, x0, y0, x1, y1)
        except BadInputError:
            raise
        except Exception as exc:  # codec errors of a truncated or corrupt file
            message = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise BadInputError(f"{Path(self.info.path).name}: cannot read pixels at level {level} ({message}); the "
                                "file may be truncated or corrupt") from None
        out[y0 - y:y1 - y, x0 - x:x1 - x] = block
        return out

    def _read_block(self, level: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        if self.info.backend == "tifffile":
            arr = np.asarray(self._levels[level][y0:y1, x0:x1])
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            block = arr[..., :3]
            if block.dtype == np.uint16:
                block = words_to_uint8(block, self.info.bits_per_sample)
            elif block.dtype != np.uint8:
                block = _to_uint8(block)
        else:
            downsample = self.info.level_downsamples[level]
            if self.info.backend == "tiffslide":
                # tiffslide maps the level-0 location back with int(location / downsample): the ceiling lands
                # exactly on (x0, y0) even for a non-integer downsample (e.g. 16.02).
                location = (math.ceil(x0 * downsample - 1e-9), math.ceil(y0 * downsample - 1e-9))
            else:
                # OpenSlide keeps the fractional part and interpolates: reads are pixel-exact on level 0 and on
                # levels with an integer downsample, otherwise shifted by less than 0.5 / downsample pixel.
                location = (int(round(x0 * downsample)), int(round(y0 * downsample)))
            region = np.asarray(self._handle.read_region(location, level, (x1 - x0, y1 - y0)))
            block = _rgba_to_rgb(region) if region.shape[-1] == 4 else region[..., :3]
        return block


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float64) * 255.0 / np.iinfo(arr.dtype).max).round().astype(np.uint8)
    return (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _open_openslide(path: Path) -> tuple[Any, dict[str, Any], str]:
    import openslide

    handle = openslide.OpenSlide(str(path))
    props = dict(handle.properties)
    return handle, props, props.get("openslide.vendor", "unknown")


def _open_tiffslide(path: Path) -> tuple[Any, dict[str, Any], str]:
    import tiffslide

    handle = tiffslide.TiffSlide(str(path))
    props = dict(handle.properties)
    return handle, props, str(props.get("tiffslide.vendor") or "generic-tiff")


def _tifffile_levels(path: Path) -> tuple[Any, list[Any]]:
    import tifffile
    import zarr

    tiff = tifffile.TiffFile(str(path))
    try:
        series = tiff.series[0]
        levels = [zarr.open(series.aszarr(level=k), mode="r") for k in range(len(series.levels))]
    except Exception:
        tiff.close()
        raise
    return tiff, levels


def _tiff_metadata(path: Path) -> tuple[list[Candidate], float | None, int | None, int | None]:
    """Resolution candidates, objective, samples per pixel and, for 16-bit samples, ``BitsPerSample`` from the
    file's TIFF structure (Nones if not a TIFF tifffile can parse, e.g. MRXS)."""
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            _check_complete(tif, path)
            candidates, objective = tiff_candidates(tif)
            page = tif.series[0].levels[0].keyframe
            palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE  # indexed colour: RGB through a colour map
            samples = 3 if palette else int(page.samplesperpixel)
            word_bits = int(page.bitspersample) if page.dtype == np.uint16 and not palette else None
            return candidates, objective, samples, word_bits
    except BadInputError:
        raise
    except Exception:  # not a TIFF: the slide reader's own properties are all there is
        return [], None, None, None


def _check_complete(tif: Any, path: Path) -> None:
    """Refuse a TIFF whose image data (strips or tiles of any pyramid level) lies beyond the end of the file."""
    size = path.stat().st_size
    for level in tif.series[0].levels:
        for page in level.pages:
            if page is None:
                continue
            ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False) if n]
            if ends and max(ends) > size:
                raise BadInputError(f"{path.name}: truncated file (image data ends at byte {max(ends):,}, the file "
                                    f"has {size:,}); copy it again from the scanner")


def _max_sample(level: Any, *, window: int = 1024) -> int:
    """Largest sample value of a (smallest) pyramid level: all of it up to 16 MP, else its four corners and its
    centre (``window`` px squares; glass is near the top of the range, so the corners find the bit depth)."""
    h, w = _shape_yx(level)
    if h * w <= 16_000_000:
        return int(np.asarray(level[:]).max())
    bottom, right = max(h - window, 0), max(w - window, 0)
    starts = [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]
    return max(int(np.asarray(level[y:y + window, x:x + window]).max()) for y, x in starts)


def _shape_yx(level: Any) -> tuple[int, int]:
    shape = level.shape
    if len(shape) == 3 and shape[0] in (3, 4) and shape[2] not in (3, 4):
        raise BadInputError("planar (channel-first) TIFF is not supported; save the slide as interleaved RGB")
    if len(shape) not in (2, 3):
        raise BadInputError(f"unsupported TIFF layout with shape {tuple(shape)}; expected an RGB image")
    return int(shape[0]), int(shape[1])


def open_slide(path: str | Path, *, mpp: float | None = None, backend: str = "auto") -> WholeSlide:
    """Open a whole-slide image and establish its scale.

    Parameters
    ----------
    path
        SVS, NDPI, MRXS, tiled/pyramidal TIFF, OME-TIFF or plain TIFF.
    mpp
        Level-0 resolution in µm/px; overrides the metadata. Required when the metadata gives none.
    backend
        ``"auto"`` (OpenSlide, then tiffslide, then tifffile), or one of them by name.

    Returns
    -------
    WholeSlide

    Raises
    ------
    BadInputError
        Missing or unreadable file, unsupported format, or no scale in the metadata and no ``mpp``.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise BadInputError(f"unknown slide backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if not path.exists():
        raise BadInputError(f"slide not found: {path}")
    if path.is_dir():
        raise BadInputError(f"{path} is a folder; give one slide file")
    if mpp is not None:
        check_mpp(mpp)

    check_declared_size(path)
    order = [backend] if backend != "auto" else _auto_order(path)
    errors = []
    for name in order:
        try:
            return _open_with(name, path, mpp)
        except BadInputError:
            raise
        except Exception as exc:  # a reader that cannot parse the file: try the next one
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise BadInputError(f"cannot read {path.name} as a slide ({'; '.join(errors)})")


MIN_BYTES_PER_MEGAPIXEL = 300
"""Fewest file bytes per megapixel of a TIFF's base level (1 : 10 000 of 8-bit RGB): blank glass compressed
with JPEG or deflate stays far above it; a file below it declares pixels it does not hold."""


def check_declared_size(path: Path) -> None:
    """Refuse a TIFF whose base level declares far more pixels than the file can hold, before any pixel is read
    (a 1 KB file claiming 100 000 x 100 000 px would otherwise be tiled and read for minutes).

    Checked: every strip or tile of the base level lies inside the file, and the file has at least
    :data:`MIN_BYTES_PER_MEGAPIXEL` bytes per megapixel of the base level. Files that are not TIFF pass unchecked.

    Raises
    ------
    BadInputError
        Naming the declared size and the file size.
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return
    if magic not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return
    import tifffile

    size = path.stat().st_size
    try:
        with tifffile.TiffFile(str(path)) as tiff:
            page = tiff.pages.first if hasattr(tiff.pages, "first") else tiff.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)]
    except Exception:
        return  # the readers report a damaged file in their own words
    megapixels = width * height / 1e6
    if ends and max(ends) > size:
        raise BadInputError(f"{path.name}: declares {width} x {height} px whose image data reach byte {max(ends)}, "
                            f"past the end of the {size}-byte file (truncated or damaged)")
    if megapixels > 50 and size < MIN_BYTES_PER_MEGAPIXEL * megapixels:
        raise BadInputError(f"{path.name}: declares {width} x {height} px ({megapixels:.0f} MP) but the file has "
                            f"only {size} bytes; not a slide spindledx can read (damaged or forged header)")


def _auto_order(path: Path) -> list[str]:
    """Readers to try: OpenSlide when it recognises the file and sees the whole pyramid, else tiffslide/tifffile."""
    import openslide

    try:
        vendor = openslide.OpenSlide.detect_format(str(path))
    except Exception:
        vendor = None
    if vendor is None:  # plain (stripped) TIFF and others OpenSlide does not know
        return ["tifffile", "tiffslide"]
    if vendor == "generic-tiff":
        # OpenSlide does not follow SubIFD pyramids and does not read OME metadata: use tifffile's view then.
        try:
            import tifffile

            with tifffile.TiffFile(str(path)) as tiff:
                n_levels = len(tiff.series[0].levels)
                is_ome = tiff.is_ome
            with openslide.OpenSlide(str(path)) as handle:
                n_openslide = handle.level_count
            if is_ome:
                return ["tifffile", "tiffslide", "openslide"]
            if n_levels > n_openslide:
                return ["tiffslide", "tifffile", "openslide"]
        except Exception:
            pass
    return ["openslide", "tiffslide", "tifffile"]


def _open_with(name: str, path: Path, mpp: float | None) -> WholeSlide:
    candidates, objective, samples, word_bits = _tiff_metadata(path)
    if samples is not None and samples < 3:
        raise BadInputError(f"{path.name}: grayscale slide ({samples} sample per pixel); H&E needs colour (RGB)")
    if word_bits is not None and name != "tifffile":  # open_slide then tries the next reader
        raise ValueError("16-bit samples are read by the tifffile backend only")
    depth = 8
    if name == "tifffile":
        tiff, levels = _tifffile_levels(path)
        try:
            dims = []
            for level in levels:
                h, w = _shape_yx(level)
                dims.append((w, h))
            if word_bits is not None:
                depth = word_bit_depth(_max_sample(levels[-1]), word_bits)
        except Exception:
            tiff.close()
            raise
        downsamples = tuple(dims[0][0] / w for w, _ in dims)
        vendor = "ome-tiff" if tiff.is_ome else "tiff"
        handle = None
    else:
        opener = _open_openslide if name == "openslide" else _open_tiffslide
        handle, props, vendor = opener(path)
        candidates = property_candidates(props) + candidates
        objective = objective_from_properties(props) or objective
        dims = [tuple(int(v) for v in d) for d in handle.level_dimensions]
        downsamples = tuple(float(d) for d in handle.level_downsamples)
        tiff, levels = None, None
    notes: list[str] = []
    try:
        meta = resolve(candidates, name=path.name, notes=notes)
    except BadInputError:
        if mpp is None:
            _close(handle, tiff)
            raise
        meta = None
    if mpp is not None:
        final_mpp, final_source = float(mpp), "override"
    elif meta is not None:
        final_mpp, final_source = meta.mpp, meta.basis
    else:
        _close(handle, tiff)
        reason = f" ({notes[0].split(': ', 1)[-1]})" if notes else ""
        raise BadInputError(f"{path.name} has no usable pixel size in its metadata{reason} (looked for "
                            "openslide.mpp-x, aperio.MPP, OME PhysicalSizeX, TIFF resolution tags); give it with "
                            "mpp (e.g. 0.25 for 40x)", parameters="mpp")
    info = SlideInfo(path=str(path), backend=name, vendor=str(vendor), width=int(dims[0][0]),
                     height=int(dims[0][1]), mpp=final_mpp, mpp_source=final_source, objective_power=objective,
                     level_dimensions=tuple((int(w), int(h)) for w, h in dims), level_downsamples=downsamples,
                     bits_per_sample=depth)
    return WholeSlide(info, handle, tiff, levels)


def _close(handle: Any, tiff: Any) -> None:
    if handle is not None:
        handle.close()
    if tiff is not None:
        tiff.close()
