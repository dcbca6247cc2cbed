"""The threat model: budgets in pixel units at the model's input size, the model's normalisation
inside the attacked function, projections, and the rounding back to uint8 that every reported
number goes through.

- L-inf: eps in units of 1/255 (eps = 4 means |delta| <= 4/255 on [0, 1] pixels, 4 grey levels).
- L2: eps on the [0, 1] image of the model's input size (the whole (3, H, W) tensor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vfmaudit.errors import VfmauditError

if TYPE_CHECKING:
    import torch

    from vfmaudit.models.preprocess import PreprocessSpec

NORMS = ("linf", "l2")


def budget(norm: str, eps: float) -> float:
    """eps as given on the command line -> the radius on [0, 1] pixels (norm and eps checked by AttackConfig)."""
    return eps / 255.0 if norm == "linf" else float(eps)


def default_step(norm: str, radius: float) -> float:
    """PGD's step on [0, 1] pixels: a quarter of the radius, at least one grey level for L-inf (RobustVLM's
    1/255 at 4/255)."""
    return max(radius / 4.0, 1.0 / 255.0) if norm == "linf" else radius / 4.0


def levels(eps: float) -> int:
    """An L-inf budget in whole grey levels: what a uint8 image can move by within it."""
    return int(np.floor(eps + 1e-9))


def parse_budgets(text: str, where: str = "") -> tuple[float, ...]:
    """'1,2,4' -> (1.0, 2.0, 4.0), for --eps and the gate's [attack] eps; where: the message's prefix."""
    try:
        values = tuple(float(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise VfmauditError(f"{where}eps must be comma-separated numbers, e.g. 1,2,4, got '{text}'",
                            param="eps") from None
    if not values:
        raise VfmauditError(f"{where}eps needs at least one budget, e.g. 1,2,4", param="eps")
    return values


def unit_images(images: np.ndarray, device) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> float32 [0, 1] (N, 3, H, W) on the device: what the attacks perturb."""
    import torch

    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).permute(0, 3, 1, 2).to(device)


class Normalize:
    """The backends' numpy normalisation (PreprocessSpec.normalize) as a differentiable torch function
    of [0, 1] images (N, 3, H, W): (x - mean) / std per channel."""

    def __init__(self, spec: "PreprocessSpec", device: "torch.device", dtype: "torch.dtype"):
        import torch

        self.mean = torch.tensor(spec.mean, dtype=dtype, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, dtype=dtype, device=device).view(1, 3, 1, 1)

    def __call__(self, x01: "torch.Tensor") -> "torch.Tensor":
        return (x01 - self.mean) / self.std


def project(delta: "torch.Tensor", norm: str, radius: float) -> "torch.Tensor":
    """The nearest perturbation inside the budget (per image)."""
    if norm == "linf":
        return delta.clamp(-radius, radius)
    flat = delta.flatten(1)
    scale = (radius / flat.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


def steepest(grad: "torch.Tensor", norm: str) -> "torch.Tensor":
    """The unit steepest-ascent direction of a gradient: its sign (L-inf), or itself over its norm (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))


def to_uint8(clean: np.ndarray, adv01: np.ndarray, norm: str, eps: float) -> np.ndarray:
    """Adversarial [0, 1] images (N, H, W, 3) -> uint8 inside the budget: L-inf rounds to the nearest
    grey level and clips to +-floor(eps) levels around the clean value; L2 rounds each change toward
    zero (no component grows, so the norm cannot), which keeps a fractional budget a budget."""
    target = np.clip(adv01, 0.0, 1.0) * 255.0
    base = clean.astype(np.float64)
    if norm == "linf":
        moved = np.clip(np.rint(target), base - levels(eps), base + levels(eps))
    else:
        moved = base + np.trunc(target - base)
    return np.clip(moved, 0, 255).astype(np.uint8)


def measured_norms(clean: np.ndarray, adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: max |delta| in grey levels (L-inf's unit) and ||delta||_2 on [0, 1] pixels (L2's)."""
    d = adv.astype(np.float64) - clean.astype(np.float64)
    flat = d.reshape(d.shape[0], -1)
    return np.abs(flat).max(axis=1), np.linalg.norm(flat / 255.0, axis=1)


def random_in_budget(clean: np.ndarray, norm: str, eps: float, rng: np.random.Generator) -> np.ndarray:
    """One random change of the same budget per image, rounded as the attacks' images are: the
    average case beside the worst. linf: every value moved by a uniform integer in [-levels, levels];
    l2: a Gaussian direction scaled to norm eps on the [0, 1] image."""
    if norm == "linf":
        k = levels(eps)
        return np.clip(clean.astype(np.int16) + rng.integers(-k, k + 1, clean.shape), 0, 255).astype(np.uint8)
    z = rng.standard_normal(clean.shape)
    z *= eps / np.maximum(np.linalg.norm(z.reshape(len(z), -1), axis=1), 1e-12).reshape(-1, 1, 1, 1)
    return to_uint8(clean, clean.astype(np.float64) / 255.0 + z, "l2", eps)
