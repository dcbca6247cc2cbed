"""Each family against an independent implementation of the same operation."""

import io

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from vfmaudit import perturb


def _tv(fn, img, level):
    t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    return fn(t, level).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("name,fn,levels", [
    ("brightness", TF.adjust_brightness, [0.2, 0.7, 1.3, 1.8]),
    ("contrast", TF.adjust_contrast, [0.2, 0.7, 1.3, 1.8]),
    ("saturation", TF.adjust_saturation, [0.0, 0.4, 1.6, 2.0]),
    ("hue", TF.adjust_hue, [-0.5, -0.2, 0.1, 0.37, 0.5]),
    ("sharpness", TF.adjust_sharpness, [0.0, 0.5, 2.0, 3.0]),
])
def test_colour_and_sharpness_equal_torchvision(photos, name, fn, levels):
    for img in photos:
        for level in levels:
            ref = _tv(fn, img, level)
            ours = perturb.apply(img, name, level)
            # the README promises the same bytes as torchvision's uint8 arithmetic: not one level off
            assert np.array_equal(ref, ours), (name, level, int(np.abs(ref.astype(int) - ours).max()))


def test_sharpness_hue_and_contrast_equal_torchvision_on_noise_and_odd_shapes():
    """Uniform noise reaches every remainder of the smoothing sum mod 13 (the integer rounding), every
    hue sector with every channel order (the selected quotients) and every gray level (the contrast
    tables); odd shapes and a batch of mixed content take other paths (hue: chunks of 2048 pixels)."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(37, 53, 3), (3, 3, 3), (64, 9, 3)]]
    grey = np.repeat(rng.integers(0, 256, (40, 70, 1), dtype=np.uint8), 3, axis=2)  # max == min: hue 0
    for img in images:
        for level in (0.0, 0.3, 2.0, 3.0):
            assert np.array_equal(perturb.apply(img, "sharpness", level), _tv(TF.adjust_sharpness, img, level))
    for img in images + [grey]:
        for level in (-0.5, -0.13, 0.1, 0.37, 0.5):
            assert np.array_equal(perturb.apply(img, "hue", level), _tv(TF.adjust_hue, img, level))
    batch = rng.integers(0, 256, (5, 31, 29, 3), dtype=np.uint8)
    batch[1] //= 4  # a dark image and a bright one: different means
    batch[2] = 255 - batch[2] // 4
    for level in (0.2, 1.3, 1.8):
        ours = perturb.apply(batch, "contrast", level)
        assert all(np.array_equal(ours[i], _tv(TF.adjust_contrast, batch[i], level)) for i in range(len(batch)))


def test_hue_equals_torchvision_on_every_colour():
    """All 2^24 RGB colours, in four images of 2^22: every branch of the HSV round trip, the clamps that
    vfmaudit leaves out (no-ops) and the division-free paths of torch's arithmetic meet their colour."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    colours = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)
    for part in colours.reshape(4, 2048, 2048, 3):
        for level in (-0.29, 0.37):
            assert np.array_equal(perturb.apply(part, "hue", level), _tv(TF.adjust_hue, part, level)), level


@pytest.mark.parametrize("quality", [10, 35, 50, 75, 95, 100])
def test_jpeg_equals_pil(photos, quality):
    for img in photos:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=quality)
        ref = np.asarray(Image.open(buf).convert("RGB"))
        ours = perturb.apply(img, "jpeg", quality)
        assert np.array_equal(ref, ours), (quality, int(np.abs(ref.astype(int) - ours).max()))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.7])
def test_gaussian_blur_matches_skimage(photos, sigma):
    from skimage.filters import gaussian

    for img in photos:
        ref = np.clip(gaussian(img / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255
        ours = perturb.apply(img, "gaussian_blur", sigma).astype(float)
        assert np.abs(ref - ours).max() <= 1.01  # rounding vs truncation, 3.5 vs 4 sigma support


def test_resize_matches_opencv_down_up(photos):
    import cv2

    img = photos[0]
    h, w = img.shape[:2]
    ref = cv2.resize(cv2.resize(img, (round(w * 0.5), round(h * 0.5)), interpolation=cv2.INTER_AREA), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(perturb.apply(img, "resize", 0.5), ref)
    small = perturb.apply(img, "resize", 0.1)
    assert small.shape == img.shape and np.abs(small.astype(int) - img).mean() > 3


def test_gaussian_noise_statistics():
    img = np.full((200, 200, 3), 128, np.uint8)
    for sigma in [0.02, 0.1, 0.2]:
        out = perturb.apply(img, "gaussian_noise", sigma, seed=3).astype(float)
        resid = (out - 128) / 255.0
        # truncation to uint8 shifts the mean by about half a level
        assert abs(resid.mean() + 0.5 / 255) < 0.002
        assert resid.std() == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.38])
@pytest.mark.parametrize("grey", [3, 100, 250])
def test_gaussian_noise_distribution_equals_imagenet_c_formula(sigma, grey):
    """Histogram of outputs against uint8(clip(x/255 + sigma*n, 0, 1)*255) with numpy normals."""
    x = np.full((300, 300, 3), grey, np.uint8)
    ours = perturb.apply(x, "gaussian_noise", sigma, seed=1).ravel()
    ref = np.uint8(np.clip(x / 255.0 + np.random.default_rng(0).normal(size=x.shape, scale=sigma), 0, 1) * 255)
    h_ours = np.bincount(ours, minlength=256) / ours.size
    h_ref = np.bincount(ref.ravel(), minlength=256) / ref.size
    assert 0.5 * np.abs(h_ours - h_ref).sum() < 0.02  # total variation, sampling noise included
    assert ours.astype(float).std() == pytest.approx(ref.astype(float).std(), rel=0.02)


def test_noise_is_spatially_uncorrelated():
    x = np.full((256, 256, 3), 128, np.uint8)
    n = perturb.apply(x, "gaussian_noise", 0.1, seed=2).astype(float) - 128
    for a, b in [(n[:, :-1], n[:, 1:]), (n[:-1], n[1:]), (n[..., 0], n[..., 1])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_glass_blur_statistically_matches_imagenet_c(severity):
    from reference.imagenet_c import glass_blur as ref_fn
    from skimage import data
    import cv2

    img = cv2.resize(data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
    np.random.seed(0)
    ref = np.uint8(ref_fn(img, severity))
    ours = perturb.apply(img, "imagenet_c_glass_blur", float(severity), seed=0)
    # different random streams: compare how far each moves the image, and their smoothness
    d_ref = np.abs(ref.astype(float) - img).mean()
    d_ours = np.abs(ours.astype(float) - img).mean()
    assert d_ours == pytest.approx(d_ref, rel=0.15)
    g_ref = np.abs(np.diff(ref.astype(float), axis=1)).mean()
    g_ours = np.abs(np.diff(ours.astype(float), axis=1)).mean()
    assert g_ours == pytest.approx(g_ref, rel=0.15)


def _splitmix_offsets(seed: int, delta: int):
    """The offsets our shuffle draws, rebuilt in Python (splitmix64: dx from the high 32 bits, dy from the low)."""
    mask = (1 << 64) - 1
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        r = z ^ (z >> 31)
        yield (r >> 32) % (2 * delta) - delta, (r & 0xFFFFFFFF) % (2 * delta) - delta


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_glass_shuffle_is_the_reference_loop_fed_the_same_offsets(severity):
    """The pixel shuffle against ImageNet-C's own loop, written as the reference writes it (the tuple
    assignment of numpy views included), fed the offsets ours draws: the same array, exactly."""
    from vfmaudit.perturb.families.imagenet_c._kernels import glass_shuffle
    from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME

    params = BY_NAME["glass_blur"].table.at(float(severity))
    delta, iterations = int(params["max_delta"]), int(params["iterations"])
    rng = np.random.default_rng(severity)
    img = rng.uniform(0, 255, (40, 36, 3)).astype(np.float32)
    ours = img.copy()
    glass_shuffle(ours, np.uint64(1234), delta, iterations)
    x = img.copy()
    offsets = _splitmix_offsets(1234, delta)
    height, width = x.shape[:2]
    for _ in range(iterations):
        for h in range(height - delta, delta, -1):
            for w in range(width - delta, delta, -1):
                dx, dy = next(offsets)
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # the reference's line
    assert np.array_equal(ours, x)
    assert not np.array_equal(ours, img)
