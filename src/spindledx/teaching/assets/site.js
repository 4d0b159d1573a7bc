/* spindledx knowledge-base site: client-side search and the case quiz.
   Runs from file:// with no network. Knowledge-base strings are inserted with textContent only; links are made
   only for http(s) targets prepared by the site generator. */
(function () {
  "use strict";

  var root = document.body.getAttribute("data-root") || "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function safeLink(label, href) {
    if (!/^https?:\/\//i.test(href)) { return el("span", null, label); }
    return el("a", { href: href, target: "_blank", rel: "noopener" }, label);
  }

  /* ---- search: mirrors spindledx.ihc.knowledge.normalize_name ---- */
  function normalize(text) {
    var s = String(text).normalize("NFKC").toLowerCase();
    s = s.replace(/α/g, "alpha").replace(/β/g, "beta").replace(/δ/g, "delta").replace(/γ/g, "gamma");
    return s.replace(/[\s\-_.\/\u2010-\u2015\u2212]+/g, "");
  }

  /* "desmin negative", "CD34-", "SMA focal": a marker with a result opens the panel form with that result */
  var RESULT_WORD = /^(.*?)[\s:]*(\+|-|\u2212|\u2013|positive|negative|pos|neg|focal|diffuse|patchy|weak|strong|lost|loss|retained|high|low)$/i;
  function resultHits(query) {
    var m = RESULT_WORD.exec(String(query).trim());
    if (!m || !m[1]) { return []; }
    var key = normalize(m[1]);
    var item = (window.SPX_INDEX || []).filter(function (it) {
      return it.kind === "marker" && it.keys.indexOf(key) >= 0;
    })[0];
    if (!item) { return []; }
    var word = m[2].toLowerCase();
    var sign = { "+": "+", "positive": "+", "pos": "+", "-": "-", "\u2212": "-", "\u2013": "-", "negative": "-",
      "neg": "-" }[word];
    var token = item.label.replace(/ /g, "_") + (sign || ":" + word);
    var label = item.label + " " + (sign === "+" ? "positive" : sign === "-" ? "negative" : word);
    return [{ item: { label: label, kind: "panel form", href: "panel.html#panel=" + encodeURIComponent(token) },
              score: -1, via: label },
            { item: item, score: 0, via: item.label }];
  }

  function search(query) {
    var q = normalize(query);
    if (!q) { return []; }
    var hits = resultHits(query);
    var seen = hits.map(function (h) { return h.item.href; });
    (window.SPX_INDEX || []).forEach(function (item) {
      var best = null;
      item.keys.forEach(function (key, i) {
        var score = key === q ? 0 : key.indexOf(q) === 0 ? 1 : key.indexOf(q) > 0 ? 2 : null;
        if (score !== null && (best === null || score < best.score)) { best = { score: score, name: item.names[i] }; }
      });
      if (best !== null && seen.indexOf(item.href) < 0) { hits.push({ item: item, score: best.score, via: best.name }); }
    });
    hits.sort(function (a, b) {
      return a.score - b.score || a.item.label.length - b.item.label.length ||
        a.item.label.localeCompare(b.item.label);
    });
    return hits.slice(0, 12);
  }

  function initSearch() {
    var box = document.getElementById("search");
    var list = document.getElementById("search-results");
    if (!box || !list) { return; }
    var current = [];
    function render() {
      current = search(box.value);
      list.textContent = "";
      current.forEach(function (hit, i) {
        var a = el("a", { href: root + hit.item.href });
        if (i === 0) { a.className = "active"; }
        a.appendChild(el("span", { "class": "kind" }, hit.item.kind));
        a.appendChild(el("span", null, hit.item.label));
        if (hit.via !== hit.item.label) { a.appendChild(el("span", { "class": "via" }, "matched: " + hit.via)); }
        var li = el("li");
        li.appendChild(a);
        list.appendChild(li);
      });
      if (box.value && !current.length) { list.appendChild(el("li", { "class": "muted" }, "  no match")); }
      list.hidden = !box.value;
    }
    box.addEventListener("input", render);
    var active = 0;
    function highlight(i) {
      var links = list.querySelectorAll("a");
      if (!links.length) { return; }
      active = (i + links.length) % links.length;
      Array.prototype.forEach.call(links, function (a, k) { a.className = k === active ? "active" : ""; });
      links[active].scrollIntoView({ block: "nearest" });
    }
    box.addEventListener("input", function () { active = 0; });
    box.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        highlight(active + (ev.key === "ArrowDown" ? 1 : -1));
      } else if (ev.key === "Enter" && current.length) {
        ev.preventDefault();
        window.location.href = root + current[Math.min(active, current.length - 1)].item.href;
      } else if (ev.key === "Escape") {
        box.value = "";
        render();
      }
    });
  }

  /* ---- quiz ---- */
  /* assets/quiz-data.js holds the questions (spindledx.teaching.site.pack_quiz, each repeated string stored once);
     the answer of each (differential, rank of the expected entity, the numbers of its evidence) is computed here by
     the interpreter of the panel form (SPX_PANEL.interpret, assets/panel.js on assets/panel-model.js), rounded as
     the Python quiz rounds them. The questions are published as window.SPX_QUIZ, the shape the quiz below reads. */
  function round(x, digits) {
    if (!isFinite(x)) { return x; }
    var f = Math.pow(10, digits);
    return Math.round(x * f) / f;
  }

  function unpackQuiz(data, interpret) {
    function entity(i) { return { id: data.entities[i][0], name: data.entities[i][1] }; }
    return data.questions.map(function (q) {
      var input = q.input;
      var result = interpret({ site: input.site, age: input.age, sex: input.sex, mitoses: input.mitoses,
        necrosis: input.necrosis, atypia: input.atypia, patterns: input.patterns, n_next: 0,
        obs: input.obs.map(function (o) { return { marker: o[0], event: o[1], result: o[2] }; }) });
      var expected = entity(q.expected);
      var ranks = result.differential.map(function (e) { return e.id; });
      var entry = result.differential[ranks.indexOf(expected.id)];
      expected.rank = ranks.indexOf(expected.id) + 1;
      expected.probability = round(entry.probability, 4);
      var n = data.row_fields.length;
      return {
        id: q.id, set: q.set, kind: q.kind, panel: q.panel, site: q.site, clinical: q.clinical, input: input,
        choices: q.choices.map(entity),
        answer: {
          expected: expected,
          differential: result.differential.slice(0, q.top).map(function (e) {
            return { id: e.id, name: e.name, probability: round(e.probability, 4) };
          }),
          evidence: q.evidence.map(function (item, k) {
            var ev = {};
            var row = data.rows[item[0]];
            var computed = entry.evidence[k];
            data.row_fields.forEach(function (f, i) { ev[f] = row[i]; });
            ev.result = item[1];
            ev.likelihood = round(computed.likelihood, 4);
            ev.likelihood_ratio = round(computed.lr, 3);
            ev.effect = computed.effect;
            ev.note = data.notes[row[n]];
            ev.source_segments = data.sources[row[n + 1]];
            return ev;
          }),
          pitfalls: data.pitfalls[q.pitfalls], warnings: q.warnings, case_source_segments: q.case_source_segments
        }
      };
    });
  }
  if (window.SPX_QUIZ_DATA && window.SPX_PANEL && !window.SPX_QUIZ) {
    window.SPX_QUIZ = unpackQuiz(window.SPX_QUIZ_DATA, window.SPX_PANEL.interpret);
  }

  function pct(p) {
    if (p === null || p === undefined) { return "–"; }
    return p > 0 && p < 0.005 ? "<1%" : Math.round(p * 100) + "%";
  }

  function initQuiz() {
    var host = document.getElementById("quiz");
    var scoreEl = document.getElementById("quiz-score");
    var all = window.SPX_QUIZ;
    if (!host || !scoreEl || !all || !all.length) { return; }
    var questions = all;
    var state = { index: 0, answered: 0, correct: 0 };

    function updateScore() {
      scoreEl.textContent = "Score: " + state.correct + " / " + state.answered;
    }

    function table(headers, rows) {
      var t = el("table", { "class": "data" });
      var tr = el("tr");
      headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
      var thead = el("thead");
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

    function sourceNode(note, segments) {
      var span = el("span", { "class": "src" });
      if (note) {
        span.appendChild(el("span", { "class": "note" }, note));
        span.appendChild(el("br"));
      }
      (segments || []).forEach(function (seg) {
        span.appendChild(seg.href ? safeLink(seg.text, seg.href) : document.createTextNode(seg.text));
      });
      return span;
    }

    function reveal(q, chosen, box) {
      var ans = q.answer;
      var ok = chosen === ans.expected.id;
      box.appendChild(el("p", { "class": "verdict " + (ok ? "ok" : "no") },
        ok ? "Correct: " + ans.expected.name + "." : "Not this time: the published diagnosis is " +
          ans.expected.name + "."));
      box.appendChild(el("p", null, "The interpreter ranks " + ans.expected.name + " #" + ans.expected.rank +
        " (" + pct(ans.expected.probability) + ")."));
      box.appendChild(el("h3", null, "Interpreter's differential"));
      box.appendChild(table(["#", "entity", "probability"], ans.differential.map(function (d, i) {
        return [String(i + 1), d.name, pct(d.probability)];
      })));
      box.appendChild(el("h3", null, "Evidence for " + ans.expected.name));
      box.appendChild(table(["kind", "finding", "result", "P(result | entity)", "LR", "effect", "literature",
        "source"], ans.evidence.map(function (ev) {
          var effect = el("span", { "class": "effect-" + ev.effect }, ev.effect);
          var lit = ev.literature;
          return [ev.kind || "stain", ev.marker, ev.result, ev.likelihood.toFixed(2), ev.likelihood_ratio.toFixed(2),
            effect, lit, sourceNode(ev.note, ev.source_segments)];
        })));
      if (ans.pitfalls.length) {
        box.appendChild(el("h3", null, "Pitfalls"));
        var ul = el("ul", { "class": "pitfalls" });
        ans.pitfalls.forEach(function (p) { ul.appendChild(el("li", null, p)); });
        box.appendChild(ul);
      }
      ans.warnings.forEach(function (w) { box.appendChild(el("p", { "class": "muted" }, "Interpreter warning: " + w)); });
      var src = el("p");
      src.appendChild(el("b", null, "Case source: "));
      src.appendChild(sourceNode("", ans.case_source_segments));
      box.appendChild(src);
    }

    function show(i) {
      var q = questions[i];
      host.textContent = "";
      var card = el("div", { "class": "case", "data-case": q.id });
      card.appendChild(el("h2", null, "Case " + (i + 1) + " of " + questions.length));
      card.appendChild(el("p", { "class": "muted" }, q.clinical + (q.kind ? " · " + ({ report: "case report", typical: "typical panel", tricky: "tricky panel" }[q.kind] ||
        q.kind) : "")));
      card.appendChild(el("p", { "class": "panel" }, q.panel));
      card.appendChild(el("p", null, "Your diagnosis:"));
      var choices = el("div", { "class": "choices" });
      var box = el("div", { "class": "reveal" });
      q.choices.forEach(function (c) {
        var b = el("button", { type: "button", "data-entity": c.id }, c.name);
        b.addEventListener("click", function () {
          if (card.getAttribute("data-answered")) { return; }
          card.setAttribute("data-answered", "1");
          state.answered += 1;
          if (c.id === q.answer.expected.id) { state.correct += 1; }
          updateScore();
          Array.prototype.forEach.call(choices.querySelectorAll("button"), function (btn) {
            btn.disabled = true;
            var id = btn.getAttribute("data-entity");
            if (id === q.answer.expected.id) { btn.classList.add("right"); } else if (id === c.id) {
              btn.classList.add("wrong");
            }
          });
          reveal(q, c.id, box);
          var next = el("button", { type: "button", id: "quiz-next" },
            i + 1 < questions.length ? "Next case" : "Start again");
          next.addEventListener("click", function () {
            if (i + 1 < questions.length) { show(i + 1); } else {
              state.answered = 0; state.correct = 0; updateScore(); show(0);
            }
          });
          box.appendChild(next);
        });
        choices.appendChild(b);
      });
      card.appendChild(choices);
      card.appendChild(box);
      host.appendChild(card);
      state.index = i;
    }

    /* filters: case set and diagnosis; changing either starts a new round (score reset) */
    var bar = el("div", { "class": "quiz-filters" });
    var setSel = el("select", { id: "quiz-set", "aria-label": "Cases" });
    [["all", "All cases"], ["panels", "Test panels"], ["reports", "Published case reports"]].forEach(function (o) {
      setSel.appendChild(el("option", { value: o[0] }, o[1]));
    });
    var entSel = el("select", { id: "quiz-entity", "aria-label": "Diagnosis" });
    entSel.appendChild(el("option", { value: "" }, "Any diagnosis"));
    var names = {};
    all.forEach(function (q) { names[q.answer.expected.id] = q.answer.expected.name; });
    Object.keys(names).sort(function (a, b) { return names[a].localeCompare(names[b]); }).forEach(function (id) {
      entSel.appendChild(el("option", { value: id }, names[id]));
    });
    function applyFilters() {
      var set = setSel.value;
      var ent = entSel.value;
      questions = all.filter(function (q) {
        var report = q.set.indexOf("reports") === 0;  /* "reports" and "reports-b" */
        var inSet = set === "all" || (set === "reports" ? report : !report);
        return inSet && (!ent || q.answer.expected.id === ent);
      });
      state.answered = 0;
      state.correct = 0;
      updateScore();
      if (questions.length) { show(0); } else {
        host.textContent = "";
        host.appendChild(el("p", { "class": "muted" }, "No case matches these filters."));
      }
    }
    setSel.addEventListener("change", applyFilters);
    entSel.addEventListener("change", applyFilters);
    bar.appendChild(setSel);
    bar.appendChild(entSel);
    bar.appendChild(el("span", { "class": "muted" }, " changing a filter starts a new round"));
    host.parentNode.insertBefore(bar, scoreEl);

    updateScore();
    show(0);
  }

  initSearch();
  initQuiz();
}());
