"""The model's preprocessing baked into the graph: uint8 NHWC in, as the backends feed it."""

from __future__ import annotations

import torch

from vfmaudit.models.preprocess import PreprocessSpec


class BakedPreprocess(torch.nn.Module):
    """uint8 NHWC at the model's input size -> normalised embedding, same arithmetic as numpy's."""

    def __init__(self, embedder: torch.nn.Module, spec: PreprocessSpec):
        super().__init__()
        self.embedder = embedder
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # cast first: TensorRT takes a UINT8 input only straight into a Cast (not even a Transpose first)
        x = images.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        return self.embedder((x - self.mean) / self.std)
