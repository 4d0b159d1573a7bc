/* spindledx knowledge-base site: the panel form.
   The model of spindledx.ihc.interpret_panel, computed from the numbers the site generator exported from it
   (window.SPX_MODEL, assets/panel-model.js): this file only combines them, step by step as interpret.py does.
   Runs from file:// with no network; knowledge-base strings are inserted with textContent only. */
(function () {
  "use strict";

  var M = window.SPX_MODEL;
  if (!M) { return; }
  var C = M.constants;
  var N = M.entities.length;
  var EPS = C.stain_error;
  var markerIndex = {};
  M.markers.forEach(function (m, j) { markerIndex[m.name] = j; });

  /* ---- the model (spindledx.ihc.interpret, model, evidence, priors, selection) ---- */
  var tables = {};
  function siteTable(site) {
    var key = site || "";
    if (tables[key]) { return tables[key]; }
    var t = { p: M.table.p.map(function (r) { return r.slice(); }),
              focal: M.table.focal.map(function (r) { return r.slice(); }),
              basis: M.table.basis.map(function (r) { return r.slice(); }) };
    (key ? M.site_tables[key] || [] : []).forEach(function (d) {
      t.p[d[0]][d[1]] = d[2]; t.focal[d[0]][d[1]] = d[3]; t.basis[d[0]][d[1]] = d[4];
    });
    tables[key] = t;
    return t;
  }

  function eventLikelihood(p, share, event) {
    var q = EPS + (1 - 2 * EPS) * p;
    var s = EPS + (1 - 2 * EPS) * share;
    if (event === "pos") { return q; }
    if (event === "neg") { return 1 - q; }
    if (event === "focal") { return q * s; }
    if (event === "diffuse") { return q * (1 - s); }
    throw new Error("unknown event " + event);
  }

  function sum(a) { var s = 0; for (var i = 0; i < a.length; i++) { s += a[i]; } return s; }
  function max(a) { return Math.max.apply(null, a); }

  /* model.fill_neutral: "no data" cells get the weighted mean of the entities with data (null when none has) */
  function fillNeutral(col, weights) {
    var total = 0, acc = 0;
    for (var i = 0; i < col.length; i++) {
      if (col[i] !== null) { total += weights[i]; acc += weights[i] * col[i]; }
    }
    var mean = total > 0 ? acc / total : null;
    return col.map(function (v) { return v !== null ? v : mean; });
  }

  /* evidence.neutral_fill */
  function neutralFill(values, weights) {
    var known = values.filter(function (v) { return v !== null; });
    if (!known.length) { return values.map(function () { return 1; }); }
    var w = 0, acc = 0;
    values.forEach(function (v, i) { if (v !== null) { w += weights[i]; acc += weights[i] * v; } });
    var mean = w > 0 ? acc / w : sum(known) / known.length;
    return values.map(function (v) { return v !== null ? v : mean; });
  }

  function groupWeights(markers) {
    var w = {};
    markers.forEach(function (m) { w[m] = 1; });
    M.groups.forEach(function (members) {
      var present = markers.filter(function (m) { return members.indexOf(m) >= 0; });
      present.forEach(function (m) { w[m] = 1 / Math.sqrt(present.length); });
    });
    return w;
  }

  function ageLikelihood(fit, age) {
    if (!fit) { return null; }
    var sigma = Math.max(fit[1], 0.05);
    var a = Math.max(age, 1);
    var z = (Math.log(a) - Math.log(Math.max(fit[0], 1))) / sigma;
    var density = Math.exp(-0.5 * z * z) / (a * sigma * Math.sqrt(2 * Math.PI));
    return (1 - M.clinical.age_outlier_share) * density + M.clinical.age_outlier_share *
      M.clinical.age_uniform_density;
  }

  function mitosisBand(per10) {
    var limits = [5, 10, 20];
    for (var k = 0; k < limits.length; k++) { if (per10 < limits[k]) { return k; } }
    return 3;
  }

  function entropy(p) {
    var h = 0;
    p.forEach(function (x) { if (x > 0) { h -= x * Math.log2(x); } });
    return h;
  }

  function expectedInformationGain(pi, pPos) {
    var gain = entropy(pi);
    [pPos, pPos.map(function (x) { return 1 - x; })].forEach(function (lik) {
      var joint = pi.map(function (x, i) { return x * lik[i]; });
      var pr = sum(joint);
      if (pr > 0) { gain -= pr * entropy(joint.map(function (x) { return x / pr; })); }
    });
    return Math.max(gain, 0);
  }

  function effect(lr, basis) {
    if (basis === "no data") { return "neutral"; }
    if (lr >= C.support_lr) { return "supports"; }
    if (lr <= 1 / C.support_lr) { return "against"; }
    return "neutral";
  }

  /* input: {site, obs: [{marker, event, result}], age, sex, mitoses (per 10 HPF), necrosis (true/false),
     atypia, patterns: [...]} (null / empty: not given) */
  function interpret(input) {
    var site = input.site || "";
    var table = siteTable(site);
    var prior = M.priors[site];
    var warnings = [];
    var ew = C.evidence_weight;
    if (site && M.site_sex[site] && input.sex && input.sex !== M.site_sex[site]) {
      warnings.push("sex " + input.sex + " contradicts the site " + site + " (a site of the other sex): check " +
        "both; the sex is still used as given");
    }
    var clinical = [];
    if (input.age !== null && input.age !== undefined) {
      clinical.push({ kind: "clinical", item: "age", result: String(input.age),
        lik: neutralFill(M.clinical.age.map(function (fit) { return ageLikelihood(fit, input.age); }), prior),
        known: M.clinical.age.map(function (fit) { return fit !== null; }), weight: 1 });
    }
    if (input.sex) {
      clinical.push({ kind: "clinical", item: "sex", result: input.sex,
        lik: neutralFill(M.clinical.female.map(function (f) {
          return f === null ? null : input.sex === "F" ? f : 1 - f;
        }), prior), known: M.clinical.female.map(function (f) { return f !== null; }), weight: 1 });
    }
    var logContext = prior.map(function (w, i) {
      var s = Math.log(w);
      clinical.forEach(function (c) { s += Math.log(c.lik[i]); });
      return s;
    });
    var scaled = logContext.map(function (x) { return C.context_weight * x; });
    var top = max(scaled);
    var floor = top - ew * Math.log(C.context_max_ratio);
    var capped = scaled.map(function (x) { return Math.max(x, floor); });
    var cmax = max(capped);
    var context = capped.map(function (x) { return Math.exp(x - cmax); });
    var ctot = sum(context);
    context = context.map(function (x) { return x / ctot; });

    var markers = input.obs.map(function (o) { return o.marker; });
    var gw = groupWeights(markers);
    var columns = [];
    input.obs.forEach(function (o) {
      var j = markerIndex[o.marker];
      var p = fillNeutral(table.p.map(function (r) { return r[j]; }), context);
      if (p.some(function (x) { return x === null; })) { p = p.map(function () { return 0.5; }); }
      var focal = table.focal.map(function (r) { return r[j]; });
      var outcomes = o.event === "pos" || o.event === "neg" ? ["neg", "pos"] : ["neg", "focal", "diffuse"];
      var tmean = [], tvar = [];
      for (var i = 0; i < N; i++) {
        var probs = outcomes.map(function (r) { return eventLikelihood(p[i], focal[i], r); });
        var tot = sum(probs);
        probs = probs.map(function (x) { return x / tot; });
        var m1 = sum(probs.map(function (x) { return x * Math.log(x); }));
        var m2 = sum(probs.map(function (x) { return x * Math.log(x) * Math.log(x); }));
        tmean.push(m1);
        tvar.push(m2 - m1 * m1);
      }
      columns.push({ kind: "stain", item: o.marker, result: o.result, event: o.event,
        lik: p.map(function (x, i) { return eventLikelihood(x, focal[i], o.event); }),
        fit: p.map(function (x, i) { return eventLikelihood(x, focal[i], o.event === "neg" ? "neg" : "pos"); }),
        basis: table.basis.map(function (r) { return M.basis_codes[r[j]]; }),
        weight: gw[o.marker] * ew, tmean: tmean, tvar: tvar, marker: j });
    });
    function morph(item, result, values) {
      columns.push({ kind: "morphology", item: item, result: result, lik: neutralFill(values, context),
        known: values.map(function (v) { return v !== null; }), weight: ew });
    }
    if (input.mitoses !== null && input.mitoses !== undefined) {
      var band = mitosisBand(input.mitoses);
      morph("mitoses", (input.mitoses_input ? input.mitoses_input + " = " : "") +
        (Math.round(input.mitoses * 10) / 10) + "/10 HPF (" + M.mitosis_bands[band] + ")",
        M.morphology.mitoses.map(function (r) { return r === null ? null : r[band]; }));
    }
    if (input.necrosis === true || input.necrosis === false) {
      morph("necrosis", input.necrosis ? "yes" : "no", M.morphology.binary.necrosis.map(function (p) {
        return p === null ? null : input.necrosis ? p : 1 - p;
      }));
    }
    if (input.atypia) {
      var level = M.atypia_levels.indexOf(input.atypia);
      morph("atypia", input.atypia, M.morphology.atypia.map(function (r) { return r === null ? null : r[level]; }));
    }
    (input.patterns || []).forEach(function (pat) {
      morph("pattern", pat, M.morphology.binary[pat]);
    });
    if (M.selection) {
      var sel = M.selection;
      var t = sel.markers.map(function (m) { return markers.indexOf(m) >= 0 ? 1 : 0; });
      var ll = sel.q.map(function (row) {
        var s = 0;
        row.forEach(function (q, k) {
          s += C.selection_weight * t[k] * Math.log(q) + C.selection_absent_weight * (1 - t[k]) * Math.log1p(-q);
        });
        return s;
      });
      var llmax = max(ll);
      ll = ll.map(function (x) { return x - llmax; });
      columns.push({ kind: "selection", item: "markers tested", result: markers.length + " markers",
        lik: ll.map(function (x) { return Math.exp(Math.max(x, -700)); }), weight: 1, t: t });
    }
    var logLik = [];
    for (var i = 0; i < N; i++) {
      var s = 0;
      columns.forEach(function (c) { s += Math.log(c.lik[i]) * c.weight; });
      logLik.push(s);
    }
    var z = capped.map(function (x, k) { return (x + logLik[k]) / C.temperature; });
    var zmax = max(z);
    var post = z.map(function (x) { return Math.exp(x - zmax); });
    var ptot = sum(post);
    post = post.map(function (x) { return (1 - C.doubt) * (x / ptot) + C.doubt / N; });

    var stains = columns.filter(function (c) { return c.kind === "stain"; });
    var typicality = [];
    for (i = 0; i < N; i++) {
      var obs = 0, mean = 0, v = 0;
      stains.forEach(function (c) {
        obs += Math.log(c.lik[i]) * c.weight;
        mean += c.tmean[i] * c.weight;
        v += c.tvar[i] * c.weight * c.weight;
      });
      typicality.push((obs - mean) / Math.sqrt(Math.max(v, 1e-6)));
    }
    var best = stains.length ? max(typicality) : null;
    var unexplained = 0;
    if (stains.length && best < C.open_world_z) {
      unexplained = C.open_world_share;
      post = post.map(function (x) { return (1 - unexplained) * x; });
      warnings.push("no entity in the knowledge base explains this panel well (the best fit is " +
        (-best).toFixed(1) + " standard deviations below that entity's own typical panel): " +
        Math.round(unexplained * 100) + "% of the probability is set aside for 'none of these'; re-check the " +
        "stains and consider entities outside this knowledge base");
    }
    var fit = [];
    for (i = 0; i < N; i++) {
      fit.push(Math.exp(sum(stains.map(function (c) { return Math.log(c.fit[i]); })) / stains.length));
    }

    /* explanations: each column's likelihood ratio against the context-weighted mean of the other entities */
    var explained = clinical.concat(columns);
    var totals = explained.map(function (c) { return sum(c.lik.map(function (x, k) { return context[k] * x; })); });
    var order = post.map(function (_, k) { return k; });
    order.sort(function (a, b) { return post[b] - post[a] || a - b; });
    var entries = order.map(function (idx) {
      var rest = 1 - context[idx];
      var others = (1 - prior[idx]) / Math.max(N - 1, 1);
      var priorLr = others > 0 ? prior[idx] / others : Infinity;
      var evidence = [{ kind: "prior", item: "prior", result: site ? "site (" + site + ")" : "population",
        likelihood: prior[idx], lr: priorLr, effect: effect(priorLr, site ? "site" : "population"),
        basis: site ? "site" : "population" }];
      explained.forEach(function (c, k) {
        var lik = c.lik[idx];
        var alt = rest > 0 ? (totals[k] - context[idx] * lik) / rest : lik;
        var lr = alt > 0 ? lik / alt : Infinity;
        var basis = c.kind === "stain" ? c.basis[idx] : c.kind === "selection" ? "elicited" :
          c.known[idx] ? "literature" : "no data";
        evidence.push({ kind: c.kind, item: c.item, result: c.result, likelihood: lik, lr: lr,
          effect: effect(lr, basis), basis: basis, marker: c.marker, column: c });
      });
      return { index: idx, id: M.entities[idx].id, name: M.entities[idx].name, probability: post[idx],
        prior: prior[idx], fit: fit[idx], evidence: evidence };
    });

    var nextMarkers = [];
    var nNext = input.n_next === undefined ? 8 : input.n_next;
    var lead = order.slice(0, 4);
    M.markers.forEach(function (m, j) {
      if (!nNext || markers.indexOf(m.name) >= 0 || M.non_discriminatory.indexOf(m.name) >= 0) { return; }
      var col = table.p.map(function (r) { return r[j]; });
      if (!col.some(function (x) { return x !== null; })) { return; }
      var p = fillNeutral(col, post);
      var pPos = p.map(function (x, k) { return eventLikelihood(x, table.focal[k][j], "pos"); });
      nextMarkers.push({ marker: m.name, kind: m.kind, gain: expectedInformationGain(post, pPos),
        expected: lead.map(function (k) { return [M.entities[k].id, pPos[k]]; }) });
    });
    nextMarkers.sort(function (a, b) {
      return b.gain - a.gain || (a.marker < b.marker ? -1 : a.marker > b.marker ? 1 : 0);
    });
    nextMarkers = nextMarkers.slice(0, nNext);

    var first = entries[0];
    if (unexplained) {
      /* said above */
    } else if (first.fit < C.fit_threshold) {
      warnings.push("the profile fits no entity well (best: " + first.name + ", mean per-stain likelihood " +
        first.fit.toFixed(2) + " < " + C.fit_threshold + "): re-check the stains and consider molecular testing " +
        "or entities outside this knowledge base");
    } else if (first.probability < C.unresolved_top_p) {
      warnings.push("differential unresolved (top probability " + Math.round(first.probability * 100) +
        "%): add the next markers below or confirm with molecular testing");
    }
    var discordant = first.evidence.filter(function (ev) {
      return ev.kind === "stain" && ev.likelihood < C.discordant_p && ev.basis !== "no data";
    }).map(function (ev) { return ev.item; });
    if (discordant.length) {
      warnings.push("discordant for " + first.name + ": " + discordant.join(", ") +
        " (see pitfalls; repeat or add controls)");
    }
    var noFigure = input.obs.filter(function (o) { return !M.markers[markerIndex[o.marker]].with_facts; })
      .map(function (o) { return "no figure for " + o.marker + " in the knowledge base: it does not change the ranking"; });
    warnings = noFigure.concat(warnings);
    return { differential: entries, next_markers: nextMarkers, warnings: warnings, unexplained: unexplained,
      context: context, best_typicality: best };
  }

  /* the markers that move an entity most in the "markers tested" term (selection.leading_terms) */
  function leadingTerms(column, idx) {
    var sel = M.selection;
    var t = column.t;
    var shifts = sel.markers.map(function (m, k) {
      var ll = function (row) { return t[k] * Math.log(row[k]) + (1 - t[k]) * Math.log1p(-row[k]); };
      var mean = sum(sel.q.map(ll)) / sel.q.length;
      return { marker: m, tested: !!t[k], q: sel.q[idx][k], shift: ll(sel.q[idx]) - mean, k: k };
    });
    shifts.sort(function (a, b) { return Math.abs(b.shift) - Math.abs(a.shift) || a.k - b.k; });
    return shifts.slice(0, 3).filter(function (s) { return Math.abs(s.shift) > Math.log(1.5); });
  }

  /* ---- reading a typed panel (the compact grammar of spindledx.ihc.vocabulary) ---- */
  function normalize(text) {
    var s = String(text).normalize("NFKC").toLowerCase();
    s = s.replace(/α/g, "alpha").replace(/β/g, "beta").replace(/δ/g, "delta").replace(/γ/g, "gamma");
    return s.replace(/[\s\-_.\/\u2010-\u2015\u2212]+/g, "");
  }
  var nameIndex = {};
  M.markers.forEach(function (m) {
    [m.name].concat(m.synonyms).forEach(function (n) { nameIndex[normalize(n)] = m.name; });
  });
  var WORDS = { "+": "pos", "pos": "pos", "positive": "pos", "-": "neg", "\u2212": "neg", "\u2013": "neg",
    "neg": "neg", "negative": "neg", "focal": "focal", "focal+": "focal", "patchy": "focal", "weak": "focal",
    "diffuse": "diffuse", "strong": "diffuse", "lost": "lost", "retained": "retained", "low": "low",
    "high": "high", "intact": "retained", "preserved": "retained", "loss": "lost" };

  /* vocabulary._event: a result word to the model event for a marker of this kind (null: not a result for it) */
  function toEvent(kind, word) {
    var pm = /^(\d+(?:\.\d+)?)\s*%$/.exec(word);
    if (pm) {
      var percent = parseFloat(pm[1]);
      if (percent > 100 || kind === "loss" || kind === "molecular") { return null; }
      if (kind === "proliferation") { return percent > C.ki67_high_percent ? "pos" : "neg"; }
      if (percent === 0) { return "neg"; }
      return percent >= C.diffuse_percent ? "diffuse" : "focal";
    }
    var v = WORDS[word.toLowerCase()];
    if (!v) { return null; }
    if (kind === "loss") { return { pos: "neg", neg: "pos", retained: "neg", lost: "pos" }[v] || null; }
    if (kind === "proliferation") { return { pos: "pos", neg: "neg", high: "pos", low: "neg" }[v] || null; }
    if (kind === "molecular" && v !== "pos" && v !== "neg") { return null; }
    return { lost: "neg", retained: "pos", low: "focal", high: "diffuse" }[v] || v;
  }

  function resolveMarker(name) { return nameIndex[normalize(name)] || null; }

  /* a sign at the end of the token, else MARKER:RESULT, else no result (the first whose name is a marker) */
  function splitResult(token) {
    var splits = [];
    var last = token.slice(-1);
    if ("+-\u2212\u2013".indexOf(last) >= 0 && token.length > 1) { splits.push([token.slice(0, -1), last]); }
    var colon = token.lastIndexOf(":");
    if (colon > 0) { splits.push([token.slice(0, colon), token.slice(colon + 1)]); }
    splits.push([token, ""]);
    return splits.filter(function (s) { return resolveMarker(s[0]); })[0] || splits[splits.length - 1];
  }

  var NOT_DONE = [["not", "done"], ["not", "performed"], ["not", "tested"], ["pending"], ["n/a"], ["nd"]];
  function notDoneAt(tokens, k) {
    for (var i = 0; i < NOT_DONE.length; i++) {
      var phrase = NOT_DONE[i];
      if (tokens.slice(k, k + phrase.length).join(" ").toLowerCase() === phrase.join(" ")) { return phrase.length; }
    }
    return 0;
  }

  /* "actin+ desmin+ CK-pan- CD34- S100 not done" -> {obs: [{marker, event, result}], not_done: [marker],
     unread: [...]} */
  function readPanel(text) {
    var tokens = String(text).split(/[\s,;]+/).filter(function (t) { return t; });
    var obs = [], unread = [], notDone = [];
    var k = 0;
    while (k < tokens.length) {
      var done = false;
      for (var n = Math.min(4, tokens.length - k); n >= 1 && !done; n--) {
        var words = tokens.slice(k, k + n);
        var parts = splitResult(words.join(" "));
        var marker = resolveMarker(parts[0]);
        var word = parts[1];
        var used = n;
        var skip = marker && !word ? notDoneAt(tokens, k + n) : 0;
        if (skip) {
          notDone.push(marker);
          k += n + skip;
          done = true;
          break;
        }
        if (marker && !word && k + n < tokens.length && toEvent(M.markers[markerIndex[marker]].kind,
          tokens[k + n]) !== null) {
          word = tokens[k + n];
          used = n + 1;
        }
        if (marker && word) {
          var event = toEvent(M.markers[markerIndex[marker]].kind, word);
          if (event !== null) {
            obs = obs.filter(function (o) { return o.marker !== marker; });
            obs.push({ marker: marker, event: event, result: word });
            k += used;
            done = true;
          }
        }
      }
      if (!done) { unread.push(tokens[k]); k += 1; }
    }
    return { obs: obs, not_done: notDone, unread: unread };
  }

  window.SPX_PANEL = { interpret: interpret, readPanel: readPanel, resolveMarker: resolveMarker,
    toEvent: toEvent };

  /* ---- the page ---- */
  var root = document.body.getAttribute("data-root") || "";
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function pct(p, digits) {
    if (p > 0 && p < 0.0005) { return "<0.1%"; }
    return (p * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }
  function num(x) { return !isFinite(x) ? "∞" : x >= 100 ? x.toFixed(0) : x.toFixed(2); }

  var form = document.getElementById("panel-form");
  if (!form) { return; }
  var rowsBody = document.querySelector("#panel-rows tbody");
  var CHOICES = {
    ihc: [["pos", "+"], ["neg", "−"], ["focal", "focal"], ["diffuse", "diffuse"]],
    molecular: [["pos", "+"], ["neg", "−"]],
    loss: [["pos", "lost"], ["neg", "retained"]],
    proliferation: [["pos", "high (>" + C.ki67_high_percent + "%)"], ["neg", "low"]]
  };
  var RESULT_WORD = { pos: "+", neg: "-", focal: "focal", diffuse: "diffuse" };
  var KIND_WORD = { loss: { pos: "lost", neg: "retained" }, proliferation: { pos: "high", neg: "low" } };
  var expanded = {};

  function addRow(marker, event) {
    var existing = rowsBody.querySelector("tr[data-marker='" + CSS.escape(marker) + "']");
    var m = M.markers[markerIndex[marker]];
    if (existing) {
      existing.querySelector("select").value = event;
      return;
    }
    var tr = el("tr", { "data-marker": marker });
    var td = el("td");
    td.appendChild(el("a", { href: root + m.href }, marker));
    tr.appendChild(td);
    var sel = el("select", { "aria-label": "result of " + marker });
    (CHOICES[m.kind] || CHOICES.ihc).forEach(function (c) { sel.appendChild(el("option", { value: c[0] }, c[1])); });
    sel.appendChild(el("option", { value: "" }, "not done"));
    sel.value = event;
    sel.addEventListener("change", update);
    td = el("td");
    td.appendChild(sel);
    tr.appendChild(td);
    var rm = el("button", { type: "button", "class": "rm", "aria-label": "remove " + marker }, "×");
    rm.addEventListener("click", function () { tr.remove(); update(); });
    td = el("td");
    td.appendChild(rm);
    tr.appendChild(td);
    rowsBody.appendChild(tr);
  }

  function currentObs() {
    var obs = [];
    Array.prototype.forEach.call(rowsBody.querySelectorAll("tr"), function (tr) {
      var marker = tr.getAttribute("data-marker");
      var event = tr.querySelector("select").value;
      if (!event) { return; }
      var kind = M.markers[markerIndex[marker]].kind;
      obs.push({ marker: marker, event: event, result: (KIND_WORD[kind] || RESULT_WORD)[event] });
    });
    return obs;
  }

  function value(id) { return document.getElementById(id).value; }
  function numberOrNull(id) {
    var v = value(id).trim();
    if (v === "") { return null; }
    var x = Number(v);
    return isFinite(x) && x >= 0 ? x : null;
  }

  function currentInput() {
    var age = numberOrNull("f-age");
    if (age !== null && age > 120) { age = null; }
    var necrosis = value("f-necrosis");
    var count = numberOrNull("f-mitoses");
    var unit = value("f-mitoses-unit");
    /* findings.parse_mitoses: COUNT/NHPF -> count * 10 / N; a density per mm² -> density * 10 * HPF area */
    var per10 = count === null ? null : unit === "mm2" ? count * 10 * C.hpf_area_mm2 :
      unit === "50HPF" ? count * 10 / 50 : count * 10 / 10;
    return { site: value("f-site"), obs: currentObs(), age: age, sex: value("f-sex") || null,
      mitoses: per10, mitoses_input: count === null ? null : count + "/" + unit,
      necrosis: necrosis === "" ? null : necrosis === "yes",
      atypia: value("f-atypia") || null,
      patterns: Array.prototype.filter.call(form.querySelectorAll("input[name=pattern]"), function (c) {
        return c.checked; }).map(function (c) { return c.value; }) };
  }

  function table(headers, rows, cls) {
    var t = el("table", { "class": cls || "data" });
    var thead = el("thead"), tr = el("tr");
    headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    thead.appendChild(tr);
    t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (cells) {
      var r = el("tr");
      cells.forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) { td.appendChild(c); } else { td.textContent = c; }
        r.appendChild(td);
      });
      tbody.appendChild(r);
    });
    t.appendChild(tbody);
    return t;
  }

  var BASIS_LABEL = { "entity": "literature", "site": "literature for this site", "elicited": "expert elicitation",
    "elicited + data": "expert elicitation and literature", "pair background": "specificity figure",
    "background": "marker background", "no data": "no data (neutral)", "literature": "literature",
    "population": "population frequency" };

  function evidenceTarget(entry, ev) {
    var e = M.entities[entry.index];
    if (ev.kind === "stain") {
      var m = M.markers[ev.marker];
      var anchor = { "entity": m.fact, "site": m.fact, "elicited": m.elicited, "elicited + data": m.elicited,
        "pair background": m.pair }[ev.basis];
      return anchor ? root + e.href + "#" + anchor : root + m.href;
    }
    return root + e.href;
  }

  function evidenceTable(entry) {
    var rows = entry.evidence.map(function (ev) {
      var item = ev.item;
      var note = ev.basis;
      if (ev.kind === "prior") {
        note = ev.basis === "site" ? "site prior" : "population frequency";
      } else if ((ev.kind === "clinical" || ev.kind === "morphology") && ev.basis !== "no data") {
        note = ev.kind === "clinical" ? "age and sex figures" : "morphology figures";
      } else if (ev.kind === "selection") {
        note = leadingTerms(ev.column, entry.index).map(function (s) {
          return s.marker + (s.tested ? " tested" : " not tested") + " (reported in " + pct(s.q, 0) +
            " of work-ups)";
        }).join("; ") || "as usual for this entity's work-up as for the others";
      }
      var link = el("a", { href: evidenceTarget(entry, ev) }, BASIS_LABEL[note] || note);
      var effectCell = el("span", { "class": "eff " + ev.effect }, ev.effect);
      return [ev.kind, item, ev.result, num(ev.likelihood), num(ev.lr), effectCell, link];
    });
    return table(["kind", "item", "result", "P(result | entity)", "LR", "effect", "rests on"], rows, "data ev");
  }

  function render(result) {
    var host = document.getElementById("panel-result");
    host.textContent = "";
    var warn = document.getElementById("panel-warnings");
    warn.textContent = "";
    result.warnings.forEach(function (w) { warn.appendChild(el("p", { "class": "warn" }, w)); });
    var t = el("table", { "class": "data diff", id: "differential" });
    var head = el("tr");
    ["#", "entity", "probability", "prior", "fit", "supports", "against"].forEach(function (h) {
      head.appendChild(el("th", null, h));
    });
    var thead = el("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    var tbody = el("tbody");
    var shown = result.differential.filter(function (e, k) { return k < 10 || e.probability >= 0.001; });
    shown.forEach(function (entry, k) {
      var tr = el("tr", { "class": "entity", "data-entity": entry.id, "data-probability": String(entry.probability),
        tabindex: "0" });
      tr.appendChild(el("td", null, k + 1));
      var name = el("td");
      name.appendChild(el("a", { href: root + M.entities[entry.index].href }, entry.name));
      tr.appendChild(name);
      var pc = el("td", { "class": "p" });
      var bar = el("span", { "class": "bar" });
      var fill = el("span", { "class": "fill" });
      fill.style.width = Math.round(entry.probability * 100) + "%";
      bar.appendChild(fill);
      bar.appendChild(el("span", { "class": "val" }, pct(entry.probability)));
      pc.appendChild(bar);
      tr.appendChild(pc);
      tr.appendChild(el("td", null, pct(entry.prior)));
      tr.appendChild(el("td", null, entry.fit.toFixed(2)));
      var items = function (eff) {
        return entry.evidence.filter(function (ev) { return ev.effect === eff; }).map(function (ev) {
          return ev.item; }).join(", ");
      };
      tr.appendChild(el("td", null, items("supports")));
      tr.appendChild(el("td", null, items("against")));
      var detail = el("tr", { "class": "detail" });
      var td = el("td", { colspan: "7" });
      td.appendChild(evidenceTable(entry));
      var pitfalls = M.entities[entry.index].pitfalls;
      if (pitfalls.length) {
        td.appendChild(el("p", { "class": "muted" }, "Pitfalls of " + entry.name + ":"));
        var ul = el("ul", { "class": "pitfalls" });
        pitfalls.forEach(function (p) { ul.appendChild(el("li", null, p)); });
        td.appendChild(ul);
      }
      detail.appendChild(td);
      var open = expanded[entry.id] !== undefined ? expanded[entry.id] : k === 0;
      detail.hidden = !open;
      var toggle = function (ev) {
        if (ev.target.tagName === "A") { return; }
        detail.hidden = !detail.hidden;
        expanded[entry.id] = !detail.hidden;
      };
      tr.addEventListener("click", toggle);
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { toggle(ev); } });
      tbody.appendChild(tr);
      tbody.appendChild(detail);
    });
    t.appendChild(tbody);
    host.appendChild(t);
    if (result.unexplained) {
      host.appendChild(el("p", { "class": "warn" }, "none of these entities: " + pct(result.unexplained)));
    }
    var next = document.getElementById("panel-next");
    next.textContent = "";
    var leadNames = result.differential.slice(0, 4).map(function (e) { return e.name; });
    next.appendChild(table(["marker", "kind", "expected gain (bits)"].concat(leadNames.map(function (n) {
      return "P(+) " + n; })), result.next_markers.map(function (m) {
      var a = el("a", { href: root + M.markers[markerIndex[m.marker]].href }, m.marker);
      return [a, m.kind, m.gain.toFixed(3)].concat(m.expected.map(function (x) { return pct(x[1], 0); }));
    }), "data next"));
  }

  /* the stains in the compact grammar (read back by readPanel and by spindledx panel) */
  function panelText(obs) {
    return obs.map(function (o) {
      var kind = M.markers[markerIndex[o.marker]].kind;
      var w = (KIND_WORD[kind] || RESULT_WORD)[o.event];
      return o.marker.replace(/ /g, "_") + (w === "+" || w === "-" ? w : ":" + w);
    }).join(" ");
  }

  function writeHash(input) {
    var parts = [];
    if (input.obs.length) { parts.push("panel=" + encodeURIComponent(panelText(input.obs))); }
    ["site", "age", "sex", "mitoses", "mitoses-unit", "necrosis", "atypia"].forEach(function (k) {
      var v = value("f-" + k);
      if (v) { parts.push(k + "=" + encodeURIComponent(v)); }
    });
    if (input.patterns.length) { parts.push("pattern=" + encodeURIComponent(input.patterns.join(","))); }
    try { history.replaceState(null, "", "#" + parts.join("&")); } catch (e) { /* file:// may refuse */ }
  }

  function quote(text) { return /^[\w.,:+\/-]+$/.test(text) ? text : "'" + text.replace(/'/g, "'\\''") + "'"; }

  function commandLine(input) {
    if (!input.obs.length) { return ""; }
    var words = ["spindledx", "panel", quote(panelText(input.obs))];
    if (input.site) { words.push("--site", input.site); }
    if (input.age !== null) { words.push("--age", String(input.age)); }
    if (input.sex) { words.push("--sex", input.sex); }
    if (input.mitoses_input) { words.push("--mitoses", input.mitoses_input); }
    if (input.necrosis !== null) { words.push("--necrosis", input.necrosis ? "yes" : "no"); }
    if (input.atypia) { words.push("--atypia", input.atypia); }
    if (input.patterns.length) { words.push("--pattern", input.patterns.join(",")); }
    return words.join(" ");
  }

  function update() {
    var input = currentInput();
    writeHash(input);
    document.getElementById("panel-command").textContent = commandLine(input);
    if (!input.obs.length) {
      document.getElementById("panel-result").textContent = "";
      document.getElementById("panel-result").appendChild(el("p", { "class": "muted" }, "Add at least one marker."));
      document.getElementById("panel-next").textContent = "";
      document.getElementById("panel-warnings").textContent = "";
      return;
    }
    render(interpret(input));
  }

  function readText() {
    var msg = document.getElementById("panel-text-msg");
    var text = document.getElementById("panel-text").value;
    var read = readPanel(text);
    if (read.obs.length) { rowsBody.textContent = ""; }  /* the typed panel replaces the list */
    read.obs.forEach(function (o) { addRow(o.marker, o.event); });
    read.not_done.forEach(function (m) { if (read.obs.length) { addRow(m, ""); } });
    msg.textContent = read.obs.length ? "Read: " + read.obs.map(function (o) { return o.marker + " " + o.result; })
      .join(", ") + (read.unread.length ? "; not read: " + read.unread.join(" ") : "") :
      (read.unread.length ? "Not read: " + read.unread.join(" ") : "");
    update();
  }

  /* marker picker: search as you type over names and synonyms */
  var search = document.getElementById("marker-search");
  var choices = document.getElementById("marker-choices");
  var found = [];
  var active = 0;
  function findMarkers(q) {
    var key = normalize(q);
    if (!key) { return []; }
    var hits = [];
    M.markers.forEach(function (m) {
      var best = null;
      [m.name].concat(m.synonyms).forEach(function (n) {
        var k = normalize(n);
        var score = k === key ? 0 : k.indexOf(key) === 0 ? 1 : k.indexOf(key) > 0 ? 2 : null;
        if (score !== null && (best === null || score < best.score)) { best = { score: score, via: n }; }
      });
      if (best) { hits.push({ marker: m.name, score: best.score, via: best.via }); }
    });
    hits.sort(function (a, b) { return a.score - b.score || a.marker.length - b.marker.length ||
      a.marker.localeCompare(b.marker); });
    return hits.slice(0, 10);
  }
  function pick(marker) {
    var kind = M.markers[markerIndex[marker]].kind;
    addRow(marker, (CHOICES[kind] || CHOICES.ihc)[0][0]);
    search.value = "";
    choices.hidden = true;
    update();
    var row = rowsBody.querySelector("tr[data-marker='" + CSS.escape(marker) + "'] select");
    if (row) { row.focus(); }
  }
  function renderChoices() {
    found = findMarkers(search.value);
    active = 0;
    choices.textContent = "";
    found.forEach(function (hit, i) {
      var li = el("li", { "class": i === 0 ? "active" : "", "data-marker": hit.marker });
      li.appendChild(el("span", null, hit.marker));
      if (hit.via !== hit.marker) { li.appendChild(el("span", { "class": "via" }, "matched: " + hit.via)); }
      li.addEventListener("mousedown", function (ev) { ev.preventDefault(); pick(hit.marker); });
      choices.appendChild(li);
    });
    if (search.value && !found.length) { choices.appendChild(el("li", { "class": "muted" }, "no marker")); }
    choices.hidden = !search.value;
  }
  search.addEventListener("input", renderChoices);
  search.addEventListener("keydown", function (ev) {
    var items = choices.querySelectorAll("li[data-marker]");
    if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && items.length) {
      ev.preventDefault();
      active = (active + (ev.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      Array.prototype.forEach.call(items, function (li, k) { li.className = k === active ? "active" : ""; });
    } else if (ev.key === "Enter" && found.length) {
      ev.preventDefault();
      pick(found[Math.min(active, found.length - 1)].marker);
    } else if (ev.key === "Escape") {
      search.value = "";
      choices.hidden = true;
    }
  });
  search.addEventListener("blur", function () { choices.hidden = true; });

  document.getElementById("panel-read").addEventListener("click", readText);
  document.getElementById("panel-text").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); readText(); }
  });
  Array.prototype.forEach.call(form.querySelectorAll("select, input[type=number], input[type=checkbox]"),
    function (node) {
      if (node.closest("#panel-rows")) { return; }
      node.addEventListener(node.type === "number" ? "input" : "change", update);
    });

  /* state from the address: panel.html#panel=desmin-&site=lung (the site search links here) */
  function readHash() {
    var params = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) { params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); }
    });
    ["site", "age", "sex", "mitoses", "mitoses-unit", "necrosis", "atypia"].forEach(function (k) {
      if (params[k] !== undefined) { document.getElementById("f-" + k).value = params[k]; }
    });
    if (params.pattern) {
      var pats = params.pattern.split(",");
      Array.prototype.forEach.call(form.querySelectorAll("input[name=pattern]"), function (c) {
        c.checked = pats.indexOf(c.value) >= 0;
      });
    }
    if (params.panel) {
      document.getElementById("panel-text").value = params.panel;
      readText();
    } else {
      update();
    }
  }
  readHash();
}());
