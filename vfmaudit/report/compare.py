"""Two runs side by side: per-family deltas with direction-aware colours, a per-image scatter, and the
images that moved most. One view for every two-run workflow: audit vs audit (torch vs ONNX,
baseline vs candidate), fp32 vs INT8 (a calibrate report), before vs after (a finetune report).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from vfmaudit.audit.tables import PER_IMAGE, has_table, iter_rows
from vfmaudit.errors import VfmauditError
from vfmaudit.files import write_text_atomic
from vfmaudit.metrics import metrics, primary_metric
from vfmaudit.report.page import json_block, page, responsive_svg

MOVED = 20


@dataclass
class Side:
    label: str
    source: str
    families: dict[str, dict[str, float]]  # family -> metric -> mean
    per_image: dict[tuple[str, str], float] | None = None  # (image, family) -> divergence radius


@dataclass
class Comparison:
    a: Side
    b: Side
    families: dict = field(default_factory=dict)
    moved: list = field(default_factory=list)
    scatter: list = field(default_factory=list)  # [image, family, radius a, radius b]
    path: Path | None = None  # the HTML page, once written

    @property
    def images(self) -> dict:
        """How many images each side has per-image values for, and how many both share (None: no
        per-image values, e.g. a calibrate report's two sides)."""
        def count(side):
            return None if side.per_image is None else len({img for img, _ in side.per_image})

        shared = None
        if self.a.per_image is not None and self.b.per_image is not None:
            shared = len({img for img, _ in self.a.per_image} & {img for img, _ in self.b.per_image})
        return {"a": count(self.a), "b": count(self.b), "shared": shared}

    @property
    def note(self) -> str | None:
        """What the comparison cannot show, said once (console, page, JSON)."""
        n = self.images
        if n["shared"] == 0:
            return (f"A and B share no image ({n['a']} and {n['b']} images): only their per-family summaries are "
                    f"compared, so the deltas mix model drift with different data")
        return None

    def to_json(self) -> dict:
        return {"schema": "vfmaudit.compare", "schema_version": 1, "a": {"label": self.a.label, "source": self.a.source},
                "b": {"label": self.b.label, "source": self.b.source}, "images": self.images, "note": self.note,
                "families": self.families, "moved_most": self.moved}


def _report_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in ("report.json", "downstream.json"):
            if (p / name).is_file():
                return p / name
        raise VfmauditError(f"{path} holds no report.json; pass an audit, calibrate or finetune output "
                            f"folder or a report file", param="reports")
    if not p.is_file():
        raise VfmauditError(f"report not found: {path}", param="reports")
    return p


def sides_of(path: str | Path) -> list[Side]:
    """One side for an audit, two for a calibration (fp32, INT8) or a fine-tuning (before, after)."""
    p = _report_path(path)
    try:
        report = json.loads(p.read_text())
    except ValueError:
        raise VfmauditError(f"{p} is not valid JSON", param="reports") from None
    return sides_from_report(report, str(p), p.parent)


def sides_from_report(report: dict, source: str, folder: Path | None = None) -> list[Side]:
    schema = report.get("schema")
    names = list(metrics())
    if schema == "vfmaudit.audit":
        fams = {f: {m: e[m]["mean"] for m in names if m in e and e[m].get("mean") is not None}
                for f, e in report["families"].items()}
        per_image = None
        if folder is not None and has_table(folder / PER_IMAGE):
            primary = primary_metric().name
            per_image = {(r["image"], r["family"]): float(r[primary]) for r in iter_rows(folder / PER_IMAGE)}
        label = f"{report['model']['spec']} ({report['backend'].get('backend')}, {report.get('weights')})"
        return [Side(label, source, fams, per_image)]
    if schema == "vfmaudit.calibration":
        prof = report["acceptance"]["robustness_profile"]
        # each side's source is its model file, not the report both come from
        return [Side(f"fp32 {report['fp32_model']}", report["fp32_model"],
                     {f: {"divergence_radius": p["fp32"]["mean"]} for f, p in prof.items()}),
                Side(f"int8 {report['int8_model']}", report["int8_model"],
                     {f: {"divergence_radius": p["int8"]["mean"]} for f, p in prof.items()})]
    if schema == "vfmaudit.finetune":
        fams = report["held_out"]["families"]
        return [Side(f"before: {report['model']['spec']}", report["model"]["spec"],
                     {f: {m: e[m]["before"] for m in names if m in e} for f, e in fams.items()}),
                Side(f"after: {report['weights_file']['path']}", report["weights_file"]["path"],
                     {f: {m: e[m]["after"] for m in names if m in e} for f, e in fams.items()})]
    raise VfmauditError(f"{source} is a {schema or 'unknown'} report; compare takes audit, calibrate and finetune "
                        f"reports", param="reports")


def compare(a: Side, b: Side) -> Comparison:
    catalogue = metrics()
    result = Comparison(a, b)
    for fam in [f for f in a.families if f in b.families]:
        entry = {}
        for m, va in a.families[fam].items():
            if m not in b.families[fam] or m not in catalogue:
                continue
            vb = b.families[fam][m]
            worse = catalogue[m].worse_by(vb, va)
            entry[m] = {"a": va, "b": vb, "delta": vb - va, "worse_by": worse,
                        "verdict": "worse" if worse > 1e-6 else ("better" if worse < -1e-6 else "same")}
        result.families[fam] = entry
    if a.per_image and b.per_image:
        shared = [k for k in a.per_image if k in b.per_image]
        result.scatter = [[img, fam, a.per_image[(img, fam)], b.per_image[(img, fam)]] for img, fam in shared]
        ranked = sorted(shared, key=lambda k: -abs(b.per_image[k] - a.per_image[k]))[:MOVED]
        result.moved = [{"image": img, "family": fam, "radius_a": a.per_image[(img, fam)],
                         "radius_b": b.per_image[(img, fam)],
                         "delta": b.per_image[(img, fam)] - a.per_image[(img, fam)]} for img, fam in ranked]
    return result


def compare_paths(a: str | Path, b: str | Path | None = None) -> Comparison:
    """compare A B (two reports, one side each), or compare X (a two-sided calibrate or finetune report)."""
    sa = sides_of(a)
    if b is None:
        if len(sa) != 2:
            raise VfmauditError(f"{a} holds one run; pass a second report to compare it with", param="reports")
        return compare(*sa)
    sb = sides_of(b)
    if len(sa) != 1 or len(sb) != 1:
        raise VfmauditError("compare A B takes two one-run reports (audits); a calibrate or finetune report "
                            "compares its two sides on its own: pass it alone", param="reports")
    return compare(sa[0], sb[0])


def _scatter_plot(comp: Comparison) -> str:
    if not comp.scatter:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = sorted({row[1] for row in comp.scatter})
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for fam in fams:
        pts = [(r[2], r[3]) for r in comp.scatter if r[1] == fam]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, label=fam, alpha=0.8)
    hi = max(max(r[2], r[3]) for r in comp.scatter) * 1.05 or 1.0
    ax.plot([0, hi], [0, hi], "k--", lw=0.8)
    ax.set_xlabel("divergence radius in A")
    ax.set_ylabel("divergence radius in B")
    ax.set_title("Per image and family (above the line: B drifts more)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return responsive_svg(fig, max_width=640)


def _source(text: str, page_dir: Path | None) -> str:
    """A side's source: a link (relative to the page) when it is a file, plain text otherwise (a model spec)."""
    esc = html.escape
    path = Path(text)
    if page_dir is None or not path.is_file():
        return f'<span class="muted">({esc(text)})</span>'
    href = Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
    return f'<span class="muted">(<a href="{esc(href)}">{esc(text)}</a>)</span>'


def render_compare(comp: Comparison, title: str = "Comparison", intro: str = "", extra: str = "",
                   script: str = "", page_dir: Path | None = None) -> str:
    esc = html.escape
    names = [m for m in metrics() if any(m in e for e in comp.families.values())]
    rows = []
    for fam, entry in comp.families.items():
        cells = []
        for m in names:
            if m not in entry:
                cells.append("<td>–</td><td>–</td><td>–</td>")
                continue
            d = entry[m]
            cls = {"worse": "delta-bad", "better": "delta-good"}.get(d["verdict"], "")
            cells.append(f"<td>{d['a']:.4f}</td><td>{d['b']:.4f}</td>"
                         f'<td class="{cls}" title="{d["verdict"]}">{d["delta"]:+.4f} ({d["verdict"]})</td>')
        rows.append(f'<tr><th scope="row">{esc(fam)}</th>{"".join(cells)}</tr>')
    head = "".join(f'<th scope="col">{m} A</th><th scope="col">{m} B</th><th scope="col">Δ {m}</th>' for m in names)
    moved = [{"image": r["image"], "family": r["family"], "radius_a": r["radius_a"], "radius_b": r["radius_b"],
              "delta": r["delta"]} for r in comp.moved]
    moved_html = ""
    if moved:
        moved_html = ("<h2>Images that moved most</h2><div class=\"scroll\"><table id=\"moved\"><thead><tr>"
                      "<th>image</th><th>family</th><th>radius A</th><th>radius B</th><th>Δ radius</th>"
                      "</tr></thead><tbody></tbody></table></div>" + json_block("moved-data", moved))
    scatter = _scatter_plot(comp)
    n = comp.images
    shared = "" if n["shared"] is None else f"<p>Images: {n['a']} in A, {n['b']} in B, {n['shared']} in both.</p>"
    if comp.note:
        shared += f'<p class="warn">{esc(comp.note)}.</p>'
    body = f"""<header><h1>{esc(title)}</h1>{intro}{shared}
<p><b>A</b>: {esc(comp.a.label)} {_source(comp.a.source, page_dir)}<br>
<b>B</b>: {esc(comp.b.label)} {_source(comp.b.source, page_dir)}</p></header>
<main>
<h2>Per family</h2>
<p class="muted">Δ = B − A. Red: B is worse in that metric's direction (cosine: lower; euclidean and radius: higher);
green: better.</p>
<div class="scroll"><table id="families"><thead><tr><th scope="col">family</th>{head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
{('<h2>Per image</h2><div class="plots">' + scatter + '</div>') if scatter else ''}
{moved_html}
{extra}
</main>"""
    script += ("vfmTable({dataId: 'moved-data', tableId: 'moved', columns: [{key: 'image'}, {key: 'family'}, "
              "{key: 'radius_a'}, {key: 'radius_b'}, {key: 'delta'}]});" if moved else "")
    return page(title, body, script)


def write_compare(comp: Comparison, path: str | Path, **kwargs) -> Path:
    return write_text_atomic(path, render_compare(comp, page_dir=Path(path).parent, **kwargs))
