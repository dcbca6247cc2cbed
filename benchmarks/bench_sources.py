"""Audits from every store, side by side: images/s of decode + perturb + encode from a folder, local
WebDataset tars, local Parquet and the same files on S3 (a moto server on 127.0.0.1); peak RSS of
audits that stream 1k / 10k / 50k images; the Ray Data pipeline against the Ray actor engine.

    python benchmarks/bench_sources.py [--images 256] [--rounds 3] [--rss 1000,10000,50000] [--ray 64,256]

Throughput: one audit per source per round (alternated, best of the rounds), in this process, the
model timm:test_vit exported to ONNX (what is measured is the data path around a small encoder),
`-p jpeg,brightness,gaussian_noise --levels 3`, 96x80 PNGs. RSS: a fresh process per size audits
tar shards of 32x32 PNGs (`-p jpeg --levels 1`); its peak resident set (getrusage) is reported.
Ray: the same images as tars and as a folder (the folder cut into shards of ids), 2 workers on a
local Ray instance, at two sizes; the steady-state cost per image is the difference of the two runs' times
over the difference of their sizes (start-up cancels), the start-up what is left of the smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import image_struct, write_shards  # noqa: E402
from s3_server import CREDENTIALS, moto_server, upload  # noqa: E402

PERTURB = ["jpeg", "brightness", "gaussian_noise"]


def png_blobs(n: int, h: int, w: int, seed: int = 0) -> list[bytes]:
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        img = np.clip(base[i % 8].astype(int) + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def make_sets(root: Path, blobs: list[bytes], per_shard: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "folder"
    folder.mkdir(parents=True)
    for i, b in enumerate(blobs):
        (folder / f"{i:06d}.png").write_bytes(b)
    tars = write_shards(root / "tars", blobs, per_shard)
    pq.write_table(pa.table({"image": image_struct(blobs)}), root / "set.parquet", row_group_size=per_shard)
    return {"folder": folder, "tars": tars, "parquet": root / "set.parquet"}


def onnx_model(root: Path) -> str:
    from vfmaudit.export import export_onnx

    return str(export_onnx("timm:test_vit", root / "tv.onnx", exporter="torchscript", seed=0).path)


def timed_audit(inputs: list[str], model: str, out: Path, perturb: list[str], levels: int, **kw) -> float:
    from vfmaudit.audit import AuditConfig, measure_audit

    config = AuditConfig(inputs=inputs, model=model, perturbations=",".join(perturb), levels=levels, batch_size=32,
                         out=str(out), overwrite=True, **kw)
    t0 = time.perf_counter()
    result = measure_audit(config)
    elapsed = time.perf_counter() - t0
    assert result.report["images"]["audited"] > 0
    return elapsed


def throughput_rows(root: Path, model: str, n: int, rounds: int) -> list[list[str]]:
    blobs = png_blobs(n, 80, 96)
    sets = make_sets(root / "thr", blobs, 64)
    rows = []
    with moto_server() as endpoint:
        files = {f"wds/{p.name}": p.read_bytes() for p in sorted(sets["tars"].glob("*.tar"))}
        files["pq/set.parquet"] = sets["parquet"].read_bytes()
        upload(endpoint, "bench", files)
        os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
        sources = {"folder": str(sets["folder"]), "local tars": str(sets["tars"]), "local Parquet": str(sets["parquet"]),
                   "S3 tars (moto)": "s3://bench/wds/", "S3 Parquet (moto)": "s3://bench/pq/set.parquet"}
        best = {k: float("inf") for k in sources}
        timed_audit([sources["folder"]], model, root / "warm", PERTURB, 3)  # warm-up: kernels, sessions
        for _ in range(rounds):
            for name, spec in sources.items():
                best[name] = min(best[name], timed_audit([spec], model, root / "o", PERTURB, 3))
        for name in sources:
            rate = n / best[name]
            rows.append([name, f"{rate:.1f}", f"{best['folder'] / best[name]:.2f}"])
    return rows


def _status_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS of this process, from /proc (ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_child(tars: Path, out: Path, model: str) -> None:
    """In a fresh process: audit the shards, print the peak RSS (and the RSS before the audit)."""
    import onnxruntime  # noqa: F401 - the imports an audit needs, counted before it

    from vfmaudit.audit import AuditConfig  # noqa: F401

    before = _status_mib("VmRSS")
    t = timed_audit([str(tars)], model, out, ["jpeg"], 1)
    print(json.dumps({"peak_rss_mib": _status_mib("VmHWM"), "rss_before_audit_mib": before, "seconds": t}))


def ray_rows(root: Path, model: str, sizes: tuple[int, int]) -> list[list[str]]:
    blobs = png_blobs(max(sizes), 80, 96, seed=1)
    times = {}
    for n in sizes:
        sets = make_sets(root / f"ray{n}", blobs[:n], 32)
        for engine, spec in (("Ray Data (tars)", sets["tars"]), ("Ray Data (folder)", sets["folder"])):
            times[engine, n] = timed_audit([str(spec)], model, root / "ray_out", PERTURB, 3, engine="ray", workers=2,
                                           shard_size=32)
    rows = []
    lo, hi = sizes
    for engine in ("Ray Data (tars)", "Ray Data (folder)"):
        per_image = (times[engine, hi] - times[engine, lo]) / (hi - lo)
        rows.append([engine, f"{times[engine, lo]:.1f}", f"{times[engine, hi]:.1f}", f"{1000 * per_image:.1f}",
                     f"{times[engine, lo] - lo * per_image:.1f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rss", default="1000,10000,50000", help="streamed images per RSS run ('' skips)")
    ap.add_argument("--ray", default="64,256", help="two sizes for the Ray engines ('' skips)")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(Path(args.rss_child), Path(args.out), args.model)
        return
    with tempfile.TemporaryDirectory(prefix="vfm-src-") as tmp:
        root = Path(tmp)
        model = onnx_model(root)
        print(machine())
        print(f"\nThroughput, {args.images} images 96x80, -p {','.join(PERTURB)} --levels 3, best of {args.rounds}:\n")
        print(table(["source", "images/s", "vs folder"], throughput_rows(root, model, args.images, args.rounds)))
        if args.rss:
            rows = []
            for n in [int(x) for x in args.rss.split(",")]:
                tars = write_shards(root / f"rss{n}", png_blobs(n, 32, 32), 1000)
                res = subprocess.run([sys.executable, __file__, "--rss-child", str(tars), "--out", str(root / "rss_out"),
                                      "--model", model], capture_output=True, text=True, check=True)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append([f"{n:,}", f"{r['rss_before_audit_mib']:.0f}", f"{r['peak_rss_mib']:.0f}",
                             f"{n / r['seconds']:.0f}"])
            print("\nPeak RSS of a streamed audit (tar shards of 1,000 32x32 PNGs, -p jpeg --levels 1):\n")
            print(table(["images", "RSS before the audit (MiB)", "peak RSS (MiB)", "images/s"], rows))
        if args.ray:
            lo, hi = (int(x) for x in args.ray.split(","))
            print(f"\nRay engines, 2 workers, local Ray instance, {lo} and {hi} images:\n")
            print(table(["engine", f"{lo} images (s)", f"{hi} images (s)", "steady state (ms/image)", "start-up (s)"],
                        ray_rows(root, model, (lo, hi))))


if __name__ == "__main__":
    main()
