"""What an exported artefact says about itself: model spec, weights, preprocessing, dims.

Stored as ONNX metadata_props (keys prefixed "vfmaudit.") and in a JSON side-car for
TensorRT engines, so a deployed file is self-describing and `export check` can rebuild its
reference without being told.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vfmaudit._version import __version__
from vfmaudit.artefact.feeds import INPUT_FLOAT_NCHW, INPUT_UINT8_NHWC  # noqa: F401  (re-exported)
from vfmaudit.errors import VfmauditError
from vfmaudit.models.preprocess import PreprocessSpec

PREFIX = "vfmaudit."


@dataclass
class ArtefactInfo:
    spec: str
    weights: dict
    preprocess: PreprocessSpec
    embedding_dim: int
    input_format: str = INPUT_FLOAT_NCHW
    precision: str = "fp32"
    exporter: str = ""
    vfmaudit_version: str = __version__
    extra: dict = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        d = asdict(self)
        d["preprocess"] = self.preprocess.to_dict()
        return {PREFIX + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in d.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> "ArtefactInfo":
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if "spec" not in ours or "preprocess" not in ours:
            raise VfmauditError(
                f"{source} carries no vfmaudit metadata (model spec, preprocessing); "
                f"export it with `vfmaudit export onnx`"
            )
        try:
            return cls(
                spec=ours["spec"], weights=json.loads(ours.get("weights", "{}")),
                preprocess=PreprocessSpec.from_dict(json.loads(ours["preprocess"])),
                embedding_dim=int(json.loads(ours.get("embedding_dim", "0"))),
                input_format=ours.get("input_format", INPUT_FLOAT_NCHW),
                precision=ours.get("precision", "fp32"), exporter=ours.get("exporter", ""),
                vfmaudit_version=ours.get("vfmaudit_version", ""),
                extra=json.loads(ours.get("extra", "{}")),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise VfmauditError(f"{source} has unreadable vfmaudit metadata ({e}); export it again") from None

    def reference_args(self) -> dict:
        """How to rebuild the torch model this artefact came from (spec, pretrained, seed)."""
        w = self.weights
        if w.get("kind") == "file":
            return {"model": self.spec, "pretrained": w.get("path"), "seed": 0}
        if w.get("kind") == "tag":
            return {"model": self.spec, "pretrained": w.get("tag"), "seed": 0}
        return {"model": self.spec, "pretrained": None, "seed": int(w.get("seed", 0))}


def load_onnx_graph(path: str | Path, external_data: bool = False):
    """The ModelProto (its external weights only if asked), or a one-line error for a file that is not ONNX."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as e:  # noqa: BLE001 - any parse failure means "not an ONNX file"
        raise VfmauditError(f"{path} is not a readable ONNX file ({type(e).__name__}); pass a .onnx model") from None


def onnx_info(model, source: str) -> ArtefactInfo:
    return ArtefactInfo.from_props({p.key: p.value for p in model.metadata_props}, source)


def read_onnx_info(path: str | Path) -> ArtefactInfo:
    return ArtefactInfo.from_props(read_onnx_props(path), str(path))


# ModelProto's field numbers (onnx.proto): what read_onnx_props needs of the top level
_IR_VERSION, _GRAPH, _METADATA_PROPS = 1, 7, 14


def _varint(data, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data, start: int, end: int):
    """(field number, wire type, value or (start, end) of a length-delimited value) of one protobuf message."""
    pos = start
    while pos < end:
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1 or wire == 5:
            value, pos = None, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        else:  # groups (3, 4) are not in onnx.proto; 6 and 7 do not exist
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("a field runs past the end")
        yield field, wire, value


def read_onnx_props(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, read from its protobuf wire format without parsing the graph
    or importing onnx (whose import costs an artefact audit about a second of start-up: ml_dtypes);
    a one-line error for a file that is not ONNX (no ir_version or no graph at the top level)."""
    import mmap

    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            props, seen = {}, set()
            for field, wire, value in _fields(data, 0, len(data)):
                seen.add((field, wire))
                if field == _METADATA_PROPS and wire == 2:  # StringStringEntryProto: key = 1, value = 2
                    entry = {f: bytes(data[v[0]:v[1]]).decode() for f, w, v in _fields(data, *value) if w == 2}
                    props[entry.get(1, "")] = entry.get(2, "")
    except (ValueError, OSError, UnicodeDecodeError) as e:  # mmap of an empty file is a ValueError too
        raise VfmauditError(f"{path} is not a readable ONNX file ({type(e).__name__}); pass a .onnx model") from None
    if not {(_IR_VERSION, 0), (_GRAPH, 2)} <= seen:
        raise VfmauditError(f"{path} is not a readable ONNX file (no model graph); pass a .onnx model")
    return props


def write_onnx_info(path: str | Path, info: ArtefactInfo) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))  # external data references stay as they are (same folder)


def external_data_files(model, folder: str | Path) -> list[Path]:
    """The files an ONNX graph keeps its external weights in, each once, in a stable order."""
    from onnx import TensorProto

    locations = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            locations.update(e.value for e in tensor.external_data if e.key == "location")
    return [Path(folder) / name for name in sorted(locations)]


def onnx_content_sha256(path: str | Path, graph=None) -> str:
    """sha256 of an ONNX file and of its external data files: what it computes, whatever its name.
    graph: the file's ModelProto when the caller has parsed it already (else it is read here)."""
    import hashlib

    from vfmaudit.files import file_sha256

    path = Path(path)
    digest = hashlib.sha256(file_sha256(path).encode())
    for data in external_data_files(graph if graph is not None else load_onnx_graph(path), path.parent):
        digest.update(data.name.encode() + b"\0" + (file_sha256(data) if data.is_file() else "missing").encode())
    return digest.hexdigest()
