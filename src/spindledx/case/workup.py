"""The case workup: H&E count + IHC panel + FNCLCC grade joined into one record (``case.json``).

Data flow (one way, docs/architecture.md): tiles -> detector candidates (:mod:`spindledx.review.candidates`) -> counted
figures per tile (:func:`spindledx.mitosis.score.summarize`) -> pooled count over the area counted
(:mod:`spindledx.counting`: density = count / area, per 10 HPF = density x 10 x HPF area; Cree et al. 2021)
-> morphology evidence of the differential (``interpret_panel(..., mitoses=<per mm²>)``) -> FNCLCC grade of
the leading entity when it is gradable (Coindre 2006).

A count over less than 10 HPF of area is an extrapolation: its FNCLCC mitotic score and grade are reported as
"extrapolated", never as the FNCLCC grade. A count that carries detector flags (implausible density,
out-of-distribution) keeps them next to every figure derived from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spindledx import counting
from spindledx.errors import BadInputError

NECROSIS_CHOICES = ("none", "no", "yes", "<50", ">=50")
ATYPIA_CHOICES = ("none", "mild", "moderate", "marked")


@dataclass(frozen=True)
class CaseOptions:
    """What the user told us about the case (the options of ``panel`` plus the grade's)."""

    panel: str
    site: str | None = None
    age: float | None = None
    sex: str | None = None
    necrosis: str | None = None
    atypia: str | None = None
    pattern: tuple[str, ...] = ()
    differentiation: int | None = None
    ignore_unknown: bool = False
    hpf_area_mm2: float = counting.DEFAULT_HPF_AREA_MM2
    use_flagged_count: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict of the inputs."""
        return {"panel": self.panel, "site": self.site, "age": self.age, "sex": self.sex,
                "necrosis": self.necrosis, "atypia": self.atypia, "pattern": list(self.pattern),
                "differentiation": self.differentiation, "ignore_unknown": self.ignore_unknown,
                "hpf_area_mm2": self.hpf_area_mm2, "use_flagged_count": self.use_flagged_count}


def check_options(opts: CaseOptions) -> None:
    """Refuse impossible values with one line (BadInputError)."""
    if not opts.panel or not opts.panel.strip():
        raise BadInputError("the IHC panel is empty")
    if opts.necrosis is not None and opts.necrosis not in NECROSIS_CHOICES:
        raise BadInputError(f"necrosis must be one of {', '.join(NECROSIS_CHOICES)} (got '{opts.necrosis}')",
                            parameters="necrosis")
    if opts.atypia is not None and opts.atypia not in ATYPIA_CHOICES:
        raise BadInputError(f"atypia must be one of {', '.join(ATYPIA_CHOICES)} (got '{opts.atypia}')",
                            parameters="atypia")
    if opts.sex is not None and opts.sex not in ("F", "M"):
        raise BadInputError(f"sex must be F or M (got '{opts.sex}')", parameters="sex")
    if opts.age is not None and not 0 <= opts.age <= 120:
        raise BadInputError(f"age must be between 0 and 120 years (got {opts.age:g})", parameters="age")
    if opts.differentiation is not None and opts.differentiation not in (1, 2, 3):
        raise BadInputError("differentiation must be 1, 2 or 3", parameters="differentiation")


def pooled_count(records: Sequence[dict[str, Any]], *, hpf_area_mm2: float, method: str = "detector",
                 flags: Sequence[str] = ()) -> dict[str, Any]:
    """Count over all images: figures, area counted, density per mm², per 10 HPF and how many HPF were counted.

    ``extrapolated`` is true when less than 10 HPF of area was counted: the per-10-HPF figure then extrapolates
    a smaller area (Cree et al. 2021) and must not become an FNCLCC score silently. ``flags`` are the images'
    flags plus ``implausible_density`` when the pooled count itself is implausible
    (:func:`spindledx.detection.guard.density_is_implausible`).
    """
    if not records:
        raise BadInputError("no image could be counted")
    record = counting.count_record(int(sum(r["count"] for r in records)),
                                   float(sum(r["area_mm2"] for r in records)), hpf_area_mm2, method=method,
                                   flags=sorted(set(flags)))
    atypical = [r.get("atypical_count") for r in records]
    record["atypical_count"] = int(sum(atypical)) if atypical and all(a is not None for a in atypical) else None
    record["n_images"] = len(records)
    return record


def _supported_kwargs(func: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(func).parameters)


def differential(opts: CaseOptions, count: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """The panel's differential with the measured count as morphology evidence.

    Returns the ``PanelResult.to_json()`` dict and warnings about evidence that could not be used (e.g. a
    knowledge base without morphology evidence).
    """
    from spindledx.ihc import interpret_panel

    supported = _supported_kwargs(interpret_panel)
    wanted: dict[str, Any] = {"age": opts.age, "sex": opts.sex, "atypia": opts.atypia,
                              "pattern": list(opts.pattern) or None}
    if opts.necrosis is not None:
        wanted["necrosis"] = "no" if opts.necrosis in ("none", "no") else "yes"
    notes = []
    flagged = count is not None and bool(count.get("flags"))
    if count is not None and (not flagged or opts.use_flagged_count):
        wanted["mitoses"] = float(count["mitoses_per_mm2"])
    elif flagged:
        notes.append(f"the mitotic count is flagged ({', '.join(f.replace('_', ' ') for f in count['flags'])}): "
                     "it is not used as evidence in the differential (--use-flagged-count uses it)")
    kwargs = {k: v for k, v in wanted.items() if v is not None and k in supported}
    notes += [f"the IHC interpreter of this version does not take '{k}': not used in the differential"
              for k, v in wanted.items() if v is not None and k not in supported]
    result = interpret_panel(opts.panel, site=opts.site, ignore_unknown=opts.ignore_unknown, **kwargs)
    doc = result.to_json()
    doc["morphology_used"] = sorted(kwargs)
    if "mitoses" in kwargs and flagged:
        doc["morphology_used_flagged"] = ["mitoses"]
    return doc, notes


def necrosis_extent(necrosis: str | None) -> str | None:
    """The FNCLCC necrosis category from the case option, or None when the extent is not known."""
    if necrosis in ("none", "no"):
        return "none"
    if necrosis in ("<50", ">=50"):
        return necrosis
    return None


def grade(opts: CaseOptions, leading_entity: str, count: dict[str, Any]) -> dict[str, Any]:
    """FNCLCC grade of the case with every assumption, or the reason there is none.

    ``status`` is ``graded`` (count over >= 10 HPF, entity gradable, necrosis extent given), ``extrapolated``
    (less than 10 HPF counted: the grade the extrapolation would give is in ``extrapolated_grade`` and ``grade``
    is None), ``incomplete`` (necrosis extent unknown) or ``not_applicable`` (the leading entity is not graded).
    Detector flags travel in ``flags``; the caveats include the count's sampling uncertainty when its 95 % Poisson
    interval spans more than one mitotic score (:func:`spindledx.counting.fnclcc_grade`).
    """
    out: dict[str, Any] = {"entity": leading_entity, "grade": None, "flags": list(count.get("flags") or []),
                           "assumptions": []}
    if opts.differentiation is not None:
        diff = opts.differentiation
        out["assumptions"].append(f"differentiation score {diff} as given")
    else:
        try:
            diff = counting.differentiation_score_for(leading_entity, "conventional")
        except BadInputError as exc:
            out.update(status="not_applicable", reason=str(exc))
            return out
        out["assumptions"].append(f"differentiation score {diff}: conventional {leading_entity.replace('_', ' ')} "
                                  "(FNCLCC table; give --differentiation to override)")
    nec = necrosis_extent(opts.necrosis)
    out["differentiation_score"] = diff
    if nec is None:
        reason = "necrosis extent not given: --necrosis none, <50 or >=50 is needed for the grade"
        if count["extrapolated"]:
            reason += (f"; and only {count['n_hpf']:.2f} HPF were counted, so the mitotic score would be an "
                       "extrapolation")
        out.update(status="incomplete", reason=reason)
        return out
    g = counting.fnclcc_grade(mitoses=count["count"], differentiation_score=diff, necrosis=nec,
                              area_mm2=count["area_mm2"], hpf_area=count["hpf_area_mm2"],
                              flags=list(count.get("flags") or []), use_flagged_count=opts.use_flagged_count)
    out.update(differentiation_score=g.differentiation_score, mitotic_score=g.mitotic_score,
               necrosis_score=g.necrosis_score, total=g.total, necrosis=nec, area_note=g.area_note,
               caveats=list(g.caveats), mitoses_per_10hpf=round(g.mitoses_per_10hpf, 3), flags=list(g.flags))
    out["assumptions"].append(g.area_note)
    out["assumptions"].append(f"mitotic count from the {count['method']} "
                              f"({count['count']} figures in {count['area_mm2']:.3f} mm²)")
    out.update(status=g.status, grade=g.grade)
    if g.status == "extrapolated":
        out.update(extrapolated_grade=g.extrapolated_grade, reason=g.reason)
    elif g.status == "flagged":
        out.update(flagged_grade=g.flagged_grade, reason=g.reason)
    elif g.flags:
        out["assumptions"].append("graded from a flagged count, as asked (--use-flagged-count)")
    return out


def build_case(opts: CaseOptions, tiles: Sequence[dict[str, Any]], count: dict[str, Any], *,
               provenance: dict[str, Any], evidence_source: dict[str, Any], warnings: Sequence[str] = (),
               review: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``case.json`` document: inputs, count, differential, next markers, grade, warnings, provenance."""
    diff, notes = differential(opts, count)
    leading = diff["differential"][0]
    grade_doc = grade(opts, leading["id"], count)
    all_warnings = list(warnings) + notes + list(diff.get("warnings") or [])
    if count["extrapolated"]:
        all_warnings.append(f"the count covers {count['n_hpf']:.2f} HPF ({count['area_mm2']:.3f} mm²), less than "
                            "10 HPF: per-10-HPF figures are extrapolations")
    for flag in count.get("flags") or []:
        all_warnings.append(f"detector flag on the count: {flag.replace('_', ' ')}")
    all_warnings.extend(count.get("flag_messages") or [])
    if provenance.get("model_card"):
        all_warnings.append(f"the figures were proposed by the model {provenance.get('model_name')} "
                            f"{provenance.get('model_version')} given with --model: confirm them with "
                            "`spindledx review`")
    else:
        all_warnings.append("the mitotic detector is a screening aid (cross-validated F1 about 0.58 on breast "
                            "carcinoma fields): confirm the figures with `spindledx review`")
    doc = {"format": "spindledx-case/1", "inputs": {**opts.to_json(), "evidence": evidence_source},
           "count": count, "tiles": list(tiles), "differential": diff["differential"],
           "next_markers": diff["next_markers"], "panel": diff.get("panel"), "site": diff.get("site"),
           "prior": diff.get("prior"), "morphology_used": diff.get("morphology_used"),
           "morphology_used_flagged": diff.get("morphology_used_flagged") or [], "grade": grade_doc,
           "warnings": all_warnings, "image_warnings": list(warnings), "provenance": provenance}
    if review is not None:
        doc["review"] = review
    return doc


def recompute_case(case_doc: dict[str, Any], count: dict[str, Any], *, review: dict[str, Any],
                   provenance: dict[str, Any]) -> dict[str, Any]:
    """The case re-derived from a reviewed count: differential, grade and warnings recomputed from the inputs."""
    inputs = dict(case_doc["inputs"])
    opts = CaseOptions(panel=inputs["panel"], site=inputs.get("site"), age=inputs.get("age"), sex=inputs.get("sex"),
                       necrosis=inputs.get("necrosis"), atypia=inputs.get("atypia"),
                       pattern=tuple(inputs.get("pattern") or ()), differentiation=inputs.get("differentiation"),
                       ignore_unknown=bool(inputs.get("ignore_unknown")),
                       hpf_area_mm2=float(inputs.get("hpf_area_mm2") or counting.DEFAULT_HPF_AREA_MM2))
    warnings = list(case_doc.get("image_warnings") or [])
    return build_case(opts, case_doc.get("tiles", []), count, provenance=provenance,
                      evidence_source=inputs.get("evidence", {}), warnings=warnings, review=review)
