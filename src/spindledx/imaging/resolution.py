"""The one µm/px parser for tiles and slides: OME-XML, Aperio, TIFF resolution tags, PNG pHYs, OpenSlide keys.

Every reader lists the resolutions its file states, in order of preference, as :class:`Candidate` values
(``basis``, x and y in µm/px), and :func:`resolve` picks the first usable one:

* OME ``PhysicalSizeX`` / ``PhysicalSizeY`` with their units (OME data model);
* Aperio ``ImageDescription`` ``MPP = 0.2520`` and the OpenSlide / tiffslide ``mpp-x`` / ``mpp-y`` properties;
* TIFF ``XResolution`` / ``YResolution`` in pixels per ``ResolutionUnit`` (2 = inch, 3 = centimetre; TIFF 6.0,
  section 8); unit 1 ("none") is an aspect ratio only;
* PNG ``pHYs`` (pixels per metre, reported by Pillow as dots per inch).

A stated value that is not a positive finite number is *invalid* (reported as such, not as absent); a value
outside :data:`~spindledx.counting.MIN_PLAUSIBLE_MPP`-:data:`~spindledx.counting.MAX_PLAUSIBLE_MPP` (e.g. a
72 dpi screen default) is ignored with a note; pixels whose x and y sizes differ by more than 1 % are refused
(every area and density would be wrong, and the detector assumes square pixels).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from spindledx.counting import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP
from spindledx.errors import BadInputError

UM_PER_UNIT = {"m": 1e6, "cm": 1e4, "mm": 1e3, "µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "nm": 1e-3,
               "pm": 1e-6, "in": 25400.0, "inch": 25400.0}
"""Micrometres per OME length unit."""

NON_SQUARE_TOLERANCE = 0.01
"""Largest relative difference of the x and y pixel sizes treated as square pixels."""


@dataclass(frozen=True)
class Candidate:
    """A resolution a file states: where (``basis``) and the x / y pixel sizes in µm (None when not stated)."""

    basis: str
    mpp_x: float | None
    mpp_y: float | None = None


@dataclass(frozen=True)
class Resolution:
    """The resolution chosen for an image: µm/px and the metadata it came from."""

    mpp: float
    basis: str


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan if value is not None else None


def resolve(candidates: list[Candidate], *, name: str, notes: list[str]) -> Resolution | None:
    """The first usable candidate; notes say which stated values were invalid or implausible.

    Raises
    ------
    BadInputError
        The chosen candidate has non-square pixels.
    """
    for c in candidates:
        values = [v for v in (c.mpp_x, c.mpp_y) if v is not None]
        if not values:
            continue
        if not all(math.isfinite(v) and v > 0 for v in values):
            notes.append(f"{name}: invalid resolution in the {c.basis} ({', '.join(f'{v:g}' for v in values)} "
                         "µm/px) ignored")
            continue
        if not all(MIN_PLAUSIBLE_MPP <= v <= MAX_PLAUSIBLE_MPP for v in values):
            notes.append(f"{name}: ignored {c.basis} resolution of {values[0]:.4g} µm/px (not a microscope scan "
                         "resolution, probably a screen default)")
            continue
        mx, my = values[0], values[-1]
        if abs(mx - my) / max(mx, my) > NON_SQUARE_TOLERANCE:
            raise BadInputError(f"{name}: non-square pixels ({mx:g} x {my:g} µm in the {c.basis}); resample the "
                                "image to square pixels, every area and density depends on it")
        return Resolution(mpp=round((mx + my) / 2.0, 6), basis=c.basis)
    return None


def ome_candidate(ome_xml: str) -> tuple[Candidate | None, float | None]:
    """``PhysicalSizeX`` / ``PhysicalSizeY`` of the first OME ``Pixels`` element (in µm) and the first objective's
    ``NominalMagnification``; ``(None, None)`` when the XML does not parse."""
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None, None
    candidate = objective = None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "Pixels" and candidate is None:
            sizes: list[float | None] = []
            for axis in ("X", "Y"):
                value = _number(element.get(f"PhysicalSize{axis}"))
                factor = UM_PER_UNIT.get(element.get(f"PhysicalSize{axis}Unit", "µm"))
                sizes.append(None if value is None else math.nan if factor is None else value * factor)
            candidate = Candidate("OME PhysicalSizeX", sizes[0], sizes[1])
        elif tag == "Objective" and objective is None:
            objective = _number(element.get("NominalMagnification"))
    return candidate, objective


def aperio_candidate(description: str | None) -> Candidate | None:
    """``MPP = 0.2520`` in an Aperio ``ImageDescription``."""
    match = re.search(r"\bMPP\s*=\s*([^|\s]+)", description or "")
    return Candidate("ImageDescription MPP", _number(match.group(1))) if match else None


def tiff_tag_candidate(page: Any) -> Candidate | None:
    """``XResolution`` / ``YResolution`` with ``ResolutionUnit`` of a tifffile page (None when absent or unit-less)."""
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
                return math.nan
            pixels_per_unit = value[0] / value[1]
        else:
            pixels_per_unit = _number(value)
        return um_per_unit / pixels_per_unit if pixels_per_unit and pixels_per_unit > 0 else math.nan

    return Candidate("TIFF XResolution/ResolutionUnit", per_pixel("XResolution"), per_pixel("YResolution"))


def png_candidate(dpi: Any) -> Candidate | None:
    """PNG ``pHYs`` as Pillow reports it (dots per inch): mpp = 25400 / dpi."""
    if not dpi:
        return None
    values = [_number(d) for d in tuple(dpi)[:2]]
    mpp = [25400.0 / v if v and v > 0 else math.nan for v in values]
    return Candidate("PNG pHYs", mpp[0], mpp[1] if len(mpp) > 1 else None)


def property_candidates(props: dict[str, Any]) -> list[Candidate]:
    """OpenSlide / tiffslide properties: ``openslide.mpp-x/y``, ``tiffslide.mpp-x/y``, ``aperio.MPP``."""
    out = []
    for prefix in ("openslide", "tiffslide"):
        if props.get(f"{prefix}.mpp-x") is not None:
            out.append(Candidate(f"{prefix}.mpp-x", _number(props.get(f"{prefix}.mpp-x")),
                                 _number(props.get(f"{prefix}.mpp-y"))))
    if props.get("aperio.MPP") is not None:
        out.append(Candidate("aperio.MPP", _number(props.get("aperio.MPP"))))
    return out


def objective_from_properties(props: dict[str, Any]) -> float | None:
    """Objective power from OpenSlide/tiffslide properties (``openslide.objective-power``, ``aperio.AppMag``)."""
    for key in ("openslide.objective-power", "tiffslide.objective-power", "aperio.AppMag"):
        value = _number(props.get(key))
        if value is not None and math.isfinite(value) and value > 0:
            return value
    return None


def tiff_candidates(tif: Any) -> tuple[list[Candidate], float | None]:
    """Candidates of an open :class:`tifffile.TiffFile`, in order: OME-XML, Aperio description, resolution tags;
    and the OME objective magnification."""
    candidates: list[Candidate] = []
    objective = None
    if tif.is_ome and tif.ome_metadata:
        ome, objective = ome_candidate(tif.ome_metadata)
        if ome is not None:
            candidates.append(ome)
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    for candidate in (aperio_candidate(page.description), tiff_tag_candidate(page)):
        if candidate is not None:
            candidates.append(candidate)
    return candidates, objective
