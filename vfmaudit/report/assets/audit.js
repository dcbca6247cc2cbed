// report.html of an audit: the per-image table, whose rows open that image's strip of variants.
// Its settings come from the page (#audit-config): table columns, the ranking metric, the per-variant metric.
const auditConfig = JSON.parse(document.getElementById('audit-config').textContent);
const stripData = JSON.parse(document.getElementById('strip-data').textContent);
function showStrip(r) {
  const panel = document.getElementById('detail');
  panel.textContent = '';
  const s = stripData.strips[r.image];
  const h = document.createElement('h3');
  h.textContent = r.image + ' under ' + r.family + ' (' + auditConfig.primaryLabel + ' ' +
    r[auditConfig.primary].toFixed(4) + ')';
  panel.appendChild(h);
  if (!s) { const p = document.createElement('p'); p.className = 'muted';
    p.textContent = 'No thumbnails for this image in the page (the page embeds a capped number; the numbers are in per_image.csv).';
    panel.appendChild(p); return; }
  const strip = document.createElement('div'); strip.className = 'strip';
  const add = (uri, caption, alt) => { const f = document.createElement('figure'); const i = document.createElement('img');
    i.src = uri; i.alt = alt; f.appendChild(i); const c = document.createElement('figcaption'); c.textContent = caption;
    c.title = caption;
    f.appendChild(c); strip.appendChild(f); };
  add(s.clean, 'clean', r.image + ', clean');
  for (const t of s.families[r.family]) add(t.uri, t.level.toPrecision(3) +
    (t.value === null ? '' : ' · ' + auditConfig.variantShort + ' ' + t.value.toFixed(3)),
    r.image + ', ' + r.family + ' at ' + t.level);
  panel.appendChild(strip);
}
vfmTable({dataId: 'per-image-data', tableId: 'per-image', columns: auditConfig.columns,
  filters: [{key: 'family', id: 'f-family'}, {key: 'image', id: 'f-image'}], onRow: showStrip});
