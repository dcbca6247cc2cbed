"""Encoders on CPU: torch eager vs ONNX Runtime (plain and CPU-optimised), side by side.

    python benchmarks/bench_encoders.py [--models openclip:ViT-B-32,openclip:RN50] [--batch 32]

Each model is exported once; then the three encoders run the same uint8 batch in turns, every
encoder on all cores, best of several timed runs. Embeddings are compared to torch (cosine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from _common import machine, table


def rate(encoder, batch: np.ndarray, repeats: int = 5) -> float:
    from vfmaudit.runtime.timing import run_timed

    t = run_timed(lambda: encoder.encode(batch), len(batch), warmup_s=0.0, duration_s=None, iterations=repeats)
    return len(batch) / float(t.host_s.min())  # best of the timed runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="openclip:ViT-B-32,openclip:RN50")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json")
    args = ap.parse_args()

    from vfmaudit.export import export_onnx
    from vfmaudit.export.cpu_optimize import optimize_for_cpu
    from vfmaudit.runtime import create_encoder

    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models.split(","):
            torch_enc = create_encoder("torch", model=spec, batch_size=args.batch)
            h, w = torch_enc.preprocess.size
            batch = np.random.default_rng(0).integers(0, 256, (args.batch, h, w, 3), dtype=np.uint8)
            onnx_path = export_onnx(torch_enc.built, Path(tmp) / "m.onnx").path
            opt = optimize_for_cpu(onnx_path)
            encoders = {"torch eager": torch_enc,
                        "onnxruntime": create_encoder("onnx", model=str(onnx_path), batch_size=args.batch),
                        "onnxruntime, CPU-optimised": create_encoder("onnx", model=str(opt.path),
                                                                     batch_size=args.batch)}
            ref = torch_enc.encode(batch[:8])
            rates = {}
            for _ in range(2):  # interleave rounds so drift in machine load hits every encoder
                for name, enc in encoders.items():
                    rates[name] = max(rates.get(name, 0.0), rate(enc, batch))
            for name, enc in encoders.items():
                cos = float(np.min(np.sum(enc.encode(batch[:8]) * ref, axis=1)))
                ratio = rates[name] / rates["torch eager"]
                rows.append([spec, name, f"{rates[name]:.1f}", f"{ratio:.2f}x", f"{cos:.7f}"])
                records.append({"model": spec, "encoder": name, "img_per_s": rates[name], "vs_torch": ratio,
                                "min_cosine_to_torch": cos, "batch": args.batch})
    print(f"CPU encoders, batch {args.batch}, random weights ({machine()})\n")
    print(table(["model", "encoder", "img/s", "vs torch eager", "min cosine to torch"], rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": records}, indent=2))


if __name__ == "__main__":
    main()
