"""The calibration page: the compare view (fp32 as A, INT8 as B) with the INT8 acceptance figures."""

from __future__ import annotations

import html
from pathlib import Path

from vfmaudit.report.compare import compare, sides_from_report, write_compare


def write_calibration_html(report: dict, path: Path) -> Path:
    acc = report["acceptance"]
    esc = html.escape

    def dist_row(name: str, d: dict) -> str:
        return (f'<tr><th scope="row">{esc(name)}</th>' + "".join(f"<td>{d[k]:.5f}</td>" for k in ("min", "p5", "median", "mean"))
                + f"<td>{d['n']}</td></tr>")

    cos = acc["cosine_to_fp32"]
    sp = acc["speed"]
    agreement = acc.get("agreement", {})
    intro = (f"<p><code>{esc(report['int8_model'])}</code> from <code>{esc(report['fp32_model'])}</code>: "
             f"{esc(report['method'])} calibration on {report['calibration']['images']} images "
             f"({'clean and perturbed' if report['calibration']['perturbed'] else 'clean only'}), QDQ, per-channel "
             f"weights, {sum(report['quantized_ops'].values())} quantize/dequantize nodes; peak memory "
             f"{report['peak_memory_mb']:.0f} MB. Verdict: <b>{'PASS' if report['passed'] else 'FAIL'}</b> "
             f"(median cosine to fp32 needs &ge; {report['min_median_cosine']}).</p>")
    extra = f"""<h2>Cosine to fp32 on held-out images</h2>
<div class="scroll"><table><thead><tr><th scope="col"></th><th scope="col">min</th><th scope="col">p5</th>
<th scope="col">median</th><th scope="col">mean</th><th scope="col">n</th></tr></thead><tbody>
{dist_row('all', cos['all'])}{dist_row('clean', cos['clean'])}{dist_row('perturbed', cos['perturbed'])}</tbody></table></div>
<p>Nearest-neighbour agreement with fp32 (label-free): top-1 {agreement.get('top1', float('nan')):.3f},
overlap@5 {agreement.get('overlap@5') or float('nan'):.3f}.</p>
<h2>Speed</h2><p>fp32 {sp['fp32_img_per_s']:.1f} img/s, INT8 {sp['int8_img_per_s']:.1f} img/s:
INT8/fp32 = {sp['int8_over_fp32']:.2f}x (batch {sp['batch']}, this CPU).</p>"""
    comp = compare(*sides_from_report(report, str(path)))
    return write_compare(comp, path, title="INT8 calibration: fp32 (A) against INT8 (B)", intro=intro, extra=extra)
