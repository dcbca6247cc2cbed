"""Benchmarks: output schema, ordered percentiles, positive figures, unavailable backends skipped."""

import csv
import json

import numpy as np
import pytest

from vfmaudit.bench import bench_encoders, bench_meb, bench_perturb
from vfmaudit.runtime.timing import latency_summary, run_timed
from vfmaudit.runtime.timing import coefficient_of_variation
from vfmaudit.errors import VfmauditError

from cli_runner import run_cli as vfmaudit

LAT = ("min", "mean", "median", "p90", "p95", "p99")


def test_latency_summary_matches_numpy():
    rng = np.random.default_rng(0)
    s = rng.gamma(2.0, 0.01, 500)
    lat = latency_summary(s)
    ms = s * 1e3
    assert lat["min"] == pytest.approx(ms.min()) and lat["p99"] == pytest.approx(np.percentile(ms, 99))
    assert lat["median"] == pytest.approx(np.median(ms)) and lat["mean"] == pytest.approx(ms.mean())
    assert [lat[k] for k in ("min", "median", "p90", "p95", "p99")] == sorted(lat[k] for k in ("min", "median", "p90", "p95", "p99"))
    assert coefficient_of_variation(s) == pytest.approx(s.std() / s.mean())


def test_run_timed_counts_iterations_and_items():
    t = run_timed(lambda: sum(range(1000)), items_per_call=4, warmup_s=0.0, duration_s=None, iterations=25)
    assert len(t.host_s) == 25 and np.all(t.host_s > 0)
    assert t.throughput == pytest.approx(4 * 25 / t.host_s.sum())


@pytest.fixture(scope="module")
def encoder_bench():
    return bench_encoders("timm:test_resnet", ["torch", "onnx", "tensorrt"], [1, 4], ["fp32", "fp16"],
                          warmup_s=0.1, duration_s=None, iterations=5)


def test_encoder_rows_schema_and_order(encoder_bench):
    rows = encoder_bench.rows
    assert {(r["backend"], r["precision"], r["batch_size"]) for r in rows} == {
        (b, p, n) for b in ("torch", "onnx", "tensorrt") for p in ("fp32", "fp16") for n in (1, 4)}
    ok = [r for r in rows if r["status"] == "ok"]
    assert {(r["backend"], r["batch_size"]) for r in ok} >= {("torch", 1), ("torch", 4), ("onnx", 1), ("onnx", 4)}
    for r in ok:
        lat = r["latency_ms"]
        assert set(LAT) <= set(lat)
        assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]
        assert r["throughput"] > 0 and lat["min"] > 0 and r["iterations"] == 5 and r["cv"] >= 0
        # throughput and latency describe the same calls
        assert r["throughput"] == pytest.approx(r["batch_size"] / (lat["mean"] / 1e3), rel=1e-6)
    onnx_row = next(r for r in ok if r["backend"] == "onnx")
    assert onnx_row["providers"] == ["CPUExecutionProvider"]


def test_unavailable_configurations_are_skipped_with_reason_not_speeds(encoder_bench):
    skipped = [r for r in encoder_bench.rows if r["status"] == "skipped"]
    assert any(r["backend"] == "torch" and r["precision"] == "fp16" for r in skipped)  # no GPU here
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert all(r["status"] == "skipped" for r in encoder_bench.rows if r["backend"] == "tensorrt")
    for r in skipped:
        assert r["reason"] and "throughput" not in r and "latency_ms" not in r


def test_encoder_json_and_csv_through_cli(tmp_path):
    res = vfmaudit("bench", "encoder", "--model", "timm:test_resnet", "--backends", "torch,tensorrt",
                   "--batch-sizes", "2", "--iterations", "3", "--warmup", "0.1",
                   "--json", tmp_path / "b.json", "--csv", tmp_path / "b.csv")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["schema"] == "vfmaudit.bench.encoder" and data["model"] == "timm:test_resnet"
    assert {"cpu", "cpu_cores", "versions", "date"} <= set(data["fingerprint"])
    row = next(r for r in data["rows"] if r["backend"] == "torch")
    assert {"backend", "precision", "batch_size", "throughput", "latency_ms"} <= set(row)
    with open(tmp_path / "b.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"backend", "precision", "batch_size", "throughput", "latency_ms_p99", "cpu", "torch"} <= set(rows[0])
    assert float(next(r for r in rows if r["backend"] == "torch")["throughput"]) > 0
    trt = next(r for r in rows if r["backend"] == "tensorrt")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert trt["status"] == "skipped" and trt["throughput"] == "" and trt["reason"]
        assert "skipped tensorrt" in res.stdout


def test_bad_bench_arguments_exit_2():
    for args in (["--backends", "cuda-magic"], ["--batch-sizes", "0"], ["--batch-sizes", "a,b"],
                 ["--precision", "fp8"]):
        res = vfmaudit("bench", "encoder", "--model", "timm:test_resnet", *args)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "benchmarking" not in ln]
        assert res.returncode == 2 and lines[-1].startswith("error:"), res.stderr
    with pytest.raises(VfmauditError):
        bench_encoders("timm:test_resnet", ["torch"], [1], iterations=0)


def test_perturb_and_meb_benches():
    res = bench_perturb(["brightness", "gaussian_noise"], threads=[1, 2], batch=8, size=64, duration_s=0.05)
    assert {(r["family"], r["threads"]) for r in res["rows"]} == {
        (f, t) for f in ("brightness", "gaussian_noise") for t in (1, 2)}
    assert all(r["images_per_s"] > 0 for r in res["rows"])
    meb = bench_meb(sets=200, n=5, dim=32, repeats=1)
    assert meb["sets_per_s"] > 0 and meb["seconds"] > 0 and meb["schema"] == "vfmaudit.bench.meb"


def test_audit_bench_reports_efficiency(tmp_path):
    res = vfmaudit("bench", "audit", "--model", "timm:test_resnet", "-p", "jpeg,brightness", "--levels", "3",
                   "--batch-size", "8", "--json", tmp_path / "a.json")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["images"] == 12 and data["encoded_images"] == 12 * (1 + 3 + 2)  # brightness 1.0 is the identity
    assert data["audit_images_per_s"] > 0 and data["encoder_images_per_s"] > 0
    assert data["efficiency"] == pytest.approx(data["audit_images_per_s"] / data["encoder_images_per_s"])
    assert data["efficiency"] > 0  # a ratio of two wall-clock rates: no upper bound on a shared machine


class _FailsOnLargeBatches:
    """A real encoder (a fixed projection of the pixels) that breaks at run time above batch 2."""

    backend = "flaky"

    def __init__(self, batch_size: int):
        from vfmaudit.models.preprocess import PreprocessSpec

        self.preprocess = PreprocessSpec(size=(8, 8), resize=8)
        self.embed_dim, self.batch_size = 4, batch_size
        self.weights = np.random.default_rng(0).normal(size=(8 * 8 * 3, 4))

    def encode(self, images):
        if len(images) > 2:
            raise MemoryError("out of memory at this batch size")
        x = images.reshape(len(images), -1) / 255.0
        emb = (x @ self.weights).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def describe(self):
        return {"backend": "flaky", "precision": "fp32"}


@pytest.fixture
def flaky_backend():
    from vfmaudit.runtime import register_backend, unregister_backend

    @register_backend("flaky", description="fails above batch 2 (test)")
    def make(model: str = "", device: str = "cpu", batch_size: int = 32) -> _FailsOnLargeBatches:  # noqa: ARG001
        return _FailsOnLargeBatches(batch_size)

    yield
    unregister_backend("flaky")


def test_a_configuration_that_fails_while_running_is_a_row_and_the_sweep_goes_on(flaky_backend, tmp_path):
    res = vfmaudit("bench", "encoder", "--model", "x", "--backends", "flaky", "--batch-sizes", "1,4,2",
                   "--iterations", "2", "--warmup", "0", "--json", tmp_path / "b.json", "--csv", tmp_path / "b.csv")
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["batch_size"], r["status"]) for r in rows] == [(1, "ok"), (4, "error"), (2, "ok")]
    assert rows[1]["error"] == "MemoryError: out of memory at this batch size" and "throughput" not in rows[1]
    assert "error in flaky/fp32/b4" in res.stderr and "out of memory" in res.stderr
    with open(tmp_path / "b.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["status"] for r in table] == ["ok", "error", "ok"] and table[1]["error"].startswith("MemoryError")
    assert float(table[2]["throughput"]) > 0


def test_configurations_are_timed_in_interleaved_rounds(tmp_path):
    """A B A B ..., not A A A B B B: the calls of two configurations alternate round by round, each
    row reports its rounds, and a configuration slowed in one round only is flagged noisy."""
    from vfmaudit.models.preprocess import PreprocessSpec
    from vfmaudit.runtime import register_backend, unregister_backend

    calls: list[int] = []

    class Recorder:
        backend = "recorder"

        def __init__(self, batch_size):
            self.preprocess, self.embed_dim, self.batch_size = PreprocessSpec(size=(8, 8), resize=8), 4, batch_size

        def encode(self, images):
            calls.append(self.batch_size)
            if self.batch_size == 2 and calls.count(2) == 4:  # contention during one of its rounds
                import time

                time.sleep(0.05)
            return np.ones((len(images), 4), np.float32) / 2

        def describe(self):
            return {"backend": "recorder", "precision": "fp32"}

    @register_backend("recorder", description="records the order of its calls (test)")
    def make(model: str = "", device: str = "cpu", batch_size: int = 32) -> Recorder:  # noqa: ARG001
        return Recorder(batch_size)

    try:
        res = bench_encoders("x", ["recorder"], [1, 2], warmup_s=0.0, duration_s=None, iterations=6, rounds=3)
    finally:
        unregister_backend("recorder")
    timed = calls[2:]  # after one warm-up call each
    assert timed == [1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]
    a, b = res.rows
    assert a["rounds"] == b["rounds"] == 3 and a["iterations"] == b["iterations"] == 6
    assert b["noisy"] and b["spread"] > 0.5 and b["round_throughput"]["min"] < b["round_throughput"]["median"]
    assert set(a["round_throughput"]) == {"median", "min", "max"}


def test_one_onnx_file_serves_every_batch_size_and_engines_are_built_per_batch(tmp_path):
    """An ONNX export has a dynamic batch axis: bench builds it once per precision, not once per batch
    size; a TensorRT engine's optimisation profile is per batch, so its builder says so."""
    import onnxruntime as ort

    from vfmaudit.bench.encoder import _Artefacts
    from vfmaudit.export.builders import get_builder
    from vfmaudit.runtime import get_backend

    art = _Artefacts("timm:test_resnet", None, 0, tmp_path)
    onnx = get_backend("onnx")
    one, four = art.model_for(onnx, "fp32", 1), art.model_for(onnx, "fp32", 4)
    assert one == four and len(list(tmp_path.rglob("*.onnx"))) == 1
    batch = ort.InferenceSession(one, providers=["CPUExecutionProvider"]).get_inputs()[0].shape[0]
    assert not isinstance(batch, int)  # a symbolic batch axis: any batch size runs on it
    assert get_builder("tensorrt").per_batch and not get_builder("onnx").per_batch
