"""Console rendering of every command's result: tables and one-line summaries (rich).

Each function takes the result object an API call returned and prints it; nothing here computes.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vfmaudit.metrics import metrics, primary_metric


def _plain(console: Console, text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _f(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def print_audit_summary(report: dict, out_dir: str, console: Console) -> None:
    if report.get("random_weights"):
        console.print("[yellow]random weights[/yellow]: embeddings are not those of a trained model "
                      "(pass --pretrained PATH|TAG for real weights)")
    t = Table(title=f"Embedding drift of {report['model']['spec']} ({report['weights']})")
    t.add_column("family")
    t.add_column("images", justify="right")
    first = next(iter(report["families"].values()), {})
    names = [m for m in metrics() if m in first]
    for m in names:
        t.add_column(f"{m} mean", justify="right")
    primary = primary_metric()
    short = primary.short  # "radius": the table stays narrow
    t.add_column(f"{short} p95", justify="right")
    t.add_column(f"{short} worst", justify="right")
    for fam, e in report["families"].items():
        r = e.get(primary.name, {})
        t.add_row(fam, str(e["n_images"]), *[_f(e[m]["mean"]) for m in names], _f(r.get("p95")), _f(r.get("worst")))
    console.print(t)
    if report.get("imagenet_c"):
        from vfmaudit.audit.imagenet_c import summary_line

        _plain(console, summary_line(report["imagenet_c"]))
    n_skip = report["images"]["skipped"]
    if n_skip:
        console.print(f"[yellow]{n_skip} input(s) skipped[/yellow] (listed in report.json):")
        for s in report["skipped"][:10]:
            _plain(console, f"  {s['input']}: {s['reason']}")
        if n_skip > 10:
            console.print(f"  ... and {n_skip - 10} more")
    _plain(console, f"wrote {out_dir}/report.json, report.html, per_image.csv, per_level.csv")


def print_export(res, console: Console, err: Console) -> None:
    _plain(console, f"wrote {res.path} ({res.exporter} exporter, input {res.info.input_format}, "
                    f"{res.info.embedding_dim}-d, weights {res.info.weights.get('label')})"
                    + (", external data" if res.external_data else ""))
    if res.fell_back:
        _plain(err, f"warning: the dynamo exporter failed, the file was written by the {res.exporter} exporter "
                    f"({'; '.join(res.info.extra.get('fallback_reasons', []))})")


def print_parity(report, console: Console) -> None:
    s = report.summary()
    verdict = "PASS" if report.passed else "FAIL"
    _plain(console, f"parity {verdict}: {s['images']} embeddings ({s['distinct_images']} images x "
                    f"{' + '.join(s['variants'])}) min cosine {s['min_cosine']:.6f} (needs >= "
                    f"{report.min_cosine_required:g}, {report.precision}), mean {s['mean_cosine']:.6f}, "
                    f"max |diff| {s['max_abs_diff']:.2e}, max rel diff {s['max_rel_diff']:.2e}")
    _plain(console, f"would have passed with: --min-cosine {s['would_pass']['min_cosine']:.6f} "
                    f"(atol {s['would_pass']['atol']:.2e}, rtol {s['would_pass']['rtol']:.2e})")
    providers = report.artefact_info.get("providers")
    if providers:
        emulation = report.artefact_info.get("emulation")
        _plain(console, f"artefact ran on: {', '.join(providers)}" + (f" ({emulation})" if emulation else ""))


def print_engine(build, console: Console) -> None:
    _plain(console, f"wrote {build.engine} ({build.precision}) and {build.sidecar}")


def print_encoder_bench(res, device: str, console: Console, err: Console) -> None:
    fp = res.fingerprint
    t = Table(title=f"{res.model} on {device} ({fp['cpu']}" + (f", {fp['gpu']})" if fp.get("gpu") else ")"))
    for col in ("backend", "precision", "batch", "img/s", "min", "mean", "median", "p90", "p95", "p99", "CV",
                "spread"):
        t.add_column(col, justify="left" if col in ("backend", "precision") else "right")
    noisy = []
    for r in res.rows:
        if r["status"] != "ok":
            t.add_row(r["backend"], r["precision"], str(r["batch_size"]), r["status"], *[""] * 8)
            continue
        lat = r["latency_ms"]
        t.add_row(r["backend"], r["precision"], str(r["batch_size"]), f"{r['throughput']:.1f}",
                  *[f"{lat[k]:.2f}" for k in ("min", "mean", "median", "p90", "p95", "p99")], f"{r['cv']:.2f}",
                  f"{r['spread']:.2f}")
        if r["noisy"]:
            noisy.append(f"{r['backend']}/{r['precision']}/b{r['batch_size']}")
    console.print(t)
    console.print("latency in ms per batch (host wall time)")
    for r in res.rows:
        if r["status"] == "skipped":
            _plain(console, f"skipped {r['backend']}/{r['precision']}/b{r['batch_size']}: {r['reason']}")
        elif r["status"] == "error":
            _plain(err, f"error in {r['backend']}/{r['precision']}/b{r['batch_size']} (the others ran): {r['error']}")
    if noisy:
        _plain(err, f"warning: noisy runs (calls or interleaved rounds disagree by more than 10 %): "
                    f"{', '.join(noisy)}; the machine was busy: rerun with a longer --duration")


def print_perturb_bench(res, console: Console) -> None:
    rows = res["rows"]
    thread_counts = sorted({r["threads"] for r in rows})
    t = Table(title=f"Perturbations, images/s, {res['size']}x{res['size']}, batch {res['batch']}")
    t.add_column("family")
    t.add_column("level", justify="right")
    for n in thread_counts:
        t.add_column(f"{n} thread{'s' if n > 1 else ''}", justify="right")
    by_family: dict = {}
    for r in rows:
        by_family.setdefault((r["family"], r["level"]), {})[r["threads"]] = r["images_per_s"]
    for (fam, level), rates in by_family.items():
        t.add_row(fam, f"{level:g}", *[f"{rates[n]:,.0f}" for n in thread_counts])
    console.print(t)


def print_meb_bench(res, console: Console) -> None:
    _plain(console, f"{res['sets']:,} sets of {res['n']} points in {res['dim']}-d: {res['seconds']:.3f} s, "
                    f"{res['sets_per_s']:,.0f} sets/s ({res['fingerprint']['cpu']}, "
                    f"{res['fingerprint']['cpu_cores']} cores)")


def print_audit_bench(res, console: Console) -> None:
    _plain(console, f"audit: {res['images']} images, {res['encoded_images']} encoded variants (clean and perturbed) "
                    f"in {res['audit_seconds']:.1f} s = "
                    f"{res['audit_images_per_s']:.1f} img/s; encoder alone: {res['encoder_images_per_s']:.1f} img/s; "
                    f"efficiency {res['efficiency']:.2f}")


def print_calibration(result, html_path, console: Console) -> None:
    report = result.report
    acc = report["acceptance"]
    c = acc["cosine_to_fp32"]
    cal = report["calibration"]
    _plain(console, f"wrote {report['int8_model']}: {report['method']} calibration on {cal['images']} images "
                    f"({'cached set' if cal['cached'] else 'new set'}; "
                    f"{', '.join(f'{k} {v}' for k, v in cal['edits'].items())}), "
                    f"{sum(report['quantized_ops'].values())} Q/DQ nodes, peak memory {report['peak_memory_mb']:.0f} MB")
    for part in ("all", "clean", "perturbed"):
        d = c[part]
        _plain(console, f"cosine to fp32 ({part}, {d['n']}): min {d['min']:.5f}  p5 {d['p5']:.5f}  "
                        f"median {d['median']:.5f}  mean {d['mean']:.5f}")
    sp = acc["speed"]
    _plain(console, f"speed on this machine: INT8/fp32 = {sp['int8_over_fp32']:.2f}x "
                    f"({sp['int8_img_per_s']:.1f} vs {sp['fp32_img_per_s']:.1f} img/s)")
    if "sensitivity" in report:
        t = Table(title="Most sensitive nodes (each quantized alone)")
        for col in ("node", "op", "module", "SQNR dB", "1 - cosine"):
            t.add_column(col, justify="right" if col in ("SQNR dB", "1 - cosine") else "left")
        for r in report["sensitivity"][:10]:
            t.add_row(r["node"][-48:], r["op_type"], r["module"][-40:],
                      "–" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}", f"{r['cosine_loss']:.2e}")
        console.print(t)
    if "search" in report:
        s = report["search"]
        sp = s["speed"]
        value = s.get("final_value", s["value"])
        _plain(console, f"target {s['target']}: {'met' if s['met'] else 'NOT met (best found)'} with "
                        f"{s['nodes_kept_float']} node(s) in float, value "
                        f"{'–' if value is None else f'{value:.9g}'} after {len(s['evaluations'])} trial(s); speed "
                        f"{sp['mixed_over_fp32']:.2f}x fp32, {sp['mixed_over_full_int8']:.2f}x full INT8")
    verdict = "PASS" if report["passed"] else "FAIL"
    _plain(console, f"acceptance {verdict}: median cosine {c['all']['median']:.5f} "
                    f"(needs >= {report['min_median_cosine']:g})" if "search" not in report else
           f"acceptance {verdict}: target {report['search']['target']}")
    _plain(console, f"wrote {html_path}")


def print_catalogue_table(title: str, columns: list[str], rows: list[list[str]], console: Console) -> None:
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    console.print(t)


def print_gate_plan(result, console: Console) -> None:
    policy = result.policy
    _plain(console, f"policy {policy.source} is valid; model {policy.model}"
                    + (f", reference {policy.reference}" if policy.reference else ""))
    for name in policy.needed:
        opts = ", ".join(f"{k}={v!r}" for k, v in policy.options[name].items())
        _plain(console, f"would run: {name} ({opts})")
    t = Table(title="Checks")
    for col in ("check", "metric", "direction", "thresholds"):
        t.add_column(col)
    for c in policy.checks:
        t.add_row(c.name or c.where, c.metric, "higher is better" if c.info.higher_is_better else "lower is better",
                  ", ".join(f"{k} {v:g}" for k, v in c.thresholds.items()))
    console.print(t)
    if result.baseline_source:
        _plain(console, f"baseline: {result.baseline_source}")
    for line in result.mlflow.plan if result.mlflow is not None else ():
        _plain(console, line)


def print_gate(result, console: Console) -> None:
    t = Table(title=f"Gate {result.policy.source}: model {result.policy.model}")
    for col in ("", "check", "metric", "value", "thresholds", "baseline", "margin"):
        t.add_column(col, justify="right" if col in ("value", "baseline", "margin") else "left")
    for c in result.checks:
        t.add_row("PASS" if c.passed else "FAIL", c.check.name or c.check.where, c.check.metric,
                  "–" if c.value is None else f"{c.value:.6g}",
                  ", ".join(f"{k} {v:g}" for k, v in c.check.thresholds.items()),
                  "–" if c.baseline is None else f"{c.baseline:.6g}",
                  ", ".join("–" if x["margin"] is None else f"{x['margin']:+.3g}" for x in c.conditions))
    console.print(t)
    for c in result.checks:
        if not c.passed:
            _plain(console, f"FAIL {c.label}: {c.message()}")
    verdict = "PASSED" if result.passed else f"FAILED: {result.failures} of {len(result.checks)} checks"
    _plain(console, f"gate {verdict}; results in {result.out_dir}")


def print_gate_mlflow(outcome, console: Console) -> None:
    """What the registry loop did: the run, the version registered, the alias moved (or why not)."""
    if outcome.run_link:
        _plain(console, f"mlflow: {outcome.run_link}")
    if outcome.registered is not None:
        _plain(console, f"registered: {outcome.registered.uri}")
    if outcome.promoted:
        _plain(console, f"promoted: models:/{outcome.registered.name}@{outcome.promoted} -> version "
                        f"{outcome.registered.version}")
    if outcome.not_promoted:
        _plain(console, outcome.not_promoted)
    for note in outcome.notes:
        _plain(console, f"note: {note}")


def print_downstream(report: dict, out_dir: str, console: Console) -> None:
    if report.get("random_weights"):
        console.print("[yellow]random weights[/yellow]: accuracies are not those of a trained model")
    t = Table(title=f"Downstream: {report['model'].get('spec')} on {report['dataset']['name']}")
    for col in ("task", "clean", *report["perturbations"]):
        t.add_column(col, justify="left" if col == "task" else "right")
    for task, entry in report["tasks"].items():
        key = "accuracy" if "accuracy" in entry["clean"] else "recall@1"
        cells = []
        for fam in report["perturbations"]:
            rows = entry["families"][fam]
            worst = min(rows[key])
            cells.append(f"{worst:.3f}")
        t.add_row(f"{task} ({key}, worst level)", f"{entry['clean'][key]:.3f}", *cells)
    console.print(t)
    for task, p in report["prediction"].items():
        r, im = p["vs_radius"], p["per_image"]
        r2 = "–" if r["r2"] is None else f"{r['r2']:.2f}"
        au = "–" if im["auroc_radius_predicts_flip"] is None else f"{im['auroc_radius_predicts_flip']:.2f}"
        _plain(console, f"{task}: accuracy drop vs radius R² {r2}; AUROC of radius for a flipped prediction {au} "
                        f"({im['flips']} flips of {im['predictions']})")
    if "shift" in report:
        _print_shift(report, console)
    for task, r in report.get("typographic", {}).get("tasks", {}).items():
        lv = report["typographic"]["levels"]
        _plain(console, f"typographic attack, {task}: success rate {', '.join(f'{v:.2f}' for v in r['success_rate'])} "
                        f"(control {', '.join(f'{v:.2f}' for v in r['control_rate'])}) at level"
                        f"{'s' if len(lv) > 1 else ''} {', '.join(f'{v:g}' for v in lv)}")
    if "ood" in report:
        _print_ood(report, console)
    _plain(console, f"wrote {out_dir}/downstream.json, per_level.csv, report.html")


def _num(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _print_shift(report: dict, console: Console) -> None:
    t = Table(title="Distribution shift: accuracy (drop from the clean test images)")
    tasks = [t for t in report["tasks"] if any(t in e["tasks"] for e in report["shift"].values())]
    for col in ("shift set", "images", "classes", *tasks):
        t.add_column(col, justify="left" if col == "shift set" else "right")
    for name, entry in report["shift"].items():
        cells = [f"{r['accuracy']:.3f} ({r['accuracy_drop']:+.3f})" if (r := entry["tasks"].get(task)) else "–"
                 for task in tasks]
        classes = f"{entry['classes']}" + (" (subset)" if entry["restricted_to_subset"] else "")
        t.add_row(name, str(entry["images"]), classes, *cells)
    console.print(t)


def _print_ood(report: dict, console: Console) -> None:
    """Per OOD set and score: AUROC, FPR@95 and AUPR-In on clean test images, and the lowest AUROC over
    the perturbed test images."""
    for name, entry in report["ood"]["sets"].items():
        t = Table(title=f"OOD detection: {name} ({entry['images']} images) against the test images")
        for col in ("score", "AUROC", "FPR@95", "AUPR-In", "AUROC, perturbed test (lowest)"):
            t.add_column(col, justify="left" if col == "score" else "right")
        for score, row in entry["scores"].items():
            perturbed = [a for fam in row["families"].values() for a in fam["auroc"] if a is not None]
            c = row["clean"]
            t.add_row(score, _num(c["auroc"]), _num(c["fpr95"]), _num(c["aupr_in"]),
                      _num(min(perturbed)) if perturbed else "–")
        console.print(t)


def print_finetune(report: dict, out_dir: str, console: Console) -> None:
    if report.get("random_weights"):
        console.print("[yellow]random weights[/yellow]: the starting model is randomly initialised")
    held = report["held_out"]
    primary = primary_metric()
    t = Table(title=f"Held-out {primary.label} before and after ({held['images']} images)")
    for col in ("family", "", "before", "after", "change"):
        t.add_column(col, justify="left" if col in ("family", "") else "right")
    for fam, e in held["families"].items():
        r = e[primary.name]
        change = "–" if r["relative_change"] is None else f"{100 * r['relative_change']:+.1f} %"
        t.add_row(fam, "trained" if e["trained"] else "", f"{r['before']:.4f}", f"{r['after']:.4f}", change)
    console.print(t)
    if "worst_case" in held:
        _print_worst_case(held["worst_case"], console)
    tr = report["training"]
    _plain(console, f"utility cos(f(x), f'(x)) on held-out images: mean {held['utility_cosine']['mean']:.4f}, "
                    f"min {held['utility_cosine']['min']:.4f}; {tr['steps']} steps at {tr['images_per_s']:.1f} images/s")
    if "export" in report:
        ex = report["export"]
        _plain(console, f"exported {ex['onnx']}: parity {'PASS' if ex['passed'] else 'FAIL'} "
                        f"(min cosine {ex['parity']['min_cosine']:.6f})")
    if "gate" in report:
        _plain(console, f"gate {report['gate']['policy']}: {'PASSED' if report['gate']['passed'] else 'FAILED'}")
    _plain(console, f"wrote {out_dir}/weights.safetensors, train_log.csv, report.json, report.html")


def _print_worst_case(w: dict, console: Console) -> None:
    """finetune --adversarial: the held-out worst case at the training budget, before and after."""
    budget = f"{w['eps']:g}/255" if w["norm"] == "linf" else f"{w['eps']:g} (L2)"
    t = Table(title=f"Held-out worst case: trained adversarially at {w['norm']} {budget} "
                    f"(PGD-{w['steps']}, cosine to the clean embedding)")
    for col in ("", "before", "after", "change"):
        t.add_column(col, justify="left" if not col else "right")
    for stat, label in (("cosine_mean", "mean"), ("cosine_worst", "worst")):
        e = w[stat]
        t.add_row(label, f"{e['before']:.4f}", f"{e['after']:.4f}", f"{e['change']:+.4f}")
    console.print(t)


def print_scaling(res, console: Console) -> None:
    t = Table(title=f"Audit scaling: {res['model']}, {res['images']} images")
    for col in ("engine", "workers", "seconds", "images/s", "speed-up vs 1 Ray worker"):
        t.add_column(col, justify="left" if col == "engine" else "right")
    for r in res["rows"]:
        s = r["speedup_vs_1_ray_worker"]
        t.add_row(r["engine"], str(r["workers"]), f"{r['seconds']:.1f}", f"{r['images_per_s']:.2f}",
                  "–" if s is None else f"{s:.2f}x")
    console.print(t)


def _attack_footer(result, console: Console) -> None:
    """Both attack tables: the unreadable inputs and where the outputs went."""
    if result.skipped:
        _plain(console, f"skipped {len(result.skipped)} unreadable input(s): "
                        + "; ".join(f"{i} ({why})" for i, why in result.skipped[:5]))
    if result.out:
        _plain(console, f"wrote {result.out}: attack.json, per_image.csv, report.html")


def print_search(result, console: Console) -> None:
    """The oracle-gated edit search: SA, PA and FMR (labelled), the drift of the approved images, the stops."""
    f, cfg = result.figures, result.config
    t = Table(title=f"Edit search on {len(result.images)} images (up to {cfg.max_edits} edits, {cfg.queries} "
                    f"queries each; oracle {cfg.oracle}, {result.oracle['mode']})")
    for col in ("approved", "SA", "PA", "FMR", "cosine mean", "cosine worst", "radius mean", "radius worst",
                "edits mean"):
        t.add_column(col, justify="right")
    t.add_row(f"{f['approved']}/{f['images']}", _f(f.get("sa")), _f(f.get("pa")), _f(f.get("fmr")),
              _f(f["cosine"]["mean"]), _f(f["cosine"]["worst"]), _f(f["divergence_radius"]["mean"]),
              _f(f["divergence_radius"]["worst"]), _f(f["steps_mean"]))
    console.print(t)
    _plain(console, "stops: " + ", ".join(f"{k} {v}" for k, v in f["stops"].items() if v))
    worst = min((r for r in result.rows if r["chain"]), key=lambda r: r["cosine"], default=None)
    if worst is not None:
        _plain(console, f"worst approved: {worst['image']}: {worst['chain_spec']} (cosine {worst['cosine']:.4f})")
    _attack_footer(result, console)


def print_attack(result, console: Console) -> None:
    cfg = result.config
    unit = "/255" if cfg.norm == "linf" else " (L2, [0, 1] pixels)"
    effort = (f"{cfg.queries} queries" if cfg.method == "square"  # black-box: queries, not steps
              else f"{cfg.steps} steps x {cfg.restarts} restart(s)")
    t = Table(title=f"{cfg.method.upper()} ({cfg.loss} loss, {effort}) on {len(result.images)} images, {cfg.norm}")
    for col in ("eps", "cosine mean", "cosine p5", "cosine worst", "radius mean", "radius worst",
                "random radius mean", "worst / random", "max change"):
        t.add_column(col, justify="right")
    for b in result.budgets:
        change = f"{b['max_linf_levels']:.0f}/255" if cfg.norm == "linf" else f"{b['max_l2']:.3f}"
        ratio = b.get("worst_to_random_radius")
        t.add_row(f"{b['eps']:g}{unit}", f"{b['cosine']['mean']:.4f}", f"{b['cosine']['p5']:.4f}",
                  f"{b['cosine']['worst']:.4f}", f"{b['divergence_radius']['mean']:.4f}",
                  f"{b['divergence_radius']['worst']:.4f}", f"{b['random']['divergence_radius']['mean']:.5f}",
                  f"{ratio:,.0f}x" if ratio is not None else "-", change)
    console.print(t)
    if result.transfer:
        t = Table(title="The same images on the artefacts (gap: artefact - attacked model)")
        for col in ("artefact", "eps", "cosine mean", "cosine worst", "radius mean", "gap cosine mean",
                    "gap cosine worst"):
            t.add_column(col, justify="left" if col == "artefact" else "right")
        for r in result.transfer:
            t.add_row(r["artefact"][-40:], f"{r['eps']:g}", f"{r['cosine']['mean']:.4f}",
                      f"{r['cosine']['worst']:.4f}", f"{r['divergence_radius']['mean']:.4f}",
                      f"{r['gap']['cosine_mean']:+.4f}", f"{r['gap']['cosine_worst']:+.4f}")
        console.print(t)
    shards = result.shards or {}
    if shards.get("reused"):
        console.print(f"resumed: {shards['reused']} of {shards['shards']} shards were finished before")
    _attack_footer(result, console)
