"""Metric evaluations per second, jaxplain against Quantus 0.6, on the same device, images, maps and weights.

EfficientNet-Lite0 in JAX (jaxplain) and in PyTorch (Quantus, through the same weights), Grad-CAM maps of the
first ``--images`` imagenet-dev images, each metric at the same settings in both; the median time of each metric
over the batch after one warm-up call (jaxplain compiles then), appended as a row of ``--out``::

    JAXPLAIN_DATA=../shared/data python experiments/metrics_race.py --images 4 --out results/metrics_race.csv

The prepared GPU run (experiments/gpu_rows.py) calls `measure` on the GPU for its ``metrics.csv``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmark import append_rows, device_name, timed
from jaxplain import runner
from jaxplain.metrics.complexity import complexity, sparseness
from jaxplain.metrics.faithfulness import faithfulness_correlation, perturbation_curve, road_curve
from jaxplain.model import probabilities_of


def races(model, images: np.ndarray, labels: np.ndarray, torch_model, device: str, small: bool = False) -> dict:
    """``{metric name with its settings: (jaxplain call, Quantus call)}`` on Grad-CAM maps of ``images``; ``small``
    cuts the sample counts for a dry run."""
    import quantus

    from jaxplain.models.torch_reference import nchw

    maps = runner.explain(model, "gradcam", images, labels)
    x, a, y = nchw(images).numpy(), maps[:, None].astype(np.float32), np.asarray(labels)
    prob = lambda im: probabilities_of(model.apply_fn, model.params, im)
    logits = lambda im: model.apply_fn(model.params, im)[0]
    zero = jnp.asarray(model.normalisation.zero_pixel)
    fill = lambda image: jnp.broadcast_to(zero, image.shape)
    keys = jax.random.split(jax.random.key(0), len(images))
    per_image = lambda fn: jax.jit(lambda ims, ms, ls, ks: jax.lax.map(lambda e: fn(*e), (ims, ms, ls, ks)))
    ims, ms, ls = jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels)
    regions, runs = (5, 4) if small else (50, 100)
    percentages = [1, 50] if small else list(range(1, 100, 10))
    call = dict(model=torch_model, x_batch=x, y_batch=y, channel_first=True, device=device)
    return {
        "sparseness": (lambda f=jax.jit(sparseness): f(ms),
                       lambda: quantus.Sparseness(disable_warnings=True)(model=None, x_batch=x, y_batch=y,
                                                                         a_batch=a.copy())),
        "complexity": (lambda f=jax.jit(complexity): f(ms),
                       lambda: quantus.Complexity(disable_warnings=True)(model=None, x_batch=x, y_batch=y,
                                                                         a_batch=a.copy())),
        f"region_perturbation (8 px, {regions} regions)": (
            lambda f=per_image(lambda im, m, l, k: perturbation_curve(prob, im, m, l, fill(im), patch=8,
                                                                       steps=regions)): f(ims, ms, ls, keys),
            lambda: quantus.RegionPerturbation(disable_warnings=True, patch_size=8, regions_evaluation=regions,
                                               perturb_baseline=0.0)(a_batch=a.copy(), **call)),
        f"faithfulness_correlation ({runs} runs of 224)": (
            lambda f=per_image(lambda im, m, l, k: faithfulness_correlation(logits, im, m, l, fill(im), k,
                                                                            runs=runs)): f(ims, ms, ls, keys),
            lambda: quantus.FaithfulnessCorrelation(disable_warnings=True, nr_runs=runs, subset_size=224,
                                                    perturb_baseline=0.0, return_aggregate=False)(
                a_batch=np.repeat(a, 3, 1), **call)),
        f"road (MoRF, {len(percentages)} percentages)": (
            lambda f=per_image(lambda im, m, l, k: road_curve(prob, im, m, l, k, percentages=tuple(percentages))):
            f(ims, ms, ls, keys),
            lambda: quantus.ROAD(disable_warnings=True, percentages=percentages, noise=0.01)(
                a_batch=np.repeat(a, 3, 1), **call)),
    }


def measure(model, images: np.ndarray, torch_model, device: str = "cpu", repeats: int = 1,
            wanted: list[str] | None = None, small: bool = False) -> list[dict]:
    """One row per metric: jaxplain's and Quantus's images/s on the same batch, Quantus's failures noted."""
    warnings.filterwarnings("ignore")
    labels = runner.predict(model, images).argmax(-1)
    rows = []
    for name, (ours, theirs) in races(model, images, labels, torch_model, device, small).items():
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        ours_s = timed(ours, repeats)
        try:
            theirs_s, note = timed(theirs, repeats), ""
        except Exception as e:  # noqa: BLE001 - Quantus 0.6's ROAD fails on RGB inputs: reported, not hidden
            theirs_s, note = float("nan"), f"Quantus fails: {type(e).__name__}: {str(e)[:80]}"
        where = device_name() + (f" ({device})" if device != "cpu" else "")  # torch's device beside JAX's
        rows.append({"date": datetime.date.today().isoformat(), "device": where,
                     "threads": os.cpu_count(), "metric": name, "images": len(images),
                     "jaxplain_images_per_s": round(len(images) / ours_s, 3),
                     "quantus_images_per_s": round(len(images) / theirs_s, 3), "ratio": round(theirs_s / ours_s, 2),
                     "note": note})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    import torch

    from jaxplain.data import open_source
    from jaxplain.data.loader import load_items
    from jaxplain.models.torch_reference import TorchLite0
    from jaxplain.zoo import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per metric after the warm-up")
    parser.add_argument("--metrics", default=None, help="comma-separated beginnings of metric names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model("efficientnet_lite0")
    source, _ = open_source(str(Path(os.environ.get("JAXPLAIN_DATA", "../shared/data")) / "imagenet-dev"), num_classes=1000)
    images = load_items(source, range(args.images), model.preprocessing).images
    rows = measure(model, images, TorchLite0().eval(), repeats=args.repeats,
                   wanted=args.metrics.split(",") if args.metrics else None)
    append_rows(args.out, list(rows[0]), rows)


if __name__ == "__main__":
    main()
