"""The panel form of the teaching site (``panel.html``): the IHC model exported as numbers, and the page body.

The page script (``assets/panel.js``) repeats the arithmetic of :func:`spindledx.ihc.interpret_panel` on the
numbers :func:`model_export` writes at build time: every likelihood and weight the posterior needs comes from the
Python model itself (:func:`spindledx.ihc.model.marker_table` per site, the morphology and clinical columns of
:mod:`spindledx.ihc.evidence`, the priors of :mod:`spindledx.ihc.priors`, the reporting table of
:mod:`spindledx.ihc.selection` and the calibrated constants), so the script only combines them: the context (prior
x age x sex, capped), the stain columns (neutral fill, focal/diffuse, lineage-group weights), the findings, the
markers-tested term, the tempered posterior with its doubt share, the open-world check, the likelihood ratios of
the explanation and the expected information gain of the next markers.  ``tests/test_teaching_panel_form.py`` runs
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
from spindledx.teaching.html import esc

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


def panel_page(kb: KnowledgeBase) -> str:
    """Body of ``panel.html``: the form (filled and read by ``assets/panel.js``) and the result area."""
    sites = "".join(f"<option value='{esc(s)}'>{esc(SITE_LABELS.get(s, s))}</option>" for s in kb.site_priors)
    atypia = "".join(f"<option value='{esc(a)}'>{esc(a)}</option>" for a in ATYPIA_LEVELS)
    patterns = "".join(f"<label class='chk'><input type='checkbox' name='pattern' value='{esc(p)}'> "
                       f"{esc(p.replace('_', ' '))}</label>" for p in PATTERNS)
    return f"""<h1>Panel form</h1>
<p class="lead">Enter the stains of a spindle-cell tumour and what is known of the patient and the H&amp;E: the
ranked differential, the evidence for and against each entity and the markers worth adding next follow as you
type. It is the model of <code>spindledx panel</code>, computed in this page from the same numbers (no network).
A teaching aid, not a diagnosis.</p>
<form id="panel-form" class="panel-form" autocomplete="off" onsubmit="return false">
<fieldset><legend>Stains</legend>
<p><label for="panel-text">Type a panel</label>
<input id="panel-text" type="text" size="60" placeholder="desmin+ SMA:focal CD34- S-100-"
aria-describedby="panel-text-help"> <button type="button" id="panel-read">Read</button>
<span id="panel-text-help" class="muted">markers with +, -, :focal, :diffuse (or lost/retained, high/low)</span></p>
<p id="panel-text-msg" class="muted" role="status"></p>
<p class="picker"><label for="marker-search">Add a marker</label>
<input id="marker-search" type="search" placeholder="name or synonym, e.g. c-KIT" aria-autocomplete="list">
<ul id="marker-choices" hidden></ul></p>
<table class="data" id="panel-rows"><thead><tr><th>marker</th><th>result</th><th></th></tr></thead>
<tbody></tbody></table>
</fieldset>
<fieldset><legend>Patient and H&amp;E</legend>
<p class="grid">
<label>Site <select id="f-site"><option value="">not given (population)</option>{sites}</select></label>
<label>Age (years) <input id="f-age" type="number" min="0" max="120" step="1"></label>
<label>Sex <select id="f-sex"><option value="">not given</option><option value="F">female</option>
<option value="M">male</option></select></label>
<label>Mitoses <span><input id="f-mitoses" type="number" min="0" step="0.1"
title="fields of 0.2376 mm² (10x/22 eyepiece, 40x objective)"> <select id="f-mitoses-unit"
aria-label="mitoses counted per"><option value="10HPF">per 10 HPF</option><option value="50HPF">per 50 HPF</option>
<option value="mm2">per mm²</option></select></span></label>
<label>Tumour cell necrosis <select id="f-necrosis"><option value="">not given</option><option value="yes">yes
</option><option value="no">no</option></select></label>
<label>Atypia <select id="f-atypia"><option value="">not given</option>{atypia}</select></label>
</p>
<p class="patterns"><span>Pattern</span> {patterns}</p>
</fieldset>
</form>
<div id="panel-warnings" role="status"></div>
<h2>Differential</h2>
<p class="muted">Posterior probability over the entities of the knowledge base; click a row for the evidence.</p>
<div id="panel-result"><p class="muted">Add at least one marker.</p></div>
<h2>Next markers</h2>
<p class="muted">Untested markers ranked by the expected information gain (bits) of their result, with the chance of
a positive stain in the leading entities.</p>
<div id="panel-next"></div>
<h2>The same on the command line</h2>
<pre id="panel-command" class="cmd"></pre>
<p class="muted">High-power fields are taken as 0.2376 mm² (10x/22 eyepiece, 40x objective), as on the command
line. The report wording the command line also reads ("positive for SMA and desmin") is not read here: use the
compact form or the marker list.</p>
"""
