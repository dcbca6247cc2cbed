"""bfloat16 in ONNX graphs: exact float32 <-> bf16 bit conversion, and a float32 emulation of a bf16 graph.

onnxruntime's CPU provider has no bf16 kernels for Conv, MatMul, Add and the rest ("Could not find an
implementation"), so a bf16 artefact cannot run here as it is. The emulation keeps every node, computes
it in float32 and rounds each bf16 value to bf16 (Cast to bf16 and back, which the CPU provider has).
That is what a GPU's bf16 kernels do to values that cross memory: inputs and outputs are bf16, the
arithmetic inside (GEMM accumulation) is float32. It measures the artefact's numerics, not its speed.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.errors import VfmauditError

EMULATED_NOTE = "bf16 emulated on CPU: each node computed in float32, every bf16 value rounded to bf16"
_SUFFIX = "/bf16_unrounded"


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """bf16 bit patterns (uint16) of float32 values, rounded to nearest, ties to even (as torch and CUDA do)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)  # room for the carry of 0x7F7FFFFF + rounding
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), rounded)  # a NaN stays a (quiet) NaN


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """float32 values of bf16 bit patterns: exact, bf16 is float32's upper half."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def bf16_tensor(name: str, values: np.ndarray):
    """An ONNX BFLOAT16 initializer holding `values` (float32) rounded to bf16."""
    import onnx

    values = np.asarray(values, dtype=np.float32)
    t = onnx.TensorProto(name=name, data_type=onnx.TensorProto.BFLOAT16, dims=list(values.shape))
    t.raw_data = float32_to_bf16_bits(values).astype("<u2").tobytes()
    return t


def tensor_to_float32(tensor) -> np.ndarray:
    """A float32 array of an ONNX tensor; BFLOAT16 widened exactly (numpy has no bf16 dtype)."""
    import onnx
    from onnx import numpy_helper

    if tensor.data_type != onnx.TensorProto.BFLOAT16:
        return numpy_helper.to_array(tensor).astype(np.float32)
    if tensor.raw_data:
        bits = np.frombuffer(tensor.raw_data, dtype="<u2")
    else:  # int32_data holds one bf16 pattern per entry
        bits = np.asarray(tensor.int32_data, dtype=np.uint32).astype(np.uint16)
    return bf16_bits_to_float32(bits).reshape(tuple(tensor.dims))


def bf16_value_names(model) -> set[str]:
    """Names of the tensors a model holds in bf16, by ONNX type inference on its structure."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(weightless(model), strict_mode=False)
    g = inferred.graph
    typed = list(g.input) + list(g.output) + list(g.value_info)
    names = {v.name for v in typed if v.type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16}
    return names | {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.BFLOAT16}


def weightless(model, min_elements: int = 1024):
    """A copy of `model` whose large initializers are graph inputs of the same type and shape.

    Type inference and the opset converter serialise the model, which fails past protobuf's 2 GiB;
    neither needs the weights' values, only their types and shapes.
    """
    import onnx

    skeleton = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                               producer_name=model.producer_name, functions=model.functions)
    graph = onnx.GraphProto(name=model.graph.name, node=model.graph.node, input=model.graph.input,
                            output=model.graph.output, value_info=model.graph.value_info)
    listed = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        if int(np.prod(t.dims, dtype=np.int64)) < min_elements:
            graph.initializer.append(t)
        elif t.name not in listed:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    skeleton.graph.CopyFrom(graph)
    return skeleton


def reduced_float_types(model) -> set[str]:
    """"fp16"/"bf16" when the graph holds weights, casts or typed values of that type (whatever its metadata says)."""
    import onnx

    names = {onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
    g = model.graph
    found = {t.data_type for t in g.initializer}
    found |= {v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    found |= {a.i for n in g.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"}
    return {names[t] for t in found if t in names}


def emulate_bf16(model):
    """A float32 model that computes what `model` (a bf16 or mixed graph) does, runnable on any CPU provider."""
    import onnx
    from onnx import helper

    g = model.graph
    for v in list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16:
            raise VfmauditError(f"graph input/output '{v.name}' is bf16; vfmaudit runs artefacts with float32 "
                                "inputs and outputs (convert with float32 I/O kept)")
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise VfmauditError("bf16 graphs with subgraphs (If, Loop, Scan) cannot be emulated on the CPU")
    rounded = bf16_value_names(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    og = out.graph
    del og.value_info[:]  # types change; onnxruntime infers them again
    for i, t in enumerate(og.initializer):
        if t.data_type == onnx.TensorProto.BFLOAT16:
            og.initializer[i].CopyFrom(onnx.numpy_helper.from_array(tensor_to_float32(t), t.name))
    nodes = []
    for node in og.node:
        for a in node.attribute:  # Cast(to=bf16) and constants become float32; the rounding is added below
            if a.name == "to" and a.i == onnx.TensorProto.BFLOAT16:
                a.i = onnx.TensorProto.FLOAT
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == onnx.TensorProto.BFLOAT16:
                a.t.CopyFrom(onnx.numpy_helper.from_array(tensor_to_float32(a.t), a.t.name))
        outputs = [o for o in node.output if o in rounded]
        node.output[:] = [o + _SUFFIX if o in rounded else o for o in node.output]
        nodes.append(node)
        for o in outputs:  # float32 -> bf16 -> float32 is the rounding a bf16 store does
            nodes.append(helper.make_node("Cast", [o + _SUFFIX], [o + "/bf16"], to=onnx.TensorProto.BFLOAT16,
                                          name=o + "/round_bf16"))
            nodes.append(helper.make_node("Cast", [o + "/bf16"], [o], to=onnx.TensorProto.FLOAT,
                                          name=o + "/widen_bf16"))
    del og.node[:]
    og.node.extend(nodes)
    return out
