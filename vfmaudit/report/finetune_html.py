"""The fine-tuning page: before and after on held-out images, per family, and the training curve."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from vfmaudit.files import write_text_atomic
from vfmaudit.report.html_report import _svg


def _fmt(v, signed: bool = False) -> str:
    return "–" if v is None else (f"{v:+.4f}" if signed else f"{v:.4f}")


def _curve(log_path: Path) -> str:
    if not log_path.exists():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return ""
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(steps, [float(r["robustness"]) for r in rows], label="robustness: cos(f'(x), f'(P(x)))")
    ax.plot(steps, [float(r["utility"]) for r in rows], label="utility: cos(f(x), f'(x))")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Training (both terms of the loss, higher is better)", fontsize=10)
    return _svg(fig)


def render_finetune_html(report: dict, out_dir: Path) -> str:
    esc = html.escape
    held = report["held_out"]
    rows = []
    for fam, e in held["families"].items():
        r = e["divergence_radius"]
        change = "–" if r["relative_change"] is None else f"{100 * r['relative_change']:+.1f} %"
        rows.append(f"<tr><th>{esc(fam)}</th><td>{'trained' if e['trained'] else 'not trained'}</td>"
                    f"<td>{_fmt(r['before'])}</td><td>{_fmt(r['after'])}</td><td>{change}</td>"
                    f"<td>{_fmt(e['cosine']['before'])}</td><td>{_fmt(e['cosine']['after'])}</td></tr>")
    extra = ""
    if "export" in report:
        ex = report["export"]
        extra += (f"<p>Exported to <code>{esc(ex['onnx'])}</code> ({esc(ex['exporter'])}); parity with the fine-tuned "
                  f"torch model: min cosine {ex['parity']['min_cosine']:.6f}, {'PASS' if ex['passed'] else 'FAIL'}.</p>")
    if "gate" in report:
        g = report["gate"]
        extra += (f"<p>Gate <code>{esc(g['policy'])}</code>: {'passed' if g['passed'] else 'failed'} "
                  f"({g['failures']} failing checks; <code>{esc(g['result'])}</code>).</p>")
    warn = ('<p class="warn">Random weights: the starting model is randomly initialised, not a trained encoder.</p>'
            if report.get("random_weights") else "")
    t = report["training"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vfmaudit finetune: {esc(report['model']['spec'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child {{ text-align: left; }}
.warn {{ background: #fff3cd; padding: 0.6em; border: 1px solid #e0c060; }}
svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>Robust fine-tuning</h1>
{warn}
<p>Model <code>{esc(report['model']['spec'])}</code>, trained for {', '.join(map(esc, report['trained_families']))};
{t['steps']} steps on {t['train_images']} images, {report['trainable_parameters']:,} trainable parameters
({t['images_per_s']:.1f} images/s). Weights: <code>{esc(report['weights_file']['path'])}</code>
(use with <code>{esc(report['weights_file']['use_with'])}</code>).</p>
<p>On {held['images']} held-out images: utility cos(f(x), f'(x)) mean {held['utility_cosine']['mean']:.4f}
(min {held['utility_cosine']['min']:.4f}); nearest-neighbour agreement with the original: top-1
{_fmt(held['agreement'].get('top1'))}.</p>
{extra}
<h2>Before and after, held-out images</h2>
<table><tr><th>family</th><th></th><th>radius before</th><th>radius after</th><th>change</th>
<th>cosine before</th><th>cosine after</th></tr>{''.join(rows)}</table>
{_curve(out_dir / 'train_log.csv')}
</body></html>
"""


def write_finetune_html(result, path: Path | None = None) -> Path:
    path = Path(path) if path else result.out_dir / "report.html"
    return write_text_atomic(path, render_finetune_html(result.report, result.out_dir))
