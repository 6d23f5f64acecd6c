"""Composes the README picture from a demo output folder: one row per photo, one column per method.

    python experiments/demo_figure.py demo_out docs/demo.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxplain.images import load_for_model  # noqa: E402
from jaxplain.viz import normalise  # noqa: E402
from jaxplain.zoo import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("demo", type=Path, help="folder written by `jaxplain demo`")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    results = json.loads((args.demo / "results.json").read_text())
    arrays = np.load(args.demo / "results.npz")
    model = load_model(results["model"])
    methods = results["methods"]
    rows = results["images"]
    fig, axes = plt.subplots(len(rows), len(methods) + 1, figsize=(2.3 * (len(methods) + 1), 2.3 * len(rows)),
                             constrained_layout=True)
    for i, record in enumerate(rows):
        image = load_for_model(record["file"], model.preprocessing)
        axes[i, 0].imshow(image)
        axes[i, 0].set_title(f"{record['class_name']} ({record['probability']:.0%})", fontsize=8)
        for j, method in enumerate(methods, start=1):
            axes[i, j].imshow(image)
            axes[i, j].imshow(normalise(arrays[f"maps_{method}"][i]), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(method, fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
