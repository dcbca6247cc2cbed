"""Additive Gaussian noise on the [0, 1] scale (ImageNet-C gaussian_noise semantics).

ImageNet-C computes uint8(clip(x/255 + sigma*n, 0, 1) * 255) with n ~ N(0, 1). For integer x
that equals clip(x + floor(s*n), 0, 255) with s = 255*sigma, so each pixel needs one draw of
the integer K = floor(s*n), whose law is exact: P(K < k) = Phi(k/s). The everyday family and
imagenet_c_gaussian_noise are the same law, so they share one implementation
(imagenet_c/noise.py's gaussian_offsets and add_offsets: a splitmix64 stream per image, one 64-bit mix
per two values, a 14-bit table and an exact comparison per value), 4x the two 32-bit hashes and
the bucket search this family ran before.
"""

from __future__ import annotations

import numpy as np

from vfmaudit.perturb._batch import map_into
from vfmaudit.perturb.registry import Family, register


def gaussian_noise(batch: np.ndarray, level: float, seeds: np.ndarray) -> np.ndarray:
    # imported here: importing the imagenet_c package registers its 19 families, which must come after the
    # everyday ones in the registry (its order is the catalogue's)
    from vfmaudit.perturb.families.imagenet_c import _kernels
    from vfmaudit.perturb.families.imagenet_c.noise import gaussian_offsets

    sigma = float(level)
    if sigma <= 0:
        return batch.copy()
    table, thresholds, kmin, shift = gaussian_offsets(sigma)

    def one(img: np.ndarray, i: int, out: np.ndarray) -> None:
        _kernels.add_offsets(img, np.uint64(seeds[i]), table, thresholds, kmin, shift, out)

    return map_into(one, batch)


register(Family(name="gaussian_noise", lo=0.0, hi=0.4, identity=0.0, units="sigma on the [0, 1] scale",
                apply_batch=gaussian_noise, stochastic=True,
                description="add N(0, sigma^2) per channel on [0, 1], clip (ImageNet-C gaussian_noise)"))
