"""Benchmarks users pick deployment targets from: encoders, perturbations, balls, whole audits."""

from vfmaudit.bench.audit import bench_audit, bench_audit_scaling
from vfmaudit.bench.encoder import EncoderBench, bench_encoders
from vfmaudit.bench.kernels import bench_meb, bench_perturb
from vfmaudit.bench.result import BenchReport

__all__ = ["bench_encoders", "EncoderBench", "bench_perturb", "bench_meb", "bench_audit", "bench_audit_scaling", "BenchReport"]
