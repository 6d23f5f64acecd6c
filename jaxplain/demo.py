"""The demo: explain four real photos that ship with scikit-image with the ImageNet teacher, and one
held-out spoken digit with the audio teacher (page ``speech/index.html``, linked from the main page)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import skimage.data

from jaxplain.assets import PHOTOS
from jaxplain.explain_files import explain_files
from jaxplain.images import save_png
from jaxplain.zoo import load_model

DEMO_METHODS = ("relabel", "gfi", "dax", "surrogate", "gradcam", "rise")
# Fewer samples than the defaults keep the demo's time down on a 2-core CPU: RISE with 1000 masks instead
# of 4000, DAX with 500 perturbations at 64 px instead of 3000 at 128 px. Re-label distillation, the method
# the demo is about, runs at its defaults (4000 latents, about 100 CPU-seconds per photo).
DEMO_SETTINGS = {"rise": {"num_masks": 1000}, "dax": {"num_samples": 500, "resolution": 64}}
AUDIO_MODEL = "spoken_digits_cnn"
AUDIO_METHODS = ("dax", "occlusion", "gradcam")
AUDIO_SETTINGS = {"dax": {"num_samples": 500}}


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
    from jaxplain.assets import clips

    out = Path(out)
    paths = write_photos(out / "inputs")
    model = load_model("efficientnet_lite0")
    settings = {m: DEMO_SETTINGS.get(m, {}) | (hyperparameters or {}).get(m, {}) for m in methods}
    speech = load_model(AUDIO_MODEL)
    explain_files(speech, list(AUDIO_METHODS), clips()[:1], out / "speech", seed=seed, hyperparameters=AUDIO_SETTINGS,
                  title=f"jaxplain demo: {speech.name} on a held-out spoken digit")
    link = '<p>Audio: <a href="speech/index.html">a spoken digit explained</a> (spectrogram maps and masked clips).</p>'
    return explain_files(model, list(methods), paths, out, seed=seed, hyperparameters=settings, batch_size=4,
                         title=f"jaxplain demo: {model.name} on scikit-image photos", extra_html=link)
