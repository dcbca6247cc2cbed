"""report.html of an audit: one self-contained page for people.

Summary per family, distributions and level curves that scale with the window, the worst images
of each family as strips (clean and every level, with each variant's cosine and the image's
radius), and a sortable, filterable per-image table whose rows open that image's strip.
Thumbnails are small JPEGs embedded in the page; their number is capped (`max_thumbnails`), so
the page stays a few MB whatever the size of the audit.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import numpy as np

from vfmaudit import perturb
from vfmaudit.audit.summary import family_summaries
from vfmaudit.audit.tables import PER_IMAGE, PER_LEVEL, iter_rows
from vfmaudit.data.sources import item_for_id
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_text_atomic
from vfmaudit.metrics import metrics, per_level_metrics
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.report.page import json_block, page, responsive_svg, thumbnail

WORST_PER_FAMILY = 2
MAX_THUMBNAILS = 800  # about 3 KB each: a few MB at most
MAX_TABLE_ROWS = 20_000


def _distribution_plot(values: dict, families: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [values[f]["divergence_radius"] if len(values[f]["divergence_radius"]) else [np.nan] for f in families]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(families)), 3.6))
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(families) + 1), families, rotation=30, ha="right")
    ax.set_ylabel("divergence radius")
    ax.set_title("Per-image divergence radius by perturbation family (lower is more robust)")
    ax.grid(axis="y", alpha=0.3)
    return responsive_svg(fig)


def _level_plot(report: dict, families: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, max(1, len(families)))
    rows = int(np.ceil(len(families) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(families):]:
        ax.axis("off")
    for ax, fam in zip(axes.ravel(), families):
        entry = report["families"][fam]
        lv = [p["level"] for p in entry["per_level"]]
        for m, style in zip(per_level_metrics(), ("o-", "s--", "^:", "d-.")):
            ax.plot(lv, [p.get(f"{m}_mean") for p in entry["per_level"]], style, label=m)
        ax.axvline(entry["identity"], color="grey", lw=0.8, alpha=0.6)
        ax.set_title(fam, fontsize=9)
        ax.set_xlabel(entry["units"], fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Mean metric against perturbation level (grey line: identity)", fontsize=10)
    fig.tight_layout()
    return responsive_svg(fig)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def select_strip_images(image_rows: list[dict], families: list[str], n_levels: int,
                        max_thumbnails: int = MAX_THUMBNAILS) -> list[str]:
    """The worst images of each family first, then the others by their largest radius, while thumbnails fit."""
    by_family = defaultdict(list)
    peak: dict[str, float] = defaultdict(float)
    for r in image_rows:
        rad = float(r["divergence_radius"])
        by_family[r["family"]].append((rad, r["image"]))
        peak[r["image"]] = max(peak[r["image"]], rad)
    chosen: list[str] = []
    for fam in families:
        for _, img in sorted(by_family[fam], reverse=True)[:WORST_PER_FAMILY]:
            if img not in chosen:
                chosen.append(img)
    chosen += [img for img, _ in sorted(peak.items(), key=lambda kv: -kv[1]) if img not in chosen]
    per_image = 1 + len(families) * n_levels
    return chosen[:max(0, max_thumbnails // per_image)]


def build_strips(report: dict, image_ids: list[str], level_rows: dict) -> dict:
    """For each image: a clean thumbnail and, per family, one per level with that variant's cosine."""
    spec = PreprocessSpec.from_dict(report["model"]["preprocess"])
    strips = {}
    for image_id in image_ids:
        item = item_for_id(image_id)
        if item is None:
            continue  # the file moved, or an id that cannot be loaded again
        try:
            base = spec.prepare(item.load())
        except (VfmauditError, OSError, ValueError):
            continue
        fams = {}
        for fam, entry in report["families"].items():
            thumbs = []
            for lv in entry["levels"]:
                img = perturb.apply(base, fam, lv, seed=report["seed"])
                cos = level_rows.get((image_id, fam, f"{lv:.8g}"))
                thumbs.append({"level": lv, "uri": thumbnail(img), "cosine": cos})
            fams[fam] = thumbs
        strips[image_id] = {"clean": thumbnail(base), "families": fams}
    return strips


def render_html(report: dict, values: dict, image_rows: list[dict] | None = None, strips: dict | None = None) -> str:
    """values[family][metric]: per-image arrays (plots); image_rows: per_image.csv rows; strips: build_strips()."""
    families = list(report["families"])
    esc = html.escape
    names = [m for m in metrics() if families and m in report["families"][families[0]]]
    image_rows = image_rows or []
    strips = strips or {}
    radius_of = {(r["image"], r["family"]): float(r["divergence_radius"]) for r in image_rows}
    summary_rows = []
    for fam in families:
        e = report["families"][fam]
        cells = "".join(f"<td>{_fmt(e[m]['mean'])}</td><td>{_fmt(e[m]['worst'])}</td>" for m in names)
        worst = e.get("worst_image") or ""
        summary_rows.append(f'<tr><th scope="row">{esc(fam)}</th><td>{e["n_images"]}</td>{cells}'
                            f"<td>{esc(str(worst))}</td></tr>")
    head = "".join(f'<th scope="col">{m} mean</th><th scope="col">{m} worst</th>' for m in names)
    warn = ('<p class="warn">Random weights: these embeddings are not those of any trained model; '
            'pass --pretrained to audit real weights.</p>' if report.get("random_weights") else "")
    plots = ""
    if any(len(values[f]["cosine"]) for f in families if f in values):
        plots = (f'<h2>Distributions</h2><div class="plots">{_distribution_plot(values, families)}</div>'
                 f'<h2>Metric against level</h2>{_level_plot(report, families)}')
    worst_html = []
    for fam in families:
        ranked = sorted(((rad, img) for (img, f), rad in radius_of.items() if f == fam), reverse=True)
        shown = [(rad, img) for rad, img in ranked if img in strips][:WORST_PER_FAMILY]
        for rad, img in shown:
            worst_html.append(_strip_html(img, fam, rad, strips[img], report))
    table_data = [{"image": r["image"], "family": r["family"], **{m: float(r[m]) for m in names},
                   "strip": r["image"] in strips} for r in image_rows[:MAX_TABLE_ROWS]]
    cols = [{"key": "image", "label": "image"}, {"key": "family", "label": "family"}] + \
        [{"key": m, "label": m} for m in names]
    cut = (f'<p class="muted">The table shows the first {MAX_TABLE_ROWS:,} of {len(image_rows):,} rows; '
           f"per_image.csv has them all.</p>" if len(image_rows) > MAX_TABLE_ROWS else "")
    skipped = "".join(f"<li><code>{esc(s['input'])}</code>: {esc(s['reason'])}</li>" for s in report["skipped"])
    model = report["model"]
    fam_options = "".join(f'<option value="{esc(f)}">{esc(f)}</option>' for f in families)
    strip_data = {"strips": strips, "families": {f: report["families"][f]["levels"] for f in families},
                  "radius": {f"{img}\u0001{fam}": rad for (img, fam), rad in radius_of.items() if img in strips}}
    body = f"""<header><h1>Embedding robustness audit</h1>{warn}
<p>Model <code>{esc(str(model['spec']))}</code>, weights <code>{esc(str(report.get('weights')))}</code>,
backend <code>{esc(str(report['backend'].get('backend')))}</code> on <code>{esc(str(report['backend'].get('device')))}</code>,
embedding dim {model.get('embedding_dim')}, seed {report['seed']}, {report['levels']} levels per family.
Images audited: {report['images']['audited']}, skipped: {report['images']['skipped']}.
Created {esc(report['created'])} by vfmaudit {esc(report['vfmaudit_version'])}.</p></header>
<main>
<h2>Summary</h2>
<div class="scroll"><table><thead><tr><th scope="col">family</th><th scope="col">images</th>{head}
<th scope="col">worst image (radius)</th></tr></thead><tbody>{''.join(summary_rows)}</tbody></table></div>
<dl>{''.join(f"<dt>{esc(n)}</dt><dd>{esc(m.description)} ({esc(m.direction)})</dd>" for n, m in metrics().items() if n in names)}</dl>
{plots}
<h2>Worst images per family</h2>
<p class="muted">Clean image, then every level of the family; under each variant its cosine to the clean embedding.</p>
{''.join(worst_html) or '<p>No image could be shown (inputs moved, or none audited).</p>'}
<h2>Every image</h2>
<div class="controls"><label>family <select id="f-family"><option value="">all</option>{fam_options}</select></label>
<label>image <input id="f-image" type="search" placeholder="name contains"></label>
<span class="muted">Click a column to sort; click a row to see that image.</span></div>
{cut}
<div id="detail" aria-live="polite"></div>
<div class="scroll"><table id="per-image"><thead><tr>{''.join(f'<th>{esc(c["label"])}</th>' for c in cols)}</tr></thead>
<tbody></tbody></table></div>
<h2>Skipped inputs</h2>
{'<ul>' + skipped + '</ul>' if skipped else '<p>None.</p>'}
</main>
{json_block("per-image-data", table_data)}
{json_block("strip-data", strip_data)}"""
    script = f"""
const stripData = JSON.parse(document.getElementById('strip-data').textContent);
function showStrip(r) {{
  const panel = document.getElementById('detail');
  panel.textContent = '';
  const s = stripData.strips[r.image];
  const h = document.createElement('h3');
  h.textContent = r.image + ' under ' + r.family + ' (radius ' + r.divergence_radius.toFixed(4) + ')';
  panel.appendChild(h);
  if (!s) {{ const p = document.createElement('p'); p.className = 'muted';
    p.textContent = 'No thumbnails for this image in the page (the page embeds a capped number; the numbers are in per_image.csv).';
    panel.appendChild(p); return; }}
  const strip = document.createElement('div'); strip.className = 'strip';
  const add = (uri, caption, alt) => {{ const f = document.createElement('figure'); const i = document.createElement('img');
    i.src = uri; i.alt = alt; f.appendChild(i); const c = document.createElement('figcaption'); c.textContent = caption;
    f.appendChild(c); strip.appendChild(f); }};
  add(s.clean, 'clean', r.image + ', clean');
  for (const t of s.families[r.family]) add(t.uri, t.level.toPrecision(3) + (t.cosine === null ? '' : ' · cos ' + t.cosine.toFixed(3)),
    r.image + ', ' + r.family + ' at ' + t.level);
  panel.appendChild(strip);
}}
vfmTable({{dataId: 'per-image-data', tableId: 'per-image', columns: {cols},
  filters: [{{key: 'family', id: 'f-family'}}, {{key: 'image', id: 'f-image'}}], onRow: showStrip}});
"""
    return page(f"vfmaudit report: {model['spec']}", body, script)


def _strip_html(image_id: str, family: str, radius: float, strip: dict, report: dict) -> str:
    esc = html.escape
    figs = [f'<figure><img src="{strip["clean"]}" alt="{esc(image_id)}, clean"><figcaption>clean</figcaption></figure>']
    units = report["families"][family]["units"]
    for t in strip["families"][family]:
        cos = "" if t["cosine"] is None else f" · cos {t['cosine']:.3f}"
        figs.append(f'<figure><img src="{t["uri"]}" alt="{esc(image_id)}, {esc(family)} at {t["level"]:g} {esc(units)}">'
                    f"<figcaption>{t['level']:.3g}{cos}</figcaption></figure>")
    return (f'<div class="strip"><h4>{esc(family)}: <code>{esc(image_id)}</code>, radius {radius:.4f}</h4>'
            f"{''.join(figs)}</div>")


def write_html(report: dict, values: dict, path: Path, image_rows: list[dict] | None = None,
               strips: dict | None = None) -> None:
    write_text_atomic(path, render_html(report, values, image_rows, strips))


def write_audit_html(result, path: Path | None = None, max_thumbnails: int = MAX_THUMBNAILS) -> Path:
    """report.html next to an audit's report.json (or at `path`), from its result object."""
    path = Path(path) if path else result.out_dir / "report.html"
    families = list(result.report["families"])
    image_rows = list(iter_rows(result.out_dir / PER_IMAGE))
    n_levels = max((len(e["levels"]) for e in result.report["families"].values()), default=0)
    chosen = select_strip_images(image_rows, families, n_levels, max_thumbnails)
    wanted = set(chosen)
    level_rows = {(r["image"], r["family"], r["level"]): float(r["cosine"])
                  for r in iter_rows(result.out_dir / PER_LEVEL) if r["image"] in wanted}
    strips = build_strips(result.report, chosen, level_rows)
    values = family_summaries(image_rows, [], families)[1]  # the rows are read already: no second pass
    write_html(result.report, values, path, image_rows, strips)
    return path
