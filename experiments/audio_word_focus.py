"""How much a map of a spoken word favours the word over the silence around it.

Reads the ``results.npz`` that ``jaxplain explain CLIPS.wav --model spoken_digits_cnn --method ...``
writes and prints, per method and clip, the mean min-max-normalised saliency over the frames where
the word is said (frame energy above half its range) divided by the mean over the other frames:

    jaxplain explain jaxplain/assets/clips/*.wav --model spoken_digits_cnn \\
        --method dax,occlusion,rise,gradcam --set rise.grid=8 --out runs/audio_clips
    python experiments/audio_word_focus.py runs/audio_clips
"""

import argparse
from pathlib import Path

import numpy as np

from jaxplain.zoo import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default="spoken_digits_cnn")
    args = parser.parse_args()
    model = load_model(args.model)
    results = np.load(args.run / "results.npz")
    methods = [k[len("maps_"):] for k in results.files if k.startswith("maps_")]
    clips = [Path(str(f)) for f in results["files"]]
    print("| method | " + " | ".join(c.stem for c in clips) + " | mean |")
    print("| --- |" + " ---: |" * (len(clips) + 1))
    for method in methods:
        ratios = []
        for i, clip in enumerate(clips):
            energy = model.preprocessing.load(clip)[..., 0].mean(axis=1)
            word = energy > energy.min() + 0.5 * (energy.max() - energy.min())
            saliency = results[f"maps_{method}"][i]
            saliency = (saliency - saliency.min()) / max(float(saliency.max() - saliency.min()), 1e-12)
            ratios.append(float(saliency[word].mean() / max(float(saliency[~word].mean()), 1e-12)))
        print(f"| {method} | " + " | ".join(f"{r:.2f}" for r in ratios) + f" | {np.mean(ratios):.2f} |")


if __name__ == "__main__":
    main()
