"""The wording of a case on paper: the texts of ``case.json`` (grade reason, assumptions, warnings) without
command-line flags or commands.

``case.json`` and the on-screen page keep the hints a command-line user acts on ("--necrosis none, <50 or >=50
is needed for the grade"); a printed or filed report says what is missing instead ("necrosis not given"), since
nobody can act on a flag from paper. :func:`paper_text` rewrites the known hints into sentences and, as a last
resort, writes any other ``--option`` as the words of its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# (pattern, replacement), applied in order: the hints case.json carries, in the words a report uses.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"necrosis extent not given: --necrosis none, <50 or >=50 is needed for the grade"),
     "necrosis not given: the grade needs its extent (none, < 50 % or ≥ 50 % of the tumour)"),
    (re.compile(r"\s*\(--use-flagged-count uses it\)"), " unless asked"),
    (re.compile(r"\s*\(--use-flagged-count\)"), ""),
    (re.compile(r",? or grade them anyway with --use-flagged-count"), ""),
    (re.compile(r";? give --differentiation to override"), ""),
    (re.compile(r"given with --model"), "given as a model card"),
    (re.compile(r"confirm (them|the figures) with `spindledx review`"),
     r"confirm \1 on the review page before the count is reported"),
    (re.compile(r"\s*[—-]+ give --mpp if that is wrong, every density depends on it"),
     "; every density depends on it"),
    (re.compile(r"--sex (\S+) contradicts --site (\S+)"), r"sex \1 contradicts site \2"),
    (re.compile(r"\s*\(--out\)"), ""),
)
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
_COMMAND = re.compile(r"`spindledx [^`]*`")


def paper_text(text: str) -> str:
    """``text`` as a report on paper says it: no command-line flag, no command to run.

    Known hints become sentences (``"necrosis extent not given: --necrosis none, <50 or >=50 is needed for the
    grade"`` -> ``"necrosis not given: the grade needs its extent (none, < 50 % or ≥ 50 % of the tumour)"``); any
    other ``--option`` is written as the words of its name and a quoted ``spindledx`` command as "the command
    line".
    """
    out = str(text)
    for pattern, replacement in _REWRITES:
        out = pattern.sub(replacement, out)
    out = _COMMAND.sub("the command line", out)
    return _FLAG.sub(lambda m: m.group(1).replace("-", " "), out)


_COMMAND_NAMED = re.compile(r"`spindledx\b|\bspindledx (?:score|slide|batch|review|panel|grade|kb|compare|quiz|"
                            r"marker|entity|count-points|evaluate|case(?! report)) +[\w\"'./<-]")


def has_cli_words(text: str) -> bool:
    """True when ``text`` still names a command-line flag or a ``spindledx`` command."""
    return bool(_FLAG.search(text) or _COMMAND_NAMED.search(text))


def percent(p: float | None) -> str:
    """A probability as the reports print it: "< 1 %" below half a per cent, else whole per cent."""
    if p is None:
        return "–"
    return "< 1 %" if 0 < p < 0.005 else f"{100 * p:.0f} %"


def entity_name(entry: Mapping[str, Any]) -> str:
    """The display name of a differential entry (its id when it has no name)."""
    return str(entry.get("name") or entry.get("id", "")).strip()


def evidence_basis(e: Mapping[str, Any]) -> str:
    """The figure behind one piece of evidence, in words (stain: % positive and n; morphology: probability of the
    band; prior: relative weight), then its evidence level."""
    kind = e.get("kind", "stain")
    fraction = e.get("fraction_positive")
    parts: list[str] = []
    if kind == "stain" and fraction is not None:
        parts.append(f"{100 * float(fraction):.0f} % positive")
    elif kind in ("morphology", "clinical") and fraction is not None:
        parts.append(f"P({e.get('event') or e.get('value')}) = {float(fraction):.2f}")
    elif kind == "prior" and fraction is not None:
        parts.append(f"relative weight {float(fraction):g} ({e.get('basis') or 'prior'})")
    if e.get("n_cases"):
        parts.append(f"n = {e['n_cases']}")
    if e.get("evidence_level"):
        parts.append(str(e["evidence_level"]))
    return "; ".join(parts)


def evidence_rows(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evidence of a differential entry as report rows: kind, finding, observed result, likelihood, likelihood
    ratio, effect (supports at LR >= 2, against at <= 0.5), the figure behind it and its source."""
    rows = []
    for e in entry.get("evidence") or []:
        kind = e.get("kind", "stain")
        what = e.get("feature") if kind != "stain" and e.get("feature") else e.get("marker") or kind
        observed = e.get("result") if e.get("result") is not None else e.get("value")
        if kind == "prior":
            observed = f"{e.get('result') or 'prior'}: {e.get('event') or e.get('value') or ''}".strip(": ")
        lr = e.get("likelihood_ratio")
        effect = e.get("effect") or ("supports" if lr is not None and lr >= 2 else
                                     "against" if lr is not None and lr <= 0.5 else "neutral")
        rows.append({"kind": kind, "what": what, "observed": observed, "likelihood": e.get("likelihood"), "lr": lr,
                     "effect": effect, "basis": evidence_basis(e), "source": e.get("source")})
    return rows
