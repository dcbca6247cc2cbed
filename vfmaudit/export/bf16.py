"""float32 ONNX -> mixed bf16/float32 ONNX, float32 inputs and outputs kept (what TensorRT 11 builds as typed).

ModelOpt AutoCast, NVIDIA's converter, does not install beside onnxruntime here (it pulls onnxruntime-gpu
over it) and onnxconverter-common converts to fp16 only, so this does the same job in the same style:
an op allow-list says which nodes compute in bf16 and which of their inputs share the bf16 type;
every other op (normalisations, reductions, softmax, exp/log/pow/sqrt) stays float32, with Casts where
the two meet. bf16 has float32's range, so unlike fp16 nothing needs clamping; it has 8 significant
bits, so accumulating ops are the ones kept in float32. Weights feeding bf16 nodes are stored as bf16.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vfmaudit.artefact.bf16 import bf16_tensor, tensor_to_float32, weightless
from vfmaudit.errors import VfmauditError

# bf16 Conv, pooling and most activations arrived in opset 22
BF16_OPSET = 22
ALL = None  # every input has the op's float type
# op -> input positions typed like its float output (the rest are shapes, indices, scales: left alone)
BF16_OPS: dict[str, tuple[int, ...] | None] = {
    "Conv": ALL, "ConvTranspose": ALL, "MatMul": ALL, "Gemm": ALL,
    "Add": ALL, "Sub": ALL, "Mul": ALL, "Div": ALL, "Neg": ALL, "Abs": ALL, "Max": ALL, "Min": ALL,
    "Relu": ALL, "LeakyRelu": ALL, "PRelu": ALL, "Sigmoid": ALL, "HardSigmoid": ALL, "HardSwish": ALL,
    "Tanh": ALL, "Erf": ALL, "Gelu": ALL, "Clip": ALL,
    "MaxPool": (0,), "AveragePool": (0,), "GlobalAveragePool": (0,), "GlobalMaxPool": (0,),
    "Identity": (0,), "Transpose": (0,), "Reshape": (0,), "Flatten": (0,), "Squeeze": (0,), "Unsqueeze": (0,),
    "Concat": ALL, "Split": (0,), "Slice": (0,), "Gather": (0,), "Expand": (0,), "Tile": (0,),
    "Pad": (0, 2), "Where": (1, 2), "Resize": (0,), "DepthToSpace": (0,), "SpaceToDepth": (0,),
}
# ops that read only their input's shape: they take the bf16 tensor as it is
SHAPE_ONLY = ("Shape", "Size")


@dataclass
class Bf16Conversion:
    """What the conversion did, recorded in the artefact's metadata."""

    bf16_nodes: int = 0
    float32_nodes: int = 0
    casts: int = 0
    float32_ops: list[str] = field(default_factory=list)  # op types present and kept in float32
    opset: int = BF16_OPSET

    def to_dict(self) -> dict:
        return {"tool": "vfmaudit bf16 (op allow-list, AutoCast style)", "bf16_nodes": self.bf16_nodes,
                "float32_nodes": self.float32_nodes, "casts": self.casts, "float32_ops": self.float32_ops,
                "opset": self.opset, "io": "float32"}


def convert_to_bf16(model):
    """Mixed bf16 copy of a float32 ModelProto (float32 I/O kept) and a summary of what changed."""
    import onnx
    from onnx import TensorProto, helper

    model = _at_bf16_opset(model)
    g = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise VfmauditError("bf16 conversion of graphs with subgraphs (If, Loop, Scan) is not supported; "
                            "export the encoder without control flow or use fp16")
    types = _elem_types(model)
    is_f32 = lambda name: bool(name) and types.get(name) == TensorProto.FLOAT  # noqa: E731
    is_float_or_absent = lambda name: not name or types.get(name) == TensorProto.FLOAT  # noqa: E731
    initializers = {t.name: t for t in g.initializer}
    summary = Bf16Conversion(opset=_default_opset(model))

    def typed_inputs(node) -> list[int]:
        spec = BF16_OPS[node.op_type]
        return [i for i in (range(len(node.input)) if spec is ALL else spec) if i < len(node.input) and node.input[i]]

    def computes_in_bf16(node) -> bool:
        if node.domain not in ("", "ai.onnx") or node.op_type not in BF16_OPS:
            return False
        floats = [node.input[i] for i in typed_inputs(node)]
        return bool(floats) and all(map(is_f32, floats)) and all(map(is_float_or_absent, node.output))

    nodes = list(g.node)
    low = [computes_in_bf16(n) for n in nodes]
    if not any(low):
        raise VfmauditError(f"no float32 node of this graph can compute in bf16 (ops: "
                            f"{', '.join(sorted({n.op_type for n in nodes})[:12])}); nothing to convert")
    bf16_name: dict[str, str] = {}  # float32 tensor -> its bf16 twin
    f32_ready: set[str] = {v.name for v in g.input} | set(initializers)  # float32 names that exist so far
    new_nodes, new_inits, fresh = [], [], _fresh_names(model)

    def as_bf16(name: str) -> str:
        if name not in bf16_name:
            twin = bf16_name[name] = fresh(name + "/bf16")
            if name in initializers:
                new_inits.append(bf16_tensor(twin, tensor_to_float32(initializers[name])))
            else:
                new_nodes.append(helper.make_node("Cast", [name], [twin], to=TensorProto.BFLOAT16, name=twin + "/cast"))
                summary.casts += 1
        return bf16_name[name]

    def as_float32(name: str) -> str:
        if name not in f32_ready:  # produced in bf16 only: widen once, under the original name
            new_nodes.append(helper.make_node("Cast", [bf16_name[name]], [name], to=TensorProto.FLOAT,
                                              name=fresh(name + "/float32")))
            f32_ready.add(name)
            summary.casts += 1
        return name

    for node, in_bf16 in zip(nodes, low):
        if in_bf16:
            for i in typed_inputs(node):
                node.input[i] = as_bf16(node.input[i])
            for j, o in enumerate(node.output):
                if o and types.get(o) == TensorProto.FLOAT:
                    node.output[j] = bf16_name[o] = fresh(o + "/bf16")
            summary.bf16_nodes += 1
        else:
            for i, name in enumerate(node.input):
                if name in bf16_name and name not in f32_ready and types.get(name) == TensorProto.FLOAT:
                    node.input[i] = bf16_name[name] if node.op_type in SHAPE_ONLY else as_float32(name)
            f32_ready.update(node.output)
            summary.float32_nodes += 1
        new_nodes.append(node)
    for out in g.output:
        if out.name in bf16_name:
            as_float32(out.name)
    used = {i for n in new_nodes for i in n.input} | {o.name for o in g.output}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]  # stale types; inference fills them again
    summary.float32_ops = sorted({n.op_type for n, in_bf16 in zip(nodes, low) if not in_bf16
                                  and n.op_type not in ("Constant", "Cast")  # computing ops only
                                  and any(types.get(o) == TensorProto.FLOAT for o in n.output)})
    return model, summary


def _at_bf16_opset(model):
    """The model at opset >= 22, converted by onnx's version converter (weights set aside meanwhile)."""
    from onnx import version_converter

    current = _default_opset(model)
    if current >= BF16_OPSET:
        return model
    skeleton = weightless(model)
    try:
        converted = version_converter.convert_version(skeleton, BF16_OPSET)
    except Exception as e:  # noqa: BLE001 - the converter raises bare RuntimeErrors
        raise VfmauditError(f"cannot move this graph from opset {current} to {BF16_OPSET}, which bf16 Conv and "
                            f"pooling need: {str(e).splitlines()[0][:200]}") from None
    lifted = {v.name for v in skeleton.graph.input} - {v.name for v in model.graph.input}
    del converted.graph.input[:]
    converted.graph.input.extend(v for v in skeleton.graph.input if v.name not in lifted)
    have = {t.name for t in converted.graph.initializer}
    converted.graph.initializer.extend(t for t in model.graph.initializer if t.name not in have)
    del converted.metadata_props[:]
    converted.metadata_props.extend(model.metadata_props)
    return converted


def _default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _elem_types(model) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(weightless(model), strict_mode=False)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.input) + list(g.output) + list(g.value_info)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    for n in model.graph.node:  # Constant outputs are not always in value_info
        if n.op_type == "Constant" and n.attribute and n.attribute[0].type == onnx.AttributeProto.TENSOR:
            types.setdefault(n.output[0], n.attribute[0].t.data_type)
    return types


def _fresh_names(model):
    taken = {t.name for t in model.graph.initializer} | {v.name for v in model.graph.input}
    taken |= {o for n in model.graph.node for o in n.output} | {n.name for n in model.graph.node}

    def fresh(name: str) -> str:
        candidate, k = name, 1
        while candidate in taken:
            candidate, k = f"{name}.{k}", k + 1
        taken.add(candidate)
        return candidate
    return fresh

