"""torch -> ONNX: dynamo exporter where it works, TorchScript exporter as fallback; checked after."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from vfmaudit.errors import VfmauditError
from vfmaudit.export.builders import ArtefactBuilder, register_builder
from vfmaudit.export.checker import check_onnx
from vfmaudit.artefact import INPUT_FLOAT_NCHW, INPUT_UINT8_NHWC, ArtefactInfo, read_onnx_info, write_onnx_info

if TYPE_CHECKING:  # torch is imported by the functions that export: reading this module needs none
    from vfmaudit.models.factory import BuiltModel

MIN_OPSET = 17
EXPORTERS = ("auto", "dynamo", "torchscript")
# above this the weights go to an external data file (protobuf's 2 GiB limit, with margin)
EXTERNAL_DATA_BYTES = 1_500_000_000


# ops that read only their input's shape, never its values or type: the same on the Cast's output
SHAPE_ONLY_OPS = ("Shape", "Size")


def cast_uint8_input_first(path: str | Path) -> None:
    """Make the uint8 input's Cast to float its only consumer (TensorRT requires it, NVIDIA/TensorRT
    #3985): an exporter's Shape of the input (the dynamic batch) reads the Cast's output instead."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    name = model.graph.input[0].name
    casts = [n for n in model.graph.node if n.op_type == "Cast" and list(n.input) == [name]]
    if len(casts) != 1:
        raise VfmauditError(f"{path}: the uint8 input '{name}' feeds {len(casts)} Casts, not one; export with "
                            f"--exporter torchscript, or without --bake-preprocess")
    for node in model.graph.node:
        if node is casts[0] or name not in node.input:
            continue
        if node.op_type not in SHAPE_ONLY_OPS:
            raise VfmauditError(f"{path}: the uint8 input '{name}' feeds a {node.op_type} before its Cast, which "
                                f"TensorRT refuses; export without --bake-preprocess")
        node.input[:] = [casts[0].output[0] if i == name else i for i in node.input]
    nodes = [casts[0], *(n for n in model.graph.node if n is not casts[0])]  # the Cast first: topological order
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(path))  # external data references stay as they are (same folder)


@dataclass
class ExportResult:
    path: Path
    exporter: str
    info: ArtefactInfo
    external_data: bool

    @property
    def fell_back(self) -> bool:
        """True when the dynamo exporter failed and another wrote the file (reasons in info.extra)."""
        return bool(self.info.extra.get("fallback_reasons"))

    def to_json(self) -> dict:
        return {"path": str(self.path), "exporter": self.exporter, "external_data": self.external_data,
                "fallback_reasons": self.info.extra.get("fallback_reasons", []),
                "artefact": {k.removeprefix("vfmaudit."): v for k, v in self.info.to_props().items()}}


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


@contextlib.contextmanager
def _export_mode():
    """No MHA fast path (its fused op has no ONNX form), no gradients, exporters kept quiet."""
    import torch

    mha = getattr(torch.backends, "mha", None)
    fast = mha.get_fastpath_enabled() if mha else None
    if mha:
        mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # tracer warnings about shapes frozen as constants: by design
            yield
    finally:
        if mha:
            mha.set_fastpath_enabled(fast)


def _export(module, example, path: Path, exporter: str, opset: int, input_name: str, external: bool) -> None:
    import torch

    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=65536)
        with _export_mode():
            torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=["embedding"],
                              opset_version=max(opset, 18), dynamo=True, dynamic_shapes=({0: batch},),
                              external_data=external, verbose=False)
    else:
        with _export_mode():
            torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                              output_names=["embedding"], opset_version=opset, dynamo=False,
                              dynamic_axes={input_name: {0: "batch"}, "embedding": {0: "batch"}})
        if external:
            import onnx

            model = onnx.load(str(path))
            onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=path.name + ".data")


def export_onnx(model: str | BuiltModel, out: str | Path, pretrained: str | None = None, seed: int = 0,
                bake_preprocess: bool = False, opset: int = MIN_OPSET, exporter: str = "auto",
                example_batch: int = 2, precision: str = "fp32") -> ExportResult:
    """Export an encoder to ONNX with a dynamic batch axis and vfmaudit metadata, then check it.

    bake_preprocess: the graph takes uint8 NHWC images at the model's input size and does the
    normalisation itself, so a deployment needs only resize/crop before it.
    """
    import torch

    from vfmaudit.export.baked import BakedPreprocess
    from vfmaudit.export.precision import PRECISIONS
    from vfmaudit.models.factory import BuiltModel, build_model

    if precision not in PRECISIONS:
        raise VfmauditError(f"unknown precision '{precision}'; choose from {', '.join(PRECISIONS)}", param="precision")
    if opset < MIN_OPSET:
        raise VfmauditError(f"opset must be >= {MIN_OPSET}, got {opset}", param="opset")
    if exporter not in EXPORTERS:
        raise VfmauditError(f"unknown exporter '{exporter}'; choose from {', '.join(EXPORTERS)}")
    built = model if isinstance(model, BuiltModel) else build_model(model, pretrained=pretrained, seed=seed)
    out = Path(out)
    if out.suffix != ".onnx":
        raise VfmauditError(f"out {out} should end in .onnx", param="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = built.preprocess.size
    embedder = built.module.eval()
    if bake_preprocess:
        module = BakedPreprocess(embedder, built.preprocess).eval()
        example = torch.randint(0, 256, (example_batch, h, w, 3), dtype=torch.uint8)
        input_name, input_format = "images", INPUT_UINT8_NHWC
    else:
        module, example = embedder, torch.randn(example_batch, 3, h, w)
        input_name, input_format = "pixel_values", INPUT_FLOAT_NCHW
    external = _param_bytes(module) > EXTERNAL_DATA_BYTES
    errors = []
    used = None
    for name in (["dynamo", "torchscript"] if exporter == "auto" else [exporter]):
        try:
            _export(module, example, out, name, opset, input_name, external)
            used = name
            break
        except Exception as e:  # noqa: BLE001 - try the next exporter, report all if none works
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    if used is None:
        raise VfmauditError(f"could not export {built.spec} to ONNX ({'; '.join(errors)})")
    info = ArtefactInfo(spec=str(built.spec), weights=built.weights.describe(), preprocess=built.preprocess,
                        embedding_dim=built.embed_dim, input_format=input_format, exporter=used,
                        extra={"opset": opset if used == "torchscript" else max(opset, 18),
                               "fallback_reasons": errors})
    if bake_preprocess:
        cast_uint8_input_first(out)
    write_onnx_info(out, info)
    check_onnx(out)
    if precision != "fp32":  # precision lives in the graph (TensorRT 11 builds it as it is)
        from vfmaudit.export.precision import convert_precision

        convert_precision(out, precision)  # checks the file it writes
        info = read_onnx_info(out)
    return ExportResult(path=out, exporter=used, info=info,
                        external_data=external or os.path.exists(str(out) + ".data"))


def _build_for_backend(built: BuiltModel, out_dir: Path, precision: str, batch_size: int,  # noqa: ARG001
                       device: str = "cpu") -> Path:  # noqa: ARG001 - an ONNX file is the same on every device
    return export_onnx(built, Path(out_dir) / f"model_{precision}.onnx", precision=precision).path


register_builder(ArtefactBuilder(
    backend="onnx", source=None, precisions=("fp32", "fp16", "bf16"), build=_build_for_backend,
    other_precisions_hint="pass an artefact of that precision as model (int8: `vfmaudit calibrate`)"))
