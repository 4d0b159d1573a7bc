"""Marker vocabulary and the panel result grammar (docs/guide/panel.md).

Grammar: tokens are split on whitespace, commas or semicolons; each token is ``MARKER+``, ``MARKER-``,
``MARKER−`` (Unicode minus) or ``MARKER:RESULT`` with RESULT one of ``+ - pos neg positive negative focal focal+
patchy diffuse weak strong lost retained low high N%``.  Marker names are resolved case-insensitively through
synonyms (``actin`` -> SMA, ``CK-pan`` / ``AE1/AE3`` -> pan-cytokeratin, ``S-100`` -> S100, ...).  Because marker
names themselves contain ``-`` and ``/`` (``CK-pan``, ``S-100``, ``AE1/AE3``, ``h-caldesmon``), the sign is taken
from the *end* of the token only.  Multi-word names (``smooth muscle myosin+``, ``factor VIII-``) are matched
by joining up to four consecutive tokens.

Each result is reduced to an *event* used by the model:

``pos`` / ``neg``
    stained / not stained (for loss-type markers such as H3K27me3 and INI1, ``pos`` means **loss**: ``-`` and
    ``lost`` are loss, ``+`` and ``retained`` are retained; for Ki-67, ``pos`` means an index above 10 %,
    so ``high`` or ``N%`` with N > 10).
``focal``
    positive in a minority of cells: ``focal``, ``focal+``, ``patchy``, ``weak``, ``low``, ``N%`` with
    0 < N < 50.
``diffuse``
    positive in most cells: ``diffuse``, ``strong``, ``high``, ``N%`` with N >= 50.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from spindledx.errors import BadInputError
from spindledx.ihc import wording
from spindledx.ihc.knowledge import KnowledgeBase, load_knowledge_base, normalize_name

EVENTS = ("pos", "neg", "focal", "diffuse")
KI67_HIGH_CUTOFF_PERCENT = 10.0  # the "Ki-67 >10%" threshold of the uterine smooth-muscle series in facts.csv
DIFFUSE_CUTOFF_PERCENT = 50.0

_SIGNS = {"+": "pos", "-": "neg", "\u2212": "neg", "\u2013": "neg"}
_WORDS = {
    "+": "pos", "pos": "pos", "positive": "pos",
    "-": "neg", "\u2212": "neg", "\u2013": "neg", "neg": "neg", "negative": "neg",
    "focal": "focal", "focal+": "focal", "patchy": "focal", "weak": "focal",
    "diffuse": "diffuse", "strong": "diffuse",
    "lost": "lost", "retained": "retained", "low": "low", "high": "high",
    "intact": "retained", "preserved": "retained", "loss": "lost",
}
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
RESULT_WORDS = ("+", "-", "pos", "neg", "positive", "negative", "focal", "focal+", "patchy", "diffuse", "weak",
                "strong", "lost", "retained", "low", "high", "N%")

SITE_ALIASES = {
    "lung": ("lung", "pulmonary", "lung parenchyma"),
    "pleura": ("pleura", "pleural"),
    "uterus": ("uterus", "uterine", "myometrium", "corpus uteri"),
    "gi_tract": ("gi tract", "gi", "gastrointestinal", "gastrointestinal tract", "stomach", "gastric",
                 "small bowel", "small intestine", "colon", "rectum", "oesophagus", "esophagus", "bowel"),
    "retroperitoneum": ("retroperitoneum", "retroperitoneal"),
    "skin": ("skin", "skin/subcutis", "subcutis", "subcutaneous", "dermis", "cutaneous", "dermal"),
    "soft_tissue": ("soft tissue", "deep soft tissue", "extremity", "trunk", "limb"),
    "pulmonary_artery": ("pulmonary artery", "pa", "pulmonary trunk"),
}


@dataclass(frozen=True)
class Observation:
    """One stain result: canonical ``marker``, model ``event`` (pos/neg/focal/diffuse), the ``token`` as typed."""

    marker: str
    event: str
    token: str
    result: str  # the result as written (``+``, ``focal``, ``25%``, ...)


@dataclass(frozen=True)
class Panel:
    """A parsed panel: observations in input order (one per marker) and parser warnings."""

    observations: tuple[Observation, ...]
    warnings: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # words of the input that were not read (with ignore_unknown)

    @property
    def markers(self) -> tuple[str, ...]:
        """Canonical markers in the panel."""
        return tuple(o.marker for o in self.observations)


def _marker_index(kb: KnowledgeBase) -> dict[str, str]:
    cached = kb.cache.get("marker_index")
    if cached is not None:
        return cached
    index: dict[str, str] = {}
    for marker in kb.markers.values():
        for name in (marker.name, *marker.synonyms):
            key = normalize_name(name)
            if key in index and index[key] != marker.name:
                raise ValueError(f"marker synonym {name!r} is ambiguous ({index[key]} / {marker.name})")
            index[key] = marker.name
    kb.cache["marker_index"] = index
    return index


def resolve_marker(name: str, *, kb: KnowledgeBase | None = None) -> str | None:
    """Canonical marker name for ``name`` (case-insensitive, through synonyms), or None if unknown."""
    kb = kb or load_knowledge_base()
    return _marker_index(kb).get(normalize_name(name))


def close_marker_matches(name: str, *, kb: KnowledgeBase | None = None, n: int = 3) -> list[str]:
    """Canonical names of the known markers closest to ``name`` (difflib ratio on normalised names)."""
    kb = kb or load_knowledge_base()
    index = _marker_index(kb)
    keys = difflib.get_close_matches(normalize_name(name), list(index), n=n * 3, cutoff=0.6)
    out: list[str] = []
    for key in keys:
        if index[key] not in out:
            out.append(index[key])
    return out[:n]


def resolve_site(site: str | None, *, kb: KnowledgeBase | None = None) -> str | None:
    """Canonical site id (``lung``, ``gi_tract``, ...) or None; BadInputError for an unknown site."""
    if site is None or not site.strip():
        return None
    kb = kb or load_knowledge_base()
    key = normalize_name(site)
    for canonical, aliases in SITE_ALIASES.items():
        if key in {normalize_name(canonical), *(normalize_name(a) for a in aliases)}:
            if canonical not in kb.site_priors:
                break
            return canonical
    raise BadInputError(f"unknown site '{site}'; known sites: {', '.join(sorted(kb.site_priors))}")


def _event(marker_kind: str, marker: str, word: str, token: str) -> str:
    """Map a result word to a model event for a marker of the given kind."""
    m = _PERCENT.match(word)
    if m:
        percent = float(m.group(1))
        if percent > 100:
            raise BadInputError(f"'{token}': percentage above 100")
        if marker_kind == "proliferation":
            return "pos" if percent > KI67_HIGH_CUTOFF_PERCENT else "neg"
        if marker_kind in ("loss", "molecular"):
            raise BadInputError(f"'{token}': a percentage is not a result for {marker} (use + or -)")
        if percent == 0:
            return "neg"
        return "diffuse" if percent >= DIFFUSE_CUTOFF_PERCENT else "focal"
    value = _WORDS.get(word.casefold())
    if value is None:
        raise BadInputError(f"'{token}': unknown result '{word}' (use one of: {' '.join(RESULT_WORDS)})")
    if marker_kind == "loss":
        mapping = {"pos": "neg", "neg": "pos", "retained": "neg", "lost": "pos"}
        if value not in mapping:
            raise BadInputError(f"'{token}': {marker} is scored as lost or retained (or - / +)")
        return mapping[value]
    if marker_kind == "proliferation":
        mapping = {"pos": "pos", "neg": "neg", "high": "pos", "low": "neg"}
        if value not in mapping:
            raise BadInputError(f"'{token}': {marker} is scored as high/low or as a percentage, e.g. {marker}:25%")
        return mapping[value]
    if marker_kind == "molecular" and value not in ("pos", "neg"):
        raise BadInputError(f"'{token}': {marker} is a molecular test, scored + or -")
    return {"lost": "neg", "retained": "pos", "low": "focal", "high": "diffuse"}.get(value, value)


def _is_result(word: str) -> bool:
    return word.casefold() in _WORDS or _PERCENT.match(word) is not None


def parse_panel(text: str, ignore_unknown: bool = False, *, kb: KnowledgeBase | None = None) -> Panel:
    """Parse a panel: the compact grammar (``"actin+ desmin+ CK-pan- CD34- CD117- S-100-"``) or report wording
    (``"positive for SMA and desmin, negative for S100; Ki67 20%; MDM2 not amplified"``).

    Parameters
    ----------
    text
        The panel, in the result grammar of the module docstring or the report wording of
        :mod:`spindledx.ihc.wording`.
    ignore_unknown
        Skip unknown markers and unreadable words with a warning (and list them in ``Panel.ignored``) instead of
        raising.

    Returns
    -------
    Panel
        One observation per marker, in input order; ``ignored`` holds every word that was not read.

    Raises
    ------
    BadInputError
        Empty panel, unknown marker or unreadable word (naming close matches) unless ``ignore_unknown``, a marker
        without a result, an unknown result word, or the same marker given twice with conflicting results.
    """
    kb = kb or load_knowledge_base()
    index = _marker_index(kb)

    def resolve(name: str) -> str | None:
        return index.get(normalize_name(name))

    clauses = wording.clauses(text)
    if not clauses:
        raise BadInputError("empty panel: give at least one marker result, e.g. \"desmin+ CD34-\"")
    observations: dict[str, Observation] = {}
    warnings: list[str] = []
    ignored: list[str] = []
    for words in clauses:
        for item in wording.read_clause(words, resolve, _is_result):
            name, word, token = item.marker, item.word, item.text
            if name is None:
                head, _, tail = token.rpartition(":")
                if head and tail and resolve(head) is not None:
                    raise BadInputError(f"'{token}': unknown result '{tail}' (use one of: {' '.join(RESULT_WORDS)})")
                matches = close_marker_matches(item.marker_text, kb=kb)
                hint = f"; did you mean {', '.join(matches)}?" if matches else ""
                what = f"unknown marker '{item.marker_text}'" if word else f"unread word '{item.marker_text}'"
                if ignore_unknown:
                    warnings.append(f"skipped {what}{hint}")
                    ignored.append(token)
                    continue
                raise BadInputError(f"{what}{hint} (use ignore_unknown=True to skip it)",
                                    parameters="ignore_unknown")
            if not word:
                if ignore_unknown:
                    warnings.append(f"skipped '{token}': no result given")
                    ignored.append(token)
                    continue
                raise BadInputError(f"'{token}' has no result: write e.g. {name}+, {name}- or {name}:focal")
            if word == "not-done":  # "HHV8 not done", "SS18 FISH pending": no result to count
                warnings.append(f"{name}: not done ('{token}'), not counted")
                continue
            try:
                moved = wording.molecular_test(name, word)
            except KeyError:
                raise BadInputError(f"'{token}': no {word.replace('not-', '')} test of {name} in the knowledge "
                                    "base") from None
            if moved is not None:
                name, word = moved
            elif kb.markers[name].kind == "molecular" and word.casefold() in ("lost", "retained"):
                raise BadInputError(f"'{token}': {name} is a molecular test, scored + or -")
            event = _event(kb.markers[name].kind, name, word, token)
            obs = Observation(marker=name, event=event, token=token, result=word)
            previous = observations.get(name)
            if previous is not None:
                if previous.event != event:
                    raise BadInputError(f"conflicting results for {name}: '{previous.token}' and '{token}'")
                warnings.append(f"{name} given twice ('{previous.token}', '{token}'); counted once")
                continue
            observations[name] = obs
    if not observations:
        raise BadInputError("empty panel: no known marker left after skipping unknown ones")
    with_facts = kb.cache.get("markers_with_facts")
    if with_facts is None:
        with_facts = kb.cache["markers_with_facts"] = frozenset(
            [f.marker for f in kb.facts.values()] + [m for (_, m) in kb.elicited])
    for obs in observations.values():
        if obs.marker not in with_facts:
            warnings.append(f"no figure for {obs.marker} in the knowledge base: it does not change the ranking")
    return Panel(observations=tuple(observations.values()), warnings=tuple(warnings), ignored=tuple(ignored))
