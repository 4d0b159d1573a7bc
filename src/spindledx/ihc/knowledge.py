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
    relative prior weights of entities per site, each with its basis and (issue 10) ``evidence`` and ``source``.
``entity_marker_background.csv`` (optional)
    a sourced figure for one entity x marker pair stated as *specificity* data rather than a series of that
    entity ("0 of 30 LMS were STAT6+"); used before the marker's general background.
``population_priors.csv`` (optional)
    relative frequency of each entity among adult spindle-cell tumours (registries, consultation series).
``clinical.csv`` (optional)
    age median / quartiles / range and female fraction per entity.
``morphology.csv`` (optional)
    P(feature value | entity) for mitoses bands, tumour cell necrosis, atypia and described patterns.

The optional files may be absent or partial (they are filled in parallel): a missing file is an empty table and
the interpreter says so in its explanation (neutral, with the reason).  The column contract of all files is
``IHC_SCHEMA.md`` (issue 10).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

EVIDENCE_LEVELS = ("series", "pooled", "review", "registry", "estimate", "elicited")
MORPHOLOGY_FEATURES = ("mitoses", "necrosis", "atypia", "pattern")
MITOSIS_BANDS = ("0-4", "5-9", "10-19", ">=20")  # per 10 HPF of 0.2376 mm^2 (IHC_SCHEMA.md)
ATYPIA_LEVELS = ("none", "mild", "moderate", "marked")
PATTERNS = ("fascicular", "storiform", "herringbone", "palisading", "staghorn_vessels", "biphasic", "myxoid",
            "epithelioid", "pleomorphic", "whorled", "plexiform", "collagenous", "inflammatory")
FEATURE_VALUES = {"mitoses": MITOSIS_BANDS, "necrosis": ("yes",), "atypia": ATYPIA_LEVELS, "pattern": PATTERNS}
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
    no_background_reason: str = ""


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
    evidence: str = ""
    source: str = ""


@dataclass(frozen=True)
class PopulationPrior:
    """Relative frequency of one entity among adult spindle-cell tumours (population_priors.csv)."""

    entity: str
    relative_frequency: float
    n_cases: int | None
    evidence: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class Clinical:
    """Age distribution (years) and female fraction of one entity (clinical.csv); None = unknown."""

    entity: str
    age_median: float | None
    age_q1: float | None
    age_q3: float | None
    age_min: float | None
    age_max: float | None
    female_fraction: float | None
    n_cases: int | None
    evidence: str
    source: str
    note: str = ""
    age_n_cases: int | None = None  # cases behind the age figures when they come from another series than n_cases


@dataclass(frozen=True)
class ElicitedFigure:
    """P(marker positive | entity) from the structured expert elicitation (elicited.csv).

    ``p_median`` and ``focal_median`` are the medians of the elicitors' final-round answers; ``p_min`` / ``p_max``
    their range and ``logit_sd`` their standard deviation on the logit scale, which sets the weight of the figure
    (:func:`spindledx.ihc.model.elicited_count`).  ``rationale`` is the median elicitor's one-line reason and
    ``reference`` the chapters or texts the elicitors relied on.
    """

    entity: str
    marker: str
    p_median: float
    p_min: float
    p_max: float
    logit_sd: float
    focal_median: float
    n_elicitors: int
    rounds: int
    rationale: str
    reference: str


@dataclass(frozen=True)
class ReportingFigure:
    """P(a published work-up of ``entity`` states a result for ``marker``), from the structured elicitation
    (reporting.csv: median and range of the elicitors, who each listed the markers reported with P >= 0.25)."""

    entity: str
    marker: str
    p_median: float
    p_min: float
    p_max: float
    n_elicitors: int
    rationale: str


@dataclass(frozen=True)
class MorphologyFact:
    """P(feature = value | entity) from morphology.csv."""

    entity: str
    feature: str
    value: str
    probability: float
    n_cases: int | None
    evidence: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class KnowledgeBase:
    """Read-only view of the package data (see module docstring)."""

    markers: Mapping[str, Marker]
    entities: Mapping[str, Entity]
    facts: Mapping[tuple[str, str, str], Fact]  # (entity, marker, site) -> Fact; site "" is the generic row
    site_priors: Mapping[str, Mapping[str, SitePrior]]  # site -> entity (or "*") -> prior
    pair_background: Mapping[tuple[str, str], Fact] = field(default_factory=dict)  # (entity, marker) -> fact
    population_priors: Mapping[str, PopulationPrior] = field(default_factory=dict)
    clinical: Mapping[str, Clinical] = field(default_factory=dict)
    morphology: Mapping[tuple[str, str, str], MorphologyFact] = field(default_factory=dict)  # (entity, feat, val)
    elicited: Mapping[tuple[str, str], ElicitedFigure] = field(default_factory=dict)  # (entity, marker) -> figure
    reporting: Mapping[tuple[str, str], ReportingFigure] = field(default_factory=dict)  # (entity, marker) -> figure
    missing_files: tuple[str, ...] = ()
    skipped_rows: tuple[str, ...] = ()
    cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)  # derived tables only

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


def _read_csv(name: str, *, optional: bool = False, skipped: list[str] | None = None) -> list[dict[str, str]] | None:
    """Rows of a package-data CSV (cells stripped); None for an absent ``optional`` file.

    A row with more cells than columns is an error, except in an optional file where it is skipped and described
    in ``skipped`` (the optional files are filled in parallel; ``spindledx kb coverage`` lists skipped rows).
    """
    path = resources.files("spindledx.ihc").joinpath("data", name)
    if optional and not path.is_file():
        return None
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if None in row:
                if optional and skipped is not None:
                    skipped.append(f"{name} line {reader.line_num}: more cells than columns: row skipped")
                    continue
                raise ValueError(f"{name} line {reader.line_num}: more cells than columns (quote cells with commas)")
            rows.append({k.strip(): (v or "").strip() for k, v in row.items()})
    return rows


def _evidence(text: str, where: str) -> str:
    if text not in EVIDENCE_LEVELS:
        raise ValueError(f"{where}: unknown evidence {text!r} (one of {', '.join(EVIDENCE_LEVELS)})")
    return text


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


def _get(row: dict[str, str], key: str) -> str:
    return row.get(key, "") or ""


def _add_elicited_context(entities, priors, population, clinical, morphology) -> None:
    """Fill prior, clinical and morphology figures from ``elicited_context.csv`` (the structured elicitation for
    entities that no series describes in these terms); a figure from the literature is never replaced."""
    rows = _read_csv("elicited_context.csv", optional=True) or []
    by_entity: dict[str, dict[str, dict[str, str]]] = {}
    for i, row in enumerate(rows, start=2):
        if row["entity"] not in entities:
            raise ValueError(f"elicited_context.csv line {i}: unknown entity {row['entity']!r}")
        by_entity.setdefault(row["entity"], {})[row["item"]] = row
    for entity, items in by_entity.items():
        def value(item: str, items=items) -> float:
            return float(items[item]["value_median"])

        def source(item: str, items=items) -> str:
            return items[item]["reference"]

        def note(item: str, items=items) -> str:
            r = items[item]
            return (f"elicited: median {r['value_median']} (range {r['value_min']}-{r['value_max']}, "
                    f"{r['n_elicitors']} elicitors): {r['rationale']}")

        if entity not in population and "population_relative_frequency" in items:
            population[entity] = PopulationPrior(entity, value("population_relative_frequency"), None, "elicited",
                                                 source("population_relative_frequency"),
                                                 note("population_relative_frequency"))
        for site, table in priors.items():
            item = f"site_weight:{site}"
            if item in items and entity not in table and value(item) > table["*"].weight:
                table[entity] = SitePrior(site, entity, value(item), note(item), "elicited", source(item))
        if entity not in clinical and "age_median" in items:
            ages = [value(k) for k in ("age_median", "age_q1", "age_q3", "age_min", "age_max")]
            clinical[entity] = Clinical(entity, *ages, female_fraction=value("female_fraction"), n_cases=None,
                                        evidence="elicited", source=source("age_median"),
                                        note=f"{note('age_median')}; female fraction {note('female_fraction')}")
        for feature, values in FEATURE_VALUES.items():
            present = [v for v in values if f"{feature}:{v}" in items]
            if not present or any((entity, feature, v) in morphology for v in values):
                continue
            probs = {v: value(f"{feature}:{v}") for v in present}
            if feature in ("mitoses", "atypia"):  # exclusive levels: the medians renormalised to sum to 1
                total = sum(probs.values()) or 1.0
                probs = {v: p / total for v, p in probs.items()}
            for v, p in probs.items():
                morphology[(entity, feature, v)] = MorphologyFact(entity, feature, v, min(max(p, 0.0), 1.0), None,
                                                                  "elicited", source(f"{feature}:{v}"),
                                                                  note(f"{feature}:{v}"))


@functools.lru_cache(maxsize=1)
def load_knowledge_base() -> KnowledgeBase:
    """Load and validate the package knowledge base (read once, immutable)."""
    return build_knowledge_base()


def build_knowledge_base() -> KnowledgeBase:
    """Read and validate every data file (uncached; :func:`load_knowledge_base` caches it)."""
    missing: list[str] = []
    skipped: list[str] = []  # rows of the optional files naming an entity/marker not (yet) in the knowledge base
    markers: dict[str, Marker] = {}
    for row in _read_csv("markers.csv"):
        name = row["name"]
        kind = row["kind"]
        if kind not in MARKER_KINDS:
            raise ValueError(f"markers.csv: {name}: unknown kind {kind!r}")
        background = None
        bg = _opt_float(_get(row, "background_fraction"))
        if bg is not None:
            evidence = _evidence(row["background_evidence"], f"markers.csv: {name}")
            background = Fact(entity="*", marker=name, fraction_positive=_check_fraction(bg, name),
                              n_cases=_opt_int(row["background_n"]), evidence=evidence,
                              source=row["background_source"], note="background: fraction of other spindle-cell "
                              "tumours (mimics) positive")
        synonyms = tuple(s.strip() for s in row["synonyms"].split("|") if s.strip())
        markers[name] = Marker(name=name, kind=kind, synonyms=synonyms, note=_get(row, "note"),
                               background=background, no_background_reason=_get(row, "no_background_reason"))

    entities: dict[str, Entity] = {}
    for row in _read_csv("entities.csv"):
        entities[row["id"]] = Entity(
            id=row["id"], name=row["name"],
            aliases=tuple(a.strip() for a in row["aliases"].split("|") if a.strip()),
            pitfalls=tuple(p.strip() for p in row["pitfalls"].split("|") if p.strip()),
            summary=row["summary"])

    facts: dict[tuple[str, str, str], Fact] = {}
    for i, row in enumerate(_read_csv("facts.csv"), start=2):
        where = f"facts.csv line {i}"
        entity, marker, site = row["entity"], row["marker"], row["site"]
        if entity not in entities:
            raise ValueError(f"{where}: unknown entity {entity!r}")
        if marker not in markers:
            raise ValueError(f"{where}: unknown marker {marker!r}")
        key = (entity, marker, site)
        if key in facts:
            raise ValueError(f"{where}: duplicate fact {key}")
        focal = _opt_float(row["focal_share"])
        facts[key] = Fact(entity=entity, marker=marker, site=site,
                          fraction_positive=_check_fraction(float(row["fraction_positive"]), where),
                          n_cases=_opt_int(row["n_cases"]), evidence=_evidence(row["evidence"], where),
                          source=row["source"], note=row["note"],
                          focal_share=None if focal is None else _check_fraction(focal, where))

    priors: dict[str, dict[str, SitePrior]] = {}
    for row in _read_csv("site_priors.csv"):
        site, entity = row["site"], row["entity"]
        if entity != "*" and entity not in entities:
            raise ValueError(f"site_priors.csv: unknown entity {entity!r}")
        weight = float(row["weight"])
        if weight <= 0:
            raise ValueError(f"site_priors.csv: {site}/{entity}: weight must be > 0")
        evidence = _get(row, "evidence")
        if evidence:
            _evidence(evidence, f"site_priors.csv: {site}/{entity}")
        priors.setdefault(site, {})[entity] = SitePrior(site=site, entity=entity, weight=weight, basis=row["basis"],
                                                        evidence=evidence, source=_get(row, "source"))
    for site, table in priors.items():
        if "*" not in table:
            raise ValueError(f"site_priors.csv: site {site!r} has no '*' floor row")
    for (_, _, site) in facts:
        if site and site not in priors:
            raise ValueError(f"facts.csv: site variant {site!r} has no site priors")

    def optional_rows(name: str):
        """(where, row) of an optional file; a row that fails validation is skipped and described."""
        rows = _read_csv(name, optional=True, skipped=skipped)
        if rows is None:
            missing.append(name)
        return [(f"{name} data row {i}", row) for i, row in enumerate(rows or [], start=1)]

    def tolerant(where: str, build) -> None:
        try:
            build()
        except (ValueError, KeyError) as exc:
            msg = str(exc)
            skipped.append(f"{msg if msg.startswith(where) else f'{where}: {msg}'}: row skipped")

    pair_background: dict[tuple[str, str], Fact] = {}
    for where, row in optional_rows("entity_marker_background.csv"):
        def pair(where=where, row=row):
            entity, marker = row["entity"], row["marker"]
            if entity not in entities or marker not in markers:
                raise ValueError(f"unknown entity {entity!r} or marker {marker!r}")
            pair_background[(entity, marker)] = Fact(
                entity=entity, marker=marker,
                fraction_positive=_check_fraction(float(row["fraction_positive"]), where),
                n_cases=_opt_int(row["n_cases"]), evidence=_evidence(row["evidence"], where), source=row["source"],
                note=_get(row, "note") or "specificity figure for this entity")
        tolerant(where, pair)

    population: dict[str, PopulationPrior] = {}
    for where, row in optional_rows("population_priors.csv"):
        def pop(where=where, row=row):
            if row["entity"] not in entities:
                raise ValueError(f"unknown entity {row['entity']!r}")
            freq = float(row["relative_frequency"])
            if not freq > 0:
                raise ValueError("relative_frequency must be > 0")
            population[row["entity"]] = PopulationPrior(
                entity=row["entity"], relative_frequency=freq, n_cases=_opt_int(row["n_cases"]),
                evidence=_evidence(row["evidence"], where), source=row["source"], note=_get(row, "note"))
        tolerant(where, pop)

    clinical: dict[str, Clinical] = {}
    for where, row in optional_rows("clinical.csv"):
        def clin(where=where, row=row):
            if row["entity"] not in entities:
                raise ValueError(f"unknown entity {row['entity']!r}")
            ages = [_opt_float(_get(row, k)) for k in ("age_median", "age_q1", "age_q3", "age_min", "age_max")]
            if any(a is not None and not 0 <= a <= 120 for a in ages):
                raise ValueError("age outside 0-120")
            female = _opt_float(_get(row, "female_fraction"))
            if female is None and all(a is None for a in ages):
                return  # a placeholder row: everything unknown
            clinical[row["entity"]] = Clinical(
                row["entity"], *ages, female_fraction=None if female is None else _check_fraction(female, where),
                n_cases=_opt_int(row["n_cases"]), evidence=_evidence(row["evidence"], where), source=row["source"],
                note=_get(row, "note"), age_n_cases=_opt_int(row.get("age_n_cases") or ""))
        tolerant(where, clin)

    morphology: dict[tuple[str, str, str], MorphologyFact] = {}
    for where, row in optional_rows("morphology.csv"):
        def morph(where=where, row=row):
            entity, feature, value = row["entity"], row["feature"], row["value"]
            if entity not in entities:
                raise ValueError(f"unknown entity {entity!r}")
            if feature not in FEATURE_VALUES or value not in FEATURE_VALUES[feature]:
                raise ValueError(f"unknown feature/value {feature!r}={value!r}")
            key = (entity, feature, value)
            if key in morphology:
                raise ValueError(f"duplicate {key}")
            morphology[key] = MorphologyFact(
                entity=entity, feature=feature, value=value,
                probability=_check_fraction(float(row["probability"]), where), n_cases=_opt_int(row["n_cases"]),
                evidence=_evidence(row["evidence"], where), source=row["source"], note=_get(row, "note"))
        tolerant(where, morph)

    _add_elicited_context(entities, priors, population, clinical, morphology)

    elicited: dict[tuple[str, str], ElicitedFigure] = {}
    for i, row in enumerate(_read_csv("elicited.csv", optional=True) or [], start=2):
        where = f"elicited.csv line {i}"
        entity, marker = row["entity"], row["marker"]
        if entity not in entities or marker not in markers:
            raise ValueError(f"{where}: unknown entity {entity!r} or marker {marker!r}")
        if (entity, marker) in elicited:
            raise ValueError(f"{where}: duplicate figure {(entity, marker)}")
        fractions = [_check_fraction(float(row[k]), where) for k in ("p_median", "p_min", "p_max", "focal_median")]
        if not fractions[1] <= fractions[0] <= fractions[2]:
            raise ValueError(f"{where}: p_median outside [p_min, p_max]")
        n_elicitors, rounds, logit_sd = int(row["n_elicitors"]), int(row["rounds"]), float(row["logit_sd"])
        if n_elicitors < 3 or rounds < 1 or logit_sd < 0:
            raise ValueError(f"{where}: needs >= 3 elicitors, >= 1 round and logit_sd >= 0")
        elicited[(entity, marker)] = ElicitedFigure(
            entity=entity, marker=marker, p_median=fractions[0], p_min=fractions[1], p_max=fractions[2],
            logit_sd=logit_sd, focal_median=fractions[3], n_elicitors=n_elicitors, rounds=rounds,
            rationale=row["rationale"], reference=row["reference"])

    reporting: dict[tuple[str, str], ReportingFigure] = {}
    for i, row in enumerate(_read_csv("reporting.csv", optional=True) or [], start=2):
        where = f"reporting.csv line {i}"
        entity, marker = row["entity"], row["marker"]
        if entity not in entities or marker not in markers:
            raise ValueError(f"{where}: unknown entity {entity!r} or marker {marker!r}")
        values = [_check_fraction(float(row[k]), where) for k in ("p_median", "p_min", "p_max")]
        if int(row["n_elicitors"]) < 3:
            raise ValueError(f"{where}: needs >= 3 elicitors")
        reporting[(entity, marker)] = ReportingFigure(entity, marker, *values, int(row["n_elicitors"]),
                                                      row["rationale"])

    return KnowledgeBase(
        markers=MappingProxyType(markers),
        entities=MappingProxyType(entities),
        facts=MappingProxyType(facts),
        site_priors=MappingProxyType({s: MappingProxyType(t) for s, t in priors.items()}),
        pair_background=MappingProxyType(pair_background),
        population_priors=MappingProxyType(population),
        clinical=MappingProxyType(clinical),
        morphology=MappingProxyType(morphology),
        elicited=MappingProxyType(elicited),
        reporting=MappingProxyType(reporting),
        missing_files=tuple(missing),
        skipped_rows=tuple(skipped),
    )
