"""The text a user reads says what the tool does and how well, never how it was developed.

Scanned: README.md, every docs/**/*.md and the ``--help`` of every command and sub-command. Refused: accounts
of the project's development (work sessions and rounds, who wrote what, issue numbers, commit hashes, load
averages, curation remarks, "blind" test-set bookkeeping). Every ``--help`` also carries an example.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (name, pattern, allowed): a match is refused unless `allowed` matches the text around it.
FORBIDDEN: list[tuple[str, re.Pattern[str], re.Pattern[str] | None]] = [
    ("work session", re.compile(r"\bsessions?\b", re.I), None),
    ("work round", re.compile(r"\bwork[- ]rounds?\b", re.I), None),
    ("round of work", re.compile(r"\brounds?\b", re.I),
     re.compile(r"\bround[ /-](nuclei|nucleus|cells?|figures?|ovoid|spindle)\b|\bin (two|three) rounds\b|"
                r"\ba new round\b", re.I)),
    ("issue number", re.compile(r"\bissues?\b", re.I), None),
    ("helper", re.compile(r"\bhelpers?\b", re.I), None),
    ("commit", re.compile(r"\bcommit(s|ted)?\b", re.I), None),
    ("commit-hash-like hex", re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"), None),
    ("curation remark", re.compile(r"\bCHECKED\b"), None),
    ("curation remark", re.compile(r"\bRevised from\b|\breplaces an (unverified )?estimate\b|"
                                   r"\bwas (lowered|raised) once\b|\b(revised to|align(ed)? with) (the )?median\b|"
                                   r"\btable gave\b|\bas the model grew\b|\bwhile watching\b", re.I),
     None),
    ("blind set", re.compile(r"\bblind\b", re.I), None),
    ("load average",
     re.compile(r"\bload (average|avg)\b|\bat load\b|\bload\s*[≈~]\s*\d|\bload \d+(\.\d+)?\s*[–-]", re.I), None),
    ("the project's team", re.compile(r"\bthe lead\b|\bkbdata\b|\bCEO\b", re.I), None),
    ("design notes outside the repository", re.compile(r"\.\./shared/DESIGN|\bDESIGN\.md\b"), None),
]


def forbidden_words(text: str) -> list[str]:
    """Every refused phrase in ``text``, as 'line N: name: the line'."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for name, pattern, allowed in FORBIDDEN:
            for match in pattern.finditer(line):
                window = line[max(0, match.start() - 30): match.end() + 30]
                if allowed is not None and allowed.search(window):
                    continue
                found.append(f"line {number}: {name} ({match.group(0)!r}): {line.strip()[:160]}")
    return found


OUTPUT_IDENTIFIERS = re.compile(
    r"\bsha256[:= ]*[0-9a-f]{7,64}\b|\b[0-9a-f]{64}\b"  # provenance checksums (kb version, model sha256)
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # GeoJSON feature UUIDs
    r"|\b\d+:[0-9a-f]{16}\b"  # file identities (size:digest)
    r"|https?://\S+|\bdoi:\S+|\b10\.\d{4,}/\S+|\b\d+:e\d{5,}\b")  # sources: links, DOIs, article numbers
"""What an output carries as an identifier, checksum or source (not a commit hash)."""


def forbidden_output_words(text: str, *, identifiers: tuple[str, ...] = ()) -> list[str]:
    """:func:`forbidden_words` of a page or report the tool writes, once the identifiers it carries are taken out:
    :data:`OUTPUT_IDENTIFIERS` and the given ``identifiers`` (run ids and input signatures, digests of the
    inputs)."""
    for identifier in identifiers:
        text = text.replace(identifier, "")
    return forbidden_words(OUTPUT_IDENTIFIERS.sub("", text))


def user_documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def command_paths() -> list[list[str]]:
    """[] for the app, then every command and sub-command as the words that name it."""
    from typer.main import get_command

    from spindledx.cli import app

    def walk(command, path):
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(get_command(app), []))


def help_text(path: list[str]) -> str:
    from spindledx.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([*path, "--help"]) == 0
    return buffer.getvalue()


def test_the_scan_finds_what_it_should() -> None:
    bad = ["Written in session 5 by four helpers", "Issue 13 asks for 0.25 s", "Committed (ec51d2d) before",
           "CHECKED: the source gives 19%", "Revised from 6 after the first run", "(replaces an estimate of 95%)",
           "hold-out panels, each run once blind", "measured at load 3-6", "(load 4.6–5.8)", "load ≈ 7",
           "in the second work round", "See ../shared/DESIGN.md", "in round 2"]
    for text in bad:
        assert forbidden_words(text), text
    good = ["spindle and round nuclei", "the extra views run in two rounds", "a new round, score reset",
            "tissue sections", "checked before any image is read", "sha256 " + "9e34dfd8cce55ccb" * 4,
            "background 2 %", "knowledge-base load 26 ms", "around the hotspot", "ground truth", "CD117+ DOG1+"]
    for text in good:
        assert not forbidden_words(text), (text, forbidden_words(text))


def test_readme_is_a_short_front_page() -> None:
    size = (ROOT / "README.md").stat().st_size
    assert size <= 12_000, f"README.md is {size} bytes (at most 12,000: the rest belongs in docs/)"


@pytest.mark.parametrize("path", user_documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_user_documents_hold_no_development_history(path: Path) -> None:
    found = forbidden_words(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def anchors(path: Path) -> set[str]:
    """The link targets of a Markdown file: GitHub's heading slugs and explicit ``<a id="...">``."""
    text = path.read_text(encoding="utf-8")
    slugs = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
             for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    return slugs | set(re.findall(r"<a id=\"([^\"]+)\"", text))


def test_user_documents_link_to_files_and_anchors_that_exist() -> None:
    missing = []
    for path in user_documents():
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            linked = path.parent / target if target else path
            if not linked.exists():
                missing.append(f"{path.relative_to(ROOT)} -> {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                missing.append(f"{path.relative_to(ROOT)} -> {target}#{anchor}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "spindledx")
def test_help_holds_no_development_history_and_an_example(path: list[str]) -> None:
    text = help_text(path)
    found = forbidden_words(text)
    assert not found, f"spindledx {' '.join(path)} --help:\n" + "\n".join(found)
    assert "Example: spindledx" in text, f"spindledx {' '.join(path)} --help has no example"


def documented_commands() -> list[str]:
    """Every `spindledx ...` line of the code blocks of README.md and docs/guide/ (continuations joined)."""
    commands = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]:
        for block in re.findall(r"```\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith("spindledx "):
                    commands.append(line)
    return commands


def example_lines() -> list[str]:
    """The ``Example:`` line of every command's help, as written (not as wrapped for the terminal)."""
    from typer.main import get_command

    from spindledx.cli import app

    def walk(command):
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    return [line.split("Example: ", 1)[1].strip() for command in walk(get_command(app))
            for line in (command.help or "").splitlines() if "Example: " in line]


@pytest.mark.parametrize("command", sorted(set(documented_commands())) + example_lines())
def test_documented_commands_and_examples_use_options_that_exist(command: str) -> None:
    """Each example parses: its command and options exist (``--help`` is eager, so nothing runs)."""
    import shlex

    from spindledx.cli import main

    words = shlex.split(command)[1:]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*words, "--help"]) == 0, command


KNOWLEDGE_TEXT_COLUMNS = ("note", "basis", "pitfalls", "summary", "rationale", "no_background_reason", "aliases")


def test_knowledge_base_notes_shown_to_users_carry_no_development_history():
    """Notes, bases, pitfalls and rationales of the knowledge base are printed by `panel` and shown on the site."""
    import csv

    found = []
    for path in sorted((ROOT / "src" / "spindledx" / "ihc" / "data").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for i, row in enumerate(csv.DictReader(handle), start=2):
                text = re.sub(r"doi:\S+", "", "\n".join(row.get(c) or "" for c in KNOWLEDGE_TEXT_COLUMNS))
                found += [f"{path.name}:{i}: {hit}" for hit in forbidden_words(text)]
    assert not found, "\n".join(found[:30])
