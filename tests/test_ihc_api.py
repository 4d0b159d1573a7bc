"""The library API other helpers rely on: interpret_panel / parse_panel / PanelResult.to_json."""

from __future__ import annotations

import json

import pytest

from spindledx.errors import BadInputError
from spindledx.ihc import interpret_panel, load_knowledge_base, parse_panel

REFERENCE = "actin+ desmin+ CK-pan- CD34- CD117- S-100-"


def test_reference_panel_lung_ranks_leiomyosarcoma_first():
    result = interpret_panel(REFERENCE, site="lung")
    assert result.differential[0].id == "leiomyosarcoma"
    probs = [e.probability for e in result.differential]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0)
    assert len(result.differential) == len(load_knowledge_base().entities)


def test_result_is_frozen_and_json_serialisable():
    result = interpret_panel(REFERENCE, site="lung")
    with pytest.raises(AttributeError):
        result.site = "uterus"  # type: ignore[misc]
    payload = json.loads(json.dumps(result.to_json()))
    assert set(payload) >= {"differential", "next_markers", "warnings"}
    first = payload["differential"][0]
    assert set(first) >= {"id", "name", "probability", "evidence"}
    assert {"marker", "expected_information_gain"} <= set(payload["next_markers"][0])


def test_parse_panel_raises_bad_input():
    with pytest.raises(BadInputError):
        parse_panel("")
    with pytest.raises(BadInputError, match="desmin"):
        parse_panel("desmine+")
    panel = parse_panel("desmine+ SMA+", ignore_unknown=True)
    assert panel.markers == ("SMA",)
    assert any("desmine" in w for w in panel.warnings)
