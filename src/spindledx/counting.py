"""High-power-field geometry, mitotic densities and FNCLCC grading.

Implements the conversions of docs/methods/counting-and-grading.md:

* field diameter (mm) = field number / (objective magnification x tube factor), area = pi (d / 2)^2
  (Renne SL, Pathologica 2023;115:302: eyepiece 10x/22 with a 40x objective gives 0.238 mm^2);
* density per mm^2 = count / area counted (Cree IA et al., Mod Pathol 2021;34:1651, "Counting mitoses: SI(ze)
  matters!"), and the per-10-HPF equivalent = density x 10 x HPF area;
* FNCLCC mitotic score 1/2/3 for 0-9 / 10-19 / >=20 mitoses per 10 HPF, necrosis 0/1/2 for none / <50% / >=50%,
  grade 1/2/3 for score sums 2-3 / 4-5 / 6-8 (Coindre JM, Arch Pathol Lab Med 2006;130:1448; Trojani M et al.,
  Int J Cancer 1984;33:37).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from spindledx.errors import BadInputError

DEFAULT_FIELD_NUMBER_MM = 22.0
DEFAULT_OBJECTIVE_MAGNIFICATION = 40.0
MIN_PLAUSIBLE_MPP = 0.05
MAX_PLAUSIBLE_MPP = 20.0


def hpf_area_mm2(field_number_mm: float = DEFAULT_FIELD_NUMBER_MM,
                 objective_magnification: float = DEFAULT_OBJECTIVE_MAGNIFICATION,
                 *, tube_factor: float = 1.0) -> float:
    """Area of one circular high-power field.

    Parameters
    ----------
    field_number_mm
        Eyepiece field number in mm (e.g. 22 for a "10x/22" eyepiece).
    objective_magnification
        Objective magnification (e.g. 40).
    tube_factor
        Any intermediate magnification in the tube (1.0 on most modern microscopes).

    Returns
    -------
    float
        Field area in mm^2; 22 / 40 gives 0.2376 mm^2 (Renne 2023).
    """
    for name, value, low, high in (("field number", field_number_mm, 0.0, 100.0),
                                   ("objective magnification", objective_magnification, 0.0, 1000.0),
                                   ("tube factor", tube_factor, 0.0, 100.0)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise BadInputError(f"the {name} must be a positive number, got {value!r}")
        if not low < value <= high:
            raise BadInputError(f"the {name} must be at most {high:g}, got {value!r}")
    if objective_magnification * tube_factor < 1.0:
        raise BadInputError(f"the objective magnification must be at least 1x, got {objective_magnification!r}")
    diameter_mm = field_number_mm / (objective_magnification * tube_factor)
    return math.pi * (diameter_mm / 2.0) ** 2


DEFAULT_HPF_AREA_MM2 = hpf_area_mm2()


PLAUSIBLE_HPF_AREA_MM2 = (0.15, 0.35)
"""Areas of a 40x high-power field on the microscopes in use (mm²): field numbers 18-26.5 with a 40x objective
(Cree et al. 2021 list 0.152-0.312 mm²). Another area is refused unless the caller says it is intended."""


def resolve_hpf_area_mm2(hpf_area: float | None = None, field_number_mm: float | None = None,
                         objective_magnification: float | None = None, *,
                         allow_unusual_hpf: bool = False) -> float:
    """HPF area in mm² from the CLI's options: an explicit area, or field number and objective (defaults 22, 40x).

    Giving both an area and a field number/objective is ambiguous and is refused. An area outside
    :data:`PLAUSIBLE_HPF_AREA_MM2` (0.15-0.35 mm², a 40x field) is refused unless ``allow_unusual_hpf``.
    """
    if hpf_area is not None:
        if field_number_mm is not None or objective_magnification is not None:
            raise BadInputError("give either hpf_area or field_number_mm/objective_magnification, not both",
                                parameters=("hpf_area", "field_number_mm", "objective_magnification"))
        area = check_hpf_area_mm2(hpf_area, parameter="hpf_area")
    else:
        area = hpf_area_mm2(DEFAULT_FIELD_NUMBER_MM if field_number_mm is None else field_number_mm,
                            DEFAULT_OBJECTIVE_MAGNIFICATION if objective_magnification is None
                            else objective_magnification)
    low, high = PLAUSIBLE_HPF_AREA_MM2
    if not allow_unusual_hpf and not low <= area <= high:
        raise BadInputError(f"an HPF of {area:.4g} mm² is not a 40x high-power field ({low:g}-{high:g} mm²); "
                            "check the field number, objective or area, or use allow_unusual_hpf=True if the "
                            "field really is that size", parameters=("allow_unusual_hpf",))
    return area


MIN_GRADING_HPF = 10.0
"""FNCLCC counts 10 HPF: a count over less area gives an extrapolated score, not a grade."""

DENSITY_BOUND_PER_MM2 = 100.0
"""Upper bound of a plausible mitotic density (mitoses per mm²); its basis is in :mod:`spindledx.detection.guard`."""
DENSITY_FALSE_ALARM = 1e-3
"""One-sided false-alarm probability of the density test at the bound."""
DENSITY_BOUND_SOURCE = (
    "small-cell lung carcinoma averages 60-80 mitoses per 2 mm² (WHO Lung 2015; Nicholson 2002, PMID 12218575); "
    "100/mm² allows 2.5-3x for hotspots (estimate)"
)
"""Where the bound comes from (printed with the flag)."""


def density_message(count: int, area_mm2: float) -> str:
    """The ``implausible_density`` flag in a sentence."""
    return (f"{count} detections in {area_mm2:.3g} mm² ({count / area_mm2:.0f}/mm²) is beyond what any tumour shows "
            f"(bound {DENSITY_BOUND_PER_MM2:.0f}/mm²: {DENSITY_BOUND_SOURCE}); the detector is probably firing on "
            "non-mitotic nuclei: check the overlay, do not grade from this count")


def density_is_implausible(count: int | float, area_mm2: float, *, bound_per_mm2: float = DENSITY_BOUND_PER_MM2,
                           false_alarm: float = DENSITY_FALSE_ALARM) -> bool:
    """True when ``count`` figures in ``area_mm2`` are implausible even at ``bound_per_mm2``.

    One-sided Poisson test: P(N ≥ count | mean = bound × area) < ``false_alarm``.
    """
    if count <= 0 or area_mm2 <= 0:
        return False
    from scipy.stats import poisson

    return bool(poisson.sf(math.ceil(count) - 1, bound_per_mm2 * area_mm2) < false_alarm)


MAX_PLAUSIBLE_HPF_AREA_MM2 = 1.0
"""Largest HPF area accepted (mm²): a 10x/26.5 eyepiece with a 20x objective gives 1.4 mm² at 10x total, but an
HPF (40x objective) is 0.15-0.35 mm²; 1 mm² leaves room for any microscope."""


def check_hpf_area_mm2(hpf_area_mm2: float, *, parameter: str = "hpf_area_mm2") -> float:
    """Return the HPF area if it is a finite number in (0, 1] mm², else raise BadInputError naming ``parameter``."""
    if not (isinstance(hpf_area_mm2, int | float) and math.isfinite(hpf_area_mm2)
            and 0 < hpf_area_mm2 <= MAX_PLAUSIBLE_HPF_AREA_MM2):
        raise BadInputError(f"{parameter} must be an HPF area in mm² between 0 and {MAX_PLAUSIBLE_HPF_AREA_MM2:g} "
                            f"(40x fields are 0.15-0.35), got {hpf_area_mm2!r}", parameters=parameter)
    return float(hpf_area_mm2)


def check_mpp(mpp: float) -> float:
    """Return ``mpp`` (micrometres per pixel) if it is a plausible scan resolution, else raise BadInputError."""
    if not (isinstance(mpp, int | float) and math.isfinite(mpp)) or not (
            MIN_PLAUSIBLE_MPP <= mpp <= MAX_PLAUSIBLE_MPP):
        raise BadInputError(
            f"mpp {mpp!r} is not a plausible scan resolution (expected {MIN_PLAUSIBLE_MPP}-{MAX_PLAUSIBLE_MPP} "
            "um/px; 40x scans are about 0.25, 20x about 0.5)")
    return float(mpp)


def image_area_mm2(width_px: int, height_px: int, mpp: float) -> float:
    """Area of a rectangular image in mm^2: (width x mpp) x (height x mpp) / 1e6."""
    check_mpp(mpp)
    return (width_px * mpp) * (height_px * mpp) / 1e6


def density_per_mm2(count: int | float, area_mm2: float) -> float:
    """Mitoses per mm^2 over the counted area (Cree et al. 2021)."""
    if not (math.isfinite(area_mm2) and area_mm2 > 0):
        raise BadInputError(f"the counted area must be a positive number of mm² (got {area_mm2!r})")
    return float(count) / area_mm2


def per_10_hpf(density_mm2: float, hpf_area: float = DEFAULT_HPF_AREA_MM2) -> float:
    """Convert a density in mitoses/mm^2 to the count expected in 10 fields of ``hpf_area`` mm^2 each."""
    check_hpf_area_mm2(hpf_area)
    return density_mm2 * 10.0 * hpf_area


def fnclcc_mitotic_score(mitoses_per_10hpf: float) -> int:
    """FNCLCC mitotic score: 1 for 0-9, 2 for 10-19, 3 for >= 20 mitoses per 10 HPF.

    A fractional per-10-HPF figure (from a density conversion) is compared as is: 9.6 scores 1.
    """
    if mitoses_per_10hpf < 0 or not math.isfinite(mitoses_per_10hpf):
        raise BadInputError("the mitotic count must be a non-negative number")
    if mitoses_per_10hpf >= 20:
        return 3
    if mitoses_per_10hpf >= 10:
        return 2
    return 1


def poisson_interval(count: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided confidence interval for the mean of a Poisson count (Garwood F, Biometrika 1936;28:437).

    ``low = G⁻¹(count, α/2)`` (0 for a count of 0) and ``high = G⁻¹(count + 1, 1 − α/2)``, G⁻¹ being the inverse
    regularised lower incomplete gamma function (χ²-quantile form: χ²(α/2; 2k)/2 and χ²(1 − α/2; 2k + 2)/2).
    It describes only the sampling of figures in the counted area, not detector or observer error.
    """
    if not (math.isfinite(count) and count >= 0):
        raise BadInputError(f"the mitotic count must be a non-negative number (got {count!r})")
    if not 0.0 < level < 1.0:
        raise BadInputError(f"the confidence level must lie in (0, 1) (got {level!r})")
    from scipy.special import gammaincinv  # lazy: keeps the CLI start-up light

    alpha = 1.0 - level
    low = 0.0 if count == 0 else float(gammaincinv(count, alpha / 2.0))
    return low, float(gammaincinv(count + 1, 1.0 - alpha / 2.0))


@dataclass(frozen=True)
class MitoticDensity:
    """A mitotic count over a counted area, with every figure derived from it computed once.

    Attributes
    ----------
    count
        Mitotic figures counted.
    area_mm2
        Area over which they were counted (mm²).
    per_mm2
        Density, count / area (Cree et al. 2021).
    per_10hpf
        The count expected in 10 fields of ``hpf_area_mm2`` each: density x 10 x HPF area.
    hpf_area_mm2
        Area of one high-power field used for ``per_10hpf`` (mm²).
    fnclcc_score
        FNCLCC mitotic score 1/2/3 from ``per_10hpf`` (Coindre 2006).
    """

    count: int
    area_mm2: float
    per_mm2: float
    per_10hpf: float
    hpf_area_mm2: float
    fnclcc_score: int

    @classmethod
    def of(cls, count: int, area_mm2: float, hpf_area_mm2: float = DEFAULT_HPF_AREA_MM2) -> MitoticDensity:
        """Density of ``count`` figures over ``area_mm2`` mm², per 10 HPF of ``hpf_area_mm2`` mm² each.

        Raises
        ------
        BadInputError
            A negative or non-finite count, a non-positive or non-finite area or HPF area.
        """
        if not (math.isfinite(count) and count >= 0):
            raise BadInputError(f"the mitotic count must be a non-negative number (got {count!r})")
        check_hpf_area_mm2(hpf_area_mm2)
        per_mm2 = density_per_mm2(count, area_mm2)
        per10 = per_10_hpf(per_mm2, hpf_area_mm2)
        return cls(count=int(count), area_mm2=float(area_mm2), per_mm2=per_mm2, per_10hpf=per10,
                   hpf_area_mm2=float(hpf_area_mm2), fnclcc_score=fnclcc_mitotic_score(per10))

    def per_10hpf_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Exact Poisson interval (:func:`poisson_interval`) of the count, as mitoses per 10 HPF."""
        low, high = poisson_interval(self.count, level)
        factor = 10.0 * self.hpf_area_mm2 / self.area_mm2
        return low * factor, high * factor

    def fnclcc_scores_in_interval(self, level: float = 0.95) -> tuple[int, ...]:
        """The FNCLCC mitotic scores that the per-10-HPF interval spans (one score: the sampling cannot move it)."""
        low, high = self.per_10hpf_interval(level)
        return tuple(range(fnclcc_mitotic_score(low), fnclcc_mitotic_score(high) + 1))

    def to_dict(self, *, digits: int | None = None) -> dict[str, float | int]:
        """The score-contract keys: ``count, area_mm2, mitoses_per_mm2, mitoses_per_10hpf, hpf_area_mm2,
        fnclcc_mitotic_score`` (values rounded to ``digits`` decimals when given)."""
        def r(value: float, n: int) -> float:
            return value if digits is None else round(value, max(n, digits))
        return {"count": self.count, "area_mm2": r(self.area_mm2, 6), "mitoses_per_mm2": r(self.per_mm2, 4),
                "mitoses_per_10hpf": r(self.per_10hpf, 4), "hpf_area_mm2": r(self.hpf_area_mm2, 6),
                "fnclcc_mitotic_score": self.fnclcc_score}


def count_record(count: int, area_mm2: float, hpf_area_mm2: float, *, method: str,
                 flags: tuple[str, ...] | list[str] = (), flag_messages: tuple[str, ...] | list[str] = ()
                 ) -> dict[str, object]:
    """The one description of a count that every route writes (``score``, ``slide``, ``case``, ``review``):
    count, area, density, per 10 HPF with its exact Poisson 95 % interval and the scores it spans, HPF counted,
    whether that is an extrapolation (under :data:`MIN_GRADING_HPF`), and the flags, ``implausible_density``
    added when the density test (:func:`density_is_implausible`) fails."""
    value = MitoticDensity.of(int(count), area_mm2, hpf_area_mm2)
    n_hpf = value.area_mm2 / value.hpf_area_mm2
    low, high = value.per_10hpf_interval()
    all_flags, messages = list(dict.fromkeys(flags)), list(flag_messages)
    if density_is_implausible(value.count, value.area_mm2) and "implausible_density" not in all_flags:
        all_flags.append("implausible_density")
        messages.append(density_message(value.count, value.area_mm2))
    return {"method": method, "count": value.count, "area_mm2": round(value.area_mm2, 6),
            "hpf_area_mm2": round(value.hpf_area_mm2, 6), "n_hpf": round(n_hpf, 3),
            "mitoses_per_mm2": round(value.per_mm2, 4), "mitoses_per_10hpf": round(value.per_10hpf, 3),
            "mitoses_per_10hpf_ci95": [round(low, 3), round(high, 3)],
            "mitotic_scores_ci95": list(value.fnclcc_scores_in_interval()),
            "fnclcc_mitotic_score": value.fnclcc_score,
            "extrapolated": bool(n_hpf < MIN_GRADING_HPF * (1 - 1e-6)), "flags": sorted(set(all_flags)),
            "flag_messages": messages}


NECROSIS_SCORES = {"none": 0, "<50": 1, ">=50": 2}

@functools.lru_cache(maxsize=1)
def differentiation_table() -> tuple[dict[str, dict[str, int]], frozenset[str]]:
    """FNCLCC differentiation scores by entity id and pattern, and the entities not graded, from the package data
    file ``data/fnclcc_differentiation.csv`` (each row cites its source: grading_and_hpf.md section 1, the
    essentialpathology.info checklist and basicmedicalkey Table 3.1; Coindre 2006 for the tumours not graded)."""
    import csv
    from importlib import resources

    scores: dict[str, dict[str, int]] = {}
    not_graded: set[str] = set()
    text = (resources.files("spindledx") / "data" / "fnclcc_differentiation.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        if row["graded"] == "no":
            not_graded.add(row["entity"])
        else:
            scores.setdefault(row["entity"], {})[row["pattern"]] = int(row["differentiation_score"])
    return scores, frozenset(not_graded)


@dataclass(frozen=True)
class FnclccGrade:
    """FNCLCC scores and grade, with the counting-area assumption that produced the mitotic score.

    ``status`` is ``graded`` (``grade`` set), ``extrapolated`` (less than :data:`MIN_GRADING_HPF` counted: ``grade``
    is None and the grade the extrapolation would give is ``extrapolated_grade``) or ``flagged`` (the count
    carries a flag such as ``implausible_density``: ``grade`` is None and ``flagged_grade`` is what it would give).
    ``reason`` says why there is no grade.
    """

    differentiation_score: int
    mitotic_score: int
    necrosis_score: int
    total: int
    grade: int | None
    mitoses: float
    area_mm2: float
    mitoses_per_mm2: float
    mitoses_per_10hpf: float
    hpf_area_mm2: float
    area_note: str
    caveats: tuple[str, ...] = ()
    mitoses_per_10hpf_ci95: tuple[float, float] | None = None
    mitotic_scores_ci95: tuple[int, ...] = ()
    status: str = "graded"
    reason: str | None = None
    n_hpf: float = 0.0
    extrapolated: bool = False
    extrapolated_grade: int | None = None
    flagged_grade: int | None = None
    flags: tuple[str, ...] = ()


def differentiation_score_for(entity: str, pattern: str = "conventional") -> int:
    """FNCLCC differentiation score for an entity id and histological pattern."""
    by_entity, not_graded = differentiation_table()
    key = entity.strip().lower().replace("-", "_").replace(" ", "_")
    if key in not_graded:
        raise BadInputError(f"FNCLCC grading is not applied to {key} (benign, intermediate or non-sarcoma; "
                            "Coindre 2006); give differentiation explicitly to grade anyway",
                            parameters="differentiation")
    table = by_entity.get(key)
    if table is None:
        known = ", ".join(sorted(by_entity))
        raise BadInputError(f"no FNCLCC differentiation table for '{entity}'; known: {known}; "
                            "or give differentiation 1|2|3", parameters="differentiation")
    pat = pattern.strip().lower().replace("-", "_").replace(" ", "_")
    if pat not in table:
        raise BadInputError(f"pattern '{pattern}' unknown for {key}; choose one of: {', '.join(table)}")
    return table[pat]


def fnclcc_grade(*, mitoses: float, differentiation_score: int, necrosis: str,
                 area_mm2: float | None = None, n_hpf: float = 10.0,
                 hpf_area: float = DEFAULT_HPF_AREA_MM2, flags: tuple[str, ...] | list[str] = (),
                 use_flagged_count: bool = False) -> FnclccGrade:
    """FNCLCC grade from a mitotic count, necrosis extent and differentiation score.

    Parameters
    ----------
    mitoses
        Mitotic figures counted.
    differentiation_score
        1, 2 or 3 (see :func:`differentiation_score_for`).
    necrosis
        ``"none"``, ``"<50"`` or ``">=50"`` (% of tumour, microscopic).
    area_mm2
        Area over which ``mitoses`` were counted. If omitted, the count is taken over ``n_hpf`` fields of
        ``hpf_area`` mm^2 each.
    n_hpf, hpf_area
        Number and area (mm^2) of the high-power fields counted, and the reference field for the per-10-HPF
        figure.
    flags
        Flags the count already carries (``out_of_distribution``, ...); ``implausible_density`` is added when the
        count over the area is beyond :data:`DENSITY_BOUND_PER_MM2` (:func:`density_is_implausible`).
    use_flagged_count
        Grade a flagged count anyway (the grade then keeps its flags).

    The rules are those of every count in spindledx: less than 10 HPF of area gives no grade (``extrapolated``);
    a flagged count gives no grade unless ``use_flagged_count`` (``flagged``).

    Returns
    -------
    FnclccGrade
        Scores, grade and the area assumption stated in words.
    """
    if differentiation_score not in (1, 2, 3):
        raise BadInputError("differentiation score must be 1, 2 or 3")
    nec = necrosis.strip().replace(" ", "").replace("%", "").replace("≥", ">=")
    if nec in {"0", "no", "absent"}:
        nec = "none"
    if nec.casefold() in {"yes", "present"}:
        raise BadInputError(f"necrosis '{necrosis}': the grade needs the extent, <50 or >=50 (% of the tumour)")
    if nec not in NECROSIS_SCORES:
        raise BadInputError(f"necrosis must be one of none, <50, >=50 (got '{necrosis}')")
    if not (math.isfinite(mitoses) and mitoses >= 0):
        raise BadInputError(f"the mitotic count must be a non-negative number, got {mitoses!r}")
    check_hpf_area_mm2(hpf_area)
    if area_mm2 is None:
        if not (math.isfinite(n_hpf) and n_hpf > 0):
            raise BadInputError(f"the number of HPF must be a positive number, got {n_hpf!r}")
        area_mm2 = n_hpf * hpf_area
        area_note = (f"{mitoses:g} mitoses in {n_hpf:g} HPF of {hpf_area:.3f} mm² each "
                     f"({area_mm2:.3f} mm² counted)")
    else:
        area_note = f"{mitoses:g} mitoses in {area_mm2:.4g} mm² counted"
    density = density_per_mm2(mitoses, area_mm2)
    p10 = per_10_hpf(density, hpf_area)
    area_note += f"; per 10 HPF means per {10 * hpf_area:.2f} mm² (10 fields of {hpf_area:.3f} mm²)"
    m_score = fnclcc_mitotic_score(p10)
    n_score = NECROSIS_SCORES[nec]
    total = differentiation_score + m_score + n_score
    grade = 1 if total <= 3 else 2 if total <= 5 else 3
    counted_hpf = area_mm2 / hpf_area
    all_flags = list(dict.fromkeys(flags))
    if density_is_implausible(mitoses, area_mm2) and "implausible_density" not in all_flags:
        all_flags.append("implausible_density")
    status, reason, extrapolated_grade, flagged_grade, final = "graded", None, None, None, grade
    if all_flags and not use_flagged_count:
        status, final, flagged_grade = "flagged", None, grade
        reason = (f"the count is flagged ({', '.join(f.replace('_', ' ') for f in all_flags)}): "
                  f"{mitoses:g} figures in {area_mm2:.4g} mm² ({density:.0f}/mm²) are not graded; check the figures, "
                  "or grade them anyway with --use-flagged-count")
    elif counted_hpf < MIN_GRADING_HPF * (1 - 1e-6):
        status, final, extrapolated_grade = "extrapolated", None, grade
        reason = (f"only {counted_hpf:.3g} HPF ({area_mm2:.4g} mm²) were counted; FNCLCC counts 10 HPF: the "
                  "mitotic score and grade are extrapolations, not an FNCLCC grade")
    caveats = []
    caveats.append("per-10-HPF cut-offs depend on the field area: the area of the original FNCLCC fields is not "
                   "verified here, so state the area (Cree et al. 2021)")
    interval, scores = None, (m_score,)
    if float(mitoses).is_integer():  # a count of figures: its sampling interval says whether the score is settled
        value = MitoticDensity.of(int(mitoses), area_mm2, hpf_area)
        interval, scores = value.per_10hpf_interval(), value.fnclcc_scores_in_interval()
        if len(scores) > 1:
            caveats.append(f"counting uncertainty: {mitoses:g} figures in {area_mm2 / hpf_area:.2f} HPF give a 95 % "
                           f"interval of {interval[0]:.1f}-{interval[1]:.1f} mitoses per 10 HPF (exact Poisson), "
                           f"spanning mitotic scores {scores[0]}-{scores[-1]}: count more fields in the most active "
                           "area before relying on the score (sampling only; detector or observer errors add to it)")
    elif 8.0 <= p10 < 10.0 or 18.0 <= p10 < 20.0:
        caveats.append("the count lies just below a score cut-off: recount or count a larger area")
    caveats.append("FNCLCC grading is not suitable for core needle biopsies (Coindre 2006)")
    return FnclccGrade(differentiation_score, m_score, n_score, total, final, float(mitoses), area_mm2, density,
                       p10, hpf_area, area_note, tuple(caveats), interval, tuple(scores), status=status,
                       reason=reason, n_hpf=counted_hpf, extrapolated=counted_hpf < MIN_GRADING_HPF * (1 - 1e-6),
                       extrapolated_grade=extrapolated_grade, flagged_grade=flagged_grade, flags=tuple(all_flags))
