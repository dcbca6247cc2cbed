"""downstream report.html: accuracy under perturbation, and accuracy drop against the divergence radius."""

from __future__ import annotations

import html
from pathlib import Path

from vfmaudit.files import write_text_atomic
from vfmaudit.report.page import page, responsive_svg


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def _per_level(levels: list[float], values: list) -> str:
    """'level: value' pairs, so each number says which level it is."""
    return "<br>".join(f'<span class="muted">{lv:g}:</span> {_fmt(v)}' for lv, v in zip(levels, values))


def _plots(report: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in report["tasks"] if t in report["prediction"]]
    if not tasks:
        return ""
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for fam, rows in report["tasks"][task]["families"].items():
            ax.plot(report["robustness"][fam]["radius_mean"], rows["accuracy_drop"], "o-", label=fam, ms=4)
        fit = report["prediction"][task]["vs_radius"]
        if fit["slope"] is not None:
            xs = [x for fam in report["robustness"].values() for x in fam["radius_mean"]]
            lo, hi = min(xs), max(xs)
            ax.plot([lo, hi], [fit["slope"] * lo + fit["intercept"], fit["slope"] * hi + fit["intercept"]], "k--",
                    lw=1, label=f"fit, R² {fit['r2']:.2f}" if fit["r2"] is not None else "fit")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("mean divergence radius")
        ax.set_ylabel("accuracy drop")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("Accuracy drop against divergence radius, per family and level", fontsize=10)
    fig.tight_layout()
    return responsive_svg(fig)


def _typographic_section(report: dict) -> str:
    """The typographic attack's success and control rates per classifier and level, and examples."""
    if "typographic" not in report:
        return ""
    esc = html.escape
    t = report["typographic"]
    rows = "".join(f"<tr><th scope=\"row\">{esc(task)}</th><td>{_per_level(t['levels'], r['success_rate'])}</td>"
                   f"<td>{_per_level(t['levels'], r['control_rate'])}</td>"
                   f"<td>{_per_level(t['levels'], r['accuracy'])}</td></tr>" for task, r in t["tasks"].items())
    picture = (f'<p><img src="{esc(t["examples"])}" alt="test images (top) with a wrong class name written at the '
               f'highest level (bottom)" style="max-width:100%"></p>' if t.get("examples") else "")
    return ("<h2>Typographic attack</h2><p>A wrong class's name written on each test image; success: the "
            "prediction becomes that class. Control: a word that is no class name in the same place, size and "
            f"colour (how often the prediction becomes the target anyway).</p>{picture}<div class=\"scroll\"><table>"
            "<thead><tr><th scope=\"col\">task</th><th>success rate per level</th><th>control rate</th>"
            f"<th>accuracy under attack</th></tr></thead><tbody>{rows}</tbody></table></div>")


def _shift_section(report: dict) -> str:
    """Per shift set and classifier: accuracy, ECE and the drop from the clean test images."""
    if "shift" not in report:
        return ""
    esc = html.escape
    rows = []
    for name, entry in report["shift"].items():
        subset = " (predictions restricted to these classes)" if entry["restricted_to_subset"] else ""
        for task, r in entry["tasks"].items():
            rows.append(f"<tr><th scope=\"row\">{esc(name)}</th><td>{entry['images']}</td>"
                        f"<td>{entry['classes']}{subset}</td><td>{esc(task)}</td><td>{_fmt(r['accuracy'])}</td>"
                        f"<td>{_fmt(r['clean_accuracy'])}</td><td>{_fmt(r['accuracy_drop'])}</td>"
                        f"<td>{_fmt(r.get('ece'))}</td></tr>")
    return ("<h2>Distribution shift</h2><p>Each shift set classified by the classifiers fitted on the clean "
            "training split.</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">shift set</th>"
            "<th>images</th><th>classes</th><th>task</th><th>accuracy</th><th>clean accuracy</th><th>drop</th>"
            f"<th>ECE</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _ood_section(report: dict) -> str:
    """Per OOD set: each score's AUROC, FPR@95 and AUPR-In on the clean test images, and its AUROC per
    level with the test images perturbed."""
    if "ood" not in report:
        return ""
    esc = html.escape
    parts = ["<h2>Out-of-distribution detection</h2><p>The test images are the positives (in distribution); "
             "every score is higher for what looks in distribution. Perturbed: the test images edited, the OOD "
             f"images clean (kNN k = {report['ood']['params']['knn_k']}).</p>"]
    for name, entry in report["ood"]["sets"].items():
        fams = list(next(iter(entry["scores"].values()))["families"]) if entry["scores"] else []
        head = "".join(f"<th>AUROC, {esc(f)} per level</th>" for f in fams)
        rows = "".join(
            f"<tr><th scope=\"row\">{esc(score)}</th><td>{_fmt(r['clean']['auroc'])}</td>"
            f"<td>{_fmt(r['clean']['fpr95'])}</td><td>{_fmt(r['clean']['aupr_in'])}</td>"
            + "".join(f"<td>{_per_level(r['families'][f]['levels'], r['families'][f]['auroc'])}</td>" for f in fams)
            + "</tr>" for score, r in entry["scores"].items())
        parts.append(f"<h3>{esc(name)} ({entry['images']} images)</h3><div class=\"scroll\"><table><thead><tr>"
                     f"<th scope=\"col\">score</th><th>AUROC</th><th>FPR@95</th><th>AUPR-In</th>{head}</tr></thead>"
                     f"<tbody>{rows}</tbody></table></div>")
    return "".join(parts)


def render_downstream_html(report: dict) -> str:
    esc = html.escape
    rows = []
    for task, entry in report["tasks"].items():
        clean = ", ".join(f"{k} {_fmt(v)}" for k, v in entry["clean"].items())
        for fam, fam_rows in entry["families"].items():
            key = "accuracy" if "accuracy" in fam_rows else "recall@1"
            drop = fam_rows.get("accuracy_drop")
            levels = fam_rows.get("levels") or report["robustness"][fam]["levels"]
            rows.append(f'<tr><th scope="row">{esc(task)}</th><td>{esc(fam)}</td><td>{esc(clean)}</td>'
                        f"<td>{_per_level(levels, fam_rows[key])} ({key})</td>"
                        f"<td>{_per_level(levels, drop) if drop else '–'}</td></tr>")
    pred = []
    for task, p in report["prediction"].items():
        r, c, im = p["vs_radius"], p["vs_one_minus_cosine"], p["per_image"]
        pred.append(f"<tr><th>{esc(task)}</th><td>{_fmt(r['slope'])}</td><td>{_fmt(r['r2'])}</td><td>{_fmt(r['rmse'])}"
                    f"</td><td>{_fmt(c['r2'])}</td><td>{_fmt(im['auroc_radius_predicts_flip'])}</td>"
                    f"<td>{_fmt(im['radius_threshold_at_95_precision'])}</td><td>{im['flips']} / {im['predictions']}</td></tr>")
    ds = report["dataset"]
    warn = ('<p class="warn">Random weights: these numbers are not those of any trained model.</p>'
            if report.get("random_weights") else "")
    body = f"""<h1>Downstream evaluation under perturbation</h1>
{warn}
<p>Model <code>{esc(str(report['model'].get('spec')))}</code>, data set <code>{esc(ds['name'])}</code>
({len(ds['classes'])} classes, {ds['train_images']} training and {ds['test_images']} test images, split {esc(ds['split'])}).
Classifiers are fitted on clean training embeddings; test images are evaluated clean and under each edit.</p>
<h2>Tasks</h2>
<div class="scroll"><table><thead><tr><th scope="col">task</th><th scope="col">family</th><th scope="col">clean</th>
<th scope="col">per level (level: value)</th><th scope="col">accuracy drop per level</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
<h2>Does the divergence radius predict the loss?</h2>
<table><tr><th>task</th><th>slope (drop per radius)</th><th>R²</th><th>RMSE</th><th>R² vs 1−cosine</th>
<th>AUROC radius → flip</th><th>radius at 95% precision</th><th>flips</th></tr>{''.join(pred)}</table>
{_plots(report)}{_shift_section(report)}{_ood_section(report)}{_typographic_section(report)}"""
    return page(f"vfmaudit downstream: {report['model'].get('spec')}", body)


def write_downstream_html(result, path: Path | None = None) -> Path:
    path = Path(path) if path else result.out_dir / "report.html"
    return write_text_atomic(path, render_downstream_html(result.report))
