"""GPU smoke test: every GPU path of vfmaudit on one NVIDIA GPU, in one table.

    pip install ".[gpu]"      # torch with CUDA; onnxruntime-gpu and TensorRT where available
    python benchmarks/gpu_smoke.py [--models openclip:ViT-B-32,openclip:RN50] [--device cuda]
                                   [--batch 32] [--seconds 2] [--json gpu_smoke.json]

For each model (seeded random weights): the ONNX exports (fp32, fp16, bf16) and an INT8 Q/DQ file,
a TensorRT engine from each, then one row per runtime and artefact: torch on CUDA (fp32, fp16,
bf16), onnxruntime's CUDA and TensorRT providers, TensorRT engines. Each row gives throughput,
latency p50/p99, the device phases (host-to-device copy, compute, device-to-host copy, as trtexec
splits them) and parity: the minimum cosine to torch fp32 on CUDA over the built-in photographs.

A step that cannot run here (no CUDA GPU, no TensorRT, no onnxruntime-gpu) makes its rows
"skipped" with the reason; a step that fails makes them "error" with one line; the script goes on
and exits 0 whenever it could report. Only torch with CUDA installed: the torch rows run, the rest
are skipped and say why.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from vfmaudit.errors import one_line

ONNX_PRECISIONS = ("fp32", "fp16", "bf16")
TORCH_PRECISIONS = ("fp32", "fp16", "bf16")
RUNTIMES = ("torch", "onnx-cuda", "onnx-tensorrt", "tensorrt")
COLUMNS = ["model", "runtime", "precision", "status", "images_per_s", "p50_ms", "p99_ms", "h2d_ms", "compute_ms",
           "d2h_ms", "min_cosine", "note"]


def environment(device: str) -> dict:
    """What this machine can run, and why not where it cannot."""
    import torch

    env = {"cuda": torch.cuda.is_available(), "device": device, "torch": torch.__version__}
    env["no_cuda"] = None if env["cuda"] else "torch sees no CUDA GPU"
    env["tensorrt"] = importlib.util.find_spec("tensorrt") is not None
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    env["providers"] = providers
    env["why_not"] = {
        "torch": env["no_cuda"],
        "onnx-cuda": env["no_cuda"] or (None if "CUDAExecutionProvider" in providers else
                                        "onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu is not installed)"),
        "onnx-tensorrt": env["no_cuda"] or (None if "TensorrtExecutionProvider" in providers else
                                            "onnxruntime has no TensorrtExecutionProvider (onnxruntime-gpu with "
                                            "TensorRT is not installed)"),
        "tensorrt": env["no_cuda"] or (None if env["tensorrt"] else "TensorRT is not installed (pip install "
                                                                    "'vfmaudit[gpu]')"),
    }
    if env["cuda"]:
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def photographs(size: tuple[int, int]) -> np.ndarray:
    """The built-in sample photographs at the model's input size (uint8 NHWC)."""
    import cv2

    from vfmaudit.data import sample_items

    h, w = size
    return np.stack([cv2.resize(it.load(), (w, h), interpolation=cv2.INTER_AREA) for it in sample_items()])


def measure(enc, batch: int, seconds: float, reference: np.ndarray, images: np.ndarray) -> dict:
    """Throughput, latency and device phases of encode() on one batch, and the parity of its embeddings."""
    from vfmaudit.runtime.timing import run_timed

    emb = enc.encode(images)
    cos = np.sum(emb * reference, axis=1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(reference, axis=1)
    x = np.resize(images, (batch, *images.shape[1:]))
    timer = enc.device_timer() if hasattr(enc, "device_timer") else None
    s = run_timed(lambda: enc.encode(x), batch, warmup_s=min(1.0, seconds), duration_s=seconds,
                  device_timer=timer).summary()
    row = {"status": "ok", "images_per_s": s["throughput"], "p50_ms": s["latency_ms"]["median"],
           "p99_ms": s["latency_ms"]["p99"], "min_cosine": float(cos.min())}
    for phase in ("h2d", "d2h"):
        if f"{phase}_latency_ms" in s:
            row[f"{phase}_ms"] = s[f"{phase}_latency_ms"]["median"]
    if "gpu_latency_ms" in s:
        row["compute_ms"] = s["gpu_latency_ms"]["median"]
    if getattr(enc, "fallback", None):
        row["note"] = enc.fallback
    return row


class Smoke:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args, self.workdir = args, workdir
        self.env = environment(args.device)
        self.rows: list[dict] = []

    def add(self, model: str, runtime: str, precision: str, **fields) -> dict:
        row = {"model": model, "runtime": runtime, "precision": precision, **fields}
        self.rows.append(row)
        if row["status"] != "ok":
            print(f"{row['status']}: {model} {runtime} {precision}: {row.get('note', '')}", file=sys.stderr)
        return row

    def attempt(self, model: str, runtime: str, precision: str, make) -> None:
        """make() -> an encoder; its row is measured, or says why it could not be."""
        why = self.env["why_not"][runtime]
        if why:
            self.add(model, runtime, precision, status="skipped", note=why)
            return
        try:
            enc = make()
            self.add(model, runtime, precision, **measure(enc, self.args.batch, self.args.seconds, self.reference,
                                                           self.images))
        except Exception as e:  # noqa: BLE001 - one row's failure is its row, not the script's
            self.add(model, runtime, precision, status="error", note=one_line(e))

    def artefact(self, what: str, build):
        """An artefact every later row of it needs, or the exception that stopped it (rows say it)."""
        try:
            return build()
        except Exception as e:  # noqa: BLE001
            print(f"error: {what}: {one_line(e)}", file=sys.stderr)
            return e

    def run_model(self, model: str) -> None:
        from vfmaudit import create_encoder, export_onnx

        dev = self.args.device
        if self.env["no_cuda"]:
            for runtime in RUNTIMES:
                for p in (TORCH_PRECISIONS if runtime == "torch" else (*ONNX_PRECISIONS, "int8")):
                    self.add(model, runtime, p, status="skipped", note=self.env["no_cuda"])
            return
        ref = create_encoder("torch", model=model, seed=0, device=dev, batch_size=self.args.batch)
        self.images = photographs(ref.preprocess.size)
        self.reference = ref.encode(self.images)
        for p in TORCH_PRECISIONS:
            self.attempt(model, "torch", p, lambda p=p: create_encoder("torch", model=model, seed=0, device=dev,
                                                                       batch_size=self.args.batch, precision=p))
        del ref
        consumers = [r for r in RUNTIMES[1:] if not self.env["why_not"][r]]
        name = model.replace(":", "_").replace("/", "_")
        files: dict[str, object] = {}
        if consumers:  # exports and calibration only where something here can run them
            for p in ONNX_PRECISIONS:
                files[p] = self.artefact(f"export {model} {p}", lambda p=p: export_onnx(
                    model, self.workdir / f"{name}_{p}.onnx", seed=0, precision=p).path)
            files["int8"] = self.artefact(f"calibrate {model}", lambda: self.int8(files["fp32"], name))
        engines: dict[str, object] = {}
        if not self.env["why_not"]["tensorrt"]:
            from vfmaudit.export.tensorrt_build import build_engine

            for p, path in files.items():
                engines[p] = path if isinstance(path, Exception) else self.artefact(
                    f"TensorRT engine {model} {p}", lambda p=p, path=path: build_engine(
                        path, self.workdir / f"{name}_{p}.engine", opt_batch=self.args.batch,
                        max_batch=max(32, self.args.batch), device=dev).engine)
        for runtime, provider in (("onnx-cuda", "cuda"), ("onnx-tensorrt", "tensorrt")):
            for p in (*ONNX_PRECISIONS, "int8"):
                self.attempt(model, runtime, p, lambda p=p, provider=provider: create_encoder(
                    "onnx", model=str(self.ready(files.get(p))), device=dev, batch_size=self.args.batch,
                    provider=provider))
        for p in (*ONNX_PRECISIONS, "int8"):
            self.attempt(model, "tensorrt", p, lambda p=p: create_encoder(
                "tensorrt", model=str(self.ready(engines.get(p))), device=dev, batch_size=self.args.batch))

    @staticmethod
    def ready(artefact):
        if isinstance(artefact, Exception):
            raise artefact
        if artefact is None:
            raise RuntimeError("its artefact was not built")
        return artefact

    def int8(self, fp32, name: str) -> Path:
        from vfmaudit import calibrate

        out = self.workdir / f"{name}_int8.onnx"
        calibrate(self.ready(fp32), out, size=32, cache_dir=self.workdir / "calibration", overwrite=True)
        return out


def render(rows: list[dict]) -> str:
    def cell(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="openclip:ViT-B-32,openclip:RN50")
    ap.add_argument("--device", default="cuda", help="cuda or cuda:N")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per row")
    ap.add_argument("--json", default="gpu_smoke.json", help="where the rows and the environment go")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-gpu-smoke-") as tmp:
        smoke = Smoke(args, Path(tmp))
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            try:
                smoke.run_model(model)
            except Exception as e:  # noqa: BLE001 - e.g. the reference model cannot be built
                smoke.add(model, "torch", "fp32", status="error", note=one_line(e))
    env = {k: v for k, v in smoke.env.items() if k != "no_cuda"}
    print(render(smoke.rows))
    skipped = [r for r in smoke.rows if r["status"] == "skipped"]
    if skipped:
        reasons = sorted({r["note"] for r in skipped})
        print(f"\n{len(skipped)} of {len(smoke.rows)} rows skipped: " + "; ".join(reasons))
    Path(args.json).write_text(json.dumps({"schema": "vfmaudit.gpu_smoke", "version": 1, "environment": env,
                                           "rows": smoke.rows}, indent=2))
    print(f"rows and environment: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
