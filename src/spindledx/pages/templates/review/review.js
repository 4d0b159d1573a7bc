(function () {
  var data = JSON.parse(document.getElementById('review-data').textContent);
  var key = 'spindledx-review-' + data.run_id;
  var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
  var byId = {}; var detected = {};
  data.candidates.forEach(function (c) { detected[c.id] = c.detected; });
  cards.forEach(function (el, i) { byId[el.dataset.id] = i; });
  var state = {decisions: {}, reviewer: ''};
  try { var saved = JSON.parse(localStorage.getItem(key) || 'null'); if (saved && saved.decisions) state = saved; }
  catch (e) { /* storage unavailable or corrupt: start empty */ }
  var history = []; var cur = 0;
  var tally = document.getElementById('tally'); var who = document.getElementById('reviewer');
  var LABEL = {y: 'mitosis', n: 'not', u: 'unsure'};
  who.value = state.reviewer || '';
  function save() { try { localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode */ } }
  function paint(i) {
    var el = cards[i]; var d = state.decisions[el.dataset.id];
    el.className = 'card' + (d ? ' d-' + d : '') + (i === cur ? ' cur' : '');
    el.querySelector('.dec').textContent = d ? LABEL[d] : '';
  }
  function counts() {
    var y = 0, n = 0, u = 0, left = 0, count = 0;
    for (var id in detected) {
      var d = state.decisions[id];
      if (d === 'y') { y++; count++; } else if (d === 'n') { n++; }
      else { if (d === 'u') u++; else left++; if (detected[id]) count++; }
    }
    tally.textContent = 'reviewed ' + (y + n + u) + ' of ' + cards.length + ' \u00b7 mitosis ' + y +
      ' \u00b7 not ' + n + ' \u00b7 unsure ' + u + ' \u00b7 count now ' + count +
      ' (detector: ' + data.detector_count + ')';
  }
  function select(i, scroll) {
    if (!cards.length) return;
    i = Math.max(0, Math.min(cards.length - 1, i));
    var old = cur; cur = i; paint(old); paint(cur);
    if (scroll !== false) cards[cur].scrollIntoView({block: 'nearest'});
  }
  function decide(d) {
    if (!cards.length) return;
    var id = cards[cur].dataset.id;
    history.push([id, state.decisions[id]]);
    state.decisions[id] = d; save(); paint(cur); counts();
    if (cur < cards.length - 1) select(cur + 1);
  }
  function undo() {
    var last = history.pop(); if (!last) return;
    if (last[1] === undefined) delete state.decisions[last[0]]; else state.decisions[last[0]] = last[1];
    save(); select(byId[last[0]]); counts();
  }
  function exportDecisions() {
    state.reviewer = who.value.trim(); save();
    var list = cards.map(function (el) {
      return {id: el.dataset.id, decision: state.decisions[el.dataset.id] || null};
    }).filter(function (r) { return r.decision; });
    var out = {format: data.decisions_format, run_id: data.run_id, model_sha256: data.model_sha256,
      reviewer: state.reviewer, date: new Date().toISOString(), n_candidates: cards.length, decisions: list};
    var blob = new Blob([JSON.stringify(out, null, 1)], {type: 'application/json'});
    var a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = 'decisions.json';
    document.body.appendChild(a); a.click(); a.remove();
  }
  document.addEventListener('keydown', function (e) {
    if (e.target && (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA')) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (k === 'ArrowRight' || k === 'ArrowDown' || k === 'j') select(cur + 1);
    else if (k === 'ArrowLeft' || k === 'ArrowUp' || k === 'k') select(cur - 1);
    else if (k === 'y' || k === 'n' || k === 'u') decide(k);
    else if (k === 'z') undo();
    else if (k === 'Home') select(0);
    else if (k === 'End') select(cards.length - 1);
    else return;
    e.preventDefault();
  });
  document.getElementById('gal').addEventListener('click', function (e) {
    var el = e.target.closest('.card'); if (el) select(byId[el.dataset.id], false);
  });
  ['y', 'n', 'u'].forEach(function (d) {
    document.getElementById('btn-' + d).addEventListener('click', function () { decide(d); });
  });
  document.getElementById('btn-z').addEventListener('click', undo);
  document.getElementById('btn-export').addEventListener('click', exportDecisions);
  who.addEventListener('change', function () { state.reviewer = who.value.trim(); save(); });
  var start = 0;
  if (location.hash) {
    var t = document.getElementById(location.hash.slice(1));
    if (t && t.classList.contains('card')) start = byId[t.dataset.id];
  }
  cards.forEach(function (el, i) {
    paint(i);
    var im = el.querySelector('img');  // decode every crop up front, so moving on never waits for a decode
    if (im && im.decode) im.decode().catch(function () { /* a crop that cannot decode shows its alt text */ });
  });
  select(start, !!location.hash); counts();
})();
