"""Report wording: read a panel as pathology reports write it into (marker text, result word) items.

Accepted besides the compact grammar (``desmin+ CD34- S-100:focal``):

- a result word after the marker: ``CD34 focal``, ``S100 positive``, ``Ki67 20%``, ``INI1 retained``,
  ``SS18 FISH negative``, ``MDM2 amplified``, ``MDM2 not amplified``, ``ALK rearranged``, ``CTNNB1 mutated``;
- signs in brackets or glued to the name: ``CD117 (+)``, ``CD117(+)``, ``CKAE1/AE3-``, ``+/-`` for focal;
- list sentences: ``positive for SMA and desmin, negative for S100, CD34 and CD117`` (also ``focally positive
  for``, ``immunoreactive for``, ``expressed``, ``lacked``, ``Positive: ... Negative: ...``).  A polarity phrase
  holds until the next one or the end of the clause (``;``, ``.`` followed by a space, or a new line).

Result words naming a molecular test (amplified, rearranged, fusion, mutated and their negations) move the result
to the test of that gene (:data:`MOLECULAR_TESTS`): ``MDM2 amplified`` is ``MDM2 FISH+``, not the MDM2 stain.

The reader returns every word it could not use as :class:`Item` with ``marker_text`` set and no result, so that the
caller can report it as ignored (no word of a report is dropped silently except the grammar words of
:data:`GRAMMAR_WORDS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# result phrases (lower case word tuples) -> result word understood by the vocabulary (longest first)
_PHRASES: dict[tuple[str, ...], str] = {
    ("not", "amplified"): "not-amplified", ("non-amplified",): "not-amplified", ("nonamplified",): "not-amplified",
    ("no", "amplification"): "not-amplified", ("without", "amplification"): "not-amplified",
    ("amplified",): "amplified", ("amplification",): "amplified",
    ("not", "rearranged"): "not-rearranged", ("no", "rearrangement"): "not-rearranged",
    ("without", "rearrangement"): "not-rearranged", ("no", "fusion"): "not-rearranged",
    ("rearranged",): "rearranged", ("rearrangement",): "rearranged", ("fusion",): "rearranged",
    ("translocation",): "rearranged", ("translocated",): "rearranged",
    ("not", "mutated"): "not-mutated", ("no", "mutation"): "not-mutated", ("wild-type",): "not-mutated",
    ("wild", "type"): "not-mutated", ("wildtype",): "not-mutated", ("mutated",): "mutated", ("mutation",): "mutated",
    ("not", "done"): "not-done", ("not", "performed"): "not-done", ("not", "tested"): "not-done",
    ("pending",): "not-done", ("n/a",): "not-done", ("nd",): "not-done",
    ("not", "detected"): "negative", ("detected",): "positive", ("absent",): "negative", ("present",): "positive",
    ("positive",): "positive", ("negative",): "negative", ("pos",): "positive", ("neg",): "negative",
    ("focally", "positive"): "focal", ("weakly", "positive"): "focal", ("patchy", "positive"): "focal",
    ("diffusely", "positive"): "diffuse", ("strongly", "positive"): "diffuse", ("focal",): "focal",
    ("focally",): "focal", ("patchy",): "focal", ("weak",): "focal", ("diffuse",): "diffuse",
    ("strong",): "diffuse", ("lost",): "lost", ("loss",): "lost", ("deficient",): "lost",
    ("retained",): "retained", ("intact",): "retained", ("preserved",): "retained", ("low",): "low",
    ("high",): "high", ("+",): "+", ("-",): "-", ("+/-",): "focal", ("focal+",): "focal+",
}
_MAX_PHRASE = max(len(k) for k in _PHRASES)
_PERCENT = re.compile(r"^(?:index[:=]?)?(\d+(?:\.\d+)?)\s*%$")
_COMPARE_PERCENT = re.compile(r"^[<>≤≥]=?(\d+(?:\.\d+)?)%$")

# polarity phrases opening a list: words -> result word applied to the markers that follow
_POLARITY: dict[tuple[str, ...], str] = {
    ("positive", "for"): "positive", ("positivity", "for"): "positive", ("immunoreactive", "for"): "positive",
    ("immunopositive", "for"): "positive", ("reactive", "for"): "positive", ("stained", "for"): "positive",
    ("staining", "for"): "positive", ("expressed",): "positive", ("expression", "of"): "positive",
    ("positive:",): "positive", ("positive",): "positive",
    ("negative", "for"): "negative", ("immunonegative", "for"): "negative", ("non-reactive", "for"): "negative",
    ("nonreactive", "for"): "negative", ("no", "staining", "for"): "negative", ("no", "expression", "of"):
    "negative", ("did", "not", "express"): "negative", ("lacked",): "negative", ("negative:",): "negative",
    ("negative",): "negative",
    ("focally", "positive", "for"): "focal", ("weakly", "positive", "for"): "focal",
    ("patchy", "positive", "for"): "focal", ("focal", "positivity", "for"): "focal",
    ("diffusely", "positive", "for"): "diffuse", ("strongly", "positive", "for"): "diffuse",
    ("strongly", "and", "diffusely", "positive", "for"): "diffuse",
}
_MAX_POLARITY = max(len(k) for k in _POLARITY)
_LIST_WORDS = {"positive": "positive for", "negative": "negative for", "focal": "focally positive for",
               "diffuse": "diffusely positive for"}

#: words of report sentences that carry no result and are skipped without a warning
GRAMMAR_WORDS = frozenset(re.split(r"\s+", """
and or & with for of the a an in on by but also while whereas were was is are be been being showed shows show
showing demonstrated revealed tumour tumor cells cell neoplastic lesion lesional immunohistochemistry
immunohistochemical immunohistochemically ihc stain stains stained staining immunostain immunostains
immunostaining expression nuclear cytoplasmic membranous markers marker results result test tests testing
analysis by fish ngs rt-pcr pcr sequencing
""".strip()))

#: result words that name a molecular test, and the test of each gene that such a word moves the result to
MOLECULAR_WORDS = {"amplified": "+", "not-amplified": "-", "rearranged": "+", "not-rearranged": "-",
                   "mutated": "+", "not-mutated": "-"}
MOLECULAR_TESTS = {
    "amplified": {"MDM2": "MDM2 FISH", "CDK4": "CDK4 FISH", "MDM2 FISH": "MDM2 FISH", "CDK4 FISH": "CDK4 FISH"},
    "rearranged": {"SS18-SSX": "SS18 FISH", "SS18 FISH": "SS18 FISH", "ALK": "ALK FISH", "ALK FISH": "ALK FISH",
                   "TFE3": "TFE3 FISH", "TFE3 FISH": "TFE3 FISH", "STAT6": "NAB2-STAT6", "NAB2-STAT6": "NAB2-STAT6",
                   "USP6 FISH": "USP6 FISH", "FUS FISH": "FUS FISH", "EWSR1 FISH": "EWSR1 FISH",
                   "COL1A1-PDGFB": "COL1A1-PDGFB"},
    "mutated": {"CTNNB1 mutation": "CTNNB1 mutation", "beta-catenin": "CTNNB1 mutation",
                "CD117": "KIT/PDGFRA mutation", "KIT/PDGFRA mutation": "KIT/PDGFRA mutation"},
}
for _neg, _pos in (("not-amplified", "amplified"), ("not-rearranged", "rearranged"), ("not-mutated", "mutated")):
    MOLECULAR_TESTS[_neg] = MOLECULAR_TESTS[_pos]


@dataclass(frozen=True)
class Item:
    """One reading: ``marker`` (canonical name or None when unknown), the marker text, the result word (empty
    when none was found) and the words of the input it was read from."""

    marker: str | None
    marker_text: str
    word: str
    text: str


def normalise(text: str) -> str:
    """Signs in brackets to plain signs, Unicode minus and dashes to ``-``, bracketed result words unwrapped."""
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", "-")
    text = re.sub(r"\(\s*\+\s*/\s*-\s*\)", "+/-", text)
    text = re.sub(r"\s*\(\s*([+-])\s*\)", r"\1", text)
    text = re.sub(r"\((focal|diffuse|weak|strong|patchy|positive|negative|lost|retained)\)", r" \1 ", text,
                  flags=re.IGNORECASE)
    return text


def clauses(text: str) -> list[list[str]]:
    """Split text into clauses (``;``, sentence ``.``, new line) of whitespace/comma-separated words."""
    parts = re.split(r";|\n|\.(?=\s|$)", normalise(text or ""))
    out = []
    for part in parts:
        words = [w for w in re.split(r"[\s,]+", part) if w]
        if words:
            out.append(words)
    return out


def _phrase(words: list[str], i: int, table: dict, longest: int) -> tuple[int, str] | None:
    for span in range(min(longest, len(words) - i), 0, -1):
        key = tuple(w.casefold() for w in words[i:i + span])
        if key in table:
            return span, table[key]
    return None


#: names of test methods written between a marker and its result (``NAB2-STAT6 RT-PCR+``, ``MDM2 FISH: amplified``)
METHOD_WORDS = frozenset({"fish", "rt-pcr", "pcr", "ngs", "ihc", "cish", "ish", "sequencing", "by", "on"})


def result_at(words: list[str], i: int) -> tuple[int, str] | None:
    """(number of words, result word) of a result written at ``words[i]``, or None; method words before the result
    (:data:`METHOD_WORDS`) are read as part of it."""
    if i >= len(words):
        return None
    word = words[i].casefold().strip("()")
    bare = word.rstrip(":+-")
    if bare in METHOD_WORDS:
        if word != bare and word[len(bare):] in ("+", "-"):
            return 1, word[len(bare):]
        after = result_at(words, i + 1)
        return None if after is None else (after[0] + 1, after[1])
    m = _PERCENT.match(word) or _COMPARE_PERCENT.match(word)
    if m:
        return 1, f"{m.group(1)}%"
    if word == "index" and i + 1 < len(words) and _PERCENT.match(words[i + 1].strip("()")):
        return 2, f"{_PERCENT.match(words[i + 1].strip('()')).group(1)}%"
    found = _phrase([w.strip("()") for w in words], i, _PHRASES, _MAX_PHRASE)
    return found


def split_glued(word: str, is_result: Callable[[str], bool]) -> tuple[str, str] | None:
    """(name, result) of a word carrying its result: ``desmin+``, ``S-100:focal``, ``CD34:+``; else None."""
    head, sep, tail = word.rpartition(":")
    if sep and head and is_result(tail):
        return head, tail
    if len(word) > 1 and word[-1] in "+-":
        if word.endswith("+/-") and len(word) > 3:
            return word[:-3], "focal"
        return word[:-1], word[-1]
    return None


def _opens_list(words: list[str], i: int) -> bool:
    """Whether a polarity phrase starts at ``words[i]``: several words (``negative for``), a word ending in a
    colon (``Negative:``), or a single word at the start of the clause (``Positive SMA, desmin``)."""
    pol = _phrase(words, i, _POLARITY, _MAX_POLARITY)
    return pol is not None and (pol[0] > 1 or words[i].endswith(":") or i == 0)


def read_clause(words: list[str], resolve: Callable[[str], str | None],
                is_result: Callable[[str], bool]) -> list[Item]:
    """Items of one clause (see module docstring); unknown words come back with ``marker=None``."""
    items: list[Item] = []
    polarity = ""
    i = 0
    while i < len(words):
        if _opens_list(words, i):
            span, polarity = _phrase(words, i, _POLARITY, _MAX_POLARITY)
            i += span
            continue
        matched = None
        for span in range(min(4, len(words) - i), 0, -1):
            group = words[i:i + span]
            joined = " ".join(group)
            glued = split_glued(joined, is_result)
            if glued is not None and resolve(glued[0]) is not None:
                matched = (span, resolve(glued[0]), glued[0], glued[1])
                break
            name = resolve(joined[:-1] if joined.endswith(":") else joined)
            if name is not None:
                matched = (span, name, joined, "")
                break
        if matched is None:
            word = words[i]
            glued = split_glued(word, is_result)
            if word.casefold().strip("():") in GRAMMAR_WORDS:
                i += 1
                continue
            after = result_at(words, i + 1)
            if glued is not None:
                items.append(Item(None, glued[0], glued[1], word))
            elif after is not None:
                items.append(Item(None, word, after[1], " ".join(words[i:i + 1 + after[0]])))
                i += after[0]
            else:
                items.append(Item(None, word, polarity, word))
            i += 1
            continue
        span, name, marker_text, word = matched
        if not word and span > 1 and result_at(words, i + span) is None:
            # "MDM2 amplified" names a test and its result: read it as the gene plus a result word when it can be
            for k in range(span - 1, 0, -1):
                shorter, after = resolve(" ".join(words[i:i + k])), result_at(words, i + k)
                if shorter is not None and after is not None and k + after[0] >= span:
                    span, name, marker_text = k, shorter, " ".join(words[i:i + k])
                    break
        text = " ".join(words[i:i + span])
        i += span
        after = None if word or _opens_list(words, i) else result_at(words, i)
        if after is not None:
            word = after[1]
            text = " ".join([text, *words[i:i + after[0]]])
            i += after[0]
        elif not word and polarity:
            word = polarity
            text = f"{_LIST_WORDS.get(polarity, polarity)} {text}"
        items.append(Item(name, marker_text, word, text))
    return items


def molecular_test(marker: str, word: str) -> tuple[str, str] | None:
    """(test marker, ``+``/``-``) for a molecular result word on ``marker``; None when ``word`` is not one.

    Raises KeyError when the gene has no such test in the knowledge base.
    """
    if word not in MOLECULAR_WORDS:
        return None
    return MOLECULAR_TESTS[word][marker], MOLECULAR_WORDS[word]
