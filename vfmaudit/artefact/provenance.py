"""Where a result came from: schema header, package versions, hardware fingerprint.

Every JSON report vfmaudit writes starts with `report_header(...)`; benchmark results also
carry `fingerprint()`. One place builds them, so every report says the same things the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

from vfmaudit._version import __version__

# distributions whose versions explain a result (absent ones are left out)
_PACKAGES = ("vfmaudit", "numpy", "numba", "torch", "open_clip_torch", "timm", "opencv-python-headless",
             "pillow", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "tensorrt", "scikit-image")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def report_header(schema: str, schema_version: int) -> dict:
    """The first keys of every JSON report: what it is, which version of its schema, when, by whom."""
    return {"schema": schema, "schema_version": schema_version, "created": utc_now(),
            "vfmaudit_version": __version__}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that decide INT8 and bf16 speed (VNNI: INT8 dot products; AMX: tile matrix units)
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in present]
    except OSError:
        pass
    return []


def nvidia_gpu_name() -> str | None:
    """The first NVIDIA GPU's name from nvidia-smi (no torch, no CUDA context); None without one."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    return names[0] if names else None


def fingerprint() -> dict:
    """Hardware and software a measurement ran on (benchmarks attach it to every result)."""
    import psutil

    d = {"date": utc_now(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
         "cpu_flags": cpu_flags(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "gpu": None,
         "cuda": None}
    torch = sys.modules.get("torch")  # only when the run loaded it: a bench of an artefact imports no torch
    if torch is not None:
        d["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            d["gpu"] = torch.cuda.get_device_name(0)
            d["cuda"] = torch.version.cuda
    if d["gpu"] is None:
        d["gpu"] = nvidia_gpu_name()
    d["versions"] = package_versions()
    return d


def flat_fingerprint(fp: dict) -> dict:
    """The fingerprint as flat columns for CSV rows."""
    v = fp.get("versions", {})
    return {"cpu": fp["cpu"], "cpu_cores": fp["cpu_cores"], "gpu": fp.get("gpu") or "",
            "torch": v.get("torch", ""), "onnxruntime": v.get("onnxruntime", v.get("onnxruntime-gpu", "")),
            "tensorrt": v.get("tensorrt", ""), "vfmaudit": v.get("vfmaudit", ""), "date": fp["date"]}
