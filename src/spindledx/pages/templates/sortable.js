document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.tabIndex = 0; th.title = 'sort by this column';
    function sort() {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var up = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
      function key(r) { var c = r.cells[col]; var v = c.getAttribute('data-sort') || c.textContent.trim();
                        var n = parseFloat(v); return isNaN(n) ? v.toLowerCase() : n; }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
  });
});
