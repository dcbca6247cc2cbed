"""Encoders: preprocessing equals the libraries' own transforms; weights from seed, file or tag."""

import numpy as np
import pytest
import torch
from PIL import Image

from vfmaudit.errors import ModelSpecError, VfmauditError, WeightsError
from vfmaudit.models import build_model, parse_spec
from vfmaudit.runtime import Encoder, create_encoder


def test_openclip_encoder_equals_open_clip_pipeline(small_encoder, photos):
    import open_clip

    assert isinstance(small_encoder, Encoder)
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-S-32")
    model = small_encoder.built.module.model
    for img in photos:
        with torch.no_grad():
            ref = torch.nn.functional.normalize(model.encode_image(preprocess(Image.fromarray(img))[None]), dim=-1)
        ours = small_encoder.encode(img)
        assert ours.dtype == np.float32 and ours.shape == (1, 384)
        assert np.abs(ours - ref.numpy()).max() < 1e-5
        assert np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-5)


def test_timm_encoder_equals_timm_pipeline(photos):
    import timm

    enc = create_encoder("torch", model="timm:resnet18", seed=0)
    model = enc.built.module.model
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    for img in photos:
        with torch.no_grad():
            ref = torch.nn.functional.normalize(model(transform(Image.fromarray(img))[None]), dim=-1)
        assert np.abs(enc.encode(img) - ref.numpy()).max() < 1e-5


def test_timm_vit_and_dinov2_architecture_build():
    enc = create_encoder("torch", model="timm:vit_tiny_patch16_224", seed=0)
    out = enc.encode(np.zeros((2, 50, 70, 3), np.uint8))
    assert out.shape == (2, 192)
    assert parse_spec("timm:vit_small_patch14_dinov2").name == "vit_small_patch14_dinov2"


def test_random_weights_are_a_pure_function_of_spec_and_seed(small_encoder, photos):
    torch.manual_seed(12345)  # the caller's RNG state must not matter
    again = create_encoder("torch", model="openclip:ViT-S-32", seed=0)
    assert np.array_equal(again.encode(photos[0]), small_encoder.encode(photos[0]))
    other = create_encoder("torch", model="openclip:ViT-S-32", seed=1)
    assert not np.allclose(other.encode(photos[0]), small_encoder.encode(photos[0]))
    assert small_encoder.describe()["weights"]["kind"] == "random"


def test_batch_and_size_independence(small_encoder, photos):
    one = np.vstack([small_encoder.encode(p) for p in photos])
    many = small_encoder.encode(list(photos))
    assert np.abs(one - many).max() < 1e-5


def test_weights_file_roundtrip(tmp_path, photos, small_encoder):
    donor = build_model("openclip:ViT-S-32", seed=3)
    torch.save(donor.module.model.state_dict(), tmp_path / "full.pt")
    torch.save(donor.module.model.visual.state_dict(), tmp_path / "visual.pt")
    expected = create_encoder("torch", model="openclip:ViT-S-32", seed=3).encode(photos[0])
    for name in ("full.pt", "visual.pt"):
        enc = create_encoder("torch", model="openclip:ViT-S-32", pretrained=str(tmp_path / name))
        assert np.abs(enc.encode(photos[0]) - expected).max() < 1e-6
        w = enc.describe()["weights"]
        assert w["kind"] == "file" and len(w["sha256"]) == 64


def test_timm_weights_file_with_classifier_head(tmp_path, photos):
    import timm

    torch.manual_seed(0)
    full = timm.create_model("resnet18", pretrained=False)  # with its 1000-class head
    torch.save(full.state_dict(), tmp_path / "r18.pth")
    enc = create_encoder("torch", model="timm:resnet18", pretrained=str(tmp_path / "r18.pth"))
    full.reset_classifier(0)
    full.eval()
    x = torch.from_numpy(enc.preprocess.normalize(enc.preprocess.prepare(photos[0])[None]))
    with torch.no_grad():
        ref = torch.nn.functional.normalize(full(x), dim=-1).numpy()
    assert np.abs(enc.encode(photos[0]) - ref).max() < 1e-5


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_model("openclip:ViT-S-32", pretrained=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="could not read"):
        build_model("openclip:ViT-S-32", pretrained=str(tmp_path / "junk.pt"))
    torch.save(build_model("timm:resnet18").module.model.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(WeightsError, match="does not fit"):
        build_model("openclip:ViT-S-32", pretrained=str(tmp_path / "r18.pt"))
    with pytest.raises(WeightsError, match="unknown pretrained tag"):
        build_model("openclip:RN50", pretrained="no-such-tag")


def test_pretrained_tag_offline_names_what_to_pass():
    with pytest.raises(WeightsError, match="--pretrained PATH"):
        build_model("openclip:RN50", pretrained="openai")


def test_spec_errors():
    for bad in ["ViT-B-32", "openclip:ViT-B-33", "timm:not_a_model_xyz", "onnx:foo", "openclip:"]:
        with pytest.raises(ModelSpecError):
            parse_spec(bad)
    with pytest.raises(VfmauditError, match="backend"):
        create_encoder("nope")
    with pytest.raises(VfmauditError, match="CUDA|cuda"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        create_encoder("torch", model="openclip:ViT-S-32", device="cuda")
