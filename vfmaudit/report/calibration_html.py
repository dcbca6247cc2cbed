"""The calibration page: the compare view (fp32 as A, INT8 as B) with the INT8 acceptance figures,
and with --sensitivity / --target the node ranking (sortable) and the search path."""

from __future__ import annotations

import html
from pathlib import Path

from vfmaudit.report.compare import compare, sides_from_report, write_compare
from vfmaudit.report.page import json_block

esc = html.escape


def _number(v: float | None, digits: int = 5, why: str = "not computable") -> str:
    """A value, or the reason it has none (never 'nan' on the page)."""
    return f"{v:.{digits}f}" if v is not None else f'<span class="muted">– ({esc(why)})</span>'


def _verdict(report: dict) -> str:
    word = f"<b>{'PASS' if report['passed'] else 'FAIL'}</b>"
    s = report.get("search")
    if s:
        value = s.get("final_value", s["value"])
        return (f"Verdict: {word}: target <code>{esc(s['target'])}</code> "
                f"{'met' if s['met'] else 'not met'} with {s['nodes_kept_float']} node(s) kept in float, "
                f"value {_number(value)} on the held-out acceptance below.")
    median = report["acceptance"]["cosine_to_fp32"]["all"]["median"]
    return f"Verdict: {word}: median cosine to fp32 {median:.5f}, needs &ge; {report['min_median_cosine']}."


def _sensitivity(report: dict) -> tuple[str, str]:
    rows = report.get("sensitivity")
    if not rows:
        return "", ""
    data = [{"rank": i + 1, "node": r["node"], "op_type": r["op_type"], "module": r["module"],
             "sqnr_db": r["sqnr_db"] if r["sqnr_db"] is not None else "–", "cosine_loss": r["cosine_loss"]}
            for i, r in enumerate(rows)]
    body = (f"<h2>Sensitivity of the {len(rows)} quantizable nodes</h2>"
            '<p class="muted">Each node quantized alone: SQNR of its output (higher is safer) and 1 − mean cosine of '
            "the embedding to fp32 (higher is more sensitive). Click a column to sort.</p>"
            '<div class="scroll"><table id="sensitivity"><thead><tr><th>rank</th><th>node</th><th>op</th>'
            "<th>module</th><th>SQNR dB</th><th>1 − cosine</th></tr></thead><tbody></tbody></table></div>"
            + json_block("sensitivity-data", data))
    script = ("vfmTable({dataId: 'sensitivity-data', tableId: 'sensitivity', columns: [{key: 'rank', digits: 0}, "
              "{key: 'node'}, {key: 'op_type'}, {key: 'module'}, {key: 'sqnr_db', digits: 1}, "
              "{key: 'cosine_loss', digits: 6}]});")
    return body, script


def _search_path(report: dict) -> str:
    s = report.get("search")
    if not s:
        return ""
    rows = "".join(f"<tr><th scope=\"row\">{i + 1}</th><td>{e['kept_float']}</td><td>{_number(e['value'])}</td>"
                   f"<td>{'met' if e['met'] else 'missed'}</td></tr>" for i, e in enumerate(s["evaluations"]))
    sp = s["speed"]
    return (f"<h2>Search for <code>{esc(s['target'])}</code></h2>"
            "<p class=\"muted\">Each trial keeps the top-k nodes of the ranking in float and is judged on the same "
            "held-out images, families and levels as the acceptance.</p>"
            '<div class="scroll"><table id="search"><thead><tr><th scope="col">trial</th>'
            '<th scope="col">nodes in float</th><th scope="col">value</th><th scope="col">target</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
            f"<p>Chosen: {s['nodes_kept_float']} node(s) in float. Speed: mixed {sp['mixed_over_fp32']:.2f}x fp32, "
            f"{sp['mixed_over_full_int8']:.2f}x the full INT8 model.</p>")


def write_calibration_html(report: dict, path: Path) -> Path:
    acc = report["acceptance"]

    def dist_row(name: str, d: dict) -> str:
        return (f'<tr><th scope="row">{esc(name)}</th>' + "".join(f"<td>{d[k]:.5f}</td>" for k in ("min", "p5", "median", "mean"))
                + f"<td>{d['n']}</td></tr>")

    cos = acc["cosine_to_fp32"]
    sp = acc["speed"]
    agreement = acc.get("agreement", {})
    few = f"needs more than {{k}} held-out images, has {cos['clean']['n']}"
    intro = (f"<p><code>{esc(report['int8_model'])}</code> from <code>{esc(report['fp32_model'])}</code>: "
             f"{esc(report['method'])} calibration on {report['calibration']['images']} images "
             f"({'clean and perturbed' if report['calibration']['perturbed'] else 'clean only'}), QDQ, per-channel "
             f"weights, {sum(report['quantized_ops'].values())} quantize/dequantize nodes; peak memory "
             f"{report['peak_memory_mb']:.0f} MB.</p><p>{_verdict(report)}</p>")
    sens_html, script = _sensitivity(report)
    extra = f"""<h2>Cosine to fp32 on held-out images</h2>
<div class="scroll"><table><thead><tr><th scope="col"></th><th scope="col">min</th><th scope="col">p5</th>
<th scope="col">median</th><th scope="col">mean</th><th scope="col">n</th></tr></thead><tbody>
{dist_row('all', cos['all'])}{dist_row('clean', cos['clean'])}{dist_row('perturbed', cos['perturbed'])}</tbody></table></div>
<p>Nearest-neighbour agreement with fp32 (label-free): top-1 {_number(agreement.get('top1'), 3, few.format(k=1))},
overlap@5 {_number(agreement.get('overlap@5'), 3, few.format(k=5))}.</p>
{_search_path(report)}{sens_html}
<h2>Speed</h2><p>fp32 {sp['fp32_img_per_s']:.1f} img/s, INT8 {sp['int8_img_per_s']:.1f} img/s:
INT8/fp32 = {sp['int8_over_fp32']:.2f}x (batch {sp['batch']}, this CPU).</p>"""
    comp = compare(*sides_from_report(report, str(path)))
    return write_compare(comp, path, title="INT8 calibration: fp32 (A) against INT8 (B)", intro=intro, extra=extra,
                         script=script)
