"""Odd-but-valid images are converted; unreadable ones raise ImageDecodeError with the reason."""

import numpy as np
import pytest
from PIL import Image

from vfmaudit.data import load_image
from vfmaudit.errors import ImageDecodeError


@pytest.fixture
def rgb(photos):
    return photos[0]


def test_rgb_jpeg_and_png_roundtrip(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    assert np.abs(load_image(tmp_path / "a.jpg").astype(int) - rgb).mean() < 3


def test_grayscale_becomes_three_equal_channels(tmp_path, rgb):
    gray = rgb[..., 1]
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == rgb.shape and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)


def test_rgba_and_palette(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == rgb.shape


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert np.array_equal(out[..., 0], (ramp >> 8).astype(np.uint8))


def test_16_bit_rgb_tiff(tmp_path, rgb):
    import cv2

    deep = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "d.tif"), deep[..., ::-1])
    assert np.array_equal(load_image(tmp_path / "d.tif"), rgb)


def test_cmyk_jpeg(tmp_path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 12


def test_truncated_file_is_an_error(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "t.jpg", quality=90)
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated|corrupt"):
        load_image(tmp_path / "t.jpg")


@pytest.mark.parametrize("content", [b"", b"hello, not an image\n", bytes(range(256)) * 10])
def test_non_images_are_errors(tmp_path, content):
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(ImageDecodeError):
        load_image(tmp_path / "x.jpg")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    Image.new("1", (12000, 12000)).save(tmp_path / "bomb.png")  # tiny file, 144 Mpx
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        load_image(tmp_path / "bomb.png")
    Image.new("L", (100, 100)).save(tmp_path / "ok.png")
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        load_image(tmp_path / "ok.png", max_pixels=5000)
