"""Pages of the static knowledge-base site (entity, marker, matrix, A-versus-B, quiz, index).

Each function gathers the figures of one page as plain values and renders its template (``site/<page>.html.j2``
of :mod:`spindledx.pages`) in the site frame (:class:`~spindledx.teaching.html.Frame`), or its main part alone
when no frame is given. The templates escape every knowledge-base string; source fields are linkified by
:func:`spindledx.pages.links.linkify`.
"""

from __future__ import annotations

from collections.abc import Mapping

from spindledx.ihc.knowledge import KnowledgeBase
from spindledx.ihc.lookups import entity_info, marker_info
from spindledx.ihc.model import MARKER_GROUPS, marker_likelihood
from spindledx.ihc.priors import build_prior
from spindledx.teaching.compare import Comparison
from spindledx.teaching.html import Frame, pct, render_page, slugify

MORPHOLOGY_ORDER = {"mitoses": ("0-4", "5-9", "10-19", ">=20"), "necrosis": ("yes",),
                    "atypia": ("none", "mild", "moderate", "marked")}


class SiteLinks:
    """File names of the pages (one slug per entity, marker and pair), relative to the site root."""

    def __init__(self, kb: KnowledgeBase, pairs: tuple[tuple[str, str], ...]) -> None:
        self.entity = {e: f"entities/{slugify(e)}.html" for e in kb.entities}
        self.marker: dict[str, str] = {}
        used: set[str] = set()
        for m in kb.markers:
            slug = slugify(m)
            while slug in used:
                slug += "-x"
            used.add(slug)
            self.marker[m] = f"markers/{slug}.html"
        self.pairs = pairs
        self.pair = {p: f"compare/{slugify(p[0])}--{slugify(p[1])}.html" for p in pairs}

    def fact_anchor(self, marker: str, site: str = "") -> str:
        """Anchor id of a fact row on an entity page."""
        base = self.marker[marker].removeprefix("markers/").removesuffix(".html")
        return f"f-{base}" + (f"-{site}" if site else "")

    def pair_anchor(self, marker: str) -> str:
        """Anchor id of an entity-specific background (specificity) row on an entity page."""
        return "pb-" + self.marker[marker].removeprefix("markers/").removesuffix(".html")

    def elicited_anchor(self, marker: str) -> str:
        """Anchor id of an elicited figure's row on an entity page."""
        return "el-" + self.marker[marker].removeprefix("markers/").removesuffix(".html")

    def pairs_with(self, entity: str) -> list[tuple[str, str]]:
        """Teaching pairs that include ``entity``."""
        return [p for p in self.pairs if entity in p]


def _group_of(marker: str) -> tuple[str, tuple[str, ...]] | None:
    for name, members in MARKER_GROUPS.items():
        if marker in members:
            return name, members
    return None


def _morphology_rows(kb: KnowledgeBase, entity: str) -> list:
    rows = [f for (e, _feat, _val), f in kb.morphology.items() if e == entity]
    order = {feat: i for i, feat in enumerate(("mitoses", "necrosis", "atypia", "pattern"))}
    rows.sort(key=lambda f: (order.get(f.feature, 9), MORPHOLOGY_ORDER.get(f.feature, ()).index(f.value)
                             if f.value in MORPHOLOGY_ORDER.get(f.feature, ()) else 99, f.value))
    return rows


def _clinical(kb: KnowledgeBase, entity: str) -> dict:
    """Population prior and age/sex figures of ``entity`` (template macro ``clinical``)."""
    idx = kb.entity_ids.index(entity)
    pop = build_prior(kb, None).entries[idx]
    prior = {"weight": pop.weight, "figure": pop.figure, "evidence": pop.evidence_level, "note": pop.note,
             "source": pop.source}
    clin = kb.clinical.get(entity)
    if clin is None:
        return {"prior": prior, "clinical": None}

    def num(v: float | None) -> str:
        return "?" if v is None else f"{v:g}"

    age = f"median {num(clin.age_median)}"
    if clin.age_q1 is not None or clin.age_q3 is not None:
        age += f" (quartiles {num(clin.age_q1)}–{num(clin.age_q3)})"
    age += f", range {num(clin.age_min)}–{num(clin.age_max)} years"
    return {"prior": prior, "clinical": {"age": age, "female": clin.female_fraction, "n": clin.n_cases,
                                         "evidence": clin.evidence, "note": clin.note, "source": clin.source}}


def _pair_background_rows(kb: KnowledgeBase, links: SiteLinks, *, entity: str | None = None,
                          marker: str | None = None, root: str = "../") -> list[dict]:
    rows = []
    for (e, m), f in kb.pair_background.items():
        if (entity is not None and e != entity) or (marker is not None and m != marker):
            continue
        if entity is not None:
            row = {"id": links.pair_anchor(m), "href": root + links.marker[m], "label": m}
        else:
            row = {"id": None, "href": f"{root + links.entity[e]}#{links.pair_anchor(m)}",
                   "label": kb.entities[e].name}
        rows.append({**row, "fraction": f.fraction_positive, "n": f.n_cases, "evidence": f.evidence, "note": f.note,
                     "source": f.source})
    return rows


def _elicited_rows(kb: KnowledgeBase, links: SiteLinks, entity: str, root: str = "../") -> list[dict]:
    """The entity's figures that rest on the structured expert elicitation (median, range, rationale)."""
    rows = []
    for m in kb.markers:
        ml = marker_likelihood(kb, entity, m)
        fig = ml.elicited
        if fig is None:
            continue
        updated = f"; updated by data: {ml.fact.note}" if ml.fact is not None else ""
        rows.append({"id": links.elicited_anchor(m), "href": root + links.marker[m], "marker": m,
                     "p_median": fig.p_median, "p_min": fig.p_min, "p_max": fig.p_max,
                     "n_elicitors": fig.n_elicitors, "focal_median": fig.focal_median, "p_used": ml.p_positive,
                     "rationale": fig.rationale + updated, "reference": fig.reference.split(" | ")[0]})
    return rows


def entity_page(kb: KnowledgeBase, entity: str, links: SiteLinks, *, frame: Frame | None = None) -> str:
    """Summary, typical panel (fractions, n, evidence, sources), pitfalls, priors, morphology of one entity."""
    info = entity_info(entity, kb=kb)
    root = "../"
    facts = [{"id": links.fact_anchor(f["marker"], f["site"] or ""), "estimate": f["evidence"] == "estimate",
              "href": root + links.marker[f["marker"]], "marker": f["marker"], "site": f["site"],
              "fraction": f["fraction_positive"], "n": f["n_cases"], "evidence": f["evidence"],
              "focal_share": f["focal_share"], "p_used": f["posterior_mean"], "note": f["note"], "source": f["source"]}
             for f in info["facts"]]
    idx = kb.entity_ids.index(info["id"])
    site_priors = []
    for site in kb.site_priors:
        entry = build_prior(kb, site).entries[idx]
        site_priors.append({"site": site.replace("_", " "), "weight": entry.weight,
                            "figure": "" if entry.figure is None else format(entry.figure, "g"),
                            "evidence": entry.evidence_level, "note": entry.note, "source": entry.source})
    compare = [(root + links.pair[p], f"{kb.entities[p[0]].name} versus {kb.entities[p[1]].name}")
               for p in links.pairs_with(info["id"])]
    return render_page("site/entity.html.j2", frame,
                       e={"name": info["name"], "id": info["id"], "aliases": list(info["aliases"]),
                          "n_facts": len(info["facts"]), "summary": info["summary"]},
                       compare=compare, facts=facts,
                       pair_rows=_pair_background_rows(kb, links, entity=info["id"]),
                       elicited=_elicited_rows(kb, links, info["id"]), pitfalls=list(info["pitfalls"]),
                       clinical=_clinical(kb, info["id"]), site_priors=site_priors,
                       morphology=_morphology_rows(kb, info["id"]))


def marker_page(kb: KnowledgeBase, marker: str, links: SiteLinks, *, frame: Frame | None = None) -> str:
    """Which entities stain for ``marker`` and how often, its synonyms, background and lineage group."""
    info = marker_info(marker, kb=kb)
    root = "../"
    facts = [{"estimate": f["evidence"] == "estimate",
              "href": f"{root + links.entity[f['entity']]}#{links.fact_anchor(info['marker'], f['site'] or '')}",
              "entity_name": f["entity_name"], "site": f["site"], "fraction": f["fraction_positive"],
              "n": f["n_cases"], "evidence": f["evidence"], "focal_share": f["focal_share"], "note": f["note"],
              "source": f["source"]} for f in info["facts"]]
    group = _group_of(info["marker"])
    group_view = None
    if group is not None:
        group_view = {"name": group[0], "members": [(root + links.marker[m], m) for m in group[1]
                                                    if m in links.marker]}
    return render_page("site/marker.html.j2", frame,
                       mk={"name": info["marker"], "kind": info["kind"], "note": info["note"],
                           "synonyms": list(info["synonyms"])},
                       group=group_view, facts=facts, pair_rows=_pair_background_rows(kb, links, marker=info["marker"]),
                       elicited=_marker_elicited_rows(kb, links, info["marker"], root))


def _marker_elicited_rows(kb: KnowledgeBase, links: SiteLinks, marker: str, root: str) -> list[dict]:
    """The entities whose figure for ``marker`` rests on the structured elicitation, with median and range."""
    rows = []
    for e in kb.entity_ids:
        ml = marker_likelihood(kb, e, marker)
        fig = ml.elicited
        if fig is None:
            continue
        rows.append({"href": f"{root + links.entity[e]}#{links.elicited_anchor(marker)}",
                     "entity_name": kb.entities[e].name, "p_median": fig.p_median, "p_min": fig.p_min,
                     "p_max": fig.p_max, "p_used": ml.p_positive, "rationale": fig.rationale})
    return rows


def _matrix_cell(kb: KnowledgeBase, links: SiteLinks, e: str, m: str) -> dict:
    """One cell of the heat map: its figure, shade, link and title, or a missing figure."""
    entity = kb.entities[e]
    ml = marker_likelihood(kb, e, m)
    fact = ml.fact if ml.basis != "site" or ml.fact is not None else ml.site_fact
    if ml.elicited is not None:
        fig = ml.elicited
        f = ml.p_positive
        title = f"elicited {pct(fig.p_median)} ({pct(fig.p_min)}-{pct(fig.p_max)})" + (
            ", updated by data" if ml.fact else "")
        return {"missing": False, "classes": "c eli", "light": f"{96 - 62 * f:.0f}",
                "ink": "#fff" if f > 0.55 else "#111", "href": f"{links.entity[e]}#{links.elicited_anchor(m)}",
                "title": title, "percent": f"{round(f * 100):d}"}
    if ml.basis == "no data" or fact is None:
        return {"missing": True, "title": f"{entity.name} × {m}: no data"}
    f = fact.fraction_positive
    classes = ["c"]
    if fact.evidence == "estimate":
        classes.append("est")
    if ml.basis == "background":
        classes.append("bg")
        href = links.marker[m]
        label = f"background {pct(f)}"
    elif ml.basis == "pair background":
        classes.append("pb")
        href = f"{links.entity[e]}#{links.pair_anchor(m)}"
        label = f"specificity figure {pct(f)}"
    else:
        href = f"{links.entity[e]}#{links.fact_anchor(m, fact.site)}"
        label = pct(f)
    n = "" if fact.n_cases is None else f", n={fact.n_cases}"
    return {"missing": False, "classes": " ".join(classes), "light": f"{96 - 62 * f:.0f}",
            "ink": "#fff" if f > 0.55 else "#111", "href": href,
            "title": f"{entity.name} × {m}: {label}{n}, {fact.evidence}", "percent": f"{round(f * 100):d}"}


def matrix_page(kb: KnowledgeBase, links: SiteLinks, *, frame: Frame | None = None) -> str:
    """Entity × marker heat map of the fraction positive; estimates hatched, background/missing marked."""
    markers = list(kb.markers)
    rows = [(links.entity[e], entity.name, [_matrix_cell(kb, links, e, m) for m in markers])
            for e, entity in kb.entities.items()]
    return render_page("site/matrix.html.j2", frame, markers=[(links.marker[m], m) for m in markers], rows=rows)


def _side(side: Mapping) -> dict:
    if side["basis"] == "background":
        lit = f"background {pct(side['fraction_positive'])}"
    else:
        lit = pct(side["fraction_positive"]) + (" (site)" if side["basis"] == "site" else "")
    if side["n_cases"]:
        lit += f" of {side['n_cases']}"
    return {"text": lit, "evidence": side["evidence"]}


def short_name(kb: KnowledgeBase, entity: str) -> str:
    """The entity's first alias when it is an abbreviation (``LMS``, ``GIST``), else its name."""
    aliases = kb.entities[entity].aliases
    if aliases and len(aliases[0]) <= 6 and aliases[0].upper() == aliases[0]:
        return aliases[0]
    return kb.entities[entity].name


def compare_page(kb: KnowledgeBase, comparison: Comparison, links: SiteLinks, *, top: int = 12,
                 frame: Frame | None = None) -> str:
    """A versus B: markers ranked by J divergence with LR+ / LR− and sources, then morphology, pitfalls."""
    root = "../"
    data = comparison.to_json()
    a, b = comparison.a, comparison.b

    def row(m: Mapping, rank: int) -> dict:
        return {"rank": rank, "href": root + links.marker[m["marker"]], "marker": m["marker"], "group": m["group"],
                "caveats": list(m["caveats"]), "favours": m["favours_if_positive"], "p_a": m["a"]["p_positive"],
                "p_b": m["b"]["p_positive"], "lr_positive": m["lr_positive"], "lr_negative": m["lr_negative"],
                "j_bits": m["j_divergence_bits"], "side_a": _side(m["a"]), "side_b": _side(m["b"]),
                "source_a": m["a"]["source"], "source_b": m["b"]["source"]}

    ranked = data["markers"]
    morph_rows = []
    for r in data["morphology"]["values"]:
        lr = r["likelihood_ratio"]
        morph_rows.append({"feature": r["feature"], "value": r["value"].replace("_", " "), "p_a": r["a"]["p"],
                           "p_b": r["b"]["p"], "lr": lr, "favours": "a" if lr >= 2 else "b" if lr <= 0.5 else None,
                           "source_a": r["a"]["source"], "source_b": r["b"]["source"]})
    return render_page(
        "site/compare.html.j2", frame,
        a={"name": comparison.a_name, "short": short_name(kb, a), "href": root + links.entity[a]},
        b={"name": comparison.b_name, "short": short_name(kb, b), "href": root + links.entity[b]},
        top=[row(m, i) for i, m in enumerate(ranked[:top], start=1)],
        rest=[row(m, i) for i, m in enumerate(ranked[top:], start=top + 1)],
        no_data=[(root + links.marker[d["marker"]], d["marker"], kb.entities[d["missing_for"][0]].name)
                 for d in data["no_data"]],
        morphology={"rows": morph_rows, "features": [(f["feature"], f["j_divergence_bits"])
                                                      for f in data["morphology"]["features"]]},
        clinical_a=_clinical(kb, a), clinical_b=_clinical(kb, b),
        pitfalls=[(kb.entities[e].name, list(kb.entities[e].pitfalls)) for e in (a, b)])


def quiz_page(sets: Mapping[str, int], skipped: tuple[tuple[str, str], ...], *, frame: Frame | None = None) -> str:
    """The quiz frame; questions, answers and scoring live in the page scripts (quiz-data.js; the answers computed
    by panel.js on panel-model.js; site.js)."""
    return render_page("site/quiz.html.j2", frame, total=sum(sets.values()), sets=dict(sets), skipped=list(skipped))


def index_page(kb: KnowledgeBase, links: SiteLinks, *, n_questions: int, provenance: Mapping[str, str],
               frame: Frame | None = None) -> str:
    """Landing page: what the site is, the lists of entities, markers and A-versus-B pairs."""
    entities = [(links.entity[e.id], e.name, list(e.aliases))
                for e in sorted(kb.entities.values(), key=lambda x: x.name)]
    by_kind: dict[str, list] = {}
    for m in kb.markers.values():
        by_kind.setdefault(m.kind, []).append((links.marker[m.name], m.name, list(m.synonyms[:4])))
    pairs = [(links.pair[p], f"{kb.entities[p[0]].name} versus {kb.entities[p[1]].name}") for p in links.pairs]
    return render_page("site/index.html.j2", frame, n_entities=len(kb.entities), n_markers=len(kb.markers),
                       n_facts=len(kb.facts), n_questions=n_questions, entities=entities,
                       markers_by_kind=list(by_kind.items()), pairs=pairs, provenance=list(provenance.items()))
