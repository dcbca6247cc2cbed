"""INT8 acceptance: quantization audited as one more perturbation, on held-out images.

For every held-out image, clean and perturbed: cosine and divergence radius between the
fp32 and the INT8 embedding. Then the robustness profile (divergence radius per family) of
both models side by side: an INT8 build that is close to its parent but more fragile under
JPEG or blur shows up here, where a single parity number would hide it.
"""

from __future__ import annotations

import numpy as np

from vfmaudit import perturb
from vfmaudit.data.sources import ImageItem
from vfmaudit.errors import ImageDecodeError, VfmauditError
from vfmaudit.metrics import divergence_radius, l2_normalize, summarize
from vfmaudit.metrics.agreement import mean_agreement, neighbour_agreement
from vfmaudit.runtime.base import Encoder

PROFILE_PRESET = "profile"  # perturb/presets.py


def _distribution(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "p5": float(np.percentile(v, 5)), "median": float(np.median(v)),
            "mean": float(v.mean()), "max": float(v.max()), "n": int(v.size)}


def accept_int8(fp32: Encoder, int8: Encoder, held_out: list[ImageItem], levels: int = 3, seed: int = 0,
                measure_speed: bool = True,
                families: tuple[str, ...] | None = None, speed_batch: int = 16) -> dict:
    families = tuple(families or perturb.get_preset(PROFILE_PRESET).families)
    images, ids = [], []
    for item in held_out:
        try:
            images.append(fp32.preprocess.prepare(item.load()))
            ids.append(item.id)
        except ImageDecodeError:
            continue
    if not images:
        raise VfmauditError("no held-out image could be read to check the INT8 model")
    base = np.stack(images)
    clean32, clean8 = fp32.encode(base), int8.encode(base)
    rows = []

    def pair_rows(variant: str, e32: np.ndarray, e8: np.ndarray) -> np.ndarray:
        cos = np.sum(e32 * e8, axis=1)
        radius = np.linalg.norm(e32 - e8, axis=1) / 2  # the ball around two points
        for i, image_id in enumerate(ids):
            rows.append({"image": image_id, "variant": variant, "cosine": float(cos[i]), "radius": float(radius[i])})
        return cos

    cos_clean = pair_rows("clean", clean32, clean8)
    agreement = [neighbour_agreement(clean32, clean8)]
    cos_pert, profile = [], {}
    for fam in families:
        lv = perturb.levels(fam, levels + 1)
        f = perturb.get(fam)
        lv = [x for x in lv if not f.is_identity(x)][:levels]
        var = np.concatenate([perturb.apply(base, fam, x, seed=seed) for x in lv])
        e32 = fp32.encode(var).reshape(len(lv), len(ids), -1)
        e8 = int8.encode(var).reshape(len(lv), len(ids), -1)
        for j, x in enumerate(lv):
            cos_pert.append(pair_rows(f"{fam}@{x:g}", e32[j], e8[j]))
            agreement.append(neighbour_agreement(e32[j], e8[j]))
        r32, r8 = _radius(clean32, e32), _radius(clean8, e8)
        profile[fam] = {"levels": [float(x) for x in lv], "fp32": summarize(r32, False), "int8": summarize(r8, False),
                        "int8_minus_fp32_mean": float(r8.mean() - r32.mean())}
    all_cos = np.concatenate([cos_clean] + cos_pert)
    radius_all = np.array([r["radius"] for r in rows])
    speed = _speed_ratio(fp32, int8, base, speed_batch) if measure_speed else None
    return {
        "held_out_images": ids,
        "cosine_to_fp32": {"all": _distribution(all_cos), "clean": _distribution(cos_clean),
                           "perturbed": _distribution(np.concatenate(cos_pert))},
        "radius_fp32_int8": _distribution(radius_all),
        "robustness_profile": profile,
        "agreement": mean_agreement(agreement),
        "speed": speed,
        "per_image": rows,
    }


def _radius(clean: np.ndarray, variants_lbd: np.ndarray) -> np.ndarray:
    """Divergence radius per image of the clean embedding and its variants (levels, images, dim)."""
    points = np.concatenate([clean[:, None, :], variants_lbd.transpose(1, 0, 2)], axis=1)
    return divergence_radius(l2_normalize(points))


def _speed_ratio(fp32: Encoder, int8: Encoder, base: np.ndarray, batch: int, repeats: int = 3) -> dict:
    from vfmaudit.runtime.timing import run_timed

    x = np.concatenate([base] * (-(-batch // len(base))))[:batch]
    rates: dict[str, float] = {}
    for _ in range(2):  # interleaved rounds, best of each
        for name, enc in (("fp32", fp32), ("int8", int8)):
            t = run_timed(lambda enc=enc: enc.encode(x), len(x), warmup_s=0.0, duration_s=None, iterations=repeats)
            rates[name] = max(rates.get(name, 0.0), len(x) / float(t.host_s.min()))
    return {"fp32_img_per_s": rates["fp32"], "int8_img_per_s": rates["int8"],
            "int8_over_fp32": rates["int8"] / rates["fp32"], "batch": batch}
