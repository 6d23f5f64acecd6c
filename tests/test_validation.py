"""Bad arrays give one clear error naming the problem and the fix."""

import numpy as np
import pytest

from jaxplain.errors import UsageError
from jaxplain.validation import check_images, check_labels

SHAPE = (8, 8, 3)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((8, 8, 3), np.float32), "add a batch axis"),
        (np.zeros((2, 8, 8), np.float32), r"\[B, H, W, C\]"),
        (np.zeros((2, 8, 8, 1), np.float32), "grayscale"),
        (np.zeros((2, 8, 8, 4), np.float32), "RGBA"),
        (np.zeros((2, 8, 8, 3), np.uint8), "divide uint8 images by 255"),
        (np.full((2, 8, 8, 3), 2.0, np.float32), r"\[0, 1\]"),
        (np.zeros((2, 9, 8, 3), np.float32), "model takes 8x8x3"),
    ],
)
def test_bad_images_are_rejected(images, message):
    with pytest.raises(UsageError, match=message):
        check_images(images, SHAPE)


def test_non_finite_values_name_the_image():
    images = np.zeros((3, 8, 8, 3), np.float32)
    images[1, 2, 3, 0] = np.nan
    with pytest.raises(UsageError, match=r"images\[1\] contains NaN"):
        check_images(images, SHAPE)


def test_labels_out_of_range_or_wrong_shape():
    assert check_labels(np.array([0, 4]), 5, 2).dtype == np.int32
    with pytest.raises(UsageError, match=r"labels\[1\] = 5 is out of range"):
        check_labels(np.array([0, 5]), 5, 2)
    with pytest.raises(UsageError, match="one class per image"):
        check_labels(np.array([0]), 5, 2)
    with pytest.raises(UsageError, match="integer"):
        check_labels(np.array([0.5, 1.0]), 5, 2)
