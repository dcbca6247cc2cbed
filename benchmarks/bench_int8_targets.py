"""INT8 to a target: nodes kept in float and speed, per target, for a model with seeded random weights.

    python benchmarks/bench_int8_targets.py --model openclip:RN50 [--targets 0.99,0.999,0.9999] [--size 64]

Prints (and states) what the figures depend on: the exporter, the weights' seed, onnxruntime's
version and the CPU's INT8/bf16 features (VNNI, AVX512_BF16, AMX). The sensitivity ranking is
computed once and every target searched on it; speeds are measured side by side in this run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from _common import machine, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="openclip:RN50")
    ap.add_argument("--targets", default="0.99,0.999,0.9999", help="cosine.p5 targets")
    ap.add_argument("--size", type=int, default=64, help="calibration images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from vfmaudit import export_onnx
    from vfmaudit.artefact import make_feed, read_onnx_info
    from vfmaudit.calibration import build_calibration_set, quantize_onnx, split_held_out
    from vfmaudit.calibration.acceptance import _speed_ratio, accept_int8
    from vfmaudit.calibration.sensitivity import Target, metric_value, search, sensitivity
    from vfmaudit.data import sample_items
    from vfmaudit.runtime import create_encoder

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        res = export_onnx(args.model, t / "m.onnx", seed=args.seed)
        info = read_onnx_info(res.path)
        print(f"{args.model}, random weights (seed {args.seed}), {res.exporter} exporter; {machine()}\n")
        calib_items, held = split_held_out(sample_items(), 0.25, args.seed)
        calib = build_calibration_set(calib_items, info.preprocess, size=args.size, seed=args.seed, cache_dir=t)
        quantize = lambda path, only=None, keep_float=(): quantize_onnx(res.path, path, calib, cache_dir=t,  # noqa: E731
                                                                          only=only, keep_float=keep_float)
        quantize(t / "full.onnx")
        fp32 = create_encoder("onnx", model=str(res.path))
        feed = make_feed(np.asarray(calib.images[:8]), info.input_format, info.preprocess)
        ranking = sensitivity(res.path, calib, quantize, feed, fp32.input_name)
        base = np.stack([fp32.preprocess.prepare(it.load()) for it in held])
        full = create_encoder("onnx", model=str(t / "full.onnx"))
        full_acc = accept_int8(fp32, full, held, levels=2, measure_speed=False)
        full_speed = _speed_ratio(fp32, full, base, 16)
        full_rate = full_speed["int8_img_per_s"]
        rows = [["full INT8", f"{metric_value(full_acc, 'cosine.p5'):.5f}", "0",
                 f"{full_speed['int8_over_fp32']:.2f}x", "1.00x"]]
        for value in (float(v) for v in args.targets.split(",")):
            goal = Target("cosine.p5", ">=", value)

            def evaluate(keep):
                quantize(t / "trial.onnx", keep_float=keep)
                return metric_value(accept_int8(fp32, create_encoder("onnx", model=str(t / "trial.onnx")), held,
                                                levels=2, measure_speed=False), goal.metric)

            found = search(ranking, goal, evaluate)
            quantize(t / "mixed.onnx", keep_float=tuple(found.kept_float))
            sp = _speed_ratio(fp32, create_encoder("onnx", model=str(t / "mixed.onnx")), base, 16)
            rows.append([f"cosine.p5 >= {value:g}" + ("" if found.met else " (not met)"),
                         f"{found.value:.5f}", str(len(found.kept_float)), f"{sp['int8_over_fp32']:.2f}x",
                         f"{sp['int8_img_per_s'] / full_rate:.2f}x"])
        print(table(["target", "cosine.p5 reached", "nodes kept in float", "speed vs fp32", "speed vs full INT8"],
                    rows))
        print(f"\n{len(ranking)} quantizable nodes; most sensitive: " +
              ", ".join(f"{r.name} ({r.module}, 1-cos {r.cosine_loss:.1e})" for r in ranking[:3]))


if __name__ == "__main__":
    main()
