"""Encoder throughput and latency per backend, precision and batch size (trtexec's summary)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.bench.fingerprint import fingerprint
from vfmaudit.bench.timing import cuda_event_timer, run_timed
from vfmaudit.errors import VfmauditError

BACKENDS = ("torch", "onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class EncoderBench:
    model: str
    rows: list[dict] = field(default_factory=list)
    fingerprint: dict = field(default_factory=fingerprint)

    def to_json(self) -> dict:
        return {"schema": "vfmaudit.bench.encoder", "schema_version": 1, "model": self.model,
                "fingerprint": self.fingerprint, "rows": self.rows}


class _Artefacts:
    """Builds (once) what each backend needs from a model spec: the torch model, an ONNX file."""

    def __init__(self, model: str, pretrained: str | None, seed: int, workdir: Path):
        self.model, self.pretrained, self.seed, self.workdir = model, pretrained, seed, workdir
        self._built = None
        self._onnx: Path | None = None

    def built(self):
        from vfmaudit.models import build_model

        if self._built is None:
            self._built = build_model(self.model, pretrained=self.pretrained, seed=self.seed)
        return self._built

    def onnx(self) -> Path:
        from vfmaudit.export import export_onnx

        if self.model.endswith(".onnx"):
            return Path(self.model)
        if self._onnx is None:
            self._onnx = export_onnx(self.built(), self.workdir / "model.onnx").path
        return self._onnx


def _make_encoder(backend: str, precision: str, batch: int, device: str, art: _Artefacts):
    """An encoder, or VfmauditError saying why this configuration cannot run here."""
    from vfmaudit.runtime.onnx_backend import OnnxEncoder
    from vfmaudit.runtime.torch_backend import TorchEncoder

    is_file = art.model.endswith((".onnx", ".engine", ".plan"))
    if backend == "torch":
        if is_file:
            raise VfmauditError("the torch backend needs a model spec, not an exported file")
        return TorchEncoder(art.built(), device=device, batch_size=batch, precision=precision)
    if backend == "onnx":
        if precision != "fp32" and not is_file:
            raise VfmauditError(f"no {precision} ONNX to run: pass a {precision} .onnx artefact as --model "
                                f"(int8: `vfmaudit calibrate`)")
        enc = OnnxEncoder(art.onnx(), device=device, batch_size=batch)
        if enc.info.precision != precision:
            raise VfmauditError(f"{art.model} is {enc.info.precision}, not {precision}")
        return enc
    if backend == "tensorrt":
        from vfmaudit.export.tensorrt_build import build_engine, import_tensorrt

        import_tensorrt()  # a clear reason when absent
        engine = Path(art.model) if art.model.endswith((".engine", ".plan")) else art.workdir / f"m_{precision}.engine"
        if not engine.exists():
            if precision == "int8":
                raise VfmauditError("an int8 engine needs calibration data: build it with "
                                    "`vfmaudit export tensorrt --int8` and pass it as --model")
            build_engine(art.onnx(), engine, fp16=precision == "fp16", min_batch=1, opt_batch=batch,
                         max_batch=max(batch, 32))
        from vfmaudit.runtime.tensorrt_backend import TensorRTEncoder

        return TensorRTEncoder(engine, device=device if device.startswith("cuda") else "cuda", batch_size=batch)
    raise VfmauditError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")


def bench_encoders(model: str, backends: list[str], batch_sizes: list[int], precisions: list[str] | None = None,
                   device: str = "cpu", warmup_s: float = 1.0, duration_s: float | None = 3.0,
                   iterations: int | None = None, pretrained: str | None = None, seed: int = 0,
                   progress=None) -> EncoderBench:
    """One row per (backend, precision, batch size): speeds, or status "skipped" with the reason."""
    precisions = precisions or ["fp32"]
    for b in backends:
        if b not in BACKENDS:
            raise VfmauditError(f"unknown backend '{b}'; choose from {', '.join(BACKENDS)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise VfmauditError(f"unknown precision '{p}'; choose from {', '.join(PRECISIONS)}")
    if not batch_sizes or min(batch_sizes) < 1:
        raise VfmauditError("--batch-sizes must be positive integers, e.g. 1,8,32")
    if iterations is not None and iterations < 1:
        raise VfmauditError("--iterations must be >= 1")
    result = EncoderBench(model=model)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-bench-") as tmp:
        art = _Artefacts(model, pretrained, seed, Path(tmp))
        for backend in backends:
            for precision in precisions:
                for batch in batch_sizes:
                    row = {"backend": backend, "precision": precision, "batch_size": batch, "device": device}
                    try:
                        enc = _make_encoder(backend, precision, batch, device, art)
                    except VfmauditError as e:
                        result.rows.append({**row, "status": "skipped", "reason": str(e)})
                        if progress:
                            progress(row)
                        continue
                    h, w = enc.preprocess.size
                    x = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
                    timer = None
                    if backend == "torch" and str(getattr(enc, "device", "")).startswith("cuda"):
                        import torch

                        timer = cuda_event_timer(torch)
                    t = run_timed(lambda: enc.encode(x), batch, warmup_s=warmup_s, duration_s=duration_s,
                                  iterations=iterations, device_timer=timer)
                    desc = enc.describe()
                    result.rows.append({**row, "status": "ok", **t.summary(),
                                        "providers": desc.get("providers"), "embedding_dim": enc.embed_dim})
                    if progress:
                        progress(row)
    return result
