"""The effective-robustness page (vfmaudit report shift): per shift set and task, the models' shift
accuracy against their clean accuracy on logit axes, the fitted line, and each model's distance from it."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from vfmaudit.files import write_text_atomic
from vfmaudit.report.page import page, responsive_svg


def _plot(pair: dict, runs: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vfmaudit.downstream.effective import logit

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    x = logit([p["clean_accuracy"] for p in pair["points"]])
    y = logit([p["shift_accuracy"] for p in pair["points"]])
    ax.scatter(x, y, s=24)
    for p, xi, yi in zip(pair["points"], x, y):
        ax.annotate(str(runs[p["run"]]["model"]), (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    fit = pair["fit_logit"]
    if fit["slope"] is not None:
        xs = np.linspace(x.min(), x.max(), 2)
        ax.plot(xs, fit["slope"] * xs + fit["intercept"], "k--", lw=1, label="fit across the models")
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    ax.plot([lo, hi], [lo, hi], ":", color="grey", lw=1, label="no drop (y = x)")
    ax.set_xlabel("clean accuracy (logit)")
    ax.set_ylabel("shift accuracy (logit)")
    ax.set_title(f"{pair['shift']} / {pair['task']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return responsive_svg(fig)


def render_shift_html(result) -> str:
    esc = html.escape
    parts = ["<h1>Effective robustness</h1><p>Per shift set and task: each model's shift accuracy against its "
             "clean accuracy, a line fitted across the models in logit space (Taori et al., 2020), and the "
             "effective robustness, the shift accuracy minus the line's at the model's clean accuracy.</p>"]
    parts += [f'<p class="warn">{esc(n)}</p>' for n in result.notes]
    for key, pair in result.pairs.items():
        rows = "".join(
            f"<tr><th scope=\"row\">{esc(str(result.runs[p['run']]['model']))}</th><td>{p['clean_accuracy']:.4f}</td>"
            f"<td>{p['shift_accuracy']:.4f}</td><td>{'–' if p['predicted_shift_accuracy'] is None else format(p['predicted_shift_accuracy'], '.4f')}</td>"
            f"<td>{'–' if p['effective_robustness'] is None else format(p['effective_robustness'], '+.4f')}</td></tr>"
            for p in pair["points"])
        parts.append(f"<h2>{esc(key)}</h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">model</th>"
                     "<th>clean accuracy</th><th>shift accuracy</th><th>on the line</th><th>effective robustness</th>"
                     f"</tr></thead><tbody>{rows}</tbody></table></div>{_plot(pair, result.runs)}")
    return page("vfmaudit report shift", "".join(parts))


def write_shift_html(result, path: Path) -> Path:
    result.path = Path(path)
    return write_text_atomic(path, render_shift_html(result))
