"""End-to-end audit throughput against the encoder alone, on the same model, images, batch size."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from vfmaudit import perturb
from vfmaudit.bench.result import BenchReport
from vfmaudit.artefact.provenance import fingerprint, report_header
from vfmaudit.audit import AuditConfig, measure_audit
from vfmaudit.engines.ray import ray_session
from vfmaudit.runtime import open_encoder
from vfmaudit.runtime.timing import run_timed


def bench_audit(model: str = "openclip:ViT-S-32", inputs: list[str] | None = None, batch_size: int = 32,
                perturbations: str = "all", levels: int = 5, device: str = "cpu", pretrained: str | None = None,
                seed: int = 0, encoder_duration_s: float = 3.0) -> BenchReport:
    """efficiency = audit img/s / encoder img/s, both counted in images through the encoder.

    The audit overlaps decoding and perturbing (a producer thread) with encoding, so the
    closer efficiency is to 1, the less the rest of the pipeline stalls the encoder.
    """
    base = dict(inputs=list(inputs or []), model=model, pretrained=pretrained, device=device, seed=seed,
                batch_size=batch_size, levels=levels, perturbations=perturbations, overwrite=True)
    encoder = open_encoder(model, pretrained, device=device, batch_size=batch_size, seed=seed)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-bench-audit-") as tmp:
        # a first small audit compiles the kernels and warms the encoder: not part of the timing
        measure_audit(AuditConfig(**{**base, "out": f"{tmp}/warm", "levels": 2}), encoder=encoder)
        config = AuditConfig(**{**base, "out": f"{tmp}/timed"})
        t0 = time.perf_counter()
        result = measure_audit(config, encoder=encoder)
        audit_s = time.perf_counter() - t0
    n_images = result.report["images"]["audited"]
    per_image = 1  # the clean image
    for plan in config.plan():
        fam = perturb.get(plan.name)
        per_image += sum(1 for lv in plan.levels if not fam.is_identity(lv))
    encoded = n_images * per_image
    h, w = encoder.preprocess.size
    x = np.random.default_rng(0).integers(0, 256, (batch_size, h, w, 3), dtype=np.uint8)
    enc_rate = run_timed(lambda: encoder.encode(x), batch_size, warmup_s=0.5,
                         duration_s=encoder_duration_s).throughput
    audit_rate = encoded / audit_s
    return BenchReport({**report_header("vfmaudit.bench.audit", 1), "model": model, "batch_size": batch_size,
            "device": device, "images": n_images, "encoded_images": encoded, "audit_seconds": audit_s,
            "audit_images_per_s": audit_rate, "encoder_images_per_s": enc_rate,
            "efficiency": audit_rate / enc_rate, "fingerprint": fingerprint()})


def bench_audit_scaling(model: str = "openclip:ViT-S-32", inputs: list[str] | None = None, batch_size: int = 32,
                        perturbations: str = "all", levels: int = 5, workers: list[int] | None = None,
                        shard_size: int | None = None, ray_address: str | None = None,
                        gpus_per_worker: float = 0.0) -> BenchReport:
    """The same audit on the local engine and on Ray with each worker count: images/s and speed-up.

    Ray is started once (or joined at `ray_address`) for all runs, so its start-up is not timed;
    each run starts from an empty folder.
    """
    workers = workers or [1, 2]
    base = dict(inputs=list(inputs or []), model=model, batch_size=batch_size, levels=levels,
                perturbations=perturbations, overwrite=True)
    rows = []
    with ray_session(ray_address):
        with tempfile.TemporaryDirectory(prefix="vfmaudit-bench-scaling-") as tmp:
            measure_audit(AuditConfig(**{**base, "out": f"{tmp}/warm", "levels": 2}))  # compile the kernels
            t0 = time.perf_counter()
            local = measure_audit(AuditConfig(**{**base, "out": f"{tmp}/local"}))
            local_s = time.perf_counter() - t0
            n = local.report["images"]["audited"]
            rows.append({"engine": "local", "workers": 1, "seconds": local_s, "images_per_s": n / local_s})
            for w in workers:
                config = AuditConfig(**{**base, "out": f"{tmp}/ray{w}", "engine": "ray", "workers": w,
                                        "shard_size": shard_size or max(batch_size, n // (2 * w) or 1),
                                        "gpus_per_worker": gpus_per_worker})
                t0 = time.perf_counter()
                measure_audit(config)
                seconds = time.perf_counter() - t0
                rows.append({"engine": "ray", "workers": w, "seconds": seconds, "images_per_s": n / seconds})
    first_ray = next(r for r in rows if r["engine"] == "ray")
    for r in rows:
        r["speedup_vs_1_ray_worker"] = r["images_per_s"] / first_ray["images_per_s"] if r["engine"] == "ray" else None
    return BenchReport({**report_header("vfmaudit.bench.audit_scaling", 1), "model": model, "images": n,
                        "batch_size": batch_size, "rows": rows, "fingerprint": fingerprint()})
