"""vfmaudit: audit and deploy vision encoders.

Robustness of embeddings under everyday image edits (exact minimum-enclosing-ball radius),
export parity, INT8 calibration, benchmarks. The public API is re-exported here and loaded on
first use, so `import vfmaudit` stays fast:

    >>> import vfmaudit
    >>> vfmaudit.AuditConfig().model
    'openclip:ViT-S-32'
"""

from __future__ import annotations

import importlib

from vfmaudit._version import __version__
from vfmaudit.errors import VfmauditError

# public name -> module that defines it (imported on first access)
_LAZY = {
    "run_audit": "vfmaudit.api",
    "export_and_check": "vfmaudit.api",
    "convert_and_check": "vfmaudit.api",
    "export_tensorrt": "vfmaudit.api",
    "calibrate": "vfmaudit.api",
    "run_gate": "vfmaudit.api",
    "gate_history": "vfmaudit.api",
    "run_downstream": "vfmaudit.api",
    "run_finetune": "vfmaudit.api",
    "run_attack": "vfmaudit.api",
    "AttackConfig": "vfmaudit.attack",
    "compare_reports": "vfmaudit.api",
    "FinetuneConfig": "vfmaudit.finetune",
    "DownstreamConfig": "vfmaudit.downstream",
    "load_policy": "vfmaudit.gate",
    "AuditConfig": "vfmaudit.audit",
    "AuditResult": "vfmaudit.audit",
    "create_encoder": "vfmaudit.runtime",
    "open_encoder": "vfmaudit.runtime",
    "Encoder": "vfmaudit.runtime",
    "backends": "vfmaudit.runtime",
    "register_backend": "vfmaudit.runtime",
    "export_onnx": "vfmaudit.export",
    "check_parity": "vfmaudit.export",
    "build_engine": "vfmaudit.export",
    "bench_encoders": "vfmaudit.bench",
    "bench_perturb": "vfmaudit.bench",
    "bench_meb": "vfmaudit.bench",
    "bench_audit": "vfmaudit.bench",
    "bench_audit_scaling": "vfmaudit.bench",
    "measure_agreement": "vfmaudit.audit.agreement",
    "open_source": "vfmaudit.data",
    "SourceOptions": "vfmaudit.data",
    "source_kinds": "vfmaudit.data",
    "ArtefactInfo": "vfmaudit.artefact",
    "read_onnx_info": "vfmaudit.artefact",
}
_SUBMODULES = ("perturb", "metrics", "data", "models", "artefact", "runtime", "export", "calibration", "audit",
               "bench", "gate", "downstream", "finetune", "report", "api", "engines", "plugins", "attack")

__all__ = ["__version__", "VfmauditError", *_LAZY, "perturb", "metrics"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"vfmaudit.{name}")
    else:
        raise AttributeError(f"module 'vfmaudit' has no attribute '{name}'")
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
