"""One attacker per process (the driver, or each Ray actor): the model built once, and the attack of
one batch of images at every budget.

Each batch draws its random starts (PGD, APGD) or squares (Square) from its own generator, seeded
by (seed, the batch's index in the run), so a batch's adversarial images are the same whichever
engine, shard or resumed run attacks it.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.attack.threat import budget, default_step, levels, to_uint8, unit_images
from vfmaudit.attack.whitebox import apgd, embedding_loss, pgd

WHITE_BOX = ("pgd", "apgd")


class Attacker:
    """config: an AttackConfig of method pgd, apgd or square. `encoder` is the ordinary encode path
    (every reported number); white-box methods also attack the torch module behind it."""

    def __init__(self, config) -> None:
        self.config = config
        self.eps = sorted(set(float(e) for e in config.eps))
        if config.method in WHITE_BOX:
            from vfmaudit.models.factory import build_model
            from vfmaudit.runtime.torch_backend import TorchEncoder, resolve_device

            resolve_device(config.device)
            self.built = build_model(config.model, pretrained=config.pretrained, seed=config.seed)
            self.encoder = TorchEncoder(self.built, device=config.device, batch_size=config.batch_size)
        else:
            from vfmaudit.runtime import open_encoder

            self.built = None
            self.encoder = open_encoder(config.model, config.pretrained, config.backend, device=config.device,
                                        batch_size=config.batch_size, seed=config.seed)
        self._fn = None
        self.on_step = None  # called after each step (a PGD/APGD gradient step, a Square query): progress

    def steps_per_batch(self) -> int:
        """How many times on_step is called per batch: the unit of the attack's progress."""
        per_restart = self.config.steps if self.built is not None else self.config.queries
        return len(self.eps) * self.config.restarts * per_restart

    def _tick(self) -> None:
        if self.on_step is not None:
            self.on_step()

    def attack_batch(self, clean: np.ndarray, e_clean: np.ndarray, index: int) -> np.ndarray:
        """uint8 (N, H, W, 3) images and their clean embeddings, the batch's index in the run ->
        uint8 (len(eps), N, H, W, 3): the adversarial images at each budget, in ascending order."""
        seed = np.random.SeedSequence([int(self.config.seed), int(index)])
        if self.built is not None:
            return self._whitebox(clean, e_clean, int(seed.generate_state(1, np.uint64)[0] >> 1))
        return self._square(clean, e_clean, np.random.default_rng(seed))

    def _attacked_function(self):
        if self._fn is None:
            import torch

            from vfmaudit.attack.threat import Normalize

            module = self.encoder.module
            for p in module.parameters():
                p.requires_grad_(False)  # no gradient to the weights
            normalize = Normalize(self.built.preprocess, self.encoder.device, torch.float32)

            def counted(x01):  # one gradient forward per step (the last point's scoring has none): a tick
                if torch.is_grad_enabled():
                    self._tick()
                return module(normalize(x01))
            self._fn = counted
        return self._fn

    def _whitebox(self, clean: np.ndarray, e_clean: np.ndarray, seed: int) -> np.ndarray:
        import torch

        config, device = self.config, self.encoder.device
        fn, loss = self._attacked_function(), embedding_loss(config.loss)
        generator = torch.Generator().manual_seed(seed)
        x01 = unit_images(clean, device)
        e0 = torch.from_numpy(np.ascontiguousarray(e_clean)).to(device)
        out = np.empty((len(self.eps), *clean.shape), dtype=np.uint8)
        for j, eps in enumerate(self.eps):
            radius = budget(config.norm, eps)
            with torch.autocast(device_type=device.type, enabled=False):
                if config.method == "pgd":
                    step = config.step_size * radius if config.step_size is not None else default_step(config.norm,
                                                                                                        radius)
                    delta, _ = pgd(fn, x01, e0, loss, config.norm, radius, config.steps, step, config.restarts,
                                   generator, momentum=config.momentum)
                else:
                    delta, _ = apgd(fn, x01, e0, loss, config.norm, radius, config.steps, config.restarts, generator)
            adv01 = (x01 + delta).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
            out[j] = to_uint8(clean, adv01, config.norm, eps)
        return out

    def _counted_encode(self, images: np.ndarray) -> np.ndarray:
        self._tick()  # one query of the batch
        return self.encoder.encode(images)

    def _square(self, clean: np.ndarray, e_clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from vfmaudit.attack.square import numpy_loss, square_l2, square_linf

        config = self.config
        loss = numpy_loss(config.loss)
        attack = square_linf if config.norm == "linf" else square_l2
        out = np.empty((len(self.eps), *clean.shape), dtype=np.uint8)
        for j, eps in enumerate(self.eps):
            size = levels(eps) if config.norm == "linf" else eps  # square_linf's budget is in grey levels
            best_imgs, best = clean.copy(), np.full(len(clean), -np.inf)
            for _ in range(config.restarts):
                imgs, values, _ = attack(self._counted_encode, clean, e_clean, loss, size, config.queries, rng)
                better = values > best
                best_imgs[better], best = imgs[better], np.where(better, values, best)
            out[j] = best_imgs
        return out
