"""Report wording as panel input: results after the marker, bracketed signs, list sentences, molecular words."""

from __future__ import annotations

import pytest

from spindledx.errors import BadInputError
from spindledx.ihc import parse_panel


def read(text, **kw):
    return {o.marker: o.event for o in parse_panel(text, **kw).observations}


def test_the_sentence_a_report_writes_is_read_in_full():
    panel = parse_panel("positive for SMA and desmin, negative for S100, CD34 and CD117; Ki67 20%; "
                        "MDM2 not amplified")
    assert {o.marker: o.event for o in panel.observations} == {
        "SMA": "pos", "desmin": "pos", "S100": "neg", "CD34": "neg", "CD117": "neg", "Ki-67": "pos",
        "MDM2 FISH": "neg"}
    assert not panel.warnings and not panel.ignored


@pytest.mark.parametrize(("text", "expected"), [
    ("CD34 focal", {"CD34": "focal"}), ("S100 positive", {"S100": "pos"}), ("Ki67 20%", {"Ki-67": "pos"}),
    ("Ki-67 index 5%", {"Ki-67": "neg"}), ("MDM2 amplified", {"MDM2 FISH": "pos"}),
    ("SS18 FISH negative", {"SS18 FISH": "neg"}), ("CD117 (+)", {"CD117": "pos"}), ("CD117(+)", {"CD117": "pos"}),
    ("CKAE1/AE3-", {"pan-cytokeratin": "neg"}), ("INI1 retained", {"INI1": "neg"}),
    ("H3K27me3 lost", {"H3K27me3": "pos"}), ("STAT6 fusion detected", {"NAB2-STAT6": "pos"}),
    ("ALK rearranged", {"ALK FISH": "pos"}), ("CTNNB1 mutated", {"CTNNB1 mutation": "pos"}),
    ("NAB2-STAT6 RT-PCR+", {"NAB2-STAT6": "pos"}), ("SS18-FISH-", {"SS18 FISH": "neg"}),
    ("MDM2 FISH: amplified", {"MDM2 FISH": "pos"}), ("desmin (focal)", {"desmin": "focal"}),
])
def test_report_forms(text, expected):
    assert read(text) == expected


def test_list_with_extent_words_and_colon_headings():
    assert read("focally positive for CD34 and diffusely positive for SMA") == {"CD34": "focal", "SMA": "diffuse"}
    assert read("Positive: SMA, desmin. Negative: S100, CD34") == {
        "SMA": "pos", "desmin": "pos", "S100": "neg", "CD34": "neg"}


def test_a_result_after_the_marker_beats_the_list_polarity():
    assert read("positive for SMA, desmin negative, CD34") == {"SMA": "pos", "desmin": "neg", "CD34": "pos"}


def test_unread_words_are_named_and_listed_as_ignored():
    with pytest.raises(BadInputError, match="unread word 'wibble'"):
        parse_panel("desmin+ wibble")
    panel = parse_panel("desmin+ wibble bFGF+", ignore_unknown=True)
    assert panel.markers == ("desmin",)
    assert panel.ignored == ("wibble", "bFGF+")
    assert any("wibble" in w for w in panel.warnings) and any("bFGF" in w for w in panel.warnings)


def test_molecular_word_on_a_gene_without_that_test_is_an_error():
    with pytest.raises(BadInputError, match="no amplified test of desmin"):
        parse_panel("desmin amplified")


def test_a_stain_not_done_is_named_and_not_counted():
    panel = parse_panel("CD34+ HHV8 not done; SS18 FISH pending")
    assert panel.markers == ("CD34",)
    assert any("HHV8: not done" in w for w in panel.warnings)
    assert any("SS18 FISH: not done" in w for w in panel.warnings)
