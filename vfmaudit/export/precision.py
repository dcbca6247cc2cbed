"""Reduced precision that lives in the ONNX graph: fp16 or bf16 weights and compute, float32 inputs and outputs.

TensorRT 11 reads precision from the graph (strongly typed), and onnxruntime runs the same file,
so the artefact is checked here on the CPU and built unchanged on a GPU. fp16 uses
onnxconverter-common's float16 converter with an op block-list: normalisations, reductions and
softmax stay in float32, where fp16's range and rounding hurt embeddings most. bf16 uses
vfmaudit's converter (export/bf16.py); onnxruntime has no bf16 CPU kernels, so it is checked here
through a float32 emulation of its rounding (artefact/bf16.py).
"""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path

from vfmaudit.artefact import write_onnx_info
from vfmaudit.artefact.metadata import load_onnx_graph, onnx_info
from vfmaudit.artefact.bf16 import reduced_float_types
from vfmaudit.errors import VfmauditError
from vfmaudit.export.checker import check_onnx

PRECISIONS = ("fp32", "fp16", "bf16")
# float32 islands in an fp16 graph: numerically sensitive ops
FP16_BLOCK_LIST = ("LayerNormalization", "ReduceMean", "ReduceSum", "ReduceL2", "Pow", "Sqrt", "Softmax", "Erf",
                   "Exp", "Log", "Div", "Range", "CumSum")


def convert_precision(path: str | Path, precision: str, out: str | Path | None = None) -> Path:
    """Rewrite an fp32 vfmaudit export in `precision` (float32 I/O kept); returns the written file."""
    path = Path(path)
    out = Path(out) if out else path
    if precision not in PRECISIONS:
        raise VfmauditError(f"unknown precision '{precision}'; choose from {', '.join(PRECISIONS)}", param="precision")
    if precision == "fp32":
        return path
    model = load_onnx_graph(path, external_data=True)
    info, reduced = onnx_info(model, str(path)), reduced_float_types(model)
    if info.precision != "fp32" or reduced:
        found = info.precision if info.precision != "fp32" else "/".join(sorted(reduced))
        raise VfmauditError(f"{path} is {found}; convert its fp32 export instead", param="precision")
    external = Path(str(path) + ".data").exists()
    converted, record = (_to_bf16(model) if precision == "bf16"
                         else _to_fp16(model, reload=lambda: load_onnx_graph(path, external_data=True)))
    _save(converted, out, external)
    _check_converted(out, path, precision)
    info.precision = precision
    info.extra = {**info.extra, "precision_conversion": record}
    write_onnx_info(out, info)
    return out


def _to_fp16(model, reload=None):
    """onnxconverter-common's fp16 conversion. Its last step, which drops redundant Cast pairs, fails
    on graphs where such a Cast feeds several nodes (AttributeError: 'list' object has no attribute
    'input', in remove_unnecessary_cast_node): then the conversion is redone from a fresh copy of the
    graph (`reload`) without that step, and the record says the pairs were kept."""
    from onnxconverter_common import float16

    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(FP16_BLOCK_LIST)

    def convert(graph, cleanup: bool):
        # the converter warns once per weight tensor and sign whose values leave fp16's range: counted, not printed
        step = float16.remove_unnecessary_cast_node
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if not cleanup:
                float16.remove_unnecessary_cast_node = lambda graph_proto: None
            try:
                converted = float16.convert_float_to_float16(graph, keep_io_types=True, op_block_list=block,
                                                             disable_shape_infer=False)
            finally:
                float16.remove_unnecessary_cast_node = step
        return converted, sum("truncated" in str(w.message) for w in caught)

    kept = False
    try:
        converted, clamps = convert(model, cleanup=True)
    except AttributeError as e:
        if reload is None or "remove_unnecessary_cast_node" not in {f.name for f in traceback.extract_tb(e.__traceback__)}:
            raise
        converted, clamps = convert(reload(), cleanup=False)
        kept = True
    _float32_outputs(converted)
    record = {"tool": "onnxconverter-common float16", "float32_ops": sorted(set(block)), "io": "float32",
              "fp16_range_clamps": clamps}
    if kept:
        record["redundant_casts_kept"] = ("onnxconverter-common's removal of fp16->fp32 Cast pairs failed on this "
                                          "graph; the pairs were kept (the same values, a few more nodes)")
    return converted, record


def _to_bf16(model):
    from vfmaudit.export.bf16 import convert_to_bf16

    converted, summary = convert_to_bf16(model)
    return converted, summary.to_dict()


def _check_converted(out: Path, source: Path, precision: str) -> None:
    """The written file through onnx's checker and shape inference (every caller relies on it). fp16
    runs it strict: onnxconverter-common can write a graph whose declared types contradict its nodes
    (seen on a TorchScript export's Identity nodes over weights); that file is removed."""
    import onnx

    if precision != "fp16":
        check_onnx(out)
        return
    try:
        onnx.checker.check_model(str(out), full_check=True)  # strict shape inference: more than check_onnx
    except Exception as e:  # noqa: BLE001 - the checker's ValidationError and InferenceError alike
        out.unlink(missing_ok=True)
        Path(str(out) + ".data").unlink(missing_ok=True)
        detail = " ".join(str(e).split())[:200]
        raise VfmauditError(f"onnxconverter-common made an invalid fp16 graph from {source} ({detail}); export the "
                            f"fp16 model from torch instead (vfmaudit export onnx --precision fp16, the dynamo "
                            f"exporter), or convert to bf16") from None


def _save(model, out: Path, external: bool) -> None:
    """Write in place of the fp32 file, its weights kept in an external data file if the fp32 export had one."""
    import onnx

    if not external:
        onnx.save(model, str(out))
        return
    Path(str(out) + ".data").unlink(missing_ok=True)  # save_model appends to an existing data file
    onnx.save_model(model, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=out.name + ".data")


def _float32_outputs(model) -> None:
    """Outputs the converter left in fp16 get a Cast back to float32 (deployments read float32 embeddings)."""
    import onnx

    for out in model.graph.output:
        if out.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        inner = out.name + "_fp16"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        model.graph.node.append(onnx.helper.make_node("Cast", [inner], [out.name], to=onnx.TensorProto.FLOAT,
                                                      name=f"{out.name}_to_float32"))
        out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
