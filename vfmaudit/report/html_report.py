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
from vfmaudit.data.source import find_items
from vfmaudit.data.sources import item_for_id
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_text_atomic
from vfmaudit.metrics import metrics, per_level_metrics, per_variant_metric, primary_metric
from vfmaudit.models.preprocess import PreprocessSpec
from vfmaudit.report.page import asset, json_block, page, responsive_svg, thumbnail

WORST_PER_FAMILY = 2
MAX_THUMBNAILS = 800  # about 3 KB each: a few MB at most
MAX_TABLE_ROWS = 20_000


def _distribution_plot(values: dict, families: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = primary_metric()
    data = [values[f][primary.name] if len(values[f][primary.name]) else [np.nan] for f in families]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(families)), 3.6))
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(families) + 1), families, rotation=30, ha="right")
    ax.set_ylabel(primary.label)
    better = "higher" if primary.higher_is_better else "lower"
    ax.set_title(f"Per-image {primary.label} by perturbation family ({better} is more robust)")
    ax.grid(axis="y", alpha=0.3)
    return responsive_svg(fig)


def _level_plot(report: dict, families: list[str]) -> str:
    """One plot per family (they wrap with the window, text at a readable size); the first per-level
    metric on the left axis, the others on a right axis of their own scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = per_level_metrics()
    catalogue = metrics()
    styles = ("o-", "s--", "^:", "d-.")
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    plots = []
    for fam in families:
        entry = report["families"][fam]
        lv = [p["level"] for p in entry["per_level"]]
        fig, ax = plt.subplots(figsize=(4.8, 3.2))
        axes = [ax] + ([ax.twinx()] if len(names) > 1 else [])
        lines = []
        for i, m in enumerate(names):
            target = axes[min(i, 1)]
            lines += target.plot(lv, [p.get(f"{m}_mean") for p in entry["per_level"]], styles[i % 4],
                                 color=colours[i % 4], label=f"{catalogue[m].label} ({catalogue[m].direction})")
            target.set_ylabel(catalogue[m].label if i < 2 else "", color=colours[min(i, 1)])
        ax.axvline(entry["identity"], color="grey", lw=0.8, alpha=0.6)
        ax.set_title(f"{fam}: mean per level (grey: identity)", fontsize=10)
        ax.set_xlabel(entry["units"])
        ax.grid(alpha=0.3)
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="best")
        fig.tight_layout()
        plots.append(responsive_svg(fig, max_width=640))
    return '<div class="plots">' + "".join(plots) + "</div>"


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _badness(row: dict, primary) -> float:
    """How bad a per_image.csv row is in the primary metric's bad direction (larger: worse)."""
    value = float(row[primary.name])
    return -value if primary.higher_is_better else value


def select_strip_images(image_rows: list[dict], families: list[str], n_levels: int,
                        max_thumbnails: int = MAX_THUMBNAILS) -> list[str]:
    """The worst images of each family first (by the primary metric), then the others by their worst value,
    while thumbnails fit."""
    by_family = defaultdict(list)
    peak: dict[str, float] = defaultdict(lambda: -np.inf)
    primary = primary_metric()
    for r in image_rows:
        badness = _badness(r, primary)
        by_family[r["family"]].append((badness, r["image"]))
        peak[r["image"]] = max(peak[r["image"]], badness)
    chosen: list[str] = []
    for fam in families:
        for _, img in sorted(by_family[fam], reverse=True)[:WORST_PER_FAMILY]:
            if img not in chosen:
                chosen.append(img)
    chosen += [img for img, _ in sorted(peak.items(), key=lambda kv: -kv[1]) if img not in chosen]
    per_image = 1 + len(families) * n_levels
    return chosen[:max(0, max_thumbnails // per_image)]


def build_strips(report: dict, image_ids: list[str], level_rows: dict) -> dict:
    """For each image: a clean thumbnail and, per family, one per level with that variant's value of the
    per-variant metric (level_rows: (image, family, level) -> value)."""
    spec = PreprocessSpec.from_dict(report["model"]["preprocess"])
    strips = {}
    items = {i: item_for_id(i) for i in image_ids}
    if report.get("source") and any(v is None for v in items.values()):  # images inside shards
        try:
            items.update(find_items(report["inputs"], [i for i, v in items.items() if v is None]))
        except VfmauditError:
            pass  # the store is gone or unreachable now: the page has no thumbnails of those
    for image_id in image_ids:
        item = items.get(image_id)
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
                value = level_rows.get((image_id, fam, f"{lv:.8g}"))
                thumbs.append({"level": lv, "uri": thumbnail(img), "value": value})
            fams[fam] = thumbs
        strips[image_id] = {"clean": thumbnail(base), "families": fams}
    return strips


def _summary_table(report: dict, families: list[str], names: list[str]) -> str:
    esc = html.escape
    rows = []
    for fam in families:
        e = report["families"][fam]
        cells = "".join(f"<td>{_fmt(e[m]['mean'])}</td><td>{_fmt(e[m]['worst'])}</td>" for m in names)
        rows.append(f'<tr><th scope="row">{esc(fam)}</th><td>{e["n_images"]}</td>{cells}'
                    f"<td>{esc(str(e.get('worst_image') or ''))}</td></tr>")
    head = "".join(f'<th scope="col">{m} mean</th><th scope="col">{m} worst image</th>' for m in names)
    catalogue = metrics()
    legend = "".join(f"<dt>{esc(n)}</dt><dd>{esc(catalogue[n].description)} ({esc(catalogue[n].direction)})</dd>"
                     for n in names)
    legend += ("<dt>worst image</dt><dd>the worst image's own value: for a metric averaged over levels (cosine, "
               "euclidean) that is the image's mean over its levels, so a single variant in the strips below can "
               "be worse</dd>")
    return (f'<div class="scroll"><table><thead><tr><th scope="col">family</th><th scope="col">images</th>{head}'
            f'<th scope="col">worst image ({esc(primary_metric().label)})</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div><dl>{legend}</dl>")


def _worst_strips(report: dict, families: list[str], image_rows: list[dict], strips: dict) -> str:
    primary = primary_metric()
    html_parts = []
    for fam in families:
        ranked = sorted(((_badness(r, primary), r["image"], float(r[primary.name])) for r in image_rows
                         if r["family"] == fam),
                        reverse=True)
        shown = [(value, img) for _, img, value in ranked if img in strips][:WORST_PER_FAMILY]
        html_parts += [_strip_html(img, fam, value, strips[img], report) for value, img in shown]
    return "".join(html_parts) or "<p>No image could be shown (inputs moved, or none audited).</p>"


def _header(report: dict) -> str:
    esc = html.escape
    model = report["model"]
    warn = ('<p class="warn">Random weights: these embeddings are not those of any trained model; '
            'pass --pretrained to audit real weights.</p>' if report.get("random_weights") else "")
    warn += "".join(f'<p class="warn">Warning: {esc(w)}.</p>' for w in report.get("warnings", []))
    return f"""<header><h1>Embedding robustness audit</h1>{warn}
<p>Model <code>{esc(str(model['spec']))}</code>, weights <code>{esc(str(report.get('weights')))}</code>,
backend <code>{esc(str(report['backend'].get('backend')))}</code> on <code>{esc(str(report['backend'].get('device')))}</code>,
embedding dim {model.get('embedding_dim')}, seed {report['seed']}, {report['levels']} levels per family.
Images audited: {report['images']['audited']}, skipped: {report['images']['skipped']}.
Created {esc(report['created'])} by vfmaudit {esc(report['vfmaudit_version'])}.</p></header>"""


def _image_table(families: list[str], columns: list[dict], n_rows: int) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c['label'])}</th>" for c in columns)
    fam_options = "".join(f'<option value="{esc(f)}">{esc(f)}</option>' for f in families)
    cut = (f'<p class="muted">The table shows the first {MAX_TABLE_ROWS:,} of {n_rows:,} rows; '
           f"per_image.csv has them all.</p>" if n_rows > MAX_TABLE_ROWS else "")
    return f"""<div class="controls"><label>family <select id="f-family"><option value="">all</option>{fam_options}</select></label>
<label>image <input id="f-image" type="search" placeholder="name contains"></label>
<span class="muted">Click a column to sort; click a row to see that image.</span></div>
{cut}
<div id="detail" aria-live="polite"></div>
<div class="scroll"><table id="per-image"><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"""


def _imagenet_c_section(report: dict) -> str:
    """The label-free ImageNet-C summary: the headline number, then one row per corruption."""
    block = report.get("imagenet_c")
    if not block:
        return ""
    from vfmaudit.audit.imagenet_c import summary_line

    esc = html.escape
    rows = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td>{_fmt(e["radius"])}</td><td>{_fmt(e.get("reference_radius"))}</td>'
        f'<td>{_fmt(e.get("relative"))}</td><td>{esc(", ".join(f"{v:g}" for v in e["severities"]))}</td></tr>'
        for name, e in block["corruptions"].items())
    return (f'<h2>ImageNet-C</h2><p id="imagenet-c-summary"><strong>{esc(summary_line(block))}</strong></p>'
            f'<div class="scroll"><table><thead><tr><th scope="col">corruption</th><th scope="col">radius</th>'
            f'<th scope="col">reference radius</th><th scope="col">relative</th><th scope="col">severities</th>'
            f'</tr></thead><tbody>{rows}</tbody></table></div><p class="muted">{esc(block["definition"])}</p>')


def render_html(report: dict, values: dict, image_rows: list[dict] | None = None, strips: dict | None = None) -> str:
    """values[family][metric]: per-image arrays (plots); image_rows: per_image.csv rows; strips: build_strips()."""
    families = list(report["families"])
    esc = html.escape
    names = [m for m in metrics() if families and m in report["families"][families[0]]]
    image_rows = image_rows or []
    strips = strips or {}
    plots = ""
    if any(len(values[f][names[0]]) for f in families if f in values and names):
        plots = (f'<h2>Distributions</h2><div class="plots">{_distribution_plot(values, families)}</div>'
                 f'<h2>Metric against level</h2>{_level_plot(report, families)}')
    primary, variant = primary_metric(), per_variant_metric()
    table_data = [{"image": r["image"], "family": r["family"], **{m: float(r[m]) for m in names},
                   "strip": r["image"] in strips} for r in image_rows[:MAX_TABLE_ROWS]]
    columns = [{"key": "image", "label": "image"}, {"key": "family", "label": "family"}] + \
        [{"key": m, "label": m} for m in names]
    skipped = "".join(f"<li><code>{esc(s['input'])}</code>: {esc(s['reason'])}</li>" for s in report["skipped"])
    strip_data = {"strips": strips, "families": {f: report["families"][f]["levels"] for f in families}}
    config = {"columns": columns, "primary": primary.name, "primaryLabel": primary.label,
              "variantShort": variant.short}
    body = f"""{_header(report)}
<main>
<h2>Summary</h2>
{_summary_table(report, families, names)}
{_imagenet_c_section(report)}
{plots}
<h2>Worst images per family</h2>
<p class="muted">Clean image, then every level of the family; under each variant its {esc(variant.label)} to the clean embedding.</p>
{_worst_strips(report, families, image_rows, strips)}
<h2>Every image</h2>
{_image_table(families, columns, len(image_rows))}
<h2>Skipped inputs</h2>
{'<ul>' + skipped + '</ul>' if skipped else '<p>None.</p>'}
</main>
{json_block("per-image-data", table_data)}
{json_block("strip-data", strip_data)}
{json_block("audit-config", config)}"""
    return page(f"vfmaudit report: {report['model']['spec']}", body, asset("audit.js"))


def _strip_html(image_id: str, family: str, value: float, strip: dict, report: dict) -> str:
    esc = html.escape
    figs = [f'<figure><img src="{strip["clean"]}" alt="{esc(image_id)}, clean"><figcaption>clean</figcaption></figure>']
    units = report["families"][family]["units"]
    short = per_variant_metric().short
    for t in strip["families"][family]:
        shown = "" if t["value"] is None else f" · {esc(short)} {t['value']:.3f}"
        figs.append(f'<figure><img src="{t["uri"]}" alt="{esc(image_id)}, {esc(family)} at {t["level"]:g} {esc(units)}">'
                    f'<figcaption title="{t["level"]:g} {esc(units)}{shown}">{t["level"]:.3g}{shown}</figcaption>'
                    "</figure>")
    return (f'<div class="strip"><h4>{esc(family)}: <code>{esc(image_id)}</code>, {esc(primary_metric().label)} '
            f"{value:.4f}</h4>{''.join(figs)}</div>")


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
    variant = per_variant_metric().name
    level_rows = {(r["image"], r["family"], r["level"]): float(r[variant])
                  for r in iter_rows(result.out_dir / PER_LEVEL) if r["image"] in wanted}
    strips = build_strips(result.report, chosen, level_rows)
    values = family_summaries(image_rows, [], families)[1]  # the rows are read already: no second pass
    write_html(result.report, values, path, image_rows, strips)
    return path
