"""The demo: explain four real photos that ship with scikit-image, with the ImageNet teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import skimage.data

from jaxplain.explain_files import explain_files
from jaxplain.images import save_png
from jaxplain.zoo import load_model

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
DEMO_METHODS = ("relabel", "gfi", "gradcam", "rise")
# RISE with 1000 masks instead of 4000 keeps the demo to a few minutes on a CPU.
DEMO_SETTINGS = {"rise": {"num_masks": 1000}}


def write_photos(folder: Path) -> list[Path]:
    """Saves the scikit-image photos as PNG files (the demo then reads them like any user image)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.png"
        if not path.exists():
            save_png(path, getattr(skimage.data, name)())
        paths.append(path)
    return paths


def run_demo(out: str | Path, methods: Sequence[str] = DEMO_METHODS, *, seed: int = 0,
             hyperparameters: dict[str, dict] | None = None) -> list[dict]:
    out = Path(out)
    paths = write_photos(out / "inputs")
    model = load_model("efficientnet_lite0")
    settings = {m: DEMO_SETTINGS.get(m, {}) | (hyperparameters or {}).get(m, {}) for m in methods}
    return explain_files(model, list(methods), paths, out, seed=seed, hyperparameters=settings, batch_size=4,
                         title=f"jaxplain demo: {model.name} on scikit-image photos")
