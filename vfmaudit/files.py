"""Writing result files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write text under a unique temporary name in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(obj):
    """NaN and infinity as null (JSON has neither); tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(data: dict, path: str | Path) -> Path:
    """The one JSON writer: atomic, indented, NaN/inf as null, creating the folder."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2))


def file_sha256(path: str | Path) -> str:
    """Content hash of a file (weights, the ONNX source of an engine), read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
