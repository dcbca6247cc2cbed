"""report.html: one self-contained page (inline SVG plots, no external resources) for people."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from vfmaudit.files import write_text_atomic
from vfmaudit.metrics import metrics, per_level_metrics


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


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
    return _svg(fig)


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
    return _svg(fig)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def render_html(report: dict, values: dict) -> str:
    """values[family][metric]: the per-image metric arrays (for the distribution plot)."""
    families = list(report["families"])
    esc = html.escape
    names = list(metrics())
    rows = []
    for fam in families:
        e = report["families"][fam]
        cells = "".join(f"<td>{_fmt(e[m]['mean'])}</td><td>{_fmt(e[m]['worst'])}</td>" for m in names if m in e)
        rows.append(f"<tr><th>{esc(fam)}</th><td>{e['n_images']}</td>{cells}"
                    f"<td>{esc(str(e.get('worst_image') or ''))}</td></tr>")
    skipped = "".join(f"<li><code>{esc(s['input'])}</code>: {esc(s['reason'])}</li>" for s in report["skipped"])
    warn = ('<p class="warn">Random weights: these embeddings are not those of any trained model; '
            'pass --pretrained to audit real weights.</p>' if report.get("random_weights") else "")
    plots = ""
    if any(len(values[f]["cosine"]) for f in families):
        plots = (f"<h2>Distributions</h2>{_distribution_plot(values, families)}"
                 f"<h2>Metric against level</h2>{_level_plot(report, families)}")
    head = "".join(f"<th>{m} mean</th><th>{m} worst</th>" for m in names if m in e)
    model = report["model"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vfmaudit report: {esc(str(model['spec']))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child {{ text-align: left; }}
.warn {{ background: #fff3cd; padding: 0.6em; border: 1px solid #e0c060; }}
code {{ font-size: 0.9em; }}
</style></head><body>
<h1>Embedding robustness audit</h1>
{warn}
<p>Model <code>{esc(str(model['spec']))}</code>, weights <code>{esc(str(report.get('weights')))}</code>,
backend <code>{esc(str(report['backend'].get('backend')))}</code> on <code>{esc(str(report['backend'].get('device')))}</code>,
embedding dim {model.get('embedding_dim')}, seed {report['seed']}, {report['levels']} levels per family.
Images audited: {report['images']['audited']}, skipped: {report['images']['skipped']}.
Created {esc(report['created'])} by vfmaudit {esc(report['vfmaudit_version'])}.</p>
<h2>Summary</h2>
<table><tr><th>family</th><th>images</th>{head}<th>worst image (radius)</th></tr>
{''.join(rows)}</table>
<dl>{''.join(f"<dt>{esc(n)}</dt><dd>{esc(m.description)} ({esc(m.direction)})</dd>" for n, m in metrics().items())}</dl>
{plots}
<h2>Skipped inputs</h2>
{'<ul>' + skipped + '</ul>' if skipped else '<p>None.</p>'}
</body></html>
"""


def write_html(report: dict, values: dict, path: Path) -> None:
    write_text_atomic(path, render_html(report, values))


def write_audit_html(result, path: Path | None = None) -> Path:
    """report.html next to an audit's report.json (or at `path`), from its result object."""
    path = Path(path) if path else result.out_dir / "report.html"
    write_html(result.report, result.values(), path)
    return path
