"""Reduced precision that lives in the ONNX graph: fp16 or bf16 weights and compute, float32 inputs and outputs.

TensorRT 11 reads precision from the graph (strongly typed), and onnxruntime runs the same file,
so the artefact is checked here on the CPU and built unchanged on a GPU. fp16 uses
onnxconverter-common's float16 converter with an op block-list: normalisations, reductions and
softmax stay in float32, where fp16's range and rounding hurt embeddings most. bf16 uses
vfmaudit's converter (export/bf16.py); onnxruntime has no bf16 CPU kernels, so it is checked here
through a float32 emulation of its rounding (artefact/bf16.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from vfmaudit.artefact import write_onnx_info
from vfmaudit.artefact.metadata import load_onnx_graph, onnx_info
from vfmaudit.artefact.bf16 import reduced_float_types
from vfmaudit.errors import VfmauditError

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
    converted, record = _to_bf16(model) if precision == "bf16" else _to_fp16(model)
    _save(converted, out, external)
    info.precision = precision
    info.extra = {**info.extra, "precision_conversion": record}
    write_onnx_info(out, info)
    return out


def _to_fp16(model):
    from onnxconverter_common import float16

    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(FP16_BLOCK_LIST)
    # the converter warns once per weight tensor and sign whose values leave fp16's range: counted, not printed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block,
                                                     disable_shape_infer=False)
    _float32_outputs(converted)
    clamps = sum("truncated" in str(w.message) for w in caught)
    return converted, {"tool": "onnxconverter-common float16", "float32_ops": sorted(set(block)), "io": "float32",
                       "fp16_range_clamps": clamps}


def _to_bf16(model):
    from vfmaudit.export.bf16 import convert_to_bf16

    converted, summary = convert_to_bf16(model)
    return converted, summary.to_dict()


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
