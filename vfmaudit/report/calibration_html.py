"""A self-contained HTML page for an INT8 calibration: acceptance and robustness side by side."""

from __future__ import annotations

import html
from pathlib import Path

from vfmaudit.files import write_text_atomic
from vfmaudit.report.html_report import _svg


def _profile_plot(profile: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fams = list(profile)
    x = np.arange(len(fams))
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(fams)), 3.2))
    ax.bar(x - 0.2, [profile[f]["fp32"]["mean"] for f in fams], 0.4, label="fp32")
    ax.bar(x + 0.2, [profile[f]["int8"]["mean"] for f in fams], 0.4, label="int8")
    ax.set_xticks(x, fams, rotation=30, ha="right")
    ax.set_ylabel("mean divergence radius")
    ax.set_title("Robustness profile, fp32 and INT8 (lower is more robust)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)


def write_calibration_html(report: dict, path: Path) -> Path:
    acc = report["acceptance"]
    esc = html.escape

    def dist_row(name: str, d: dict) -> str:
        return (f"<tr><th>{esc(name)}</th>" + "".join(f"<td>{d[k]:.5f}</td>" for k in ("min", "p5", "median", "mean"))
                + f"<td>{d['n']}</td></tr>")

    cos = acc["cosine_to_fp32"]
    prof = "".join(
        f"<tr><th>{esc(f)}</th><td>{p['fp32']['mean']:.4f}</td><td>{p['int8']['mean']:.4f}</td>"
        f"<td>{p['int8_minus_fp32_mean']:+.4f}</td></tr>" for f, p in acc["robustness_profile"].items())
    sp = acc["speed"]
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>INT8 calibration</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child{{text-align:left}}</style></head><body>
<h1>INT8 calibration and acceptance</h1>
<p><code>{esc(report['int8_model'])}</code> from <code>{esc(report['fp32_model'])}</code>:
{esc(report['method'])} calibration on {report['calibration']['images']} images
({'clean and perturbed' if report['calibration']['perturbed'] else 'clean only'}),
QDQ, per-channel weights, {sum(report['quantized_ops'].values())} quantize/dequantize nodes.
Peak memory during quantization {report['peak_memory_mb']:.0f} MB.</p>
<h2>Cosine to fp32 on held-out images</h2>
<table><tr><th></th><th>min</th><th>p5</th><th>median</th><th>mean</th><th>n</th></tr>
{dist_row('all', cos['all'])}{dist_row('clean', cos['clean'])}{dist_row('perturbed', cos['perturbed'])}</table>
<p>Verdict: <b>{'PASS' if report['passed'] else 'FAIL'}</b> (median cosine needs &ge; {report['min_median_cosine']}).</p>
<h2>Robustness profile</h2>{_profile_plot(acc['robustness_profile'])}
<table><tr><th>family</th><th>fp32 radius</th><th>int8 radius</th><th>difference</th></tr>{prof}</table>
<h2>Speed</h2><p>fp32 {sp['fp32_img_per_s']:.1f} img/s, INT8 {sp['int8_img_per_s']:.1f} img/s:
INT8/fp32 = {sp['int8_over_fp32']:.2f}x (batch {sp['batch']}, this CPU).</p>
</body></html>"""
    return write_text_atomic(path, page)
