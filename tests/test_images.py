"""Image files to model inputs: conversion rules for every mode, clear errors for unreadable files."""

import numpy as np
import pytest
from PIL import Image

from jaxplain.errors import InputFileError
from jaxplain.images import load_for_model, load_image, resize_and_crop
from jaxplain.model import Preprocessing


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert rgb.shape == (4, 4, 3)
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[3, 0], [255, 255, 255])


def test_grayscale_is_replicated_and_16_bit_is_scaled(tmp_path):
    Image.fromarray(np.full((3, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g.png"), np.full((3, 5, 3), 77))
    Image.fromarray(np.full((3, 5), 65535, np.uint16)).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g16.png"), np.full((3, 5, 3), 255))
    Image.fromarray(np.full((3, 5), 257 * 10, np.uint16)).save(tmp_path / "g16b.png")
    assert load_image(tmp_path / "g16b.png")[0, 0, 0] == 10


def test_palette_and_cmyk_become_rgb(tmp_path):
    Image.new("P", (6, 6), 3).save(tmp_path / "p.gif")
    Image.new("CMYK", (6, 6), (0, 255, 0, 0)).save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "p.gif").shape == (6, 6, 3)
    assert load_image(tmp_path / "c.jpg").dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees for display
    image.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (20, 10, 3)


def test_corrupt_and_missing_files_raise_clear_errors(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(InputFileError, match="bad.jpg: cannot decode image"):
        load_image(tmp_path / "bad.jpg")
    with pytest.raises(InputFileError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(InputFileError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_resize_shorter_side_then_centre_crop(tmp_path):
    rgb = np.zeros((300, 450, 3), np.uint8)
    rgb[:, 225:] = 255  # right half white
    out = resize_and_crop(rgb, Preprocessing(resize=256, crop=224))
    assert out.shape == (224, 224, 3)
    assert out[:, :100].max() == 0 and out[:, -100:].min() == 255
    Image.fromarray(rgb).save(tmp_path / "x.png")
    x = load_for_model(tmp_path / "x.png", Preprocessing(256, 224))
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
