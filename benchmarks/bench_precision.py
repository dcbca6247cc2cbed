"""fp16 and bf16 artefacts against their torch fp32 model: fidelity and size, per model (seeded random weights).

    python benchmarks/bench_precision.py [--models timm:resnet18,openclip:ViT-B-32] [--images 6]

For each model: one fp32 export, converted to fp16 (onnxconverter-common) and bf16 (vfmaudit's
converter); `export check` of each on the built-in photographs, clean and with the parity edits.
bf16 runs through the CPU emulation (onnxruntime has no bf16 CPU kernels). As an independent
yardstick, the torch model itself in bfloat16 on the clean images: its mean 1 - cosine to fp32
beside the bf16 artefact's on the same images. No speeds: neither reduced precision is fast on
onnxruntime's CPU provider, and bf16 runs emulated.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from _common import machine, table

DEFAULT_MODELS = ("timm:resnet18,openclip:RN50,timm:efficientnet_b0,timm:convnext_atto,"
                  "timm:deit_tiny_patch16_224,openclip:ViT-B-32")


def _loss(emb: np.ndarray, ref: np.ndarray) -> float:
    cos = np.sum(emb * ref, 1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
    return float(np.mean(1 - cos))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--images", type=int, default=6, help="photographs compared (each clean + parity edits)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import onnx
    import torch

    from vfmaudit import check_parity, export_onnx
    from vfmaudit.artefact import make_feed, read_onnx_info
    from vfmaudit.data import sample_items
    from vfmaudit.export.precision import convert_precision
    from vfmaudit.models import build_model
    from vfmaudit.runtime import create_encoder

    print(f"random weights (seed {args.seed}), dynamo exporter; {machine()}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models.split(","):
            t = Path(tmp) / spec.replace(":", "_")
            t.mkdir()
            fp32 = export_onnx(spec, t / "fp32.onnx", seed=args.seed).path
            built = build_model(spec, seed=args.seed)
            clean = np.stack([built.preprocess.prepare(it.load()) for it in sample_items()[:args.images]])
            x = torch.from_numpy(make_feed(clean, read_onnx_info(fp32).input_format, built.preprocess))
            with torch.no_grad():
                ref = built.module.eval()(x).numpy()
                torch_bf16 = built.module.to(torch.bfloat16)(x.to(torch.bfloat16)).float().numpy()
            for precision in ("fp16", "bf16"):
                path = t / f"{precision}.onnx"
                shutil.copy(fp32, path)
                convert_precision(path, precision)
                s = check_parity(path, max_images=args.images).summary()
                clean_loss = _loss(create_encoder("onnx", model=str(path)).encode(clean), ref)
                present = {n.op_type for n in onnx.load(str(fp32), load_external_data=False).graph.node}
                kept = sorted(present & set(read_onnx_info(path).extra["precision_conversion"]["float32_ops"]))
                rows.append([spec, precision, f"{s['min_cosine']:.6f}", f"{s['mean_cosine']:.6f}",
                             f"{clean_loss:.1e}", f"{_loss(torch_bf16, ref):.1e}" if precision == "bf16" else "",
                             f"{path.stat().st_size / fp32.stat().st_size:.2f}",
                             ", ".join(kept)])
                print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["model", "precision", "min cosine", "mean cosine", "1-cos clean", "1-cos torch bf16",
                 "size vs fp32", "kept float32"], rows))


if __name__ == "__main__":
    main()
