"""The attack page: the budgets side by side, the transfer table, and the worst images (clean,
adversarial, and the change amplified to the full grey range) with their cosines."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from vfmaudit.files import write_text_atomic
from vfmaudit.report.page import page, thumbnail

WORST_SHOWN = 6


def amplified(clean: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """The change as an image: mid-grey where nothing moved, the largest change at black or white."""
    d = adv.astype(np.float64) - clean.astype(np.float64)
    peak = max(float(np.abs(d).max()), 1.0)
    return np.clip(127.5 + d * (127.5 / peak), 0, 255).astype(np.uint8)


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.0f}x"


def _budget_table(result) -> str:
    unit = "/255" if result.config.norm == "linf" else " (L2)"
    rows = "".join(
        f"<tr><td>{b['eps']:g}{unit}</td><td>{b['cosine']['mean']:.4f}</td><td>{b['cosine']['p5']:.4f}</td>"
        f"<td>{b['cosine']['worst']:.4f}</td><td>{b['divergence_radius']['mean']:.4f}</td>"
        f"<td>{b['divergence_radius']['worst']:.4f}</td><td>{b['random']['cosine']['mean']:.4f}</td>"
        f"<td>{b['random']['divergence_radius']['mean']:.5f}</td><td>{_times(b.get('worst_to_random_radius'))}</td>"
        f"<td>{b['max_linf_levels']:.0f}</td><td>{b['max_l2']:.4f}</td></tr>"
        for b in result.budgets)
    return ("<div class=\"scroll\"><table><thead><tr><th>eps</th><th>cosine mean</th><th>cosine p5</th>"
            "<th>cosine worst</th><th>radius mean</th><th>radius worst</th><th>random: cosine mean</th>"
            "<th>random: radius mean</th><th>worst / random radius</th><th>max change (grey levels)</th>"
            "<th>max L2</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _transfer_table(result) -> str:
    if not result.transfer:
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(r['artefact'])}</code> ({esc(r['backend'])})</td><td>{r['eps']:g}</td>"
        f"<td>{r['cosine']['mean']:.4f}</td><td>{r['cosine']['worst']:.4f}</td>"
        f"<td>{r['divergence_radius']['mean']:.4f}</td><td>{r['gap']['cosine_mean']:+.4f}</td>"
        f"<td>{r['gap']['cosine_worst']:+.4f}</td></tr>" for r in result.transfer)
    return ("<h2>The same images on the artefacts</h2><p>Gap: the artefact's figure minus the attacked model's.</p>"
            "<div class=\"scroll\"><table><thead><tr><th>artefact</th><th>eps</th><th>cosine mean</th>"
            "<th>cosine worst</th><th>radius mean</th><th>gap cosine mean</th><th>gap cosine worst</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _worst_images(result) -> str:
    if result.clean_images is None or not result.adversarial_images:
        return ""
    eps = max(result.adversarial_images)
    rows = [r for r in result.per_image if r["eps"] == eps]
    order = np.argsort([r["cosine"] for r in rows])[:WORST_SHOWN]
    index = {image: i for i, image in enumerate(result.images)}
    cells = []
    for k in order:
        r = rows[k]
        i = index[r["image"]]
        clean, adv = result.clean_images[i], result.adversarial_images[eps][i]
        figures = "".join(f"<figure><img alt=\"{what}\" src=\"{thumbnail(img, 160, 85)}\"><figcaption>{what}"
                          f"</figcaption></figure>"
                          for what, img in (("clean", clean), ("adversarial", adv),
                                            ("change, amplified", amplified(clean, adv))))
        cells.append(f"<p>{html.escape(r['image'])}: cosine {r['cosine']:.4f}, radius {r['divergence_radius']:.4f}, "
                     f"change up to {r['linf_levels']:.0f} grey levels</p><div class=\"strip\">{figures}</div>")
    return (f"<h2>The worst images at eps {eps:g}</h2><p>Clean, adversarial, and the change amplified to the full "
            f"grey range (mid-grey: unchanged).</p>{''.join(cells)}")


def write_attack_html(result, path: Path) -> Path:
    from vfmaudit.attack import THREAT_MODEL

    cfg = result.config
    esc = html.escape
    weights = result.model.get("weights")
    random = isinstance(weights, dict) and weights.get("kind") == "random"
    intro = ('<p class="warn">Random weights: the model is randomly initialised, not a trained encoder.</p>'
             if random else "")
    body = (f"<h1>Worst case: {esc(cfg.method.upper())} on {esc(str(result.model.get('spec', cfg.model)))}</h1>{intro}"
            f"<p>{len(result.images)} images, {esc(cfg.norm)}, loss {esc(cfg.loss)}, "
            f"{cfg.steps if cfg.method != 'square' else cfg.queries} "
            f"{'steps' if cfg.method != 'square' else 'queries'} x {cfg.restarts} restart(s), seed {cfg.seed}. "
            f"Threat model: {esc(THREAT_MODEL)}.</p>"
            f"<p>The radius at a budget is the divergence radius of the ball over the clean embedding and its "
            f"adversarial embeddings at every budget up to that one: the audit's metric. Beside it, the average "
            f"case on the same scale: one random change of each budget per image (random), the same ball.</p>"
            f"{_budget_table(result)}{_transfer_table(result)}{_worst_images(result)}")
    return _write_page(result, path, f"vfmaudit attack: {cfg.model}", body)


def _write_page(result, path: Path, title: str, body: str) -> Path:
    """Both attack pages: the body, then the inputs that could not be read."""
    if result.skipped:
        body += "<h2>Skipped inputs</h2><ul>" + "".join(
            f"<li>{html.escape(i)}: {html.escape(why)}</li>" for i, why in result.skipped) + "</ul>"
    write_text_atomic(path, page(title, body))
    return path


def _search_images(result) -> str:
    rows = sorted((i for i, r in enumerate(result.rows) if r["chain"]), key=lambda i: result.rows[i]["cosine"])
    cells = []
    for i in rows[:WORST_SHOWN]:
        r, clean, edited = result.rows[i], result.data.images[i], result.final_images[i]
        figures = "".join(f"<figure><img alt=\"{what}\" src=\"{thumbnail(img, 160, 85)}\"><figcaption>{what}"
                          f"</figcaption></figure>" for what, img in (("clean", clean), ("last accepted edit", edited)))
        label = f", label {html.escape(r['label'])}" if r["label"] is not None else ""
        cells.append(f"<p>{html.escape(r['image'])}{label}: <code>{html.escape(r['chain_spec'])}</code>, cosine "
                     f"{r['cosine']:.4f}, radius {r['divergence_radius']:.4f}, stopped: {html.escape(r['stop'])}</p>"
                     f"<div class=\"strip\">{figures}</div>")
    if not cells:
        return "<p>No edit was accepted on any image.</p>"
    return (f"<h2>The images that drifted most</h2><p>Each chain reproduces with <code>vfmaudit perturbations "
            f"--apply CHAIN --seed {result.config.seed}</code> on the clean image at the model's input size.</p>"
            + "".join(cells))


def write_search_html(result, path: Path) -> Path:
    """The edit search's page: SA, PA, FMR, the drift of the approved images, the chains that drifted most."""
    from vfmaudit.attack.search import __doc__ as definitions

    cfg, f, esc = result.config, result.figures, html.escape
    num = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    table = ("<div class=\"scroll\"><table><thead><tr><th>approved</th><th>SA</th><th>PA</th><th>FMR</th>"
             "<th>cosine mean</th><th>cosine worst</th><th>radius mean</th><th>radius worst</th><th>edits mean</th>"
             f"</tr></thead><tbody><tr><td>{f['approved']}/{f['images']}</td><td>{num(f.get('sa'))}</td>"
             f"<td>{num(f.get('pa'))}</td><td>{num(f.get('fmr'))}</td><td>{num(f['cosine']['mean'])}</td>"
             f"<td>{num(f['cosine']['worst'])}</td><td>{num(f['divergence_radius']['mean'])}</td>"
             f"<td>{num(f['divergence_radius']['worst'])}</td><td>{num(f['steps_mean'])}</td></tr></tbody></table>"
             "</div>")
    stops = ", ".join(f"{esc(k)}: {v}" for k, v in f["stops"].items() if v)
    body = (f"<h1>Edit search on {esc(str(result.model.get('spec', cfg.model)))}</h1>"
            f"<p>Oracle {esc(cfg.oracle)} ({esc(result.oracle['mode'])}: {esc(result.oracle['rule'])}); up to "
            f"{cfg.max_edits} edits from {len(f['space'])} candidates, {cfg.queries} queries per image, seed "
            f"{cfg.seed}; loss: {esc(f['classifier'] or '1 - cos to the clean embedding')}.</p>"
            f"<p>{esc(' '.join(definitions.split()))}</p>{table}<p>Stops: {stops}</p>{_search_images(result)}")
    return _write_page(result, path, f"vfmaudit attack --method search: {cfg.model}", body)
