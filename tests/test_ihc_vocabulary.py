"""Marker synonyms and the panel result grammar (docs/architecture.md), unknown markers, empty and conflicting
panels."""

from __future__ import annotations

import pytest

from spindledx.errors import BadInputError
from spindledx.ihc import parse_panel, resolve_marker
from spindledx.ihc.vocabulary import resolve_site


@pytest.mark.parametrize(("name", "canonical"), [
    ("actin", "SMA"), ("α-SMA", "SMA"), ("alpha-SMA", "SMA"), ("SMA", "SMA"), ("HHF35", "MSA"),
    ("CK-pan", "pan-cytokeratin"), ("AE1/AE3", "pan-cytokeratin"), ("pan-CK", "pan-cytokeratin"),
    ("keratin", "pan-cytokeratin"), ("CAM5.2", "CAM5.2"), ("c-KIT", "CD117"), ("ANO1", "DOG1"),
    ("S-100", "S100"), ("MART-1", "Melan-A"), ("LANA", "HHV8"), ("podoplanin", "D2-40"), ("MIB-1", "Ki-67"),
    ("h-caldesmon", "h-caldesmon"), ("β-catenin", "beta-catenin"), ("SMMHC", "smooth muscle myosin"),
    ("DESMIN", "desmin"), ("cd34", "CD34"), ("ss18-ssx", "SS18-SSX"),
])
def test_synonyms_resolve_case_insensitively(name, canonical):
    assert resolve_marker(name) == canonical


def test_cam52_is_not_pan_cytokeratin():
    assert resolve_marker("CAM5.2") != resolve_marker("AE1/AE3")


def events(text, **kw):
    return {o.marker: o.event for o in parse_panel(text, **kw).observations}


def test_reference_panel_with_hyphenated_names():
    assert events("actin+ desmin+ CK-pan- CD34- CD117- S-100-") == {
        "SMA": "pos", "desmin": "pos", "pan-cytokeratin": "neg", "CD34": "neg", "CD117": "neg", "S100": "neg"}


@pytest.mark.parametrize("text", [
    "SMA+,desmin-;CD34+", "SMA+ , desmin− ; CD34:pos", "sma:positive desmin:negative cd34:+",
    "SMA:+ desmin:- CD34:positive",
])
def test_separators_and_signs(text):
    assert events(text) == {"SMA": "pos", "desmin": "neg", "CD34": "pos"}


@pytest.mark.parametrize(("token", "event"), [
    ("AE1/AE3:focal", "focal"), ("AE1/AE3:focal+", "focal"), ("AE1/AE3:patchy", "focal"),
    ("AE1/AE3:weak", "focal"), ("AE1/AE3:diffuse", "diffuse"), ("AE1/AE3:strong", "diffuse"),
    ("AE1/AE3:0%", "neg"), ("AE1/AE3:20%", "focal"), ("AE1/AE3:80%", "diffuse"), ("AE1/AE3-", "neg"),
    ("AE1/AE3:low", "focal"), ("AE1/AE3:high", "diffuse"),
])
def test_extent_results(token, event):
    assert events(token) == {"pan-cytokeratin": event}


@pytest.mark.parametrize(("token", "event"), [
    ("H3K27me3:lost", "pos"), ("H3K27me3:retained", "neg"), ("H3K27me3-", "pos"), ("H3K27me3+", "neg"),
    ("INI1:lost", "pos"), ("INI1:retained", "neg"),
    ("Ki-67:25%", "pos"), ("MIB-1:5%", "neg"), ("Ki67:high", "pos"), ("Ki-67:low", "neg"),
])
def test_loss_and_proliferation_markers(token, event):
    assert list(events(token).values()) == [event]


def test_multi_word_marker_names():
    assert events("smooth muscle myosin+ factor VIII- nuclear beta-catenin:patchy MDM2 FISH+") == {
        "smooth muscle myosin": "pos", "factor VIII": "neg", "beta-catenin": "focal", "MDM2 FISH": "pos"}


def test_unknown_marker_names_close_matches():
    with pytest.raises(BadInputError, match=r"unknown marker 'desmine'.*desmin"):
        parse_panel("desmine+ CD34-")
    with pytest.raises(BadInputError, match="h-caldesmon"):
        parse_panel("h-caldesmn+")


def test_ignore_unknown_skips_with_warning():
    panel = parse_panel("foo+ desmine+ CD34-", ignore_unknown=True)
    assert panel.markers == ("CD34",)
    assert sum("skipped unknown marker" in w for w in panel.warnings) == 2


@pytest.mark.parametrize("text", ["", "   ", " , ; "])
def test_empty_panel(text):
    with pytest.raises(BadInputError, match="empty panel"):
        parse_panel(text)


def test_only_unknown_markers_is_empty_after_skipping():
    with pytest.raises(BadInputError, match="no known marker"):
        parse_panel("foo+ bar-", ignore_unknown=True)


@pytest.mark.parametrize(("text", "message"), [
    ("desmin", "has no result"), ("desmin:maybe", "unknown result"), ("desmin:150%", "above 100"),
    ("H3K27me3:focal", "lost or retained"), ("Ki-67:focal", "high/low"), ("MDM2 FISH:focal", "molecular"),
])
def test_malformed_tokens(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_panel(text)


def test_conflicting_duplicates_through_synonyms_are_an_error():
    with pytest.raises(BadInputError, match="conflicting results for SMA"):
        parse_panel("actin+ SMA- desmin+")


def test_consistent_duplicates_are_counted_once():
    panel = parse_panel("actin+ SMA+ desmin+")
    assert panel.markers == ("SMA", "desmin")
    assert any("given twice" in w for w in panel.warnings)


def test_marker_without_any_figure_warns():
    import dataclasses

    from spindledx.ihc import load_knowledge_base

    kb = dataclasses.replace(load_knowledge_base(), elicited={}, cache={})  # a knowledge base without elicitation
    panel = parse_panel("INI1:retained desmin+", kb=kb)
    assert any("no figure for INI1" in w for w in panel.warnings)
    assert not any("INI1" in w for w in parse_panel("INI1:retained desmin+").warnings)


def test_sites():
    assert resolve_site("Lung") == "lung"
    assert resolve_site("GI tract") == "gi_tract"
    assert resolve_site("skin/subcutis") == "skin"
    assert resolve_site("pulmonary artery") == "pulmonary_artery"
    assert resolve_site(None) is None
    with pytest.raises(BadInputError, match="unknown site"):
        resolve_site("moon")
