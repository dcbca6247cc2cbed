"""ImageNet-C: the 19 corruptions against the original's arithmetic (tests/reference/imagenet_c.py,
written from make_imagenet_c.py's definitions) and against imagecorruptions where it can be loaded;
continuous severity, every image size, determinism, frost textures."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from reference import imagenet_c as ref
from reference.peers import load_imagecorruptions
from vfmaudit import perturb
from vfmaudit.perturb.families.imagenet_c import EXTRA, FIFTEEN, SPECS, corrupt, family_name, set_frost_dir
from vfmaudit.perturb.families.imagenet_c.blur import motion_blur_uint8, zoom_factors
from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME
from vfmaudit.perturb.families.imagenet_c.frost import ORIGINAL_FILES, frost_source, make_frost_texture
from vfmaudit.perturb.families.imagenet_c.severity import RECIPROCAL, ROUND

NAMES = [s.name for s in SPECS]
STOCHASTIC = [s.name for s in SPECS if s.stochastic]


@pytest.fixture(scope="module")
def photo224():
    from skimage import data

    return cv2.resize(data.astronaut(), (224, 224), interpolation=cv2.INTER_AREA)


def ours(img, name, severity, seed=0):
    return perturb.apply(img, family_name(name), float(severity), seed=seed)


def params(name, severity):
    return BY_NAME[name].table.at(float(severity))


def test_the_15_and_the_4_extra_are_families_and_presets():
    assert len(FIFTEEN) == 15 and len(EXTRA) == 4
    assert EXTRA == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    c15 = perturb.get_preset("imagenet-c")
    assert c15.families == [family_name(n) for n in FIFTEEN]
    assert all(e.levels == (1.0, 2.0, 3.0, 4.0, 5.0) for e in c15.entries)
    assert perturb.get_preset("imagenet-c-extra").families == [family_name(n) for n in EXTRA]
    plans = perturb.parse_perturbations("imagenet-c,jpeg", 3)  # explicit severities win over --levels
    assert [p.levels for p in plans[:15]] == [(1.0, 2.0, 3.0, 4.0, 5.0)] * 15 and len(plans[15].levels) == 3


@pytest.mark.parametrize("name", NAMES)
def test_the_table_holds_exactly_at_integer_severities_and_interpolates_between(name):
    table = BY_NAME[name].table
    for k in range(1, 6):
        assert table.at(k) == {p.name: p.values[k - 1] for p in table.params}
    assert table.at(0) == {p.name: p.identity for p in table.params}
    for p in table.params:
        for k in range(5):
            a, b = p.row(k), p.row(k + 1)
            mid = table.at(k + 0.5)[p.name]
            if p.kind == RECIPROCAL:
                inv = (0.0 if math.isinf(a) else 1 / a) + 0.5 * (1 / b - (0.0 if math.isinf(a) else 1 / a))
                assert mid == pytest.approx(1 / inv)
            elif p.kind == ROUND:
                assert mid == math.floor((a + b) / 2 + 0.5)
            else:
                assert mid == pytest.approx((a + b) / 2)


def test_zoom_factor_lists_are_numpys_arange_with_its_accidental_end_points():
    assert [len(zoom_factors(params("zoom_blur", s))) for s in range(1, 6)] == [12, 16, 11, 13, 11]
    assert zoom_factors(params("zoom_blur", 2))[-1] == pytest.approx(1.15)
    assert np.array_equal(zoom_factors(params("zoom_blur", 4)), np.arange(1, 1.26, 0.02))


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity(photo224, name):
    assert np.array_equal(ours(photo224, name, 0), photo224)
    assert np.array_equal(corrupt(photo224, name, 0, pixels="scale"), photo224)


@pytest.mark.parametrize("name", NAMES)
def test_every_size_and_aspect_keeps_shape_and_dtype(name):
    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (17, 31), (224, 224), (768, 1024)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for severity in (2.5, 5):
            out = ours(img, name, severity, seed=1)
            assert out.shape == img.shape and out.dtype == np.uint8
        if h > 1:
            assert corrupt(img, name, 3, pixels="scale").shape == img.shape


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_corruptions_are_deterministic_across_batch_splits(photo_batch, name):
    a = ours(photo_batch, name, 3, seed=7)
    assert np.array_equal(a, ours(photo_batch, name, 3, seed=7))
    assert not np.array_equal(a, ours(photo_batch, name, 3, seed=8))
    assert np.array_equal(ours(photo_batch[::-1].copy(), name, 3, seed=7)[::-1], a)
    assert np.array_equal(ours(photo_batch[1:3], name, 3, seed=7), a[1:3])


# deterministic corruptions: the original's arithmetic, equal up to rounding at 224 x 224
DETERMINISTIC = {
    "brightness": lambda img, s: ref.brightness(img, params("brightness", s)["c"]),
    "contrast": lambda img, s: ref.contrast(img, params("contrast", s)["c"]),
    "saturate": lambda img, s: ref.saturate(img, (params("saturate", s)["gain"], params("saturate", s)["offset"])),
    "pixelate": lambda img, s: ref.pixelate(img, params("pixelate", s)["c"]),
    "jpeg_compression": lambda img, s: ref.jpeg_compression(img, int(params("jpeg_compression", s)["quality"])),
    "defocus_blur": lambda img, s: ref.defocus_blur(img, tuple(params("defocus_blur", s).values())),
    "zoom_blur": lambda img, s: ref.zoom_blur(img, zoom_factors(params("zoom_blur", s))),
    "gaussian_blur": lambda img, s: ref.gaussian_blur(img, params("gaussian_blur", s)["sigma"]),
}


def _assert_equal_up_to_rounding(a: np.ndarray, b: np.ndarray) -> None:
    """Off by one at most, where float rounding in another order truncates to the next integer (values
    that are exact integers in exact arithmetic, common in HSV round trips); a few percent at most."""
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.max() <= 1 and np.mean(d > 0) < 0.05, (d.max(), np.mean(d > 0))


@pytest.mark.parametrize("name", list(DETERMINISTIC))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_deterministic_corruptions_equal_the_originals_arithmetic(photo224, name, severity):
    _assert_equal_up_to_rounding(ours(photo224, name, severity), DETERMINISTIC[name](photo224, severity))


@pytest.mark.parametrize("angle", [-45.0, -10.0, 30.0, -100.0])
def test_motion_blur_is_imagemagicks_kernel(photo224, angle):
    for severity in (1, 5):
        p = params("motion_blur", severity)
        _assert_equal_up_to_rounding(motion_blur_uint8(photo224, p["radius"], p["sigma"], angle),
                                     ref.motion_blur(photo224, p["radius"], p["sigma"], angle))


def _statistics(clean: np.ndarray, img: np.ndarray) -> tuple[float, float]:
    """How far the corruption moves the image, and how rough it is (mean horizontal gradient)."""
    x = img.astype(float)
    return float(np.abs(x - clean).mean()), float(np.abs(np.diff(x, axis=1)).mean())


STOCHASTIC_REFERENCES = {
    "gaussian_noise": lambda img, s: ref.gaussian_noise(img, params("gaussian_noise", s)["c"]),
    "shot_noise": lambda img, s: ref.shot_noise(img, params("shot_noise", s)["c"]),
    "impulse_noise": lambda img, s: ref.impulse_noise(img, params("impulse_noise", s)["c"]),
    "speckle_noise": lambda img, s: ref.speckle_noise(img, params("speckle_noise", s)["c"]),
    "fog": lambda img, s: ref.fog(img, tuple(params("fog", s).values())),
    "elastic_transform": lambda img, s: ref.elastic_transform(img, tuple(params("elastic_transform", s).values())),
}


@pytest.mark.parametrize("name", list(STOCHASTIC_REFERENCES))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_stochastic_corruptions_match_the_originals_statistics(photo224, name, severity):
    """Different random streams: the statistics of ours must lie where the reference's own draws lie.
    The tolerance comes from the reference: 4 spreads of its 6 draws (plus 2 % for the few-draw spread)."""
    draws = []
    for seed in range(6):
        np.random.seed(seed)
        draws.append(_statistics(photo224, STOCHASTIC_REFERENCES[name](photo224, severity)))
    draws = np.array(draws)
    mine = np.array([_statistics(photo224, ours(photo224, name, severity, seed=s)) for s in range(3)]).mean(0)
    centre, spread = draws.mean(0), draws.std(0)
    assert np.all(np.abs(mine - centre) <= 4 * spread + 0.02 * centre), (name, mine, centre, spread)


@pytest.fixture(scope="module")
def imagecorruptions():
    module, why = load_imagecorruptions()
    if module is None:
        pytest.skip(why)
    return module


# where imagecorruptions computes what the original does (its elastic_transform and pixelate differ; its
# motion blur, also in snow, approximates ImageMagick's kernel: statistics only)
PEER_EQUAL = ["brightness", "contrast", "saturate", "jpeg_compression", "defocus_blur", "zoom_blur", "gaussian_blur"]
PEER_STATISTICAL = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "fog", "spatter",
                    "snow", "motion_blur"]  # its motion-blur kernel is close to ImageMagick's: the statistics agree


@pytest.mark.parametrize("name", PEER_EQUAL)
def test_deterministic_corruptions_equal_imagecorruptions(photo224, imagecorruptions, name):
    from PIL import Image

    for severity in (1, 3, 5):
        theirs = np.uint8(getattr(imagecorruptions, name)(Image.fromarray(photo224), severity))
        _assert_equal_up_to_rounding(ours(photo224, name, severity), theirs)


@pytest.mark.parametrize("name", PEER_STATISTICAL)
def test_stochastic_corruptions_match_imagecorruptions_statistics(photo224, imagecorruptions, name):
    from PIL import Image

    for severity in (1, 5):
        draws = []
        for seed in range(6):
            np.random.seed(seed)
            draws.append(_statistics(photo224, np.uint8(getattr(imagecorruptions, name)(Image.fromarray(photo224),
                                                                                       severity))))
        draws = np.array(draws)
        mine = np.array([_statistics(photo224, ours(photo224, name, severity, seed=s)) for s in range(3)]).mean(0)
        centre, spread = draws.mean(0), draws.std(0)
        assert np.all(np.abs(mine - centre) <= 4 * spread + 0.05 * centre), (name, severity, mine, centre, spread)


def test_procedural_frost_is_bright_structured_and_seeded():
    a, b = make_frost_texture(0), make_frost_texture(1)
    assert a.shape == (600, 900, 3) and a.dtype == np.uint8
    assert np.array_equal(a, make_frost_texture(0)) and not np.array_equal(a, b)
    grey = a.mean(-1)
    assert 100 < grey.mean() < 200 and grey.std() > 10  # the originals: mean grey 123..207, std 18..43
    assert a[..., 2].mean() > a[..., 0].mean()  # bluish, as frost
    assert frost_source()["textures"] == "procedural"


def test_frost_from_the_original_files_in_a_folder(tmp_path, photo224, monkeypatch):
    """Textures of one flat colour each: frost is then c_image x + c_frost colour_k for the k it drew."""
    colours = [(40 * (k + 1), 30 * k, 200 - 20 * k) for k in range(5)]
    for (name, (w, h)), colour in zip(ORIGINAL_FILES, colours):
        cv2.imwrite(str(tmp_path / name), np.full((h, w, 3), colour[::-1], np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 100])
    monkeypatch.setenv("VFMAUDIT_FROST_DIR", str(tmp_path))
    try:
        p = params("frost", 3)
        out = ours(photo224, "frost", 3, seed=5).astype(int)
        candidates = [np.clip(p["image"] * photo224.astype(np.float32) + p["frost"] * np.float32(c), 0, 255)
                      .astype(np.uint8) for c in colours]
        assert min(np.abs(out - c.astype(int)).max() for c in candidates) <= 2  # jpeg files: not exactly flat
        source = frost_source()
        assert source["textures"] == str(tmp_path) and len(source["sha256"]) == 5
        (tmp_path / "frost2.png").unlink()
        cv2.imwrite(str(tmp_path / "frost2.png"), np.zeros((10, 10, 3), np.uint8))
        with pytest.raises(Exception, match="frost2.png is 10x10, the original is 560x315"):
            set_frost_dir(tmp_path)
    finally:
        set_frost_dir(None)


def test_pixel_scale_mode_scales_the_pixel_parameters_only():
    table = BY_NAME["defocus_blur"].table
    assert table.at(3, 448 / 224) == {"radius": 12.0, "alias_blur": 1.0}
    assert BY_NAME["contrast"].table.at(3, 2.0) == {"c": 0.2}  # not a length: unchanged
    img = np.random.default_rng(0).integers(0, 256, (448, 448, 3), dtype=np.uint8)
    assert not np.array_equal(corrupt(img, "gaussian_blur", 3, pixels="scale"), corrupt(img, "gaussian_blur", 3))


@pytest.mark.parametrize("sigma,shape", [(2.44, (224, 224)), (19.52, (224, 300)), (170.8, (224, 224)), (2.44, (31, 17))])
def test_elastic_displacement_smoothing_is_skimages_reflect_gaussian(sigma, shape):
    """The field is skimage.filters.gaussian(mode='reflect', truncate=3) of the same draws, whether the
    kernel fits the image (OpenCV) or reaches past it many times (the folded matrices); the draws are
    U(-1, 1)."""
    from scipy import stats
    from skimage.filters import gaussian

    from vfmaudit.perturb.families.imagenet_c._kernels import signed_uniforms
    from vfmaudit.perturb.families.imagenet_c.digital import reflect_gaussian

    draws = np.random.default_rng(0).random(shape, dtype=np.float32) * np.float32(2) - np.float32(1)  # U(-1, 1)
    ours_field = reflect_gaussian(draws, sigma)
    theirs = gaussian(draws.astype(np.float64), sigma, mode="reflect", truncate=3)
    assert ours_field.dtype == np.float32 and np.abs(ours_field - theirs).max() < 1e-6  # float32 arithmetic
    ours_draws = signed_uniforms(np.uint64(7), shape)
    assert ours_draws.dtype == np.float32 and ours_draws.min() >= -1 and ours_draws.max() < 1
    assert stats.kstest(ours_draws.ravel(), "uniform", args=(-1, 2)).pvalue > 1e-3


@pytest.mark.parametrize("channels", [3, 1, 4])
def test_elastic_remap_is_map_coordinates_order_1_reflect(channels):
    """The displacement step alone, on fields that reach past every border (the reflections), against
    scipy.ndimage.map_coordinates as the original calls it; 3 channels run the written-out path, the
    others the channel loop."""
    from scipy.ndimage import map_coordinates

    from vfmaudit.perturb.families.imagenet_c._kernels import remap_reflect

    rng = np.random.default_rng(channels)
    h, w = 37, 53
    x = (rng.integers(0, 256, (h, w, channels)) / 255.0).astype(np.float32)
    dy = rng.uniform(-9, 9, (h, w)).astype(np.float32)
    dx = rng.uniform(-9, 9, (h, w)).astype(np.float32)
    out = np.empty((h, w, channels), np.uint8)
    remap_reflect(x, dy, dx, out)
    cols, rows, chans = np.meshgrid(np.arange(w), np.arange(h), np.arange(channels))
    coords = (rows + dy[..., None]).reshape(-1), (cols + dx[..., None]).reshape(-1), chans.reshape(-1)
    theirs = map_coordinates(x, coords, order=1, mode="reflect").reshape(h, w, channels)
    theirs = np.uint8(np.clip(theirs, 0, 1) * 255)
    diff = np.abs(out.astype(int) - theirs)
    assert diff.max() <= 1 and (diff > 0).mean() < 2e-3


def test_the_release_protocol_is_torchvisions_crop_then_the_corruption_then_jpeg_85(photo224):
    """Resize(256) + CenterCrop(224) as torchvision does it, the corruption, PIL JPEG quality 85."""
    import io

    from PIL import Image
    from torchvision import transforms

    from skimage import data

    wide = data.chelsea()  # 300 x 451: not square, not 224
    cropped = np.asarray(transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])(
        Image.fromarray(wide)))
    buf = io.BytesIO()
    Image.fromarray(ours(cropped, "contrast", 3)).save(buf, "JPEG", quality=85, optimize=True)
    expected = np.asarray(Image.open(buf))
    got = corrupt(wide, "contrast", 3, protocol="imagenet-c")
    assert got.shape == (224, 224, 3) and np.array_equal(got, expected)
    with pytest.raises(Exception, match="unknown protocol 'imagenet'"):
        corrupt(wide, "contrast", 3, protocol="imagenet")


def test_the_audit_pipeline_applies_the_protocol_to_imagenet_c_variants_only(photo_batch):
    from vfmaudit.audit.pipeline import CleanChunk, _variants
    from vfmaudit.perturb import FamilyPlan
    from vfmaudit.perturb.families.imagenet_c.protocol import as_released

    chunk = CleanChunk(["a", "b", "c", "d"], photo_batch, [], [])
    fog = _variants(chunk, FamilyPlan("imagenet_c_fog", (2.0,)), 0, "imagenet-c")
    assert np.array_equal(fog.images, as_released(perturb.apply(photo_batch, "imagenet_c_fog", 2.0)))
    jpeg = _variants(chunk, FamilyPlan("brightness", (1.5,)), 0, "imagenet-c")
    assert np.array_equal(jpeg.images, perturb.apply(photo_batch, "brightness", 1.5))  # everyday edits as they are


@pytest.mark.parametrize("shape", [(1, 1, 3), (17, 31, 3), (224, 224, 3), (480, 640, 3), (768, 1024, 3), (50, 70),
                                   (3, 2)])
def test_pixelate_is_pillows_box_resize_byte_for_byte(shape):
    """The fused kernel against Pillow itself (two BOX resizes), at the catalogue's factors and others."""
    from PIL import Image

    from vfmaudit.perturb.families.imagenet_c._box import pixelate_box

    rng = np.random.default_rng(sum(shape))
    smooth = cv2.resize(rng.integers(0, 256, (8, 8, *shape[2:]), dtype=np.uint8), shape[1::-1],
                        interpolation=cv2.INTER_CUBIC).reshape(shape)
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    for img in (smooth, noise):
        for c in (0.6, 0.5, 0.4, 0.3, 0.25, 0.999, 0.123, 0.05):
            h, w = shape[:2]
            small = Image.fromarray(img).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX)
            expected = np.asarray(small.resize((w, h), Image.BOX))
            assert np.array_equal(pixelate_box(img, c), expected), (shape, c)


# make_imagenet_c.py's constants, written out here (not read from the catalogue), severity 1..5 per
# parameter: a changed table entry fails this test (snow's and spatter's `amount` are vfmaudit's own
# continuous-severity dial, 1 at every integer severity)
ORIGINAL_TABLES = {
    "gaussian_noise": {"c": (.08, .12, .18, .26, .38)},
    "shot_noise": {"c": (60, 25, 12, 5, 3)},
    "impulse_noise": {"c": (.03, .06, .09, .17, .27)},
    "defocus_blur": {"radius": (3, 4, 6, 8, 10), "alias_blur": (0.1, 0.5, 0.5, 0.5, 0.5)},
    "glass_blur": {"sigma": (0.7, 0.9, 1, 1.1, 1.5), "max_delta": (1, 2, 2, 3, 4), "iterations": (2, 1, 3, 2, 2)},
    "motion_blur": {"radius": (10, 15, 15, 15, 20), "sigma": (3, 5, 8, 12, 15)},
    "zoom_blur": {"end": (1.11, 1.16, 1.21, 1.26, 1.31), "step": (.01, .01, .02, .02, .03)},
    "snow": {"loc": (0.1, 0.2, 0.55, 0.55, 0.55), "scale": (0.3,) * 5, "zoom": (3, 2, 4, 4.5, 2.5),
             "threshold": (0.5, 0.5, 0.9, 0.85, 0.85), "radius": (10, 12, 12, 12, 12), "sigma": (4, 4, 8, 8, 12),
             "mix": (0.8, 0.7, 0.7, 0.65, 0.55), "amount": (1,) * 5},
    "frost": {"image": (1, 0.8, 0.7, 0.65, 0.6), "frost": (0.4, 0.6, 0.7, 0.7, 0.75)},
    "fog": {"strength": (1.5, 2., 2.5, 2.5, 3.), "wibbledecay": (2, 2, 1.7, 1.5, 1.4)},
    "brightness": {"c": (.1, .2, .3, .4, .5)},
    "contrast": {"c": (.4, .3, .2, .1, .05)},
    "elastic_transform": {"alpha": (244 * 2, 244 * 2, 244 * 0.05, 244 * 0.07, 244 * 0.12),
                          "sigma": (244 * 0.7, 244 * 0.08, 244 * 0.01, 244 * 0.01, 244 * 0.01),
                          "affine": (244 * 0.1, 244 * 0.2, 244 * 0.02, 244 * 0.02, 244 * 0.02)},
    "pixelate": {"c": (0.6, 0.5, 0.4, 0.3, 0.25)},
    "jpeg_compression": {"quality": (25, 18, 15, 10, 7)},
    "speckle_noise": {"c": (.15, .2, 0.35, 0.45, 0.6)},
    "gaussian_blur": {"sigma": (1, 2, 3, 4, 6)},
    "spatter": {"loc": (0.65, 0.65, 0.65, 0.65, 0.67), "scale": (0.3, 0.3, 0.3, 0.3, 0.4), "sigma": (4, 3, 2, 1, 1),
                "threshold": (0.69, 0.68, 0.68, 0.65, 0.65), "intensity": (0.6, 0.6, 0.5, 1.5, 1.5),
                "mud": (0, 0, 0, 1, 1), "amount": (1,) * 5},
    "saturate": {"gain": (0.3, 0.1, 2, 5, 20), "offset": (0, 0, 0, 0.1, 0.2)},
}


@pytest.mark.parametrize("name", list(ORIGINAL_TABLES))
def test_every_severity_table_is_the_originals(name):
    from vfmaudit.perturb.families.imagenet_c.catalogue import BY_NAME

    assert set(ORIGINAL_TABLES) == set(BY_NAME)
    rows = [BY_NAME[name].table.at(s) for s in range(1, 6)]
    assert set(rows[0]) == set(ORIGINAL_TABLES[name]), name
    for key, expected in ORIGINAL_TABLES[name].items():
        assert tuple(r[key] for r in rows) == pytest.approx(expected, rel=1e-12, abs=0), (name, key)
