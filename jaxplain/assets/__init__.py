"""Small files shipped with jaxplain: four held-out spoken-digit clips (``clips/*.wav``), written by
``jaxplain data spoken-digits --clips jaxplain/assets/clips --count 4`` from the test split (voices never heard
in training), for the demo and the tests."""

import importlib.resources
from pathlib import Path


def clips() -> list[Path]:
    """The shipped clips, sorted by name."""
    folder = importlib.resources.files("jaxplain.assets").joinpath("clips")
    return sorted(Path(str(folder)).glob("*.wav"))


# photos that ship with scikit-image (skimage.data), used by the demo and as extra training images
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
