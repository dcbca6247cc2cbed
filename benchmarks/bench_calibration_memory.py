"""Peak memory of INT8 calibration against calibration-set size: vfmaudit vs plain quantize_static.

    python benchmarks/bench_calibration_memory.py [--model timm:resnet18] [--sizes 32,128,384]
                                                   [--method entropy]

Each configuration runs in its own process and reports its peak resident memory (ru_maxrss),
so the figures do not leak into one another. "ORT default" is onnxruntime's quantize_static
fed the same calibration set through a reader, without vfmaudit's strided collection.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine, table

CHILD = r"""
import json, resource, sys
from pathlib import Path
from vfmaudit.calibration import build_calibration_set
from vfmaudit.calibration.ort_quant import quantize_onnx
from vfmaudit.calibration.reader import StreamingDataReader
from vfmaudit.data import sample_items
from vfmaudit.artefact import read_onnx_info
fp32, size, method, mode, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5])
info = read_onnx_info(fp32)
calib = build_calibration_set(sample_items(), info.preprocess, size=size, cache_dir=tmp / "sets")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if mode == "vfmaudit":
    quantize_onnx(fp32, tmp / f"q_{size}.onnx", calib, method=method, cache_dir=tmp / f"r_{size}_{mode}")
else:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    name = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantize_static(fp32, str(tmp / f"o_{size}.onnx"), StreamingDataReader(calib, info, name, 8),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                      "percentile": CalibrationMethod.Percentile}[method])
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mb": base,
                  "images": len(calib)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="timm:resnet18")
    ap.add_argument("--sizes", default="32,128,384")
    ap.add_argument("--method", default="entropy")
    ap.add_argument("--json")
    args = ap.parse_args()
    from vfmaudit.export import export_onnx

    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(args.model, Path(tmp) / "m.onnx", exporter="torchscript").path
        for size in [int(s) for s in args.sizes.split(",")]:
            res = {}
            for mode in ("vfmaudit", "ort-default"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(fp32), str(size), args.method, mode, tmp],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    res[mode] = {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
                else:
                    res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            n = res["vfmaudit"].get("images", size)
            rows.append([str(n)] + [f"{res[m]['peak_mb']:.0f} MB (+{res[m]['peak_mb'] - res[m]['before_mb']:.0f})"
                                    if "peak_mb" in res[m] else res[m]["error"] for m in ("vfmaudit", "ort-default")])
            records.append({"images": n, **res})
    print(f"Peak memory of {args.method} calibration, {args.model} ({machine()}, "
          f"{resource.getpagesize()} B pages)\n")
    print(table(["calibration images", "vfmaudit (strided)", "quantize_static default"], rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": records}, indent=2))


if __name__ == "__main__":
    main()
