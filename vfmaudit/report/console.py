"""The summary table printed at the end of an audit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_summary(report: dict, out_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    if report.get("random_weights"):
        console.print("[yellow]random weights[/yellow]: embeddings are not those of a trained model "
                      "(pass --pretrained PATH|TAG for real weights)")
    t = Table(title=f"Embedding drift of {report['model']['spec']} ({report['weights']})")
    t.add_column("family")
    t.add_column("images", justify="right")
    t.add_column("cosine mean", justify="right")
    t.add_column("euclid mean", justify="right")
    t.add_column("radius mean", justify="right")
    t.add_column("radius p95", justify="right")
    t.add_column("radius worst", justify="right")

    def f(v):
        return "–" if v is None else f"{v:.4f}"

    for fam, e in report["families"].items():
        r = e["divergence_radius"]
        t.add_row(fam, str(e["n_images"]), f(e["cosine"]["mean"]), f(e["euclidean"]["mean"]),
                  f(r["mean"]), f(r["p95"]), f(r["worst"]))
    console.print(t)
    n_skip = report["images"]["skipped"]
    if n_skip:
        console.print(f"[yellow]{n_skip} input(s) skipped[/yellow] (listed in report.json):")
        for s in report["skipped"][:10]:
            console.print(f"  {s['input']}: {s['reason']}")
        if n_skip > 10:
            console.print(f"  ... and {n_skip - 10} more")
    console.print(f"wrote {out_dir}/report.json, report.html, per_image.csv, per_level.csv")
