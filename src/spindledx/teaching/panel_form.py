"""The panel form of the teaching site (``panel.html``): the IHC model exported as numbers, and the page body.

The page script (``assets/panel.js``) repeats the arithmetic of :func:`spindledx.ihc.interpret_panel` on the
numbers :func:`model_export` writes at build time: every likelihood and weight the posterior needs comes from the
Python model itself (:func:`spindledx.ihc.model.marker_table` per site, the morphology and clinical columns of
:mod:`spindledx.ihc.evidence`, the priors of :mod:`spindledx.ihc.priors`, the reporting table of
:mod:`spindledx.ihc.selection` and the calibrated constants), so the script only combines them: the context (prior
x age x sex, capped), the stain columns (neutral fill, focal/diffuse, lineage-group weights), the findings, the
markers-tested term, the tempered posterior with its doubt share, the open-world check, the likelihood ratios of
the explanation and the expected information gain of the next markers.  The quiz page computes its answers
with the same script (:func:`spindledx.teaching.site.pack_quiz`).  ``tests/test_teaching_panel_form.py`` runs
the script in a browser on every case of the built-in case sets and compares it with ``interpret_panel``.
"""

from __future__ import annotations

import math

import numpy as np

from spindledx.counting import DEFAULT_HPF_AREA_MM2
from spindledx.ihc import interpret as interp
from spindledx.ihc.evidence import (
    AGE_OUTLIER_SHARE,
    AGE_UNIFORM_DENSITY,
    age_sigma,
    binary_column,
    categorical_column,
    clinical_columns,
)
from spindledx.ihc.findings import Findings
from spindledx.ihc.knowledge import ATYPIA_LEVELS, MITOSIS_BANDS, PATTERNS, KnowledgeBase
from spindledx.ihc.model import DEFAULT_FOCAL_SHARE, MARKER_GROUPS, STAIN_ERROR, ModelConstants, marker_table
from spindledx.ihc.priors import CONTEXT_MAX_RATIO, build_prior
from spindledx.ihc.selection import NOT_SELECTION_EVIDENCE, reporting_table
from spindledx.ihc.vocabulary import DIFFUSE_CUTOFF_PERCENT, KI67_HIGH_CUTOFF_PERCENT, SITE_ALIASES
from spindledx.teaching.html import Frame, render_page

BASIS_CODES = ("no data", "entity", "site", "pair background", "background", "elicited", "elicited + data")
SITE_LABELS = {"gi_tract": "GI tract", "soft_tissue": "soft tissue", "pulmonary_artery": "pulmonary artery"}


def _num(x: float) -> float:
    """A float as it travels to the page: 10 significant digits (far below the 1e-3 the page is checked to)."""
    return float(f"{x:.10g}")


def _vector(values, known=None) -> list[float | None]:
    out = []
    for i, v in enumerate(values):
        if (known is not None and not known[i]) or v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        else:
            out.append(_num(float(v)))
    return out


def _site_table(kb: KnowledgeBase, site: str | None, constants: ModelConstants) -> dict:
    table = marker_table(kb, site, constants)
    n_e, n_m = table.p.shape
    basis = [[BASIS_CODES.index(table.cells[(i, j)].basis) for j in range(n_m)] for i in range(n_e)]
    return {"p": [_vector(row) for row in table.p], "focal": [[_num(x) for x in row] for row in table.focal],
            "basis": basis}


def _site_diff(generic: dict, other: dict) -> list[list]:
    """Cells of a site table that differ from the table without a site: [i, j, p, focal, basis]."""
    out = []
    for i, row in enumerate(other["p"]):
        for j, p in enumerate(row):
            if (p != generic["p"][i][j] or other["focal"][i][j] != generic["focal"][i][j]
                    or other["basis"][i][j] != generic["basis"][i][j]):
                out.append([i, j, p, other["focal"][i][j], other["basis"][i][j]])
    return out


def _known(column) -> list[bool]:
    return [c.basis != "no data" for c in column.cells]


def _morphology(kb: KnowledgeBase, constants: ModelConstants) -> dict:
    """Per entity the likelihood of each mitoses band / atypia level (None: no figure), and P(necrosis), P(pattern)
    as :func:`spindledx.ihc.evidence.binary_column` computes them (None: no figure)."""
    uniform = np.full(len(kb.entity_ids), 1.0 / len(kb.entity_ids))
    out: dict = {}
    for feature, levels in (("mitoses", MITOSIS_BANDS), ("atypia", ATYPIA_LEVELS)):
        columns = [categorical_column(kb, feature, levels, v, v, uniform, constants) for v in levels]
        known = _known(columns[0])
        out[feature] = [[_num(float(c.likelihood[i])) for c in columns] if known[i] else None
                        for i in range(len(kb.entity_ids))]
    for feature, value in (("necrosis", "yes"), *(("pattern", p) for p in PATTERNS)):
        col = binary_column(kb, feature, value, True, value, uniform, constants)
        out.setdefault("binary", {})[value if feature == "pattern" else "necrosis"] = _vector(col.likelihood,
                                                                                             _known(col))
    return out


def _clinical(kb: KnowledgeBase, constants: ModelConstants) -> dict:
    """Per entity the log-normal age fit [median, sigma] (None: not used) and P(female) (None: no figure)."""
    ages = []
    for e in kb.entity_ids:
        c = kb.clinical.get(e)
        fit = age_sigma(c) if c is not None and c.age_median else None
        ages.append(None if fit is None else [_num(c.age_median), _num(fit[0])])
    uniform = np.full(len(kb.entity_ids), 1.0 / len(kb.entity_ids))
    (sex,) = clinical_columns(kb, Findings(sex="F"), uniform, constants)
    return {"age": ages, "female": _vector(sex.likelihood, _known(sex)),
            "age_outlier_share": AGE_OUTLIER_SHARE, "age_uniform_density": AGE_UNIFORM_DENSITY}


def model_export(kb: KnowledgeBase, constants: ModelConstants, *, entity_links: dict[str, str],
                 marker_links: dict[str, str], fact_anchor, elicited_anchor, pair_anchor) -> dict:
    """Every number the page script needs to reproduce :func:`spindledx.ihc.interpret_panel` (module docstring).

    The ``*_links`` / ``*_anchor`` arguments give the site's page of each entity and marker and the anchors of the
    rows the likelihoods rest on (:class:`spindledx.teaching.pages.SiteLinks`).
    """
    generic = _site_table(kb, None, constants)
    sites = {}
    for site in kb.site_priors:
        sites[site] = _site_diff(generic, _site_table(kb, site, constants))
    with_facts = {f.marker for f in kb.facts.values()} | {m for (_, m) in kb.elicited}
    priors = {"": [_num(w) for w in build_prior(kb, None).weights]}
    for site in kb.site_priors:
        priors[site] = [_num(w) for w in build_prior(kb, site).weights]
    selection = None
    if (constants.selection_weight > 0 or constants.selection_absent_weight > 0) and kb.reporting:
        markers, q = reporting_table(kb)
        selection = {"markers": list(markers), "q": [[_num(x) for x in row] for row in q]}
    return {
        "entities": [{"id": e, "name": kb.entities[e].name, "href": entity_links[e],
                      "pitfalls": list(kb.entities[e].pitfalls)} for e in kb.entity_ids],
        "markers": [{"name": m.name, "kind": m.kind, "synonyms": list(m.synonyms), "href": marker_links[m.name],
                     "with_facts": m.name in with_facts, "fact": fact_anchor(m.name), "elicited": elicited_anchor(
                         m.name), "pair": pair_anchor(m.name)} for m in kb.markers.values()],
        "sites": [{"id": s, "label": SITE_LABELS.get(s, s), "aliases": list(SITE_ALIASES.get(s, ()))}
                  for s in kb.site_priors],
        "site_sex": dict(interp.SEX_SPECIFIC_SITES),
        "constants": {
            "evidence_weight": constants.evidence_weight, "temperature": constants.temperature,
            "doubt": constants.doubt, "context_weight": constants.context_weight,
            "selection_weight": constants.selection_weight,
            "selection_absent_weight": constants.selection_absent_weight, "source": constants.source,
            "stain_error": STAIN_ERROR, "default_focal_share": DEFAULT_FOCAL_SHARE,
            "context_max_ratio": CONTEXT_MAX_RATIO, "support_lr": interp.SUPPORT_LR,
            "fit_threshold": interp.FIT_THRESHOLD, "discordant_p": interp.DISCORDANT_P,
            "unresolved_top_p": interp.UNRESOLVED_TOP_P, "open_world_z": interp.OPEN_WORLD_Z,
            "open_world_share": interp.OPEN_WORLD_SHARE, "ki67_high_percent": KI67_HIGH_CUTOFF_PERCENT,
            "diffuse_percent": DIFFUSE_CUTOFF_PERCENT, "hpf_area_mm2": DEFAULT_HPF_AREA_MM2,
        },
        "groups": [list(members) for members in MARKER_GROUPS.values()],
        "non_discriminatory": list(interp.NON_DISCRIMINATORY),
        "not_selection_evidence": list(NOT_SELECTION_EVIDENCE),
        "basis_codes": list(BASIS_CODES),
        "table": generic,
        "site_tables": sites,
        "priors": priors,
        "clinical": _clinical(kb, constants),
        "morphology": _morphology(kb, constants),
        "patterns": list(PATTERNS),
        "atypia_levels": list(ATYPIA_LEVELS),
        "mitosis_bands": list(MITOSIS_BANDS),
        "selection": selection,
    }


def panel_page(kb: KnowledgeBase, *, frame: Frame | None = None) -> str:
    """``panel.html``: the form (filled and read by ``assets/panel.js``) and the result area."""
    return render_page("site/panel.html.j2", frame, sites=[(s, SITE_LABELS.get(s, s)) for s in kb.site_priors],
                       atypia=list(ATYPIA_LEVELS), patterns=[(p, p.replace("_", " ")) for p in PATTERNS])
