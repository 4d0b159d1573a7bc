"""A versus B (`spindledx.teaching.compare`): ranking by J divergence from the interpreter's likelihoods."""

from __future__ import annotations

import math

import pytest

from spindledx.errors import BadInputError
from spindledx.ihc import load_knowledge_base
from spindledx.ihc.model import marker_likelihood
from spindledx.teaching.compare import TEACHING_PAIRS, compare_entities, j_divergence_bits, teaching_pairs


def test_j_divergence_is_the_sum_of_both_kl_divergences():
    p, q = 0.9, 0.2
    kl_pq = p * math.log2(p / q) + (1 - p) * math.log2((1 - p) / (1 - q))
    kl_qp = q * math.log2(q / p) + (1 - q) * math.log2((1 - q) / (1 - p))
    assert j_divergence_bits(p, q) == pytest.approx(kl_pq + kl_qp)
    assert j_divergence_bits(q, p) == pytest.approx(j_divergence_bits(p, q))
    assert j_divergence_bits(0.3, 0.3) == 0.0


def test_lms_versus_gist_puts_kit_dog1_and_desmin_on_top():
    cmp = compare_entities("leiomyosarcoma", "gist")
    top = [m.marker for m in cmp.markers[:6]]
    assert {"DOG1", "CD117", "desmin"} <= set(top)
    by_name = {m.marker: m for m in cmp.markers}
    assert by_name["DOG1"].favours_if_positive == "b" and by_name["DOG1"].lr_positive < 0.1
    assert by_name["CD117"].favours_if_positive == "b" and by_name["CD117"].lr_negative > 5
    assert by_name["desmin"].favours_if_positive == "a" and by_name["desmin"].lr_positive > 3
    js = [m.j_divergence_bits for m in cmp.markers]
    assert js == sorted(js, reverse=True)
    for m in cmp.markers[:5]:
        assert m.a.source and m.b.source  # every ranked figure carries its source


def test_ratios_are_the_interpreters_own_likelihoods():
    kb = load_knowledge_base()
    cmp = compare_entities("SFT", "synovial sarcoma", kb=kb)
    assert (cmp.a, cmp.b) == ("solitary_fibrous_tumor", "synovial_sarcoma")
    for m in cmp.markers:
        p_a = marker_likelihood(kb, cmp.a, m.marker).likelihood("pos")
        p_b = marker_likelihood(kb, cmp.b, m.marker).likelihood("pos")
        assert m.lr_positive == pytest.approx(p_a / p_b)
        assert m.lr_negative == pytest.approx((1 - p_a) / (1 - p_b))
        assert m.a.basis != "no data" and m.b.basis != "no data"
    assert cmp.markers[0].marker == "STAT6" or "STAT6" in [m.marker for m in cmp.markers[:3]]


def test_markers_without_data_for_one_side_are_listed_not_ranked():
    cmp = compare_entities("leiomyosarcoma", "gist")
    ranked = {m.marker for m in cmp.markers}
    for marker, missing in cmp.no_data:
        assert marker not in ranked
        assert missing in (("gist",), ("leiomyosarcoma",))


def test_site_rows_are_used_with_site():
    generic = {m.marker: m for m in compare_entities("leiomyosarcoma", "sarcomatoid carcinoma").markers}
    lung = {m.marker: m for m in compare_entities("leiomyosarcoma", "sarcomatoid carcinoma", site="lung").markers}
    assert lung["desmin"].a.basis == "site"
    assert lung["desmin"].a.p_positive < generic["desmin"].a.p_positive  # lung LMS: desmin 5/16


def test_bad_entities_are_bad_input():
    with pytest.raises(BadInputError, match="did you mean"):
        compare_entities("leiomyosarcomma", "gist")
    with pytest.raises(BadInputError, match="same entity"):
        compare_entities("LMS", "leiomyosarcoma")
    with pytest.raises(BadInputError, match="unknown site"):
        compare_entities("LMS", "GIST", site="moon")


def test_teaching_pairs_are_all_in_the_knowledge_base():
    assert teaching_pairs() == TEACHING_PAIRS
    json_out = compare_entities("sarcomatoid_carcinoma", "sarcomatoid_mesothelioma").to_json(top=3)
    assert len(json_out["markers"]) == 3 and json_out["a"]["id"] == "sarcomatoid_carcinoma"


def test_morphology_criteria_come_from_the_interpreters_evidence_columns():
    import numpy as np

    from spindledx.ihc.evidence import binary_column
    from spindledx.ihc.model import default_constants

    kb = load_knowledge_base()
    cmp = compare_entities("leiomyosarcoma", "leiomyoma", kb=kb)
    rows = {(r.feature, r.value): r for r in cmp.morphology}
    if ("necrosis", "yes") not in rows:
        pytest.skip("no necrosis figures for LMS and leiomyoma in this knowledge base")
    assert rows[("necrosis", "yes")].likelihood_ratio > 2  # tumour cell necrosis favours LMS (Stanford criteria)
    assert rows[("mitoses", "0-4")].likelihood_ratio < 0.5
    prior = np.full(len(kb.entity_ids), 1.0 / len(kb.entity_ids))
    col = binary_column(kb, "necrosis", "yes", True, "yes", prior, default_constants())
    i_a, i_b = kb.entity_ids.index("leiomyosarcoma"), kb.entity_ids.index("leiomyoma")
    assert rows[("necrosis", "yes")].likelihood_ratio == pytest.approx(col.likelihood[i_a] / col.likelihood[i_b])
    features = dict(cmp.morphology_j_bits)
    assert features["necrosis"] > 0 and rows[("necrosis", "yes")].a.source
    payload = cmp.to_json()
    assert {f["feature"] for f in payload["morphology"]["features"]} >= {"necrosis"}


def test_caveats_flag_background_figures_and_equal_figures():
    from spindledx.teaching.compare import SideEvidence, caveats_for

    def side(basis, f):
        return SideEvidence(basis=basis, p_positive=0.5, fraction_positive=f, n_cases=None, evidence="series",
                            source="s", note="")

    both = caveats_for(side("background", 0.0), side("entity", 0.02), "A", "B")
    assert len(both) == 2 and both[0].startswith("A: no series") and "numbers of cases" in both[1]
    assert caveats_for(side("entity", 0.9), side("entity", 0.1), "A", "B") == ()
    cmp = compare_entities("leiomyosarcoma", "gist")
    assert all(m.caveats == () for m in cmp.markers[:3])  # DOG1, CD117, desmin rest on series of both
