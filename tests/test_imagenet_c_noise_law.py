"""The ImageNet-C noises draw each output value from the original's law given its input value: the
joint histogram of (input, output) over many values, ours against the original's numpy arithmetic
(tests/reference/imagenet_c.py), per grey level: a chi-square test of homogeneity (the shape) and a
two-sample z test of the means (a shift the chi-square is weak against: rounding instead of the
original's truncation moves gaussian noise by half a grey level). Both sides are seeded, so the test
is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from reference import imagenet_c as ref
from vfmaudit import perturb
from vfmaudit.perturb.families.imagenet_c import family_name
from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME

GREYS = np.array([0, 1, 37, 128, 200, 254, 255], np.uint8)
REFERENCES = {
    "gaussian_noise": ref.gaussian_noise,
    "shot_noise": ref.shot_noise,
    "impulse_noise": ref.impulse_noise,
    "speckle_noise": ref.speckle_noise,
}


def _histograms(img: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(grey, output value) counts, one row per grey level of GREYS."""
    rows = [np.bincount(out[img == g], minlength=256) for g in GREYS]
    return np.array(rows)


def _mean_z(a: np.ndarray, b: np.ndarray) -> float:
    """|mean(a) - mean(b)| in standard errors, a and b given as histograms over 0..255."""
    v = np.arange(256)
    stats = []
    for h in (a, b):
        n = h.sum()
        m = (h * v).sum() / n
        stats.append((m, ((h * (v - m) ** 2).sum() / n) / n))
    se = np.sqrt(stats[0][1] + stats[1][1])
    return 0.0 if se == 0 else abs(stats[0][0] - stats[1][0]) / se


def _homogeneity_p(a: np.ndarray, b: np.ndarray) -> float:
    table = np.stack([a, b])
    table = table[:, table.sum(0) >= 20]  # chi-square needs populated cells; rare tail values pooled out
    if table.shape[1] < 2:  # one output value only (a saturated level): equal if both put all there
        return 1.0 if table.shape[1] == 1 or a.sum() == b.sum() == 0 else 0.0
    return chi2_contingency(table)[1]


@pytest.mark.parametrize("severity", [1, 5])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_noise_law_per_grey_level_is_the_originals(name, severity):
    img = np.repeat(GREYS, 256 * 192)[None, :, None].repeat(3, axis=2)  # 147k values a grey
    img = img.reshape(224, -1, 3)
    c = BY_NAME[name].table.at(float(severity))["c"]
    ours = perturb.apply(img, family_name(name), float(severity), seed=11)
    np.random.seed(5)
    theirs = REFERENCES[name](img, c)
    h_ours, h_ref = _histograms(img, ours), _histograms(img, theirs)
    for g, a, b in zip(GREYS, h_ours, h_ref):
        p, z = _homogeneity_p(a, b), _mean_z(a, b)
        assert p > 1e-4 and z < 4.5, (name, severity, int(g), p, z)


def test_the_law_test_sees_a_wrong_sigma_and_a_rounding():
    """The tests can fail: noise of sigma 1.1 c (the shape), and the original's noise rounded instead of
    truncated (half a grey level: the means)."""
    img = np.repeat(GREYS, 256 * 192)[None, :, None].repeat(3, axis=2).reshape(224, -1, 3)
    c = BY_NAME["gaussian_noise"].table.at(1.0)["c"]
    np.random.seed(1)
    a = _histograms(img, ref.gaussian_noise(img, c))
    np.random.seed(2)
    b = _histograms(img, ref.gaussian_noise(img, 1.1 * c))
    assert min(_homogeneity_p(x, y) for x, y in zip(a, b)) < 1e-6
    np.random.seed(2)
    rounded = np.clip(np.round(img / 255.0 + np.random.normal(size=img.shape, scale=c), 8) * 255 + 0.5, 0, 255)
    b = _histograms(img, rounded.astype(np.uint8))
    assert max(_mean_z(x, y) for x, y in zip(a[2:5], b[2:5])) > 6
