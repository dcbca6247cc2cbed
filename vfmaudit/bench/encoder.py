"""Encoder throughput and latency per backend, precision and batch size (trtexec's summary).

Backends, their precisions and how their artefacts are built all come from the registries
(runtime/registry.py, export/builders.py): a configuration that cannot run here becomes a row
with status "skipped" and the reason; one that fails while it runs becomes a row with status
"error" and the error (as timm's benchmark records it), and the sweep goes on. Never a crash.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfmaudit.artefact.provenance import fingerprint, report_header
from vfmaudit.errors import VfmauditError, one_line
from vfmaudit.export.builders import get_builder
from vfmaudit.runtime import Backend, backends, get_backend, is_artefact_path, open_encoder
from vfmaudit.runtime.timing import RoundTimer


def all_precisions() -> list[str]:
    return list(dict.fromkeys(p for b in backends().values() for p in b.precisions))


@dataclass
class EncoderBench:
    model: str
    rows: list[dict] = field(default_factory=list)
    fingerprint: dict = field(default_factory=fingerprint)

    def to_json(self) -> dict:
        return {**report_header("vfmaudit.bench.encoder", 1), "model": self.model,
                "fingerprint": self.fingerprint, "rows": self.rows}


class _Artefacts:
    """What each backend runs for this model: the spec itself, the file given, or one built (once)."""

    def __init__(self, model: str, pretrained: str | None, seed: int, workdir: Path, device: str = "cpu"):
        self.model, self.pretrained, self.seed, self.workdir, self.device = model, pretrained, seed, workdir, device
        self._built = None
        self._files: dict[tuple[str, str, int | None], Path] = {}

    def built(self):
        from vfmaudit.models import build_model

        if is_artefact_path(self.model):
            raise VfmauditError(f"{self.model} is an exported file; a model spec is needed to build others from it")
        if self._built is None:
            self._built = build_model(self.model, pretrained=self.pretrained, seed=self.seed)
        return self._built

    def model_for(self, backend: Backend, precision: str, batch: int) -> str:
        if backend.runs_model_specs:
            if is_artefact_path(self.model):
                raise VfmauditError(f"the {backend.name} backend needs a model spec, not an exported file")
            return self.model
        if any(self.model.lower().endswith(s) for s in backend.suffixes):
            return self.model
        builder = get_builder(backend.name)
        if precision not in builder.precisions:
            raise VfmauditError(f"no {precision} {backend.name} artefact can be built here: "
                                f"{builder.other_precisions_hint}")
        key = (backend.name, precision, batch if builder.per_batch else None)
        if key not in self._files:
            source = self.built() if builder.source is None else \
                Path(self.model_for(get_backend(builder.source), precision, batch))  # precision is the graph's
            out_dir = self.workdir / "_".join(str(k) for k in key if k is not None)
            out_dir.mkdir(parents=True, exist_ok=True)
            self._files[key] = Path(builder.build(source, out_dir, precision, batch,
                                                  device=backend.device_for(self.device)))
        return str(self._files[key])


def _make_encoder(backend: Backend, precision: str, batch: int, device: str, art: _Artefacts):
    """An encoder, or VfmauditError saying why this configuration cannot run here."""
    if precision not in backend.precisions:
        raise VfmauditError(f"the {backend.name} backend runs {', '.join(backend.precisions)}, not {precision}")
    model = art.model_for(backend, precision, batch)
    enc = open_encoder(model, art.pretrained if backend.runs_model_specs else None, backend.name, device, batch,
                       art.seed, precision if backend.takes("precision") else None)
    desc = enc.describe()
    if desc.get("emulation"):
        raise VfmauditError(f"{precision} on {device} runs as a float32 emulation of its rounding (onnxruntime "
                            "has no bf16 CPU kernels), whose time says nothing about its speed; bench it on device cuda")
    actual = desc.get("precision", "fp32")
    if actual != precision:
        raise VfmauditError(f"{model} is {actual}, not {precision}")
    return enc


@dataclass
class _Running:
    """A configuration being timed: its row, its encoder and its timer (None once it has failed)."""

    row: dict
    enc: object
    timer: RoundTimer | None = None

    def attempt(self, step) -> None:
        """Run one step of its timing; a failure becomes its row's error and ends its timing."""
        try:
            step()
        except Exception as e:  # noqa: BLE001 - one configuration's failure is its row, not the sweep's
            self.row.update(status="error", error=one_line(e))
            self.timer = None


def _start(enc, batch: int) -> RoundTimer:
    h, w = enc.preprocess.size
    x = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    device_timer = enc.device_timer() if hasattr(enc, "device_timer") else None
    return RoundTimer(lambda: enc.encode(x), batch, device_timer)


def bench_encoders(model: str, backends: list[str], batch_sizes: list[int], precisions: list[str] | None = None,
                   device: str = "cpu", warmup_s: float = 1.0, duration_s: float | None = 3.0,
                   iterations: int | None = None, pretrained: str | None = None, seed: int = 0,
                   progress=None, rounds: int = 5) -> EncoderBench:
    """One row per (backend, precision, batch size): speeds, status "skipped" with the reason, or status
    "error" with the error it raised while running.

    The runnable configurations are timed interleaved, in `rounds` rounds (A B C A B C ...), each round
    a share of duration_s (or of `iterations` calls): load that comes and goes hits every configuration
    alike, and shows as a spread between a configuration's rounds (flagged "noisy"). Every encoder
    stays loaded for the whole sweep; rounds=1 times one configuration after the other.
    """
    precisions = precisions or ["fp32"]
    chosen = [get_backend(b) for b in backends]
    known = all_precisions()
    for p in precisions:
        if p not in known:
            raise VfmauditError(f"unknown precision '{p}'; choose from {', '.join(known)}", param="precisions")
    if not batch_sizes or min(batch_sizes) < 1:
        raise VfmauditError("batch_sizes must be positive integers, e.g. 1,8,32", param="batch_sizes")
    if iterations is not None and iterations < 1:
        raise VfmauditError("iterations must be >= 1", param="iterations")
    if rounds < 1:
        raise VfmauditError("rounds must be >= 1", param="rounds")
    result = EncoderBench(model=model)
    with tempfile.TemporaryDirectory(prefix="vfmaudit-bench-") as tmp:
        art = _Artefacts(model, pretrained, seed, Path(tmp), device)
        running: list[_Running] = []
        for backend in chosen:
            for precision in precisions:
                for batch in batch_sizes:
                    # the device it runs on: a GPU-only backend's rows say cuda whatever the sweep's device
                    on = backend.device_for(device)
                    row = {"backend": backend.name, "precision": precision, "batch_size": batch, "device": on}
                    result.rows.append(row)
                    try:
                        enc = _make_encoder(backend, precision, batch, on, art)
                        row["device"] = str(enc.describe().get("device", on))
                        running.append(_Running(row, enc))
                    except VfmauditError as e:
                        row.update(status="skipped", reason=str(e))
        for r in running:  # warm-up first, for every configuration, outside the timed rounds
            def warm(r=r) -> None:
                r.timer = _start(r.enc, r.row["batch_size"])
                r.timer.warmup(warmup_s)

            r.attempt(warm)
        if iterations:  # exactly `iterations` calls, spread over the rounds
            rounds = min(rounds, iterations)
            calls = [iterations // rounds + (k < iterations % rounds) for k in range(rounds)]
        per_round_s = duration_s / rounds if duration_s else None
        for k in range(rounds):
            for r in running:
                if r.timer is not None:
                    r.attempt(lambda r=r: r.timer.round(per_round_s, calls[k] if iterations else None,
                                                        min_calls=1 if rounds > 1 else 3))
        for r in running:
            if r.timer is not None:
                r.row.update(status="ok", **r.timer.timings().summary(),
                             providers=r.enc.describe().get("providers"), embedding_dim=r.enc.embed_dim)
        if progress:
            for row in result.rows:
                progress(row)
        running.clear()  # the encoders go before the artefacts' folder does
    return result
