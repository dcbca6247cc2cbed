"""The torch backend: eager PyTorch on CPU or CUDA."""

from __future__ import annotations

import numpy as np
import torch

from vfmaudit.errors import VfmauditError
from vfmaudit.models.factory import BuiltModel, build_model
from vfmaudit.runtime.base import to_model_size
from vfmaudit.runtime.registry import register_backend


def resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise VfmauditError(f"unknown device '{device}'; use cpu or cuda (cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VfmauditError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise VfmauditError(f"unsupported device '{device}'; use cpu or cuda")
    return dev


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


class TorchEncoder:
    backend = "torch"

    def __init__(self, built: BuiltModel, device: str = "cpu", batch_size: int = 32, precision: str = "fp32"):
        if batch_size < 1:
            raise VfmauditError(f"--batch-size must be >= 1, got {batch_size}")
        if precision not in _DTYPES:
            raise VfmauditError(f"the torch backend runs {', '.join(_DTYPES)}; int8 needs a calibrated artefact")
        self.built = built
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise VfmauditError("fp16 on the torch backend needs --device cuda (CPU kernels for half are slow or missing)")
        self.precision = precision
        self.dtype = _DTYPES[precision]
        self.module = built.module.to(self.device, dtype=self.dtype).eval()
        self.preprocess = built.preprocess
        self.embed_dim = built.embed_dim
        self.batch_size = int(batch_size)

    def encode(self, images: np.ndarray) -> np.ndarray:
        batch = to_model_size(self.preprocess, images)
        out = np.empty((batch.shape[0], self.embed_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, batch.shape[0], self.batch_size):
                x = torch.from_numpy(self.preprocess.normalize(batch[start:start + self.batch_size]))
                emb = self.module(x.to(self.device, dtype=self.dtype, non_blocking=True))
                out[start:start + emb.shape[0]] = emb.float().cpu().numpy()
        return out

    def describe(self) -> dict:
        d = self.built.describe()
        d.update(backend=self.backend, device=str(self.device), batch_size=self.batch_size,
                 precision=self.precision, torch_threads=torch.get_num_threads())
        return d


@register_backend("torch")
def make_torch_encoder(model: str = "openclip:ViT-S-32", pretrained: str | None = None, seed: int = 0,
                       device: str = "cpu", batch_size: int = 32, precision: str = "fp32",
                       **_: object) -> TorchEncoder:
    resolve_device(device)  # fail before building the model
    return TorchEncoder(build_model(model, pretrained=pretrained, seed=seed), device=device,
                        batch_size=batch_size, precision=precision)
