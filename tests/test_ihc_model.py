"""Knowledge base integrity and the Bayesian model: Beta weighting, no-data neutrality, floors, focal vs diffuse,
site variants, contradictory panels, next markers by expected information gain, the test-panel evaluation."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from spindledx.ihc import interpret_panel, load_knowledge_base
from spindledx.ihc.evaluate import evaluate_cases, load_cases
from spindledx.ihc.interpret import expected_information_gain
from spindledx.ihc.knowledge import Fact
from spindledx.ihc.model import MIN_ESTIMATE_COUNT, STAIN_ERROR, beta_parameters, marker_likelihood
from spindledx.ihc.priors import prior_weights

DESIGN_IDS = {
    "leiomyosarcoma", "leiomyoma", "gist", "solitary_fibrous_tumor", "schwannoma", "mpnst", "synovial_sarcoma",
    "sarcomatoid_carcinoma", "sarcomatoid_mesothelioma", "spindle_cell_melanoma",
    "inflammatory_myofibroblastic_tumor", "low_grade_myofibroblastic_sarcoma", "nodular_fasciitis", "dfsp",
    "kaposi_sarcoma", "angiosarcoma", "rhabdomyosarcoma", "pecoma", "undifferentiated_pleomorphic_sarcoma",
    "fibrosarcoma", "desmoid_fibromatosis", "dedifferentiated_liposarcoma", "follicular_dendritic_cell_sarcoma",
    "intimal_sarcoma",
}
REFERENCE_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "ihc_marker_frequencies.csv"


@pytest.fixture(scope="module")
def kb():
    return load_knowledge_base()


def test_all_design_entities_have_facts_with_sources(kb):
    assert set(kb.entity_ids) >= DESIGN_IDS
    for entity in DESIGN_IDS:
        facts = kb.facts_for_entity(entity)
        assert len(facts) >= 5, entity
        assert kb.entities[entity].pitfalls, entity
    for fact in kb.facts.values():
        assert fact.source and fact.evidence in ("series", "pooled", "review", "registry", "estimate")
        assert 0.0 <= fact.fraction_positive <= 1.0


def test_site_priors_cover_the_required_sites(kb):
    assert {"lung", "pleura", "uterus", "gi_tract", "retroperitoneum", "skin", "soft_tissue",
            "pulmonary_artery"} <= set(kb.sites)
    for site in kb.sites:
        w = prior_weights(kb, site)
        assert w.sum() == pytest.approx(1.0) and (w > 0).all()
        assert all(p.basis for p in kb.site_priors[site].values())


def test_every_reference_row_is_carried_over(kb):
    if not REFERENCE_CSV.is_file():
        pytest.skip("../shared/reference is absent")
    with REFERENCE_CSV.open(encoding="utf-8") as handle:
        reference = {row["marker"] for row in csv.DictReader(handle)}
    path = resources.files("spindledx.ihc").joinpath("data", "facts.csv")
    with path.open(encoding="utf-8") as handle:
        carried = {row["reported_as"] for row in csv.DictReader(handle)}
    assert reference <= carried
    assert len(kb.facts) >= 269


def test_beta_weighting_by_n_and_evidence():
    big = Fact("e", "m", 0.0, 300, "series", "s")
    small = Fact("e", "m", 0.0, 3, "series", "s")
    estimate = Fact("e", "m", 0.0, None, "estimate", "s")
    mean = [a / (a + b) for a, b in map(beta_parameters, (big, small, estimate))]
    assert mean[0] <= mean[2] < mean[1]  # n=300 (capped) is surest; an estimate weighs like 20-100 cases
    assert all(m > 0 for m in mean)
    # issue 10: a textbook "never" given as an estimate is not 7 % (it was with 8 pseudo-cases)
    assert mean[2] <= 0.5 / (MIN_ESTIMATE_COUNT + 1) < 0.03


def test_no_cell_is_silently_neutral(kb):
    """Every entity x marker cell has a figure (data or elicited), and every stain's evidence names its basis."""
    from spindledx.ihc.model import marker_table

    table = marker_table(kb, None)
    assert table.known.all()
    result = interpret_panel("SMA+ desmin+ STAT6- HHV8- MDM2 FISH- SS18 FISH-", kb=kb)
    for entry in result.differential:
        for ev in entry.evidence:
            if ev.kind == "stain":
                assert ev.basis in ("entity", "site", "elicited", "elicited + data") and ev.source, (entry.id, ev)


def test_elicited_weight_follows_the_elicitors_spread(kb):
    import dataclasses

    from spindledx.ihc.model import elicited_count

    fig = next(iter(kb.elicited.values()))
    agree = dataclasses.replace(fig, p_median=0.3, logit_sd=0.0)
    disagree = dataclasses.replace(fig, p_median=0.3, logit_sd=2.0)
    assert elicited_count(disagree) < elicited_count(agree)


def test_one_discordant_stain_never_zeroes_an_entity():
    clean = interpret_panel("CD117+ DOG1+ CD34+ desmin- S100-", site="gi_tract")
    discordant = interpret_panel("CD117+ DOG1+ CD34+ desmin- S100- SOX10+", site="gi_tract")
    gist = {r: next(e for e in r.differential if e.id == "gist") for r in (clean, discordant)}
    assert clean.differential[0].id == discordant.differential[0].id == "gist"
    sox10 = next(ev for ev in gist[discordant].evidence if ev.marker == "SOX10")
    assert sox10.likelihood < 0.1 and gist[discordant].fit < gist[clean].fit
    assert min(ev.likelihood for ev in gist[discordant].evidence if ev.kind == "stain") >= STAIN_ERROR * 0.5


def test_contradictory_panel_keeps_every_entity_and_warns():
    result = interpret_panel("STAT6+ HHV8+ myogenin+ SOX10+ CD21+ SS18-SSX+ MDM2 FISH+ HMB45+")
    probs = np.array([e.probability for e in result.differential])
    # the open world: no entity explains the panel, so part of the probability is set aside for "none of these"
    assert result.unexplained > 0 and result.best_typicality < -3
    assert probs.sum() + result.unexplained == pytest.approx(1.0) and (probs > 0).all()
    assert any("no entity in the knowledge base explains this panel" in w for w in result.warnings)
    assert result.to_json()["open_world"]["unexplained_probability"] == pytest.approx(result.unexplained)


def test_typical_panels_are_not_set_aside():
    for text, site in (("actin+ desmin+ CK-pan- CD34- CD117- S-100-", "lung"), ("CD117+ DOG1+ CD34+", "gi_tract"),
                       ("STAT6+ CD34+", "pleura")):
        result = interpret_panel(text, site=site)
        assert result.unexplained == 0 and result.best_typicality > -3
        assert sum(e.probability for e in result.differential) == pytest.approx(1.0)


def test_focal_keratin_favours_leiomyosarcoma_over_carcinoma_more_than_diffuse():
    def odds(text):
        p = {e.id: e.probability for e in interpret_panel(text).differential}
        return p["leiomyosarcoma"] / p["sarcomatoid_carcinoma"]
    base = "SMA+ desmin+ h-caldesmon+ "
    assert odds(base + "AE1/AE3:focal") > odds(base + "AE1/AE3:diffuse")


def test_site_variant_lowers_desmin_in_lung_leiomyosarcoma(kb):
    generic = marker_likelihood(kb, "leiomyosarcoma", "desmin", None)
    lung = marker_likelihood(kb, "leiomyosarcoma", "desmin", "lung")
    assert lung.basis == "site" and generic.basis == "entity"
    assert lung.p_positive < generic.p_positive


def test_reference_panel_explains_and_suggests_discriminators():
    result = interpret_panel("actin+ desmin+ CK-pan- CD34- CD117- S-100-", site="lung")
    top = result.differential[0]
    assert top.id == "leiomyosarcoma"
    effects = {ev.marker: ev.effect for ev in top.evidence}
    assert "supports" in (effects["SMA"], effects["desmin"]) and "against" not in (effects["SMA"], effects["desmin"])
    assert all(ev.source for ev in top.evidence if ev.kind == "stain")
    assert any("38%" in p for p in top.pitfalls)
    leading = [m.marker for m in result.next_markers[:4]]
    assert {"h-caldesmon", "myogenin", "MyoD1"} & set(leading)  # smooth vs skeletal muscle
    gains = [m.expected_information_gain for m in result.next_markers]
    assert gains == sorted(gains, reverse=True) and gains[0] > 0


def test_expected_information_gain_bounds():
    prior = np.array([0.5, 0.5])
    assert expected_information_gain(prior, np.array([0.3, 0.3])) == pytest.approx(0.0, abs=1e-12)
    assert expected_information_gain(prior, np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert 0 < expected_information_gain(prior, np.array([0.9, 0.2])) < 1


def test_test_cases_cover_every_entity_and_evaluate(kb):
    cases = load_cases()
    assert DESIGN_IDS <= {c.expected for c in cases} <= set(kb.entity_ids)
    ev = evaluate_cases(cases[:12])
    assert ev.n == 12 and 0 <= ev.top1 <= ev.top3 <= 1
    assert 0 <= ev.brier <= 2 and sum(b.n for b in ev.reliability) == 12


def test_holdout_cases_cover_every_entity_and_parse(kb):
    from spindledx.ihc import parse_panel
    cases = load_cases(case_set="holdout")
    assert DESIGN_IDS <= {c.expected for c in cases} <= set(kb.entity_ids)
    assert not {c.id for c in cases} & {c.id for c in load_cases()}
    for case in cases:
        assert parse_panel(case.panel).observations
    with pytest.raises(ValueError, match="unknown case set"):
        load_cases(case_set="bogus")
