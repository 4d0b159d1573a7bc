"""Source quality of the IHC knowledge base (a citable source form everywhere).

Every ``source`` field of every numeric data file must be made of citable tokens:

* ``doi:10.xxxx/yyy``
* ``pmid:12345678``
* an ``https://`` URL on a host of :data:`PUBLISHER_HOSTS` (PubMed, PMC, doi.org, journal/publisher sites)
  or of :data:`RECORD_HOSTS` (bibliographic records of a named article - institutional research portals,
  a library catalogue, a syndicated reprint - used only where no DOI/PMID page of the article was found),

optionally with a short human citation around them.  Document-sharing mirrors, raw IP addresses, plain
``http://`` links, "PMID 123"/"doi 10.x" spellings and "ESTIMATE" markers in source fields are rejected.
A row that carries a number needs a source with at least one token, or ``evidence=estimate`` with its basis
written in the note (facts always need a token: issue 14 "every fact cites a DOI, a PMID or a publisher/PMC
page").  Notes may mention where a count was read, but any URL in a note obeys the same host rules.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DATA = Path(__file__).resolve().parents[1] / "src" / "spindledx" / "ihc" / "data"

EVIDENCE = {"series", "pooled", "review", "registry", "estimate"}

# Publisher, journal, PubMed/PMC and DOI resolver hosts.
PUBLISHER_HOSTS = {
    "doi.org", "dx.doi.org", "pubmed.ncbi.nlm.nih.gov", "pmc.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov",
    "www.nature.com", "onlinelibrary.wiley.com", "link.springer.com", "journals.lww.com", "insights.ovid.com",
    "jcp.bmj.com", "meridian.allenpress.com", "www.hindawi.com", "journals.plos.org",
    "diagnosticpathology.biomedcentral.com", "bmccancer.biomedcentral.com", "synapse.koreamed.org",
    "e-crt.org", "pathologica.it", "journal.waocp.org", "ijmpo.org", "www.ingentaconnect.com",
    "www.ajcr.us",  # Am J Cancer Res journal site (article id given in the citation text)
    "www.cancer.gov",  # NCI PDQ (publisher of the PDQ summaries)
    "surgpathcriteria.stanford.edu",  # Stanford Surgical Pathology Criteria (Stanford Pathology faculty)
}

# Bibliographic records of a named article, used where no DOI/PMID page was found (see the final report).
RECORD_HOSTS = {
    "stanfordhealthcare.org",  # Stanford faculty publication records (West 2004, Longacre 1996)
    "bvbvf1.bib-bvb.de",  # Bavarian library union catalogue record (Hornick & Fletcher 2002)
    "serval.unil.ch",  # University of Lausanne repository record (Folpe 2005)
    "www.medscape.com",  # syndicated AJCP reprint (Robin 2004)
    "research.polyu.edu.hk", "experts.umn.edu", "experts.nebraska.edu", "profiles.wustl.edu",
    "indiana.pure.elsevier.com", "mdanderson.elsevierpure.com", "www.scholars.northwestern.edu",
    "miami.pure.elsevier.com",  # University of Miami research-portal record (Rosenberg, MFH epithelial markers)
    "moh-it.pure.elsevier.com",  # Italian Ministry of Health research-portal record (Chilosi 1997, bcl-2)
    "digitalcommons.memphis.edu",  # institutional research portals / repositories
    "discovery.researcher.life",  # abstract-index record; journal of this one study not identified
}

# Known document-sharing mirrors and proxies that must never come back.
MIRRORS = (
    "paperzz", "doczz", "fdocuments", "mafiadoc", "colorlessideas", "scribd", "coek.info", "docslib",
    "pdfslide", "dokumen", "pubmedhh", "togows", "readbyqxmd", "tma.im", "e-immunohistochemistry",
    "pathologyoutlines", "wayback", "mendeley", "acnpsearch", "dtrf.org", "abstracts2view", "wprim",
)

TOKEN = re.compile(r"(?<![\w/])(doi:10\.\d{4,9}/\S+|pmid:\d{5,9}|https://[^\s;,]+)")
URL = re.compile(r"\b\w+://[^\s;,]+")
IP_HOST = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
BAD_SPELLINGS = (re.compile(r"\bPMID:?\s*\d"), re.compile(r"\bdoi\s+10\."), re.compile(r"\(doi\s"))

# file -> (source column, evidence column, numeric columns, basis columns)
FILES = {
    "facts.csv": ("source", "evidence", ("fraction_positive", "n_cases", "focal_share"), ("note",)),
    "markers.csv": ("background_source", "background_evidence", ("background_fraction", "background_n"),
                    ("note",)),
    "entity_marker_background.csv": ("source", "evidence", ("fraction_positive", "n_cases"), ("note",)),
    "population_priors.csv": ("source", "evidence", ("relative_frequency", "n_cases"), ("note",)),
    "site_priors.csv": ("source", "evidence", ("weight",), ("basis",)),
    "clinical.csv": ("source", "evidence", ("age_median", "age_q1", "age_q3", "age_min", "age_max",
                                            "female_fraction", "n_cases"), ("note",)),
    "morphology.csv": ("source", "evidence", ("probability", "n_cases"), ("note",)),
}
# Files without numbers of their own (entity text; test panels owned by ihc-code/cases).
NO_NUMBERS = {"entities.csv", "cases.csv", "cases_holdout.csv", "cases_reports.csv", "cases_reports_b.csv",
              "cases_reports_c.csv"}


def url_problems(text: str) -> list[str]:
    """Problems with the URLs inside ``text`` (scheme, raw IP, mirror, host not allow-listed)."""
    problems = []
    for url in URL.findall(text):
        parts = urlsplit(url.rstrip(".)"))
        host = (parts.hostname or "").lower()
        if parts.scheme != "https":
            problems.append(f"not https: {url}")
        if IP_HOST.match(host) or parts.port not in (None, 443):
            problems.append(f"raw IP/port: {url}")
        if any(m in url.lower() for m in MIRRORS):
            problems.append(f"mirror: {url}")
        elif host not in PUBLISHER_HOSTS | RECORD_HOSTS:
            problems.append(f"host not allow-listed: {url}")
    return problems


def source_problems(source: str) -> list[str]:
    """Problems with one source field; an empty list means it is citable."""
    problems = url_problems(source)
    if not TOKEN.search(source):
        problems.append("no doi:/pmid:/https token")
    if "ESTIMATE" in source:
        problems.append("ESTIMATE marker in a source field")
    problems += [f"non-canonical id spelling {p.pattern}" for p in BAD_SPELLINGS if p.search(source)]
    tokens = [t.rstrip(".)") for t in TOKEN.findall(source)]
    problems += [f"identifier repeated: {t}" for t in sorted({t for t in tokens if tokens.count(t) > 1})]
    return problems


def rows(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def has_number(row: dict, columns: tuple[str, ...]) -> bool:
    return any((row.get(c) or "").strip() for c in columns)


# Files of the structured expert elicitation: every figure is the pooled answer of independent elicitors.
ELICITED = {"elicited.csv": "reference", "elicited_context.csv": "reference", "reporting.csv": None}


def test_every_data_file_is_classified():
    assert {p.name for p in DATA.glob("*.csv")} <= set(FILES) | NO_NUMBERS | set(ELICITED)
    assert set(FILES) <= {p.name for p in DATA.glob("*.csv")}


def test_checker_rejects_the_bad_forms_of_issue_14():
    assert source_problems("Hornick 2002 https://paperzz.com/doc/9200334/kit")
    assert source_problems("Chu 2001 http://47.251.13.51:8081/11353058")
    assert source_problems("Iwata 2000 (doi 10.1046/j.1440-1827.2000.01001.x)")
    assert source_problems("Bhattacharya 2005 (PMID 15832090)")
    assert source_problems("ESTIMATE")
    assert source_problems("http://www.diagnosticpathology.org/content/5/1/67/about")
    assert source_problems("Moran CA et al. Mod Pathol 1997;10:121 pmid:9127317 pmid:9127317")
    assert not source_problems("Doyle LA et al. Mod Pathol 2014;27:390 doi:10.1038/modpathol.2013.164")
    assert not source_problems("pmid:16861966 ; https://pmc.ncbi.nlm.nih.gov/articles/PMC1770045")


@pytest.mark.parametrize("name", sorted(FILES))
def test_source_fields_use_the_allowed_forms(name):
    source_col, evidence_col, numeric, basis_cols = FILES[name]
    bad = []
    for i, row in enumerate(rows(name), start=2):
        source = (row.get(source_col) or "").strip()
        evidence = (row.get(evidence_col) or "").strip()
        basis = " ".join((row.get(c) or "") for c in basis_cols).strip()
        where = f"{name}:{i}"
        if source:
            bad += [f"{where} {p}" for p in source_problems(source)]
        if evidence and evidence not in EVIDENCE:
            bad.append(f"{where} evidence {evidence!r}")
        if name == "facts.csv" and not source:
            bad.append(f"{where} fact without a source")
        if has_number(row, numeric) and not source and (evidence != "estimate" or not basis):
            bad.append(f"{where} number without a source and not an estimate with a basis")
        if evidence == "estimate" and has_number(row, numeric) and not basis:
            bad.append(f"{where} estimate without its basis")
    assert not bad, "\n".join(bad[:40])


@pytest.mark.parametrize("name", sorted(FILES | {n: None for n in ("entities.csv",)}))
def test_notes_are_whole_and_link_only_allowed_hosts(name):
    text_cols = ("note", "basis", "no_background_reason", "pitfalls", "summary", "aliases")
    bad = []
    for i, row in enumerate(rows(name), start=2):
        for col in text_cols:
            text = row.get(col) or ""
            if not text:
                continue
            where = f"{name}:{i}:{col}"
            bad += [f"{where} {p}" for p in url_problems(text)]
            if text.count("ESTIMATE") > 1:
                bad.append(f"{where} repeated ESTIMATE")
            if text.count("(") != text.count(")"):
                bad.append(f"{where} unbalanced parentheses (cut citation?)")
    assert not bad, "\n".join(bad[:40])


@pytest.mark.parametrize("name", sorted(ELICITED))
def test_elicited_figures_name_their_elicitors_and_reasons(name):
    bad = []
    for i, row in enumerate(rows(name), start=2):
        where = f"{name}:{i}"
        if int(row["n_elicitors"]) < 3:
            bad.append(f"{where} fewer than 3 elicitors")
        if not row["rationale"].strip():
            bad.append(f"{where} no rationale")
        if ELICITED[name] and not re.search(r"WHO|Enzinger|Goldblum|Dabbs|Weedon|Rosai|Fletcher|Miettinen",
                                            row[ELICITED[name]]):
            bad.append(f"{where} reference names no classification chapter or standard text")
        bad += [f"{where} {p}" for p in url_problems(row["rationale"])]
    assert not bad, "\n".join(bad[:40])


def test_elicited_files_are_what_the_elicitors_answered():
    """The pooled files are reproduced exactly from the answer files (scripts/aggregate_elicitation.py --check)."""
    import subprocess
    import sys

    root = DATA.parents[3]
    script = root / "scripts" / "aggregate_elicitation.py"
    if not (root / "elicitation").is_dir():
        pytest.skip("elicitation answer files not in this checkout")
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
