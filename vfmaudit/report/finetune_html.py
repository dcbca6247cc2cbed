"""The fine-tuning page: the compare view (before as A, after as B) with the training figures."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from vfmaudit.report.compare import compare, sides_from_report, write_compare
from vfmaudit.report.page import responsive_svg


def _curve(log_path: Path) -> str:
    if not log_path.exists():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return ""
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(steps, [float(r["robustness"]) for r in rows], label="robustness: cos(f'(x), f'(P(x)))")
    ax.plot(steps, [float(r["utility"]) for r in rows], label="utility: cos(f(x), f'(x))")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers, also on a short run
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Training (both terms of the loss, higher is better)", fontsize=10)
    return responsive_svg(fig)


def write_finetune_html(result, path: Path | None = None) -> Path:
    report, out_dir = result.report, result.out_dir
    path = Path(path) if path else out_dir / "report.html"
    esc = html.escape
    held, t = report["held_out"], report["training"]
    trained = [f for f, e in held["families"].items() if e["trained"]]
    intro = (('<p class="warn">Random weights: the starting model is randomly initialised, not a trained encoder.</p>'
              if report.get("random_weights") else "")
             + f"<p>Trained for {', '.join(map(esc, trained)) or 'adversarial examples'} "
               f"({t['steps']} steps on {t['train_images']} images, "
               f"{report['trainable_parameters']:,} trainable parameters, {t['images_per_s']:.1f} images/s). "
               f"Held out: {held['images']} images; utility cos(f(x), f'(x)) mean "
               f"{held['utility_cosine']['mean']:.4f} (min {held['utility_cosine']['min']:.4f}); nearest-neighbour "
               f"top-1 agreement with the original {held['agreement'].get('top1') or float('nan'):.3f}. "
               f"Weights: <code>{esc(report['weights_file']['use_with'])}</code>.</p>")
    extra = ""
    if "worst_case" in held:
        w = held["worst_case"]
        unit = "/255" if w["norm"] == "linf" else " (L2)"
        extra += (f"<p>Adversarially trained at {esc(w['norm'])} {w['eps']:g}{unit}. Held-out worst case (PGD-"
                  f"{w['steps']}, the rounded images): mean cosine to the clean embedding "
                  f"{w['cosine_mean']['before']:.4f} before, {w['cosine_mean']['after']:.4f} after; worst "
                  f"{w['cosine_worst']['before']:.4f} before, {w['cosine_worst']['after']:.4f} after.</p>")
    if "export" in report:
        ex = report["export"]
        extra += (f"<p>Exported to <code>{esc(ex['onnx'])}</code> ({esc(ex['exporter'])}); parity with the fine-tuned "
                  f"torch model: min cosine {ex['parity']['min_cosine']:.6f}, {'PASS' if ex['passed'] else 'FAIL'}.</p>")
    if "gate" in report:
        g = report["gate"]
        extra += (f"<p>Gate <code>{esc(g['policy'])}</code>: {'passed' if g['passed'] else 'failed'} "
                  f"({g['failures']} failing checks; <code>{esc(g['result'])}</code>).</p>")
    extra += "<h2>Training</h2>" + _curve(out_dir / "train_log.csv")
    comp = compare(*sides_from_report(report, str(out_dir / "report.json")))
    return write_compare(comp, path, title="Robust fine-tuning: before (A) and after (B), held-out images",
                         intro=intro, extra=extra)
