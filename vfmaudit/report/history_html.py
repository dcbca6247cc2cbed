"""The history page (vfmaudit report history): a registered model's versions in order, their verdicts,
a line per checked metric across the versions, and every gate metric in one filterable table."""

from __future__ import annotations

import html
from pathlib import Path

from vfmaudit.files import write_text_atomic
from vfmaudit.report.page import json_block, page, responsive_svg

MAX_PLOTS = 40  # checked metrics drawn; the table has every metric


def _plot(history, metric: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys, colours = [], [], []
    for i, e in enumerate(history.entries):
        v = e.values.get(metric)
        if v is None:
            continue
        check = next((c for c in e.checks if c["metric"] == metric), None)
        xs.append(i)
        ys.append(v)
        colours.append("#999999" if check is None else ("#1a7f37" if check["passed"] else "#cf222e"))
    fig, ax = plt.subplots(figsize=(4.4, 2.6))
    if xs:
        ax.plot(xs, ys, "-", color="#57606a", lw=1)
        ax.scatter(xs, ys, c=colours, s=28, zorder=3)
    latest = next((c for e in reversed(history.entries) for c in e.checks if c["metric"] == metric), None)
    for kind in ("min", "max"):
        t = (latest or {}).get("thresholds", {}).get(kind)
        if t is not None:
            ax.axhline(t, ls="--", lw=0.8, color="#cf222e", label=f"{kind} {t:g} (latest policy)")
    ax.set_xticks(range(len(history.entries)))
    ax.set_xticklabels([e.version or str(i + 1) for i, e in enumerate(history.entries)], fontsize=7)
    ax.set_xlabel("version" if any(e.version for e in history.entries) else "gate run", fontsize=8)
    ax.set_title(metric, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if latest and any(k in latest.get("thresholds", {}) for k in ("min", "max")):
        ax.legend(fontsize=6)
    fig.tight_layout()
    return responsive_svg(fig, max_width=520)


def _verdict(e) -> str:
    return "–" if e.passed is None else ("PASS" if e.passed else "FAIL")


def render_history_html(history) -> str:
    esc = html.escape
    entries = history.entries
    passed = sum(e.passed is True for e in entries)
    parts = [f"<h1>History of {esc(history.source)}</h1>",
             f"<p>{len(entries)} {'versions' if history.source.startswith('models:/') else 'gate runs'} in "
             f"{esc(history.tracking)}, oldest first: {passed} passed their gate, "
             f"{sum(e.passed is False for e in entries)} failed"
             + (f", {sum(e.passed is None for e in entries)} without a gate.json" if any(e.passed is None for e in entries)
                else "") + ".</p>"]
    rows = "".join(
        f'<tr><th scope="row">{esc(e.label)}</th><td>{esc(e.created)}</td><td>{esc(e.model or "–")}</td>'
        f'<td class="verdict{" delta-bad" if e.passed is False else ""}">{_verdict(e)}</td>'
        f"<td>{esc(', '.join(e.aliases) or '–')}</td>"
        f"<td>{esc(', '.join(c['name'] or c['metric'] for c in e.checks if not c['passed']) or e.note or '–')}</td></tr>"
        for e in entries)
    parts.append('<h2>Verdicts</h2><div class="scroll"><table id="verdicts"><thead><tr><th scope="col">version</th>'
                 '<th scope="col">created</th><th scope="col">model</th><th scope="col">gate</th>'
                 '<th scope="col">aliases</th><th scope="col">failed checks</th></tr></thead>'
                 f"<tbody>{rows}</tbody></table></div>")
    checked = history.checked_metrics
    if checked:
        parts.append("<h2>Checked metrics across the versions</h2><p>One line per metric a policy checked "
                     "(green: the check passed, red: it failed, grey: not checked in that version)"
                     + (f"; the first {MAX_PLOTS} of {len(checked)}" if len(checked) > MAX_PLOTS else "") + ".</p>")
        parts.append('<div class="plots">' + "".join(_plot(history, m) for m in checked[:MAX_PLOTS]) + "</div>")
    columns = [{"key": "metric"}] + [{"key": f"v{i}", "digits": 6} for i in range(len(entries))]
    data = [{"metric": m, **{f"v{i}": e.values.get(m) if e.values.get(m) is not None else "–"
                             for i, e in enumerate(entries)}} for m in history.metrics]
    head = "".join(f'<th scope="col">{esc(e.label)}</th>' for e in entries)
    parts.append(f'<h2>Every gate metric</h2><p><label>metric contains <input id="metric-filter" type="search">'
                 f'</label> ({len(data)} metrics)</p><div class="scroll"><table id="metrics"><thead><tr>'
                 f'<th scope="col">metric</th>{head}</tr></thead><tbody></tbody></table></div>'
                 + json_block("metrics-data", data))
    import json

    script = (f"vfmTable({{dataId: 'metrics-data', tableId: 'metrics', columns: {json.dumps(columns)}, "
              "filters: [{key: 'metric', id: 'metric-filter'}], limit: 5000});")
    return page(f"vfmaudit report history {history.source}", "".join(parts), script)


def write_history_html(history, path: str | Path) -> Path:
    history.path = Path(path)
    return write_text_atomic(path, render_history_html(history))
