// sortable, filterable tables fed from embedded JSON; rows can open a detail panel
function vfmTable(cfg) {
  const data = JSON.parse(document.getElementById(cfg.dataId).textContent);
  const table = document.getElementById(cfg.tableId);
  const tbody = table.querySelector('tbody');
  let sortKey = null, sortDir = -1;
  function visible() {
    const f = {};
    (cfg.filters || []).forEach(x => { f[x.key] = document.getElementById(x.id).value.toLowerCase(); });
    let rows = data.filter(r => Object.keys(f).every(k => !f[k] || String(r[k]).toLowerCase().includes(f[k])));
    if (sortKey !== null) rows = rows.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sortDir;
    });
    return rows;
  }
  function render() {
    tbody.textContent = '';
    for (const r of visible().slice(0, cfg.limit || 1000)) {
      const tr = document.createElement('tr');
      cfg.columns.forEach((c, i) => {
        const td = document.createElement(i === 0 ? 'th' : 'td');
        if (i === 0) td.scope = 'row';
        const v = r[c.key];
        td.textContent = typeof v === 'number' ? v.toFixed(c.digits === undefined ? 4 : c.digits) : v;
        tr.appendChild(td);
      });
      if (cfg.onRow) {
        tr.className = 'clickable'; tr.tabIndex = 0;
        tr.addEventListener('click', () => { tbody.querySelectorAll('tr.selected').forEach(x => x.classList.remove('selected'));
          tr.classList.add('selected'); cfg.onRow(r); });
        tr.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); tr.click(); } });
      }
      tbody.appendChild(tr);
    }
  }
  table.querySelectorAll('thead th').forEach((th, i) => {
    const b = document.createElement('button'); b.type = 'button'; b.textContent = th.textContent;
    th.textContent = ''; th.appendChild(b); th.scope = 'col';
    b.addEventListener('click', () => {
      const key = cfg.columns[i].key;
      sortDir = sortKey === key ? -sortDir : -1; sortKey = key;
      table.querySelectorAll('thead th').forEach(h => h.removeAttribute('aria-sort'));
      th.setAttribute('aria-sort', sortDir < 0 ? 'descending' : 'ascending');
      render();
    });
  });
  (cfg.filters || []).forEach(x => document.getElementById(x.id).addEventListener('input', render));
  render();
}
