"""Image files in, model inputs out (Pillow for decoding and resampling).

Conversion rules, applied to every file whatever its format:

* EXIF orientation is applied, so photos appear upright as a viewer shows them.
* Grayscale (``L``, 16-bit ``I;16``, 32-bit ``I``, float ``F``) is replicated to three channels.
  16-bit values are scaled by 255/65535; float images are taken to lie in [0, 1] and clipped.
* Transparency (``RGBA``, ``LA``, palette with transparency) is composited over white, the usual
  background of cut-out objects, rather than dropped (which would expose arbitrary hidden colours).
* Every other mode (palette, CMYK, YCbCr, ...) is converted to RGB by Pillow.
"""

from __future__ import annotations

from pathlib import Path

import dataclasses

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxplain.errors import InputFileError

WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Converts a decoded Pillow image to uint8 RGB ``[H, W, 3]`` following the module's rules."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 1.0
        gray = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def load_image(path: str | Path) -> np.ndarray:
    """Reads any Pillow-readable file as uint8 RGB ``[H, W, 3]``; unreadable files raise :class:`InputFileError`."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not an image file; give image files (or a labelled folder as --data)")
    if not path.is_file():
        raise InputFileError(f"{path}: no such image file; check the path")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = to_rgb(image)
    except Image.DecompressionBombError as e:
        raise InputFileError(f"{path}: the image is too large to decode safely ({e}); downscale it first") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputFileError(f"{path}: cannot decode image ({e}); give a complete JPEG, PNG or other image file") from e
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputFileError(f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]} px; give an image of at least 2x2 px")
    return rgb


def resize_and_crop(rgb: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """Resizes the shorter side to ``preprocessing.resize`` (bicubic, antialiased), centre-crops a square.

    Returns uint8 ``[crop, crop, 3]``. An image that already has the model's input size (``crop`` x
    ``crop``) is used as it is: it was prepared for the model (e.g. a localisation grid), and cropping
    it again would cut its borders off.
    """
    if rgb.shape[:2] == (preprocessing.crop, preprocessing.crop):
        return np.asarray(rgb)
    image = Image.fromarray(rgb)
    width, height = image.size
    scale = preprocessing.resize / min(width, height)
    size = (max(preprocessing.crop, round(width * scale)), max(preprocessing.crop, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.BICUBIC)
    left = (size[0] - preprocessing.crop) // 2
    top = (size[1] - preprocessing.crop) // 2
    image = image.crop((left, top, left + preprocessing.crop, top + preprocessing.crop))
    return np.asarray(image)


def to_unit_float(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB to float32 in [0, 1], the input space of every model in jaxplain."""
    return rgb.astype(np.float32) / 255.0


def load_for_model(path: str | Path, preprocessing: Preprocessing) -> np.ndarray:
    """Reads one file and returns the model input (``[crop, crop, 3]`` in [0, 1] for an image model)."""
    return preprocessing.load(path)


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(path)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes a model input: resize the shorter side to ``resize``, centre-crop ``crop``.

    Every preprocessing (this one, :class:`jaxplain.audio.AudioFrontend`) has ``input_shape``, is
    called on a decoded record (here uint8 RGB) and ``load``s a file into a model input.
    """

    resize: int
    crop: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.crop, self.crop, 3)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB ``[H, W, 3]`` (or grayscale ``[H, W]``) -> float32 ``[crop, crop, 3]`` in [0, 1]."""
        rgb = np.asarray(rgb)
        if rgb.ndim == 2 or rgb.shape[-1] == 1:
            rgb = np.repeat(rgb.reshape(*rgb.shape[:2], 1), 3, axis=-1)
        return to_unit_float(resize_and_crop(rgb, self))

    def load(self, path) -> np.ndarray:
        return self(load_image(path))
