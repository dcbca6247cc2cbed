"""Hardware and software fingerprint attached to every benchmark result."""

from __future__ import annotations

import datetime as dt
import os
import platform

from vfmaudit.report.versions import package_versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint() -> dict:
    import psutil

    d = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": _cpu_model(),
         "cpu_cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
         "gpu": None, "cuda": None}
    try:
        import torch

        d["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            d["gpu"] = torch.cuda.get_device_name(0)
            d["cuda"] = torch.version.cuda
    except ImportError:
        pass
    d["versions"] = package_versions()
    return d


def flat_fingerprint(fp: dict) -> dict:
    """The fingerprint as flat columns for CSV rows."""
    v = fp.get("versions", {})
    return {"cpu": fp["cpu"], "cpu_cores": fp["cpu_cores"], "gpu": fp.get("gpu") or "",
            "torch": v.get("torch", ""), "onnxruntime": v.get("onnxruntime", v.get("onnxruntime-gpu", "")),
            "tensorrt": v.get("tensorrt", ""), "vfmaudit": v.get("vfmaudit", ""), "date": fp["date"]}
