"""Adversarial fine-tuning's attacks: PGD examples on the model being trained, made on the fly for
each batch (FARE, Schlarmann et al., ICML 2024: the attack maximises, and training then minimises,
||f'(x + delta) - f(x)||^2 to the frozen original's clean embedding), and the before/after worst
case on the held-out images, both with vfmaudit.attack's PGD and threat model."""

from __future__ import annotations

import numpy as np
import torch

from vfmaudit.attack.threat import Normalize, budget, default_step, to_uint8, unit_images
from vfmaudit.attack.whitebox import embedding_loss, pgd


class Adversary:
    """PGD at (norm, eps) with `steps` steps, on [0, 1] images with the model's normalisation inside."""

    def __init__(self, norm: str, eps: float, steps: int, preprocess, device: torch.device):
        self.norm, self.eps, self.steps = norm, eps, steps
        self.radius = budget(norm, eps)
        self.normalize = Normalize(preprocess, device, torch.float32)
        self.device = device

    def examples(self, model: torch.nn.Module, images: np.ndarray, target: torch.Tensor, seed: int,
                 loss: str = "l2") -> torch.Tensor:
        """Adversarial [0, 1] images (N, 3, H, W) of uint8 `images` against `model`, the loss to `target`
        embeddings maximised. Seeded by `seed` (a training step's), so a resumed run redraws the same
        random starts."""
        x01 = unit_images(images, self.device)
        generator = torch.Generator().manual_seed(int(seed))

        def fn(z: torch.Tensor) -> torch.Tensor:
            return model(self.normalize(z))

        with torch.autocast(self.device.type, enabled=False):
            delta, _ = pgd(fn, x01, target.detach(), embedding_loss(loss), self.norm, self.radius, self.steps,
                           default_step(self.norm, self.radius), 1, generator)
        return (x01 + delta).clamp(0.0, 1.0).detach()

    def worst_case(self, model: torch.nn.Module, images: np.ndarray, embed, seed: int, batch: int = 32) -> np.ndarray:
        """Per held-out image: cos(f(x_adv), f(x)) of the rounded uint8 adversarial image found on `model`
        (1 - cos maximised, as `vfmaudit attack`), through `embed` (the ordinary encode path)."""
        clean = embed(images)
        adv = np.empty_like(images)
        for s in range(0, len(images), batch):
            target = torch.from_numpy(clean[s:s + batch]).to(self.device)
            found = self.examples(model, images[s:s + batch], target, seed + s, loss="cosine")
            adv[s:s + batch] = to_uint8(images[s:s + batch], found.permute(0, 2, 3, 1).cpu().numpy().astype(np.float64),
                                        self.norm, self.eps)
        return np.sum(embed(adv) * clean, axis=1)
