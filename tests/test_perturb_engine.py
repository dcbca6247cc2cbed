"""The engine's contract: catalogue, shapes, levels, errors, determinism."""

import numpy as np
import pytest

from vfmaudit import perturb
from vfmaudit.errors import LevelOutOfDomain, UnknownPerturbation, VfmauditError

# the built-in everyday edits, in catalogue order; the contract tests below run on every registered
# family (the registry is the source of truth), so a new family is covered the moment it registers
REQUIRED = ["jpeg", "brightness", "contrast", "saturation", "hue", "sharpness", "gaussian_blur",
            "gaussian_noise", "resize"]
IMAGENET_C = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
              "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
              "speckle_noise", "gaussian_blur", "spatter", "saturate"]
ALL = list(perturb.families())


def test_catalogue_has_the_required_families_with_metadata():
    fams = perturb.families()
    assert list(fams)[: len(REQUIRED)] == REQUIRED
    # then the 19 ImageNet-C corruptions (the 15, then the 4 extra), named apart from the everyday edits
    assert list(fams)[len(REQUIRED): len(REQUIRED) + 19] == ["imagenet_c_" + c for c in IMAGENET_C]
    assert perturb.get_preset("everyday").families == REQUIRED
    for name, f in fams.items():
        assert f.name == name and f.lo < f.hi and f.lo <= f.identity <= f.hi
        assert f.units and f.description
    assert fams["jpeg"].domain == (10.0, 100.0)
    assert fams["hue"].domain == (-0.5, 0.5) and fams["hue"].identity == 0.0


@pytest.mark.parametrize("name", ALL)
def test_apply_keeps_shape_and_dtype(photo_batch, name):
    level = perturb.levels(name, 5)[1]
    out = perturb.apply(photo_batch, name, level, seed=1)
    assert out.shape == photo_batch.shape and out.dtype == np.uint8
    single = perturb.apply(photo_batch[0], name, level, seed=1)
    assert single.shape == photo_batch[0].shape
    assert np.array_equal(single, out[0])  # alone == in a batch, same bytes


@pytest.mark.parametrize("name", ALL)
def test_edits_change_the_image_away_from_identity(photo_batch, name):
    fam = perturb.get(name)
    far = fam.lo if abs(fam.lo - fam.identity) > abs(fam.hi - fam.identity) else fam.hi
    out = perturb.apply(photo_batch, name, far, seed=0)
    assert np.abs(out.astype(int) - photo_batch).mean() > 1.0
    if fam.exact_identity:
        assert np.array_equal(perturb.apply(photo_batch, name, fam.identity), photo_batch)


@pytest.mark.parametrize("name", ["gaussian_noise", "imagenet_c_glass_blur"])
def test_stochastic_families_are_deterministic_by_seed(photo_batch, name):
    level = perturb.levels(name, 3)[1]
    a = perturb.apply(photo_batch, name, level, seed=7)
    b = perturb.apply(photo_batch, name, level, seed=7)
    c = perturb.apply(photo_batch, name, level, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # batch position and batch composition do not matter
    rev = perturb.apply(photo_batch[::-1].copy(), name, level, seed=7)
    assert np.array_equal(rev[::-1], a)
    assert np.array_equal(perturb.apply(photo_batch[2:3], name, level, seed=7)[0], a[2])


@pytest.mark.parametrize("name", ALL)
def test_thread_count_does_not_change_bytes(photo_batch, name):
    level = perturb.levels(name, 4)[1]
    before = perturb.get_num_threads()
    try:
        perturb.set_num_threads(1)
        one = perturb.apply(photo_batch, name, level, seed=5)
        perturb.set_num_threads(2)
        two = perturb.apply(photo_batch, name, level, seed=5)
        perturb.set_num_threads(3)  # runs of unequal length (the batch split in contiguous runs per thread)
        three = perturb.apply(photo_batch, name, level, seed=5)
    finally:
        perturb.set_num_threads(before)
    assert np.array_equal(one, two) and np.array_equal(one, three)


def test_levels_are_equally_spaced_over_domain_or_subdomain():
    lv = perturb.levels("jpeg", 10)
    assert lv[0] == 10 and lv[-1] == 100 and np.allclose(np.diff(lv), 10)
    sub = perturb.levels("brightness", 3, lo=0.5, hi=1.5)
    assert np.allclose(sub, [0.5, 1.0, 1.5])
    assert len(perturb.levels("hue", 1)) == 1
    with pytest.raises(LevelOutOfDomain):
        perturb.levels("brightness", 3, lo=0.0, hi=1.5)
    with pytest.raises(VfmauditError):
        perturb.levels("brightness", 0)
    with pytest.raises(VfmauditError):
        perturb.levels("brightness", 3, lo=1.5, hi=0.5)


def test_bad_input_errors_say_what_to_do(photo_batch):
    with pytest.raises(UnknownPerturbation, match="choose from"):
        perturb.apply(photo_batch, "fog", 1.0)
    with pytest.raises(LevelOutOfDomain, match=r"\[10, 100\]"):
        perturb.apply(photo_batch, "jpeg", 5)
    with pytest.raises(LevelOutOfDomain):
        perturb.apply(photo_batch, "brightness", float("nan"))
    with pytest.raises(VfmauditError, match="uint8"):
        perturb.apply(photo_batch.astype(np.float32), "jpeg", 50)
    with pytest.raises(VfmauditError, match="shape"):
        perturb.apply(photo_batch[..., :2], "jpeg", 50)


def test_empty_batch_and_tiny_images():
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    assert perturb.apply(empty, "jpeg", 50).shape == empty.shape
    tiny = np.random.default_rng(0).integers(0, 256, (2, 2, 3), dtype=np.uint8)
    for name in ALL:
        out = perturb.apply(tiny, name, perturb.levels(name, 3)[0])
        assert out.shape == tiny.shape
