"""The IHC knowledge base: markers, entities, literature facts and site priors, loaded from package data.

Every number lives in ``spindledx/ihc/data/*.csv`` with its source and evidence level (DESIGN.md: "the knowledge
base is data with a citation on every number, not code"):

``markers.csv``
    canonical marker names, kind (``ihc``, ``loss``, ``proliferation``, ``molecular``), synonyms and an optional
    *background* fraction used for entities that have no data for the marker (e.g. nuclear STAT6 in the mimics
    of SFT, 0/580 SS18-SSX outside synovial sarcoma).
``entities.csv``
    the entity ids of DESIGN.md, display names, aliases, pitfalls and a one-line summary.
``facts.csv``
    one row per (entity, site variant, marker): fraction positive, number of cases, evidence level (series,
    pooled, review, estimate), share of positive cases that stain only focally (where the literature says so),
    a short note and the source.  Built from ``../shared/reference/ihc_marker_frequencies.csv`` (entity names
    mapped to ids, marker names to canonical ones, doubtful figures checked: see notes marked CHECKED).
``site_priors.csv``
    relative prior weights of entities per site, each with its basis (most are marked ESTIMATE).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

EVIDENCE_LEVELS = ("series", "pooled", "review", "estimate")
MARKER_KINDS = ("ihc", "loss", "proliferation", "molecular")


@dataclass(frozen=True)
class Fact:
    """One literature figure: the fraction of cases of ``entity`` positive for ``marker``.

    For loss-type markers (H3K27me3, INI1) "positive" means *loss*; for Ki-67 it means an index above 10 %;
    for molecular tests it means amplified / rearranged / mutated.
    """

    entity: str
    marker: str
    fraction_positive: float
    n_cases: int | None
    evidence: str
    source: str
    note: str = ""
    site: str = ""
    focal_share: float | None = None


@dataclass(frozen=True)
class Marker:
    """A canonical marker with its synonyms and an optional background fact for entities without data."""

    name: str
    kind: str
    synonyms: tuple[str, ...]
    note: str = ""
    background: Fact | None = None


@dataclass(frozen=True)
class Entity:
    """A diagnostic entity (snake_case id as in DESIGN.md)."""

    id: str
    name: str
    aliases: tuple[str, ...]
    pitfalls: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class SitePrior:
    """Relative prior weight of one entity at one site, with its basis."""

    site: str
    entity: str
    weight: float
    basis: str


@dataclass(frozen=True)
class KnowledgeBase:
    """Read-only view of the package data (see module docstring)."""

    markers: Mapping[str, Marker]
    entities: Mapping[str, Entity]
    facts: Mapping[tuple[str, str, str], Fact]  # (entity, marker, site) -> Fact; site "" is the generic row
    site_priors: Mapping[str, Mapping[str, SitePrior]]  # site -> entity (or "*") -> prior

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """Entity ids in knowledge-base order."""
        return tuple(self.entities)

    @property
    def sites(self) -> tuple[str, ...]:
        """Sites that have priors."""
        return tuple(self.site_priors)

    def facts_for_marker(self, marker: str) -> tuple[Fact, ...]:
        """All facts about ``marker`` (generic and site-specific rows)."""
        return tuple(f for f in self.facts.values() if f.marker == marker)

    def facts_for_entity(self, entity: str) -> tuple[Fact, ...]:
        """All facts about ``entity`` (generic and site-specific rows)."""
        return tuple(f for f in self.facts.values() if f.entity == entity)


def normalize_name(text: str) -> str:
    """Lookup key for marker/entity names: case-folded, Greek letters spelled out, separators removed.

    ``"CK-pan"`` -> ``"ckpan"``, ``"AE1/AE3"`` -> ``"ae1ae3"``, ``"α-SMA"`` -> ``"alphasma"``,
    ``"β-catenin"`` -> ``"betacatenin"``, ``"S-100"`` -> ``"s100"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    for greek, latin in (("α", "alpha"), ("β", "beta"), ("δ", "delta"), ("γ", "gamma")):
        text = text.replace(greek, latin)
    return re.sub(r"[\s\-_./\u2010-\u2015\u2212]+", "", text)


def _read_csv(name: str) -> list[dict[str, str]]:
    path = resources.files("spindledx.ihc").joinpath("data", name)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _opt_float(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _opt_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


def _check_fraction(value: float, where: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: fraction {value} outside [0, 1]")
    return value


@functools.lru_cache(maxsize=1)
def load_knowledge_base() -> KnowledgeBase:
    """Load and validate the package knowledge base (read once, immutable)."""
    markers: dict[str, Marker] = {}
    for row in _read_csv("markers.csv"):
        name = row["name"].strip()
        kind = row["kind"].strip()
        if kind not in MARKER_KINDS:
            raise ValueError(f"markers.csv: {name}: unknown kind {kind!r}")
        background = None
        bg = _opt_float(row["background_fraction"])
        if bg is not None:
            evidence = row["background_evidence"].strip()
            if evidence not in EVIDENCE_LEVELS:
                raise ValueError(f"markers.csv: {name}: unknown evidence {evidence!r}")
            background = Fact(entity="*", marker=name, fraction_positive=_check_fraction(bg, name),
                              n_cases=_opt_int(row["background_n"]), evidence=evidence,
                              source=row["background_source"].strip(), note="background for entities without data")
        synonyms = tuple(s.strip() for s in row["synonyms"].split("|") if s.strip())
        markers[name] = Marker(name=name, kind=kind, synonyms=synonyms, note=row["note"].strip(),
                               background=background)

    entities: dict[str, Entity] = {}
    for row in _read_csv("entities.csv"):
        entities[row["id"]] = Entity(
            id=row["id"], name=row["name"],
            aliases=tuple(a.strip() for a in row["aliases"].split("|") if a.strip()),
            pitfalls=tuple(p.strip() for p in row["pitfalls"].split("|") if p.strip()),
            summary=row["summary"].strip())

    facts: dict[tuple[str, str, str], Fact] = {}
    for i, row in enumerate(_read_csv("facts.csv"), start=2):
        where = f"facts.csv line {i}"
        entity, marker, site = row["entity"], row["marker"], row["site"].strip()
        if entity not in entities:
            raise ValueError(f"{where}: unknown entity {entity!r}")
        if marker not in markers:
            raise ValueError(f"{where}: unknown marker {marker!r}")
        if row["evidence"] not in EVIDENCE_LEVELS:
            raise ValueError(f"{where}: unknown evidence {row['evidence']!r}")
        key = (entity, marker, site)
        if key in facts:
            raise ValueError(f"{where}: duplicate fact {key}")
        focal = _opt_float(row["focal_share"])
        facts[key] = Fact(entity=entity, marker=marker, site=site,
                          fraction_positive=_check_fraction(float(row["fraction_positive"]), where),
                          n_cases=_opt_int(row["n_cases"]), evidence=row["evidence"], source=row["source"].strip(),
                          note=row["note"].strip(),
                          focal_share=None if focal is None else _check_fraction(focal, where))

    priors: dict[str, dict[str, SitePrior]] = {}
    for row in _read_csv("site_priors.csv"):
        site, entity = row["site"], row["entity"]
        if entity != "*" and entity not in entities:
            raise ValueError(f"site_priors.csv: unknown entity {entity!r}")
        weight = float(row["weight"])
        if weight <= 0:
            raise ValueError(f"site_priors.csv: {site}/{entity}: weight must be > 0")
        priors.setdefault(site, {})[entity] = SitePrior(site=site, entity=entity, weight=weight, basis=row["basis"])
    for site, table in priors.items():
        if "*" not in table:
            raise ValueError(f"site_priors.csv: site {site!r} has no '*' floor row")
    for (_, _, site) in facts:
        if site and site not in priors:
            raise ValueError(f"facts.csv: site variant {site!r} has no site priors")

    return KnowledgeBase(
        markers=MappingProxyType(markers),
        entities=MappingProxyType(entities),
        facts=MappingProxyType(facts),
        site_priors=MappingProxyType({s: MappingProxyType(t) for s, t in priors.items()}),
    )
