"""Which layer costs the INT8 accuracy, and the fewest layers to keep in float to meet a target.

Sensitivity: for every quantizable node (Conv, MatMul, Gemm with a weight; attention's
activation-by-activation MatMuls stay float anyway), the model is quantized with that node alone
(the cached ranges make this a graph rewrite, not a recalibration). Its error is measured twice on
a small evaluation batch: the signal-to-quantization-noise ratio of the node's own output, and the
loss of embedding cosine to fp32 (1 - mean cosine). Ranked by that loss: the top is the node to
keep in float first.

Search: with the ranking, the smallest k such that keeping the top k nodes in float meets the
target (an acceptance metric such as cosine.p5 >= 0.999), by bisection over k (after checking full
INT8 and all-but-one-float); evaluated with the same acceptance audit the report shows.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.errors import VfmauditError

# acceptance metric -> (path in the acceptance report, higher is better)
_TARGET = re.compile(r"^\s*([a-z0-9_.@]+)\s*(>=|<=)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Target:
    metric: str
    op: str
    value: float

    def met(self, v: float | None) -> bool:
        return v is not None and (v >= self.value if self.op == ">=" else v <= self.value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:.12g}"  # 0.99999999 stays itself, not 1


def target_paths() -> dict[str, tuple[tuple[str, ...], bool]]:
    paths = {}
    for part in ("all", "clean", "perturbed"):
        for s in ("min", "p5", "median", "mean"):
            paths[f"cosine.{part}.{s}"] = (("cosine_to_fp32", part, s), True)
            if part == "all":
                paths[f"cosine.{s}"] = (("cosine_to_fp32", "all", s), True)
    for s in ("min", "p5", "median", "mean", "max"):
        paths[f"radius.{s}"] = (("radius_fp32_int8", s), False)
    for k in ("top1", "overlap@1", "overlap@5", "overlap@10"):
        paths[f"agreement.{k}"] = (("agreement", k), True)
    return paths


def parse_target(text: str) -> Target:
    m = _TARGET.match(text or "")
    if not m:
        raise VfmauditError(f"target '{text}' is not METRIC>=VALUE or METRIC<=VALUE, e.g. cosine.p5>=0.999",
                            param="target")
    metric, op, value = m.group(1), m.group(2), float(m.group(3))
    paths = target_paths()
    if metric not in paths:
        import difflib

        close = difflib.get_close_matches(metric, list(paths), n=1)
        raise VfmauditError(f"unknown target metric '{metric}'" + (f"; did you mean '{close[0]}'?" if close else "")
                            + f" (choose from {', '.join(sorted(paths))})", param="target")
    higher = paths[metric][1]
    if (op == ">=") != higher:
        raise VfmauditError(f"{metric}: {'higher' if higher else 'lower'} is better, so compare it with "
                            f"{'>=' if higher else '<='}", param="target")
    return Target(metric, op, value)


def metric_value(acceptance: dict, metric: str) -> float | None:
    path, _ = target_paths()[metric]
    v = acceptance
    for key in path:
        v = v.get(key) if isinstance(v, dict) else None
    return None if v is None else float(v)


@dataclass
class NodeSensitivity:
    name: str
    op_type: str
    module: str
    sqnr_db: float | None
    cosine_loss: float

    def to_json(self) -> dict:
        return {"node": self.name, "op_type": self.op_type, "module": self.module, "sqnr_db": self.sqnr_db,
                "cosine_loss": self.cosine_loss}

    @classmethod
    def from_json(cls, d: dict) -> "NodeSensitivity":
        return cls(d["node"], d["op_type"], d["module"], d["sqnr_db"], d["cosine_loss"])


@dataclass
class SearchResult:
    target: Target
    kept_float: list[str] = field(default_factory=list)
    value: float | None = None
    met: bool = False
    evaluations: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"target": str(self.target), "met": self.met, "value": self.value, "kept_float": self.kept_float,
                "nodes_kept_float": len(self.kept_float), "evaluations": self.evaluations}


def quantizable_nodes(pre_path: Path, op_types=("Conv", "MatMul", "Gemm")) -> list[tuple[str, str, str]]:
    """(name, op type, module it came from) of the nodes that carry a weight and will be quantized."""
    import onnx

    from vfmaudit.calibration.ort_quant import activation_matmuls

    model = onnx.load(str(pre_path), load_external_data=False)
    attention = set(activation_matmuls(pre_path))
    out = []
    for node in model.graph.node:
        if node.op_type in op_types and node.name and node.name not in attention:
            out.append((node.name, node.op_type, _module_of(node)))
    return out


def _module_of(node) -> str:
    """The torch module a node came from: the dynamo exporter's name scopes, or a TorchScript node's path."""
    import ast

    props = {p.key: p.value for p in node.metadata_props}
    scopes = props.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            names = [x for x in ast.literal_eval(scopes) if x]
            return names[-2] if len(names) >= 2 else (names[-1] if names else "")
        except (ValueError, SyntaxError):
            return scopes[-80:]
    return "/".join(node.name.split("/")[:-1]).strip("/").replace("/", ".")


def _session(path: Path, extra_outputs: list[str] = ()):
    import onnx
    import onnxruntime as ort

    if extra_outputs:
        model = onnx.load(str(path))
        for name in extra_outputs:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        data = model.SerializeToString()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def sensitivity(fp32_path: Path, calib, quantize, feed: np.ndarray, input_name: str,
                progress=None) -> list[NodeSensitivity]:
    """Rank the quantizable nodes; `quantize(out, only=(name,))` writes a model with that node alone quantized."""
    from vfmaudit.calibration.ort_quant import preprocess_for_quantization

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-sens-") as tmp:
        pre = preprocess_for_quantization(fp32_path, Path(tmp) / "pre.onnx")  # the node names quantize_onnx sees
        nodes = quantizable_nodes(pre)
        if not nodes:
            raise VfmauditError(f"{fp32_path} has no quantizable node (Conv, MatMul, Gemm with a weight)")
        import onnx

        pre_model = onnx.load(str(pre), load_external_data=False)
        outputs = {n.name: n.output[0] for n in pre_model.graph.node}
        ref_sess = _session(pre, [outputs[n] for n, _, _ in nodes])
        ref_all = ref_sess.run(None, {input_name: feed})
        ref_emb = _unit(ref_all[0])
        ref_out = dict(zip([outputs[n] for n, _, _ in nodes], ref_all[1:]))
        del ref_all, ref_sess
        result = []
        for i, (name, op, module) in enumerate(nodes):
            single = Path(tmp) / f"single_{i}.onnx"
            quantize(single, only=(name,))
            sess = _session(single, [outputs[name]])
            emb, node_out = sess.run(None, {input_name: feed})
            del sess
            noise = float(np.sum((np.asarray(node_out, np.float64) - ref_out[outputs[name]]) ** 2))
            signal = float(np.sum(np.asarray(ref_out[outputs[name]], np.float64) ** 2))
            sqnr = 10 * np.log10(signal / noise) if noise > 0 and signal > 0 else None
            loss = float(1 - np.mean(np.sum(_unit(emb) * ref_emb, axis=1)))
            result.append(NodeSensitivity(name, op, module, None if sqnr is None else float(sqnr), loss))
            single.unlink(missing_ok=True)
            if progress:
                progress(i + 1, len(nodes))
    return sorted(result, key=lambda s: -s.cosine_loss)


def search(ranking: list[NodeSensitivity], target: Target, evaluate) -> SearchResult:
    """Smallest top-k of the ranking to keep in float so that `evaluate(keep) -> metric value` meets the target."""
    names = [s.name for s in ranking]
    cache: dict[int, float | None] = {}
    result = SearchResult(target)

    def ok(k: int) -> bool:
        if k not in cache:
            cache[k] = evaluate(tuple(names[:k]))
            result.evaluations.append({"kept_float": k, "value": cache[k], "met": target.met(cache[k])})
        return target.met(cache[k])

    n = len(names)
    if ok(0):
        best = 0
    elif n <= 1 or not ok(n - 1):  # even all but one node in float misses it: no mixed model can
        best = max(cache, key=lambda k: (cache[k] is not None, cache[k] if target.op == ">=" else -(cache[k] or 0)))
        result.kept_float, result.value, result.met = names[:best], cache[best], False
        return result
    else:
        lo, hi = 0, n - 1  # ok(lo) false, ok(hi) true
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        best = hi
    result.kept_float, result.value, result.met = names[:best], cache[best], True
    return result
