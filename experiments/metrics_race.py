"""Metric evaluations per second, jaxplain against Quantus 0.6, on the same CPU, images, maps and weights.

EfficientNet-Lite0 in JAX (jaxplain) and in PyTorch (Quantus, through the same weights), Grad-CAM maps of the
first ``--images`` imagenet-dev images, each metric at the same settings in both; the time of each metric over
the batch after one warm-up call (jaxplain compiles then), written as a row of ``--out``::

    JAXPLAIN_DATA=../shared/data python experiments/metrics_race.py --images 4 --out results/metrics_race.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.metrics.complexity import complexity, sparseness
from jaxplain.metrics.faithfulness import faithfulness_correlation, perturbation_curve, road_curve
from jaxplain.model import probabilities_of
from jaxplain.zoo import load_model


def timed(fn, repeats: int = 1) -> float:
    fn()  # warm-up (jaxplain compiles here)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
        jax.block_until_ready(out) if hasattr(out, "block_until_ready") or isinstance(out, (tuple, list)) else out
    return (time.perf_counter() - start) / repeats


def main() -> None:
    import quantus
    import torch

    from jaxplain.models.torch_reference import TorchLite0, nchw

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per metric after the warm-up")
    parser.add_argument("--metrics", default=None, help="comma-separated beginnings of metric names (default: all)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model("efficientnet_lite0")
    source, _ = open_source(str(Path(os.environ["JAXPLAIN_DATA"]) / "imagenet-dev"), num_classes=1000)
    images = load_items(source, range(args.images), model.preprocessing).images
    labels = runner.predict(model, images).argmax(-1)
    maps = runner.explain(model, "gradcam", images, labels)
    torch_model = TorchLite0().eval()
    x, a, y = nchw(images).numpy(), maps[:, None].astype(np.float32), labels
    prob = lambda im: probabilities_of(model.apply_fn, model.params, im)
    logits = lambda im: model.apply_fn(model.params, im)[0]
    zero = jnp.asarray(model.normalisation.zero_pixel)
    fill = lambda image: jnp.broadcast_to(zero, image.shape)
    keys = jax.random.split(jax.random.key(0), args.images)
    per_image = lambda fn: jax.jit(lambda ims, ms, ls, ks: jax.lax.map(lambda e: fn(*e), (ims, ms, ls, ks)))
    ims, ms, ls = jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels)
    percentages = list(range(1, 100, 10))
    races = {
        "sparseness": (lambda f=jax.jit(sparseness): f(ms),
                       lambda: quantus.Sparseness(disable_warnings=True)(model=None, x_batch=x, y_batch=y,
                                                                         a_batch=a.copy())),
        "complexity": (lambda f=jax.jit(complexity): f(ms),
                       lambda: quantus.Complexity(disable_warnings=True)(model=None, x_batch=x, y_batch=y,
                                                                         a_batch=a.copy())),
        "region_perturbation (8 px, 50 regions)": (
            lambda f=per_image(lambda im, m, l, k: perturbation_curve(prob, im, m, l, fill(im), patch=8, steps=50)):
            f(ims, ms, ls, keys),
            lambda: quantus.RegionPerturbation(disable_warnings=True, patch_size=8, regions_evaluation=50,
                                               perturb_baseline=0.0)(model=torch_model, x_batch=x, y_batch=y,
                                                                    a_batch=a.copy(), channel_first=True)),
        "faithfulness_correlation (100 runs of 224)": (
            lambda f=per_image(lambda im, m, l, k: faithfulness_correlation(logits, im, m, l, fill(im), k)):
            f(ims, ms, ls, keys),
            lambda: quantus.FaithfulnessCorrelation(disable_warnings=True, nr_runs=100, subset_size=224,
                                                    perturb_baseline=0.0, return_aggregate=False)(
                model=torch_model, x_batch=x, y_batch=y, a_batch=np.repeat(a, 3, 1), channel_first=True)),
        f"road (MoRF, {len(percentages)} percentages)": (
            lambda f=per_image(lambda im, m, l, k: road_curve(prob, im, m, l, k, percentages=tuple(percentages))):
            f(ims, ms, ls, keys),
            lambda: quantus.ROAD(disable_warnings=True, percentages=percentages, noise=0.01)(
                model=torch_model, x_batch=x, y_batch=y, a_batch=np.repeat(a, 3, 1), channel_first=True)),
    }
    wanted = args.metrics.split(",") if args.metrics else [""]
    rows = []
    for name, (ours, theirs) in races.items():
        if not any(name.startswith(w) for w in wanted):
            continue
        ours_s = timed(ours, args.repeats)
        try:
            theirs_s, note = timed(theirs, args.repeats), ""
        except Exception as e:  # noqa: BLE001 - Quantus 0.6's ROAD fails on RGB inputs: reported, not hidden
            theirs_s, note = float("nan"), f"Quantus fails: {type(e).__name__}: {str(e)[:80]}"
        row = {"date": datetime.date.today().isoformat(), "device": f"{platform.machine()} CPU",
               "threads": os.cpu_count(), "metric": name, "images": args.images,
               "jaxplain_images_per_s": round(args.images / ours_s, 3),
               "quantus_images_per_s": round(args.images / theirs_s, 3), "ratio": round(theirs_s / ours_s, 2),
               "note": note}
        rows.append(row)
        print(row, flush=True)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
