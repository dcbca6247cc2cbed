"""The torch backend: eager PyTorch on CPU or CUDA."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from vfmaudit.errors import VfmauditError
from vfmaudit.runtime.base import to_model_size
from vfmaudit.runtime.registry import register_backend
from vfmaudit.runtime.timing import add_phases, cuda_events, phase_seconds, phase_timer


if TYPE_CHECKING:
    import torch

    from vfmaudit.models.factory import BuiltModel
    from vfmaudit.models.preprocess import PreprocessSpec

# torch is imported when an encoder is made, not when the backend registers (CLI start-up)
# bf16 runs on CPU too (oneDNN kernels; fast where the CPU has AVX512_BF16 or AMX)
PRECISIONS = ("fp32", "fp16", "bf16")


def resolve_device(device: str) -> "torch.device":
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise VfmauditError(f"unknown device '{device}'; use cpu or cuda (cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VfmauditError("device cuda was asked for but torch sees no CUDA GPU; use device cpu", param="device")
    if dev.type not in ("cpu", "cuda"):
        raise VfmauditError(f"unsupported device '{device}'; use cpu or cuda")
    return dev


class TorchEncoder:
    backend = "torch"

    def __init__(self, built: "BuiltModel", device: str = "cpu", batch_size: int = 32, precision: str = "fp32"):
        import torch

        if batch_size < 1:
            raise VfmauditError(f"batch_size must be >= 1, got {batch_size}", param="batch_size")
        if precision not in PRECISIONS:
            raise VfmauditError(f"the torch backend runs {', '.join(PRECISIONS)}; int8 needs a calibrated artefact",
                                param="precision")
        self.built = built
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise VfmauditError("fp16 on the torch backend needs device cuda (CPU kernels for half are slow or missing)",
                                  param="device")
        self.precision = precision
        self.torch = torch
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.module = built.module.to(self.device, dtype=self.dtype).eval()
        self.preprocess = built.preprocess
        self.embed_dim = built.embed_dim
        self.batch_size = int(batch_size)
        self.record_phases = False  # bench sets it on CUDA: events around the copies and the forward pass
        self.last_phases: dict[str, float] = {}

    def encode(self, images: np.ndarray) -> np.ndarray:
        torch = self.torch
        batch = to_model_size(self.preprocess, images)
        out = np.empty((batch.shape[0], self.embed_dim), dtype=np.float32)
        on_gpu = self.device.type == "cuda"
        with torch.inference_mode(), (torch.cuda.device(self.device) if on_gpu else contextlib.nullcontext()):
            for start in range(0, batch.shape[0], self.batch_size):
                x = torch.from_numpy(self.preprocess.normalize(batch[start:start + self.batch_size]))
                events = cuda_events(torch) if on_gpu and self.record_phases else None
                if events:  # host work (resize, normalisation) is outside the events
                    events[0].record()
                x = x.to(self.device, dtype=self.dtype, non_blocking=True)
                if events:
                    events[1].record()
                emb = self.module(x)
                if events:
                    events[2].record()
                out[start:start + emb.shape[0]] = emb.float().cpu().numpy()
                if events:
                    events[3].record()
                    events[3].synchronize()
                    self.last_phases = add_phases(self.last_phases, phase_seconds(events))
        return out

    def device_timer(self):
        """The device phases of one encode() call from CUDA events, on CUDA; None on CPU (host time is
        all there is)."""
        if self.device.type != "cuda":
            return None
        return phase_timer(self)

    def describe(self) -> dict:
        d = self.built.describe()
        d.update(backend=self.backend, device=str(self.device), batch_size=self.batch_size,
                 precision=self.precision, torch_threads=self.torch.get_num_threads())
        return d


def read_model_preprocess(model: str, pretrained: str | None, seed: int) -> "PreprocessSpec":
    """The model's own preprocessing config (building the model checks the spec and the weights)."""
    from vfmaudit.models.factory import build_model

    return build_model(model, pretrained=pretrained, seed=seed).preprocess


@register_backend("torch", precisions=PRECISIONS, packages=("torch", "open_clip_torch", "timm"),
                  read_preprocess=read_model_preprocess,
                  description="eager PyTorch (open_clip / timm model code) on CPU or CUDA, from a model spec")
def make_torch_encoder(model: str = "openclip:ViT-S-32", pretrained: str | None = None, seed: int = 0,
                       device: str = "cpu", batch_size: int = 32, precision: str = "fp32") -> TorchEncoder:
    from vfmaudit.models.factory import build_model

    resolve_device(device)  # fail before building the model
    return TorchEncoder(build_model(model, pretrained=pretrained, seed=seed), device=device,
                        batch_size=batch_size, precision=precision)
