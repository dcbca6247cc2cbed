"""`vfmaudit bench encoder|perturb|meb|audit`: each one API call, rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from vfmaudit.models.spec import DEFAULT_MODEL
from vfmaudit.cli.common import (MaxImagesOpt, MlflowOpt, ImageKeyOpt, StorageOptionOpt, use_sources, DeviceOpt, JsonOpt, LevelsOpt, PerturbationsOpt, PretrainedOpt, err, int_list,
                                 names, out, user_errors, write_result_json)
from vfmaudit.cli.tracked import record_run, tracked
from vfmaudit.data.source import check_max_images
from vfmaudit.errors import VfmauditError
from vfmaudit.runtime import backends

app = typer.Typer(help="Throughput and latency: encoders per backend, perturbations, enclosing balls, whole "
                       "audits. JSON/CSV results carry a hardware/software fingerprint.", no_args_is_help=True)

ModelOrArtefactOpt = Annotated[str, typer.Option("--model", "-m", help="Model spec, or an exported .onnx/.engine.")]


def _precisions() -> str:
    return ", ".join(dict.fromkeys(p for b in backends().values() for p in b.precisions))


@app.command("encoder")
@user_errors
@tracked("bench encoder")
def bench_encoder_cmd(
    model: ModelOrArtefactOpt = DEFAULT_MODEL,
    backends_: Annotated[str, typer.Option("--backends", help=f"Comma list of {', '.join(backends())}.")] = "torch,onnx",
    batch_sizes: Annotated[str, typer.Option(help="Comma list of batch sizes.")] = "1,8,32",
    precision: Annotated[str, typer.Option(help=f"Comma list of {_precisions()}.")] = "fp32",
    device: DeviceOpt = "cpu",
    warmup: Annotated[float, typer.Option(help="Warm-up seconds per configuration.")] = 1.0,
    duration: Annotated[Optional[float], typer.Option(help="Timed seconds per configuration.")] = 3.0,
    iterations: Annotated[Optional[int], typer.Option(
        help="Timed calls per configuration (overrides --duration).")] = None,
    rounds: Annotated[int, typer.Option(
        help="Interleaved rounds (A B C A B C ...): a configuration whose rounds disagree by more than 10 % is "
             "flagged noisy. 1: each configuration timed in one block.")] = 5,
    pretrained: PretrainedOpt = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows as JSON here.")] = None,
    csv_out: Annotated[Optional[Path], typer.Option("--csv", help="Write the rows as CSV here.")] = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Throughput (img/s) and latency in ms (min, mean, median, p90, p95, p99) per backend, precision, batch.

    Latency is host wall time per batch, preprocessing included; on CUDA the torch backend also
    reports device time from CUDA events. A configuration that cannot run here is listed as
    skipped with its reason, never with speeds; one that fails while running is an error row, and
    the others still run. Exit 2 when no configuration ran.
    """
    from vfmaudit import bench_encoders
    from vfmaudit.bench.writers import write_encoder_csv
    from vfmaudit.report.console import print_encoder_bench

    with err.status("benchmarking..."):
        res = bench_encoders(model, names(backends_), int_list(batch_sizes, "batch_sizes"), names(precision),
                             device=device, warmup_s=warmup, duration_s=duration, iterations=iterations,
                             pretrained=pretrained, rounds=rounds)
    print_encoder_bench(res, device, out, err)
    write_result_json(res, json_out, announce=False)
    if csv_out:
        write_encoder_csv(res, csv_out)
    record_run(res.to_json(), [csv_out])
    if not any(r["status"] == "ok" for r in res.rows):  # nothing measured is no success
        raise VfmauditError(f"no configuration could run here ({len(res.rows)} skipped or failed; the reasons are "
                            f"above); choose backends, precisions and a device this machine has")


@app.command("perturb")
@user_errors
@tracked("bench perturb")
def bench_perturb_cmd(
    families: Annotated[str, typer.Option(help="'all' or a comma list of families.")] = "all",
    threads: Annotated[Optional[str], typer.Option(
        help="Comma list of thread counts (default: 1 and all cores).")] = None,
    batch: Annotated[int, typer.Option(help="Images per call.")] = 64,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 224,
    duration: Annotated[float, typer.Option(help="Seconds per measurement.")] = 1.0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the rows as JSON here.")] = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Images per second of each perturbation family at a typical level, for 1..N threads."""
    from vfmaudit import bench_perturb
    from vfmaudit.report.console import print_perturb_bench

    fams = None if families.strip().lower() == "all" else names(families)
    with err.status("benchmarking perturbations..."):
        res = bench_perturb(fams, int_list(threads, "threads") if threads else None, batch, size, duration)
    print_perturb_bench(res, out)
    write_result_json(res, json_out, announce=False)
    record_run(res.to_json())


@app.command("meb")
@user_errors
@tracked("bench meb")
def bench_meb_cmd(
    sets: Annotated[int, typer.Option(help="Number of point sets.")] = 10_000,
    n: Annotated[int, typer.Option(help="Points per set (clean embedding + levels).")] = 11,
    dim: Annotated[int, typer.Option(help="Embedding dimension.")] = 768,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Sets per second of the exact divergence radius (inner products included)."""
    from vfmaudit import bench_meb
    from vfmaudit.report.console import print_meb_bench

    res = bench_meb(sets, n, dim)
    print_meb_bench(res, out)
    write_result_json(res, json_out, announce=False)
    record_run(res.to_json())


@app.command("audit")
@user_errors
@tracked("bench audit")
def bench_audit_cmd(
    images: Annotated[Optional[List[str]], typer.Argument(
        help="Images, any source of vfmaudit audit (default: the built-in samples).", show_default=False)] = None,
    model: ModelOrArtefactOpt = DEFAULT_MODEL,
    batch_size: Annotated[int, typer.Option(help="Encoder batch size (the same for both measurements).")] = 32,
    perturbations: PerturbationsOpt = "everyday",
    levels: LevelsOpt = 5,
    device: DeviceOpt = "cpu",
    engine: Annotated[str, typer.Option(help="local (efficiency against the encoder alone), or ray: scaling "
                                             "with --workers.")] = "local",
    workers: Annotated[str, typer.Option(help="With --engine ray: comma list of worker counts.")] = "1,2",
    ray_address: Annotated[Optional[str], typer.Option(help="With --engine ray: a cluster (default: local Ray).")]
        = None,
    max_images: MaxImagesOpt = None,
    image_key: ImageKeyOpt = None,
    storage_option: StorageOptionOpt = None,
    json_out: JsonOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """End-to-end audit throughput: against the encoder alone (efficiency = audit / encoder img/s), or with
    --engine ray, on 1..N Ray workers beside the local engine (scaling)."""
    check_max_images(max_images, engine)
    use_sources(image_key, None, storage_option, max_images=max_images)
    from vfmaudit import bench_audit, bench_audit_scaling
    from vfmaudit.report.console import print_audit_bench, print_scaling

    with err.status("benchmarking the audit..."):
        if engine == "ray":
            res = bench_audit_scaling(model, [str(p) for p in images or []], batch_size, perturbations, levels,
                                      int_list(workers, "workers"), ray_address=ray_address)
        else:
            res = bench_audit(model, [str(p) for p in images or []], batch_size, perturbations, levels, device)
    (print_scaling if engine == "ray" else print_audit_bench)(res, out)
    write_result_json(res, json_out, announce=False)
    record_run(res.to_json())


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bench")
