"""The IHC knowledge base: markers, entities, literature facts and site priors, loaded from package data.

Every number lives in ``spindledx/ihc/data/*.csv`` with its source and evidence level (the knowledge base is data
with a citation on every number, not code):

``markers.csv``
    canonical marker names, kind (``ihc``, ``loss``, ``proliferation``, ``molecular``), synonyms and an optional
    *background* fraction used for entities that have no data for the marker (e.g. nuclear STAT6 in the mimics
    of SFT, 0/580 SS18-SSX outside synovial sarcoma).
``entities.csv``
    the stable snake_case entity ids, display names, aliases, pitfalls and a one-line summary.
``facts.csv``
    one row per (entity, site variant, marker): fraction positive, number of cases, evidence level (series,
    pooled, review, estimate), share of positive cases that stain only focally (where the literature says so),
    a short note and the source (entity names mapped to ids, marker names to canonical ones).
``site_priors.csv``
    relative prior weights of entities per site, each with its basis, ``evidence`` and ``source``.
``entity_marker_background.csv`` (optional)
    a sourced figure for one entity x marker pair stated as *specificity* data rather than a series of that
    entity ("0 of 30 LMS were STAT6+"); used before the marker's general background.
``population_priors.csv`` (optional)
    relative frequency of each entity among adult spindle-cell tumours (registries, consultation series).
``clinical.csv`` (optional)
    age median / quartiles / range and female fraction per entity.
``morphology.csv`` (optional)
    P(feature value | entity) for mitoses bands, tumour cell necrosis, atypia and described patterns.

``elicited.csv``, ``elicited_context.csv``, ``reporting.csv`` (optional)
    the structured expert elicitation: the figure of every cell without literature counts, the prior, age, sex and
    morphology figures of entities no series describes, and P(a work-up states the marker | entity).

A missing optional file is an empty table and the interpreter says so in its explanation (neutral, with the
reason). A row that breaks a file's columns raises
:class:`KnowledgeBaseError` naming the file, the line and the column.
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
MITOSIS_BANDS = ("0-4", "5-9", "10-19", ">=20")  # per 10 HPF of 0.2376 mm^2
ATYPIA_LEVELS = ("none", "mild", "moderate", "marked")
PATTERNS = ("fascicular", "storiform", "herringbone", "palisading", "staghorn_vessels", "biphasic", "myxoid",
            "epithelioid", "pleomorphic", "whorled", "plexiform", "collagenous", "inflammatory")
FEATURE_VALUES = {"mitoses": MITOSIS_BANDS, "necrosis": ("yes",), "atypia": ATYPIA_LEVELS, "pattern": PATTERNS}
MARKER_KINDS = ("ihc", "loss", "proliferation", "molecular")


class KnowledgeBaseError(ValueError):
    """A knowledge-base file breaks its schema. Names the file, the row (its line in the file; the header is line
    1) and the column, as ``facts.csv line 12, column fraction_positive: 1.2 outside [0, 1]``.

    Attributes
    ----------
    file, row, column
        Where: file name in ``spindledx/ihc/data``, line number (None for the file as a whole), column (None for
        the row as a whole).
    """

    def __init__(self, file: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.file, self.row, self.column = file, row, column
        where = file + ("" if row is None else f" line {row}") + ("" if column is None else f", column {column}")
        super().__init__(f"{where}: {message}")


class _Row(dict):
    """One CSV row (cells stripped) and where it is: ``file`` and ``line``."""

    file: str = ""
    line: int = 0

    def error(self, message: str, column: str | None = None) -> KnowledgeBaseError:
        """A :class:`KnowledgeBaseError` at this row (and ``column``)."""
        return KnowledgeBaseError(self.file, message, row=self.line, column=column)

    def number(self, column: str, *, optional: bool = False) -> float | None:
        """The cell as a float (None for an empty ``optional`` cell)."""
        text = self.get(column, "") or ""
        if not text and optional:
            return None
        try:
            return float(text)
        except ValueError:
            raise self.error(f"{text!r} is not a number", column) from None

    def integer(self, column: str, *, optional: bool = False) -> int | None:
        """The cell as an int (None for an empty ``optional`` cell)."""
        text = self.get(column, "") or ""
        if not text and optional:
            return None
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{text!r} is not a whole number", column) from None

    def fraction(self, column: str, *, optional: bool = False) -> float | None:
        """The cell as a fraction in [0, 1] (None for an empty ``optional`` cell)."""
        value = self.number(column, optional=optional)
        if value is not None and not 0.0 <= value <= 1.0:
            raise self.error(f"fraction {value} outside [0, 1]", column)
        return value

    def evidence(self, column: str = "evidence") -> str:
        """The cell as an evidence level (:data:`EVIDENCE_LEVELS`)."""
        text = self.get(column, "") or ""
        if text not in EVIDENCE_LEVELS:
            raise self.error(f"unknown evidence {text!r} (one of {', '.join(EVIDENCE_LEVELS)})", column)
        return text

    def __missing__(self, column: str) -> str:
        raise self.error("missing column", column)


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
    """A diagnostic entity (stable snake_case id)."""

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


def _read_csv(name: str, *, optional: bool = False, skipped: list[str] | None = None) -> list[_Row] | None:
    """Rows of a package-data CSV (cells stripped, each knowing its file and line); None for an absent
    ``optional`` file.

    A row with more cells than columns is an error, except in an optional file where it is skipped and described
    in ``skipped`` (``spindledx kb coverage`` lists skipped rows).
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
                raise KnowledgeBaseError(name, "more cells than columns (quote cells with commas)",
                                         row=reader.line_num)
            cells = _Row({k.strip(): (v or "").strip() for k, v in row.items()})
            cells.file, cells.line = name, reader.line_num
            rows.append(cells)
    return rows


def _get(row: dict[str, str], key: str) -> str:
    return row.get(key, "") or ""


def _add_elicited_context(entities, priors, population, clinical, morphology) -> None:
    """Fill prior, clinical and morphology figures from ``elicited_context.csv`` (the structured elicitation for
    entities that no series describes in these terms); a figure from the literature is never replaced."""
    rows = _read_csv("elicited_context.csv", optional=True) or []
    by_entity: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        if row["entity"] not in entities:
            raise row.error(f"unknown entity {row['entity']!r}", "entity")
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
    """Read and validate every data file (uncached; :func:`load_knowledge_base` caches it).

    Raises
    ------
    KnowledgeBaseError
        A row that breaks the schema (naming file, line and column).
    """
    missing: list[str] = []
    skipped: list[str] = []  # rows of the optional files naming an entity/marker not (yet) in the knowledge base
    markers: dict[str, Marker] = {}
    for row in _read_csv("markers.csv"):
        name = row["name"]
        kind = row["kind"]
        if kind not in MARKER_KINDS:
            raise row.error(f"{name}: unknown kind {kind!r}", "kind")
        background = None
        bg = row.fraction("background_fraction", optional=True) if "background_fraction" in row else None
        if bg is not None:
            background = Fact(entity="*", marker=name, fraction_positive=bg,
                              n_cases=row.integer("background_n", optional=True),
                              evidence=row.evidence("background_evidence"),
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
    for row in _read_csv("facts.csv"):
        entity, marker, site = row["entity"], row["marker"], row["site"]
        if entity not in entities:
            raise row.error(f"unknown entity {entity!r}", "entity")
        if marker not in markers:
            raise row.error(f"unknown marker {marker!r}", "marker")
        key = (entity, marker, site)
        if key in facts:
            raise row.error(f"duplicate fact {key}")
        facts[key] = Fact(entity=entity, marker=marker, site=site, fraction_positive=row.fraction("fraction_positive"),
                          n_cases=row.integer("n_cases", optional=True), evidence=row.evidence(),
                          source=row["source"], note=row["note"],
                          focal_share=row.fraction("focal_share", optional=True))

    priors: dict[str, dict[str, SitePrior]] = {}
    first_row: dict[str, _Row] = {}
    for row in _read_csv("site_priors.csv"):
        site, entity = row["site"], row["entity"]
        first_row.setdefault(site, row)
        if entity != "*" and entity not in entities:
            raise row.error(f"unknown entity {entity!r}", "entity")
        weight = row.number("weight")
        if weight <= 0:
            raise row.error(f"{site}/{entity}: weight must be > 0", "weight")
        evidence = _get(row, "evidence")
        if evidence:
            row.evidence()
        priors.setdefault(site, {})[entity] = SitePrior(site=site, entity=entity, weight=weight, basis=row["basis"],
                                                        evidence=evidence, source=_get(row, "source"))
    for site, table in priors.items():
        if "*" not in table:
            raise first_row[site].error(f"site {site!r} has no '*' floor row", "entity")
    for (_, _, site) in facts:
        if site and site not in priors:
            raise KnowledgeBaseError("facts.csv", f"site variant {site!r} has no site priors", column="site")

    def optional_rows(name: str) -> list[_Row]:
        """Rows of an optional file; a row that fails validation is skipped and described."""
        rows = _read_csv(name, optional=True, skipped=skipped)
        if rows is None:
            missing.append(name)
        return rows or []

    def tolerant(row: _Row, build) -> None:
        try:
            build()
        except KnowledgeBaseError as exc:
            skipped.append(f"{exc}: row skipped")

    pair_background: dict[tuple[str, str], Fact] = {}
    for row in optional_rows("entity_marker_background.csv"):
        def pair(row=row):
            entity, marker = row["entity"], row["marker"]
            if entity not in entities or marker not in markers:
                raise row.error(f"unknown entity {entity!r} or marker {marker!r}")
            pair_background[(entity, marker)] = Fact(
                entity=entity, marker=marker, fraction_positive=row.fraction("fraction_positive"),
                n_cases=row.integer("n_cases", optional=True), evidence=row.evidence(), source=row["source"],
                note=_get(row, "note") or "specificity figure for this entity")
        tolerant(row, pair)

    population: dict[str, PopulationPrior] = {}
    for row in optional_rows("population_priors.csv"):
        def pop(row=row):
            if row["entity"] not in entities:
                raise row.error(f"unknown entity {row['entity']!r}", "entity")
            freq = row.number("relative_frequency")
            if not freq > 0:
                raise row.error("relative_frequency must be > 0", "relative_frequency")
            population[row["entity"]] = PopulationPrior(
                entity=row["entity"], relative_frequency=freq, n_cases=row.integer("n_cases", optional=True),
                evidence=row.evidence(), source=row["source"], note=_get(row, "note"))
        tolerant(row, pop)

    clinical: dict[str, Clinical] = {}
    for row in optional_rows("clinical.csv"):
        def clin(row=row):
            if row["entity"] not in entities:
                raise row.error(f"unknown entity {row['entity']!r}", "entity")
            ages = []
            for column in ("age_median", "age_q1", "age_q3", "age_min", "age_max"):
                age = row.number(column, optional=True) if column in row else None
                if age is not None and not 0 <= age <= 120:
                    raise row.error("age outside 0-120", column)
                ages.append(age)
            female = row.fraction("female_fraction", optional=True) if "female_fraction" in row else None
            if female is None and all(a is None for a in ages):
                return  # a placeholder row: everything unknown
            clinical[row["entity"]] = Clinical(
                row["entity"], *ages, female_fraction=female, n_cases=row.integer("n_cases", optional=True),
                evidence=row.evidence(), source=row["source"], note=_get(row, "note"),
                age_n_cases=row.integer("age_n_cases", optional=True) if "age_n_cases" in row else None)
        tolerant(row, clin)

    morphology: dict[tuple[str, str, str], MorphologyFact] = {}
    for row in optional_rows("morphology.csv"):
        def morph(row=row):
            entity, feature, value = row["entity"], row["feature"], row["value"]
            if entity not in entities:
                raise row.error(f"unknown entity {entity!r}", "entity")
            if feature not in FEATURE_VALUES or value not in FEATURE_VALUES[feature]:
                raise row.error(f"unknown feature/value {feature!r}={value!r}", "feature")
            key = (entity, feature, value)
            if key in morphology:
                raise row.error(f"duplicate {key}")
            morphology[key] = MorphologyFact(
                entity=entity, feature=feature, value=value, probability=row.fraction("probability"),
                n_cases=row.integer("n_cases", optional=True), evidence=row.evidence(), source=row["source"],
                note=_get(row, "note"))
        tolerant(row, morph)

    _add_elicited_context(entities, priors, population, clinical, morphology)

    elicited: dict[tuple[str, str], ElicitedFigure] = {}
    for row in _read_csv("elicited.csv", optional=True) or []:
        entity, marker = row["entity"], row["marker"]
        if entity not in entities or marker not in markers:
            raise row.error(f"unknown entity {entity!r} or marker {marker!r}")
        if (entity, marker) in elicited:
            raise row.error(f"duplicate figure {(entity, marker)}")
        fractions = [row.fraction(k) for k in ("p_median", "p_min", "p_max", "focal_median")]
        if not fractions[1] <= fractions[0] <= fractions[2]:
            raise row.error("p_median outside [p_min, p_max]", "p_median")
        n_elicitors, rounds, logit_sd = row.integer("n_elicitors"), row.integer("rounds"), row.number("logit_sd")
        if n_elicitors < 3 or rounds < 1 or logit_sd < 0:
            raise row.error("needs >= 3 elicitors, >= 1 round and logit_sd >= 0")
        elicited[(entity, marker)] = ElicitedFigure(
            entity=entity, marker=marker, p_median=fractions[0], p_min=fractions[1], p_max=fractions[2],
            logit_sd=logit_sd, focal_median=fractions[3], n_elicitors=n_elicitors, rounds=rounds,
            rationale=row["rationale"], reference=row["reference"])

    reporting: dict[tuple[str, str], ReportingFigure] = {}
    for row in _read_csv("reporting.csv", optional=True) or []:
        entity, marker = row["entity"], row["marker"]
        if entity not in entities or marker not in markers:
            raise row.error(f"unknown entity {entity!r} or marker {marker!r}")
        values = [row.fraction(k) for k in ("p_median", "p_min", "p_max")]
        n_elicitors = row.integer("n_elicitors")
        if n_elicitors < 3:
            raise row.error("needs >= 3 elicitors", "n_elicitors")
        reporting[(entity, marker)] = ReportingFigure(entity, marker, *values, n_elicitors, row["rationale"])

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
