"""Page bodies of the static knowledge-base site (entity, marker, matrix, A-versus-B, quiz, index).

Each function returns the HTML of one page body; :mod:`spindledx.teaching.site` wraps it in the frame of
:func:`spindledx.teaching.html.page` and writes it.  All knowledge-base strings are escaped with
:func:`~spindledx.teaching.html.esc` or linkified with :func:`~spindledx.teaching.html.linkify`.
"""

from __future__ import annotations

from collections.abc import Mapping

from spindledx.ihc.knowledge import KnowledgeBase
from spindledx.ihc.lookups import entity_info, marker_info
from spindledx.ihc.model import MARKER_GROUPS, marker_likelihood
from spindledx.ihc.priors import build_prior
from spindledx.teaching.compare import Comparison
from spindledx.teaching.html import esc, linkify, pct, slugify

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


def _bar(fraction: float | None) -> str:
    if fraction is None:
        return '<span class="bar none">–</span>'
    width = max(0.0, min(1.0, fraction)) * 100
    return (f'<span class="bar"><span class="fill" style="width:{width:.0f}%"></span>'
            f'<span class="val">{esc(pct(fraction))}</span></span>')


def _evidence_badge(level: str | None) -> str:
    if not level:
        return "–"
    return f'<span class="ev ev-{esc(level)}">{esc(level)}</span>'


def _n(value: int | None) -> str:
    return "–" if value is None else esc(value)


def _group_of(marker: str) -> tuple[str, tuple[str, ...]] | None:
    for name, members in MARKER_GROUPS.items():
        if marker in members:
            return name, members
    return None


def _morphology_table(kb: KnowledgeBase, entity: str) -> str:
    rows = [f for (e, _feat, _val), f in kb.morphology.items() if e == entity]
    if not rows:
        return '<p class="muted">No morphology figures in the knowledge base for this entity yet.</p>'
    order = {feat: i for i, feat in enumerate(("mitoses", "necrosis", "atypia", "pattern"))}
    rows.sort(key=lambda f: (order.get(f.feature, 9), MORPHOLOGY_ORDER.get(f.feature, ()).index(f.value)
                             if f.value in MORPHOLOGY_ORDER.get(f.feature, ()) else 99, f.value))
    body = "".join(
        f"<tr><td>{esc(f.feature)}</td><td>{esc(f.value)}</td><td>{_bar(f.probability)}</td><td>{_n(f.n_cases)}</td>"
        f"<td>{_evidence_badge(f.evidence)}</td><td>{esc(f.note)}</td><td class='src'>{linkify(f.source)}</td></tr>"
        for f in rows)
    return ("<table class='data'><thead><tr><th>feature</th><th>value</th><th>P(value | entity)</th><th>n</th>"
            f"<th>evidence</th><th>note</th><th>source</th></tr></thead><tbody>{body}</tbody></table>")


def _clinical_block(kb: KnowledgeBase, entity: str) -> str:
    parts = []
    idx = kb.entity_ids.index(entity)
    pop = build_prior(kb, None).entries[idx]
    figure = "" if pop.figure is None else f"relative frequency {pct(pop.figure, 1)}; "
    parts.append(f"<p><b>Population prior</b> (among adult spindle-cell tumours, before any finding): "
                 f"{esc(pct(pop.weight, 1))} ({esc(figure)}{_evidence_badge(pop.evidence_level)} {esc(pop.note)}) "
                 f"<span class='src'>{linkify(pop.source)}</span></p>")
    clin = kb.clinical.get(entity)
    if clin is not None:
        def num(v: float | None) -> str:
            return "?" if v is None else f"{v:g}"

        age = f"median {num(clin.age_median)}"
        if clin.age_q1 is not None or clin.age_q3 is not None:
            age += f" (quartiles {num(clin.age_q1)}–{num(clin.age_q3)})"
        age += f", range {num(clin.age_min)}–{num(clin.age_max)} years"
        female = "" if clin.female_fraction is None else f"; female {pct(clin.female_fraction)}"
        parts.append(f"<p><b>Age</b>: {esc(age)}{esc(female)}; n {_n(clin.n_cases)}; "
                     f"{_evidence_badge(clin.evidence)} {esc(clin.note)} <span class='src'>{linkify(clin.source)}"
                     "</span></p>")
    else:
        parts.append("<p class='muted'>No age or sex figures in the knowledge base for this entity.</p>")
    return "".join(parts)


def _pair_background_rows(kb: KnowledgeBase, links: SiteLinks, *, entity: str | None = None,
                          marker: str | None = None, root: str = "../") -> str:
    rows = []
    for (e, m), f in kb.pair_background.items():
        if (entity is not None and e != entity) or (marker is not None and m != marker):
            continue
        first = (f"<a href='{esc(root + links.marker[m])}'>{esc(m)}</a>" if entity is not None else
                 f"<a href='{esc(root + links.entity[e])}#{esc(links.pair_anchor(m))}'>{esc(kb.entities[e].name)}</a>")
        rows.append(f"<tr id='{esc(links.pair_anchor(m))}'>" if entity is not None else "<tr>")
        rows.append(f"<td>{first}</td><td>{_bar(f.fraction_positive)}</td><td>{_n(f.n_cases)}</td>"
                    f"<td>{_evidence_badge(f.evidence)}</td><td>{esc(f.note)}</td>"
                    f"<td class='src'>{linkify(f.source)}</td></tr>")
    if not rows:
        return ""
    head = "marker" if entity is not None else "entity"
    return ("<h3>Specificity figures</h3><p class='muted'>Sourced figures stated as specificity data (\"0 of 30 "
            "were positive\"), used by the interpreter where there is no series of the entity itself.</p>"
            f"<table class='data'><thead><tr><th>{head}</th><th>fraction positive</th><th>n</th><th>evidence</th>"
            f"<th>note</th><th>source</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _elicited_rows(kb: KnowledgeBase, links: SiteLinks, entity: str, root: str = "../") -> str:
    """The entity's figures that rest on the structured expert elicitation (median, range, rationale)."""
    rows = []
    for m in kb.markers:
        ml = marker_likelihood(kb, entity, m)
        fig = ml.elicited
        if fig is None:
            continue
        updated = f"; updated by data: {ml.fact.note}" if ml.fact is not None else ""
        rows.append(f"<tr id='{esc(links.elicited_anchor(m))}'><td><a href='{esc(root + links.marker[m])}'>"
                    f"{esc(m)}</a></td><td>{_bar(fig.p_median)}</td><td>{esc(pct(fig.p_min))}–{esc(pct(fig.p_max))}"
                    f"</td><td>{fig.n_elicitors}</td><td>{esc(pct(fig.focal_median))}</td>"
                    f"<td>{esc(pct(ml.p_positive))}</td><td>{esc(fig.rationale + updated)}</td>"
                    f"<td class='src'>{esc(fig.reference.split(' | ')[0])}</td></tr>")
    if not rows:
        return ""
    return ("<h3 id='elicited'>Elicited figures</h3><p class='muted'>Where no series gives counts, the figure is the "
            "median of a structured expert elicitation (independent elicitors, elicited in two rounds: the cells "
            "they disagreed on were put to them again with the group's spread); the range sets its weight, and "
            "literature counts update it.</p>"
            "<table class='data'><thead><tr><th>marker</th><th>P(+) median</th><th>range</th><th>elicitors</th>"
            "<th>focal share</th><th title='what the interpreter uses'>P(+) used</th><th>rationale</th>"
            f"<th>reference</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def entity_page(kb: KnowledgeBase, entity: str, links: SiteLinks) -> str:
    """Summary, typical panel (fractions, n, evidence, sources), pitfalls, priors, morphology of one entity."""
    info = entity_info(entity, kb=kb)
    root = "../"
    rows = []
    for f in info["facts"]:
        est = " class='est'" if f["evidence"] == "estimate" else ""
        rows.append(
            f"<tr id='{esc(links.fact_anchor(f['marker'], f['site'] or ''))}'{est}>"
            f"<td><a href='{esc(root + links.marker[f['marker']])}'>{esc(f['marker'])}</a></td>"
            f"<td>{esc(f['site'] or 'any')}</td><td>{_bar(f['fraction_positive'])}</td><td>{_n(f['n_cases'])}</td>"
            f"<td>{_evidence_badge(f['evidence'])}</td><td>{esc(pct(f['focal_share']))}</td>"
            f"<td>{esc(pct(f['posterior_mean']))}</td><td>{esc(f['note'])}</td>"
            f"<td class='src'>{linkify(f['source'])}</td></tr>")
    panel = ("<table class='data'><thead><tr><th>marker</th><th>site</th><th>fraction positive</th><th>n</th>"
             "<th>evidence</th><th>focal share</th><th title='Beta posterior mean used by the interpreter'>"
             "P(+) used</th><th>note</th><th>source</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    pitfalls = "".join(f"<li>{esc(p)}</li>" for p in info["pitfalls"]) or "<li class='muted'>none listed</li>"
    idx = kb.entity_ids.index(info["id"])
    prior_rows = []
    for site in kb.site_priors:
        entry = build_prior(kb, site).entries[idx]
        prior_rows.append(f"<tr><td>{esc(site.replace('_', ' '))}</td><td>{_bar(entry.weight)}</td>"
                          f"<td>{esc('' if entry.figure is None else format(entry.figure, 'g'))}</td>"
                          f"<td>{_evidence_badge(entry.evidence_level)}</td><td>{esc(entry.note)}</td>"
                          f"<td class='src'>{linkify(entry.source)}</td></tr>")
    priors = ("<table class='data'><thead><tr><th>site</th><th>P(entity | site) before findings</th><th>relative "
              "weight</th><th>evidence</th><th>basis</th><th>source</th></tr></thead><tbody>"
              + "".join(prior_rows) + "</tbody></table>")
    compare = "".join(
        f"<li><a href='{esc(root + links.pair[p])}'>{esc(kb.entities[p[0]].name)} versus "
        f"{esc(kb.entities[p[1]].name)}</a></li>" for p in links.pairs_with(info["id"]))
    aliases = ", ".join(esc(a) for a in info["aliases"]) or "–"
    return f"""<h1>{esc(info['name'])}</h1>
<p class="meta">id <code>{esc(info['id'])}</code> · also called {aliases} · {len(info['facts'])} facts</p>
<p class="summary">{esc(info['summary'])}</p>
{f"<h2>A versus B</h2><ul>{compare}</ul>" if compare else ""}
<h2 id="panel">Typical panel</h2>
<p class="muted">Fraction of published cases positive (for loss markers: lost), with the number of cases, the
evidence level and the source. Rows marked <span class="ev ev-estimate">estimate</span> are not from a counted
series. "P(+) used" is what the interpreter uses (Beta posterior mean, n capped).</p>
{panel}
{_pair_background_rows(kb, links, entity=info['id'])}
{_elicited_rows(kb, links, info['id'])}
<h2 id="pitfalls">Pitfalls</h2>
<ul class="pitfalls">{pitfalls}</ul>
<h2 id="priors">Priors, age and morphology</h2>
{_clinical_block(kb, info['id'])}
<h3 id="site-priors">Site priors</h3>
{priors}
<h3 id="morphology">Morphology</h3>
{_morphology_table(kb, info['id'])}
"""


def marker_page(kb: KnowledgeBase, marker: str, links: SiteLinks) -> str:
    """Which entities stain for ``marker`` and how often, its synonyms, background and lineage group."""
    info = marker_info(marker, kb=kb)
    root = "../"
    rows = []
    for f in info["facts"]:
        est = " class='est'" if f["evidence"] == "estimate" else ""
        anchor = links.fact_anchor(info["marker"], f["site"] or "")
        rows.append(
            f"<tr{est}><td><a href='{esc(root + links.entity[f['entity']])}#{esc(anchor)}'>"
            f"{esc(f['entity_name'])}</a></td><td>{esc(f['site'] or 'any')}</td><td>{_bar(f['fraction_positive'])}"
            f"</td><td>{_n(f['n_cases'])}</td><td>{_evidence_badge(f['evidence'])}</td>"
            f"<td>{esc(pct(f['focal_share']))}</td><td>{esc(f['note'])}</td>"
            f"<td class='src'>{linkify(f['source'])}</td></tr>")
    table = ("<table class='data'><thead><tr><th>entity</th><th>site</th><th>fraction positive</th><th>n</th>"
             "<th>evidence</th><th>focal share</th><th>note</th><th>source</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    elicited = _marker_elicited_rows(kb, links, info["marker"], root)
    group = _group_of(info["marker"])
    group_html = ""
    if group is not None:
        members = ", ".join(f"<a href='{esc(root + links.marker[m])}'>{esc(m)}</a>" for m in group[1]
                            if m in links.marker)
        group_html = (f"<p><b>Correlated group</b> “{esc(group[0])}”: {members}. The interpreter down-weights "
                      "several observed members of one group (1/√k) because they are not independent.</p>")
    synonyms = ", ".join(f"<span class='syn'>{esc(s)}</span>" for s in info["synonyms"]) or "–"
    return f"""<h1>{esc(info['marker'])}</h1>
<p class="meta">{esc(info['kind'])} · synonyms: {synonyms}</p>
<p class="summary">{esc(info['note'])}</p>
{group_html}
<h2>Entities that stain</h2>
{table}
{_pair_background_rows(kb, links, marker=info['marker'])}
{elicited}
"""


def _marker_elicited_rows(kb: KnowledgeBase, links: SiteLinks, marker: str, root: str) -> str:
    """The entities whose figure for ``marker`` rests on the structured elicitation, with median and range."""
    rows = []
    for e in kb.entity_ids:
        ml = marker_likelihood(kb, e, marker)
        fig = ml.elicited
        if fig is None:
            continue
        rows.append(f"<tr><td><a href='{esc(root + links.entity[e])}#{esc(links.elicited_anchor(marker))}'>"
                    f"{esc(kb.entities[e].name)}</a></td><td>{_bar(fig.p_median)}</td>"
                    f"<td>{esc(pct(fig.p_min))}–{esc(pct(fig.p_max))}</td><td>{esc(pct(ml.p_positive))}</td>"
                    f"<td>{esc(fig.rationale)}</td></tr>")
    if not rows:
        return ""
    return ("<h2 id='elicited'>Entities without a series: elicited figures</h2><p class='muted'>The median of the "
            "structured expert elicitation, its range, and what the interpreter uses (updated by any counts).</p>"
            "<table class='data'><thead><tr><th>entity</th><th>P(+) median</th><th>range</th><th>P(+) used</th>"
            f"<th>rationale</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def matrix_page(kb: KnowledgeBase, links: SiteLinks) -> str:
    """Entity × marker heat map of the fraction positive; estimates hatched, background/missing marked."""
    markers = list(kb.markers)
    head = "".join(f"<th class='col'><a href='{esc(links.marker[m])}'><span>{esc(m)}</span></a></th>"
                   for m in markers)
    rows = []
    for e, entity in kb.entities.items():
        cells = []
        for m in markers:
            ml = marker_likelihood(kb, e, m)
            fact = ml.fact if ml.basis != "site" or ml.fact is not None else ml.site_fact
            if ml.elicited is not None:
                fig = ml.elicited
                f = ml.p_positive
                light = 96 - 62 * f
                ink = "#fff" if f > 0.55 else "#111"
                title = f"elicited {pct(fig.p_median)} ({pct(fig.p_min)}-{pct(fig.p_max)})" + (
                    ", updated by data" if ml.fact else "")
                href = f"{links.entity[e]}#{links.elicited_anchor(m)}"
                cells.append(f"<td class='c eli' style='background-color:hsl(212,70%,{light:.0f}%);color:{ink}'>"
                             f"<a href='{esc(href)}' title='{esc(title)}'>{round(f * 100):d}</a></td>")
                continue
            if ml.basis == "no data" or fact is None:
                cells.append(f"<td class='miss' title='{esc(entity.name)} × {esc(m)}: no data'>·</td>")
                continue
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
            light = 96 - 62 * f
            ink = "#fff" if f > 0.55 else "#111"
            n = "" if fact.n_cases is None else f", n={fact.n_cases}"
            title = f"{entity.name} × {m}: {label}{n}, {fact.evidence}"
            cells.append(f"<td class='{' '.join(classes)}' style='background-color:hsl(212,70%,{light:.0f}%);"
                         f"color:{ink}'><a href='{esc(href)}' title='{esc(title)}'>{round(f * 100):d}</a></td>")
        rows.append(f"<tr><th class='row'><a href='{esc(links.entity[e])}'>{esc(entity.name)}</a></th>"
                    + "".join(cells) + "</tr>")
    return f"""<h1>Entity × marker matrix</h1>
<p class="legend">Cell = percentage of cases positive: published counts, or the expert elicitation where no series
gives counts (click for the figure and its source).
<span class="key c" style="background-color:hsl(212,70%,90%)">10</span> low
<span class="key c" style="background-color:hsl(212,70%,40%);color:#fff">90</span> high
<span class="key c eli" style="background-color:hsl(212,70%,80%)">25</span> structured expert elicitation,
median of the elicitors, updated by literature counts where there are some (dotted underline).</p>
<div class="matrix-wrap"><table class="matrix"><thead><tr><th></th>{head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
"""


def _side_cell(side: Mapping) -> str:
    if side["basis"] == "background":
        lit = f"background {pct(side['fraction_positive'])}"
    else:
        lit = pct(side["fraction_positive"]) + (" (site)" if side["basis"] == "site" else "")
    if side["n_cases"]:
        lit += f" of {side['n_cases']}"
    return f"{esc(lit)} {_evidence_badge(side['evidence'])}"


def short_name(kb: KnowledgeBase, entity: str) -> str:
    """The entity's first alias when it is an abbreviation (``LMS``, ``GIST``), else its name."""
    aliases = kb.entities[entity].aliases
    if aliases and len(aliases[0]) <= 6 and aliases[0].upper() == aliases[0]:
        return aliases[0]
    return kb.entities[entity].name


def compare_page(kb: KnowledgeBase, comparison: Comparison, links: SiteLinks, *, top: int = 12) -> str:
    """A versus B: markers ranked by J divergence with LR+ / LR− and sources, then morphology, pitfalls."""
    root = "../"
    data = comparison.to_json()
    a, b = comparison.a, comparison.b
    name_a, name_b = esc(short_name(kb, a)), esc(short_name(kb, b))

    def row(m: Mapping, rank: int) -> str:
        fav = m["favours_if_positive"]
        fav_txt = name_a if fav == "a" else name_b if fav == "b" else "neither"
        caveats = "".join(f"<br><small class='caveat'>⚠ {esc(c)}</small>" for c in m["caveats"])
        return (f"<tr><td>{rank}</td><td><a href='{esc(root + links.marker[m['marker']])}'>{esc(m['marker'])}</a>"
                f"{'<br><small class=muted>group: ' + esc(m['group']) + '</small>' if m['group'] else ''}"
                f"{caveats}</td>"
                f"<td>{fav_txt}</td><td>{_bar(m['a']['p_positive'])}</td><td>{_bar(m['b']['p_positive'])}"
                f"</td><td class='num'>{m['lr_positive']:.2f}</td><td class='num'>{m['lr_negative']:.2f}</td>"
                f"<td class='num'>{m['j_divergence_bits']:.2f}</td><td>{_side_cell(m['a'])}</td>"
                f"<td>{_side_cell(m['b'])}</td><td class='src'>{_two_sources(m['a']['source'], m['b']['source'])}"
                "</td></tr>")

    def _two_sources(src_a: str, src_b: str) -> str:
        if src_a == src_b:
            return f"<b>both:</b> {linkify(src_a)}"
        return f"<b>{name_a}:</b> {linkify(src_a) or '–'}<br><b>{name_b}:</b> {linkify(src_b) or '–'}"

    head = (f"<thead><tr><th>#</th><th>marker</th><th>+ favours</th><th>P(+ | {name_a})</th>"
            f"<th>P(+ | {name_b})</th><th title='P(+|A)/P(+|B)'>LR+</th><th title='P(−|A)/P(−|B)'>LR−</th>"
            f"<th title='symmetric KL divergence, bits'>J (bits)</th><th>{name_a} literature</th>"
            f"<th>{name_b} literature</th><th>sources</th></tr></thead>")
    ranked = data["markers"]
    top_rows = "".join(row(m, i) for i, m in enumerate(ranked[:top], start=1))
    rest_rows = "".join(row(m, i) for i, m in enumerate(ranked[top:], start=top + 1))
    rest = (f"<details><summary>{len(ranked) - top} more markers (less separating)</summary>"
            f"<table class='data'>{head}<tbody>{rest_rows}</tbody></table></details>") if rest_rows else ""
    no_data = ", ".join(
        f"<a href='{esc(root + links.marker[d['marker']])}'>{esc(d['marker'])}</a> (no data for "
        f"{esc(kb.entities[d['missing_for'][0]].name)})" for d in data["no_data"]) or "none"
    pitfalls = "".join(f"<h3>{esc(kb.entities[e].name)}</h3><ul class='pitfalls'>"
                       + "".join(f"<li>{esc(p)}</li>" for p in kb.entities[e].pitfalls) + "</ul>" for e in (a, b))
    morph_rows = []
    for r in data["morphology"]["values"]:
        lr = r["likelihood_ratio"]
        fav = name_a if lr >= 2 else name_b if lr <= 0.5 else "neither"
        morph_rows.append(
            f"<tr><td>{esc(r['feature'])}</td><td>{esc(r['value'].replace('_', ' '))}</td><td>{_bar(r['a']['p'])}</td>"
            f"<td>{_bar(r['b']['p'])}</td><td class='num'>{lr:.2f}</td><td>{fav}</td>"
            f"<td class='src'>{_two_sources(r['a']['source'], r['b']['source'])}</td></tr>")
    features = ", ".join(f"{esc(f['feature'])} J = {f['j_divergence_bits']:.2f} bits"
                         for f in data["morphology"]["features"])
    if morph_rows:
        morph_table = (f"<p>Separation of each feature as a whole: {features or '–'}. Patterns count only when "
                       "described, so they have a likelihood ratio for “described” and no J.</p>"
                       f"<table class='data compare'><thead><tr><th>feature</th><th>value</th><th>P(value | {name_a})"
                       f"</th><th>P(value | {name_b})</th><th>LR</th><th>favours (LR ≥ 2 or ≤ ½)</th><th>sources</th>"
                       f"</tr></thead><tbody>{''.join(morph_rows)}</tbody></table>")
    else:
        morph_table = "<p class='muted'>No morphology figures for both entities in the knowledge base yet.</p>"
    morph = (f"{morph_table}<h3>{esc(comparison.a_name)}</h3>{_clinical_block(kb, a)}"
             f"<h3>{esc(comparison.b_name)}</h3>{_clinical_block(kb, b)}")
    return f"""<h1><a href="{esc(root + links.entity[a])}">{esc(comparison.a_name)}</a> versus
<a href="{esc(root + links.entity[b])}">{esc(comparison.b_name)}</a></h1>
<p class="summary">Markers ranked by how well one stain separates the two, from the interpreter's own
likelihoods: <b>LR+</b> = P(+ | {name_a}) / P(+ | {name_b}) multiplies the odds of {name_a} against {name_b}
when the stain is positive, <b>LR−</b> when it is negative; <b>J</b> is the symmetric Kullback–Leibler
divergence (bits), the expected log-likelihood ratio in favour of the true entity. P(+) includes a 1% stain
error, so no LR exceeds ~99.</p>
<h2>Separating markers</h2>
<table class="data compare">{head}<tbody>{top_rows}</tbody></table>
{rest}
<p><b>Not comparable</b> (no figure for one of the two): {no_data}</p>
<h2>Morphology and clinical criteria</h2>
{morph}
<h2>Pitfalls</h2>
{pitfalls}
"""


def quiz_page(sets: Mapping[str, int], skipped: tuple[tuple[str, str], ...]) -> str:
    """The quiz frame; questions, answers and scoring live in the page script (quiz-data.js + site.js)."""
    total = sum(sets.values())
    left_out = ""
    if skipped:
        left_out = (f"<p class='muted'>Left out: {len(skipped)} case(s) the interpreter cannot read ("
                    + "; ".join(f"{esc(i)}: {esc(r)}" for i, r in skipped) + ").</p>")
    return f"""<h1>Case quiz</h1>
<p class="summary">{total} cases: {sets.get('original', 0)} test panels, {sets.get('holdout', 0)} hold-out panels and
{sets.get('reports', 0) + sets.get('reports-b', 0)} published case reports (with age, sex and morphology as
reported). Read the case, pick a diagnosis, then compare with the
interpreter's differential, the evidence it used and the sources. The score stays in this page.</p>
{left_out}
<p id="quiz-score" class="score" aria-live="polite">Score: 0 / 0</p>
<section id="quiz"><noscript>The quiz needs JavaScript (it runs locally, nothing is sent anywhere).</noscript>
</section>
"""


def index_page(kb: KnowledgeBase, links: SiteLinks, *, n_questions: int, provenance: Mapping[str, str]) -> str:
    """Landing page: what the site is, the lists of entities, markers and A-versus-B pairs."""
    entities = "".join(
        f"<li><a href='{esc(links.entity[e.id])}'>{esc(e.name)}</a> <small class='muted'>"
        f"{esc(', '.join(e.aliases))}</small></li>" for e in sorted(kb.entities.values(), key=lambda x: x.name))
    by_kind: dict[str, list[str]] = {}
    for m in kb.markers.values():
        syn = f" <small class='muted'>{esc(', '.join(m.synonyms[:4]))}</small>" if m.synonyms else ""
        by_kind.setdefault(m.kind, []).append(f"<li><a href='{esc(links.marker[m.name])}'>{esc(m.name)}</a>{syn}</li>")
    markers = "".join(f"<h3>{esc(kind)}</h3><ul class='cols'>{''.join(items)}</ul>" for kind, items in by_kind.items())
    pairs = "".join(f"<li><a href='{esc(links.pair[p])}'>{esc(kb.entities[p[0]].name)} versus "
                    f"{esc(kb.entities[p[1]].name)}</a></li>" for p in links.pairs)
    prov = " · ".join(f"{esc(k)} {esc(v)}" for k, v in provenance.items())
    return f"""<h1>Spindle-cell tumour IHC knowledge base</h1>
<p class="summary">Every figure the spindledx panel interpreter uses, with its number of cases, evidence level and
source: {len(kb.entities)} entities, {len(kb.markers)} markers, {len(kb.facts)} facts. A decision aid for teaching;
the figures come from published series and reviews, estimates are marked.</p>
<ul class="tiles">
<li><a href="panel.html"><b>Panel form</b><br>enter stains, see the differential</a></li>
<li><a href="matrix.html"><b>Matrix</b><br>entity × marker heat map</a></li>
<li><a href="#compare"><b>A versus B</b><br>{len(links.pairs)} differentials</a></li>
<li><a href="quiz.html"><b>Quiz</b><br>{n_questions} cases</a></li>
</ul>
<h2 id="entities">Entities</h2><ul class="cols">{entities}</ul>
<h2 id="markers">Markers</h2>{markers}
<h2 id="compare">A versus B</h2><ul>{pairs}</ul>
<p class="muted">Built from {prov}.</p>
"""
