"""Clinical and H&E findings given with a panel: parsing and validation of --age, --sex, --mitoses, --necrosis,
--atypia and --pattern (the same value forms in the CLI and in :func:`spindledx.ihc.interpret_panel`).

Mitotic counts are converted to mitoses per 10 HPF of :data:`spindledx.counting.DEFAULT_HPF_AREA_MM2`
(0.2376 mm², eyepiece 10x/22 with a 40x objective; Renne 2023) through :func:`spindledx.counting.per_10_hpf`,
then to the FNCLCC-style bands of ``morphology.csv`` (``0-4``, ``5-9``, ``10-19``, ``>=20`` per 10 HPF;
Coindre 2006 for the 10 and 20 cut-offs, Bell 1994 for the 5/10 HPF smooth-muscle cut-off).

Accepted forms: ``12/10HPF`` (a count over N fields, the fields taken as 0.2376 mm²), ``3/50HPF``,
``4/mm2`` (a density, also ``4/mm²`` or a bare number in the library API, read as per mm²).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from spindledx.counting import DEFAULT_HPF_AREA_MM2, per_10_hpf
from spindledx.errors import BadInputError
from spindledx.ihc.knowledge import ATYPIA_LEVELS, MITOSIS_BANDS, PATTERNS

MAX_AGE_YEARS = 120.0
_HPF = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*hpfs?\s*$", re.IGNORECASE)
_MM2 = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*mm(?:2|²|\^2)\s*$", re.IGNORECASE)
_MITOSES_HELP = ("use COUNT/NHPF (e.g. 12/10HPF, 3/50HPF; fields of 0.2376 mm²) or a density per mm² "
                 "(e.g. 4/mm2)")
_YES = {"yes", "y", "true", "present", "1"}
_NO = {"no", "n", "false", "absent", "0", "none"}


@dataclass(frozen=True)
class Findings:
    """Validated clinical and morphological findings (None / empty = not given)."""

    age_years: float | None = None
    sex: str | None = None
    mitoses_input: str | None = None
    mitoses_per_10hpf: float | None = None
    necrosis: bool | None = None
    atypia: str | None = None
    patterns: tuple[str, ...] = ()

    @property
    def mitoses_band(self) -> str | None:
        """The morphology.csv band of the mitotic count."""
        return None if self.mitoses_per_10hpf is None else mitosis_band(self.mitoses_per_10hpf)

    def to_json(self) -> dict:
        """JSON-serialisable dict (only what was given)."""
        out: dict = {}
        if self.age_years is not None:
            out["age"] = self.age_years
        if self.sex is not None:
            out["sex"] = self.sex
        if self.mitoses_per_10hpf is not None:
            out["mitoses"] = {"input": self.mitoses_input,
                              "per_10hpf": round(self.mitoses_per_10hpf, 2),
                              "hpf_area_mm2": round(DEFAULT_HPF_AREA_MM2, 4), "band": self.mitoses_band}
        if self.necrosis is not None:
            out["necrosis"] = "yes" if self.necrosis else "no"
        if self.atypia is not None:
            out["atypia"] = self.atypia
        if self.patterns:
            out["pattern"] = list(self.patterns)
        return out


def mitosis_band(per_10hpf: float) -> str:
    """Band of a count per 10 HPF: ``0-4`` (< 5), ``5-9`` (< 10), ``10-19`` (< 20) or ``>=20``.

    A fractional figure from a density conversion is compared as is (9.5 falls in ``5-9``), as in
    :func:`spindledx.counting.fnclcc_mitotic_score`.
    """
    for limit, band in zip((5.0, 10.0, 20.0), MITOSIS_BANDS[:3], strict=True):
        if per_10hpf < limit:
            return band
    return MITOSIS_BANDS[3]


def parse_mitoses(value: str | float | int | None) -> tuple[str | None, float | None]:
    """(input as written, mitoses per 10 HPF of 0.2376 mm²) from ``12/10HPF``, ``3/50HPF``, ``4/mm2`` or a number
    (per mm²); BadInputError naming the accepted forms otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        raise BadInputError(f"mitoses {value!r}: {_MITOSES_HELP}", parameters="mitoses")
    if isinstance(value, int | float):
        if not (math.isfinite(value) and value >= 0):
            raise BadInputError(f"mitoses {value!r}: {_MITOSES_HELP}", parameters="mitoses")
        return f"{value:g}/mm2", per_10_hpf(float(value), DEFAULT_HPF_AREA_MM2)
    text = str(value)
    m = _HPF.match(text)
    if m:
        count, fields = float(m.group(1)), float(m.group(2))
        if fields <= 0:
            raise BadInputError(f"mitoses '{text}': the number of HPF must be positive; {_MITOSES_HELP}",
                                parameters="mitoses")
        return text.strip(), count * 10.0 / fields
    m = _MM2.match(text)
    if m:
        return text.strip(), per_10_hpf(float(m.group(1)), DEFAULT_HPF_AREA_MM2)
    raise BadInputError(f"mitoses '{text}': {_MITOSES_HELP}", parameters="mitoses")


def parse_age(value: str | float | int | None) -> float | None:
    """Age in years (0-120); BadInputError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        age = math.nan
    if isinstance(value, bool) or not (math.isfinite(age) and 0 <= age <= MAX_AGE_YEARS):
        raise BadInputError(f"age '{value}': give the age in years, a number from 0 to {MAX_AGE_YEARS:g}",
                            parameters="age")
    return age


def parse_sex(value: str | None) -> str | None:
    """``F`` or ``M`` (case-insensitive; also female/male); BadInputError otherwise."""
    if value is None or not str(value).strip():
        return None
    key = str(value).strip().casefold()
    if key in ("f", "female"):
        return "F"
    if key in ("m", "male"):
        return "M"
    raise BadInputError(f"sex '{value}': use F or M", parameters="sex")


def parse_necrosis(value: str | bool | None) -> bool | None:
    """Tumour cell necrosis: ``yes`` / ``no`` (or a bool); BadInputError otherwise."""
    if value is None or isinstance(value, bool):
        return value
    key = str(value).strip().casefold()
    if not key:
        return None
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise BadInputError(f"necrosis '{value}': use yes or no (tumour cell necrosis)", parameters="necrosis")


def parse_atypia(value: str | None) -> str | None:
    """``none``, ``mild``, ``moderate`` or ``marked`` (``severe`` is read as marked); BadInputError otherwise."""
    if value is None or not str(value).strip():
        return None
    key = str(value).strip().casefold()
    key = {"severe": "marked", "no": "none", "slight": "mild"}.get(key, key)
    if key not in ATYPIA_LEVELS:
        raise BadInputError(f"atypia '{value}': use {', '.join(ATYPIA_LEVELS[:-1])} or {ATYPIA_LEVELS[-1]}",
                            parameters="atypia")
    return key


def parse_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Pattern words from a string (separated by commas, semicolons or ``|``) or a sequence of them (repeatable
    option).

    Words are case-insensitive; spaces and hyphens read as underscores (``staghorn vessels`` ->
    ``staghorn_vessels``).  Unknown words: BadInputError listing the vocabulary.
    """
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        for word in re.split(r"[,;|]+", str(item)):
            key = re.sub(r"[\s\-]+", "_", word.strip().casefold())
            if not key:
                continue
            if key not in PATTERNS:
                raise BadInputError(f"pattern '{word.strip()}': use one or more of {', '.join(PATTERNS)}",
                                    parameters="pattern")
            if key not in out:
                out.append(key)
    return tuple(out)


def parse_findings(*, age=None, sex=None, mitoses=None, necrosis=None, atypia=None, pattern=None) -> Findings:
    """Validate every finding (see the ``parse_*`` functions) into a :class:`Findings`."""
    mitoses_input, per10 = parse_mitoses(mitoses)
    return Findings(age_years=parse_age(age), sex=parse_sex(sex), mitoses_input=mitoses_input,
                    mitoses_per_10hpf=per10, necrosis=parse_necrosis(necrosis), atypia=parse_atypia(atypia),
                    patterns=parse_patterns(pattern))
