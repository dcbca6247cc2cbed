"""Which parameters of an image tower train: its last N blocks (and what follows), its norms, or all."""

from __future__ import annotations

import torch

_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)


def image_tower(module: torch.nn.Module) -> torch.nn.Module:
    """The part of an ImageEmbedder that sees images: OpenCLIP's .visual, a timm model itself."""
    model = module.model
    return model.visual if module.source == "openclip" else model


def _block_list(tower: torch.nn.Module) -> tuple[str, torch.nn.Module] | None:
    """The longest list of same-typed blocks in the tower (a ViT's blocks, a ResNet stage), the later on ties."""
    best = None
    for name, child in tower.named_modules():
        if isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)) and len(child) >= 2:
            kinds = {type(c) for c in child}
            if len(kinds) == 1 and (best is None or len(child) >= len(best[1])):  # ties: the later list
                best = (name, child)
    return best


def select_trainable(module: torch.nn.Module, mode: str, n: int = 0) -> list[str]:
    """Freeze everything, then unfreeze the chosen parameters; returns their names (tower-relative)."""
    for p in module.parameters():
        p.requires_grad_(False)
    tower = image_tower(module)
    names: list[str] = []
    if mode == "all":
        chosen = dict(tower.named_parameters())
    elif mode == "norm":
        chosen = {f"{m_name}.{p_name}": p for m_name, m in tower.named_modules() if isinstance(m, _NORMS)
                  for p_name, p in m.named_parameters(recurse=False)}
    else:
        found = _block_list(tower)
        if found is None:  # no block structure: train everything
            chosen = dict(tower.named_parameters())
        else:
            prefix, blocks = found
            start = max(0, len(blocks) - n)
            trained = [f"{prefix}.{i}." if prefix else f"{i}." for i in range(start, len(blocks))]
            params = dict(tower.named_parameters())
            chosen = {k: v for k, v in params.items() if any(k.startswith(t) for t in trained)}
            # and what runs after the blocks: modules registered after them (final norm, pooling,
            # head) and a projection held directly by the tower (OpenCLIP's .proj)
            modules = [name for name, _ in tower.named_modules()]
            after = [m for m in modules[modules.index(prefix) + 1:] if not m.startswith(prefix + ".")] if prefix else []
            for m_name in after:
                for p_name, _ in tower.get_submodule(m_name).named_parameters(recurse=False):
                    chosen[f"{m_name}.{p_name}"] = params[f"{m_name}.{p_name}"]
            if "proj" in params:
                chosen["proj"] = params["proj"]
    for name, p in chosen.items():
        p.requires_grad_(True)
        names.append(name)
    return names
