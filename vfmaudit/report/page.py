"""What every HTML page shares: responsive SVG plots, embedded thumbnails, the stylesheet, the script.

Pages are single self-contained files (no network, work from file:// and as CI artefacts).
"""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np

CSS = """
:root { --bad: #c0392b; --good: #1e8449; --muted: #666; }
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1.5em; color: #222; max-width: 1600px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.warn { background: #fff3cd; padding: 0.6em; border: 1px solid #e0c060; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f4f4f4; position: sticky; top: 0; }
th button { all: unset; cursor: pointer; font-weight: bold; }
th button:focus-visible { outline: 2px solid #2962ff; }
th[aria-sort="descending"] button::after { content: " ▼"; } th[aria-sort="ascending"] button::after { content: " ▲"; }
tr.clickable { cursor: pointer; } tr.clickable:hover, tr.clickable:focus { background: #eef3ff; outline: none; }
tr.selected { background: #dde7ff; }
.plot svg { width: 100%; height: auto; display: block; }
.plot { max-width: 1100px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap: 1em; }
.strip { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; margin: 0.4em 0 1em; }
.strip figure { margin: 0; text-align: center; font-size: 0.75em; width: 100px; }
.strip img { width: 96px; height: 96px; object-fit: cover; display: block; border: 1px solid #bbb; }
.strip h4 { flex-basis: 100%; margin: 0.4em 0 0; font-size: 0.9em; }
.controls { display: flex; flex-wrap: wrap; gap: 1em; margin: 0.5em 0; align-items: center; }
.delta-bad { color: var(--bad); font-weight: bold; } .delta-good { color: var(--good); font-weight: bold; }
.muted { color: var(--muted); }
code { font-size: 0.9em; word-break: break-all; }
"""

# sortable, filterable tables fed from embedded JSON; rows can open a detail panel
SCRIPT = """
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
"""


def responsive_svg(fig, max_width: int | None = None) -> str:
    """A matplotlib figure as inline SVG that scales with its container (viewBox kept, size dropped)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    style = f' style="max-width: {max_width}px"' if max_width else ""
    return f'<div class="plot"{style}>{head} role="img">{text[head_end + 1:]}</div>'


def thumbnail(image: np.ndarray, side: int = 96, quality: int = 70) -> str:
    """A small JPEG as a data: URI (about 3-4 KB at 96 px)."""
    from PIL import Image

    img = Image.fromarray(image)
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page(title: str, body: str, script: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
            f"<script>{SCRIPT}\n{script}</script></body></html>\n")


def json_block(element_id: str, data) -> str:
    """Data for the page's script, embedded safely (no '</' can close the element)."""
    import json

    text = json.dumps(data).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'
