"""ImageNet-C glass blur, as defined by Hendrycks & Dietterich (2019), "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations" (github.com/hendrycks/robustness,
Apache-2.0), in the form the `imagecorruptions` package (bethgelab, Apache-2.0) ships.

Written out here from that definition instead of installing `imagecorruptions`, which pulls in
the non-headless `opencv-python` and would overwrite our `opencv-python-headless` files. It
is deliberately the plain per-pixel Python loop of the reference, so it is slow (as the peer).
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian

# (sigma, max_delta, iterations) at severities 1..5
GLASS_BLUR_SEVERITIES = [(0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]


def glass_blur(image: np.ndarray, severity: int = 1) -> np.ndarray:
    """float64 (H, W, 3) in [0, 255]; random offsets come from numpy's global stream, as in the reference."""
    sigma, delta, iterations = GLASS_BLUR_SEVERITIES[severity - 1]
    x = np.uint8(gaussian(np.asarray(image) / 255.0, sigma=sigma, channel_axis=-1) * 255)
    height, width = x.shape[:2]
    for _ in range(iterations):
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dx, dy = np.random.randint(-delta, delta, size=(2,))
                # The reference writes `x[h, w], x[h', w'] = x[h', w'], x[h, w]`: with numpy
                # views that copies one way only (x[h, w] <- x[h', w']), so that is what it does.
                x[h, w] = x[h + dy, w + dx]
    return np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255
