"""Is a DAX map the same whether its image is explained in a batch or alone?

Explains the demo's photos with EfficientNet-Lite0 at the demo's DAX settings once as one batch and once
each on its own, with the same PRNG key per image (``runner.explain`` keys image ``i`` by ``fold_in(key, i)``
either way), and prints, per photo, the largest difference between the two maps and their correlation over
pixels. Each call is bitwise repeatable; a difference here comes from the batch changing the order of
floating-point operations, amplified by DAX's per-image training. It also times the batch (a second call,
after compiling), since training several images per step is what a batch-dependent map buys:

    python experiments/dax_batch_stability.py --out runs/dax_batch_stability [--images-per-step 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jaxplain import runner, zoo
from jaxplain.demo import DEMO_SETTINGS, write_photos
from jaxplain.images import load_for_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images-per-step", type=int, default=None, help="DAX's setting (default: its default)")
    args = parser.parse_args(argv)
    model = zoo.load_model("efficientnet_lite0")
    paths = write_photos(args.out)
    images = np.stack([load_for_model(path, model.preprocessing) for path in paths])
    settings = DEMO_SETTINGS["dax"] | ({} if args.images_per_step is None else {"images_per_step": args.images_per_step})
    explain_batch = lambda: np.asarray(runner.explain(model, "dax", images, key=args.seed, batch_size=len(images),
                                                      **settings))
    batched = explain_batch()  # compiles
    start = time.perf_counter()
    np.testing.assert_array_equal(explain_batch(), batched)
    print(f"settings {settings}: a batch of {len(images)} in {time.perf_counter() - start:.1f} s after compiling")
    print("| photo | largest difference, batch vs alone | correlation over pixels |")
    print("| --- | ---: | ---: |")
    for index, path in enumerate(paths):
        alone = np.asarray(runner.explain(model, "dax", images[index:index + 1], indices=[index], key=args.seed,
                                          **settings))[0]
        correlation = np.corrcoef(batched[index].ravel(), alone.ravel())[0, 1]
        print(f"| {path.stem} | {np.abs(batched[index] - alone).max():.3g} | {correlation:.3f} |", flush=True)


if __name__ == "__main__":
    main()
