"""Does DAX's trained mask take the evidence out of the complement?

DAX's objective asks the student to fit the teacher's probability ``p`` on the kept input ``x * m`` and to miss
it on the complement ``x * (1 - m)``. A mask that holds the evidence leaves nothing in the complement from which
``p`` can be read, so the student's output on the complement carries no information about ``p`` (it can only
miss by being far from ``p`` on average). A student that can still read ``p`` from the complement, and turn it
against ``p``, earns a larger complement error without the mask holding the evidence: then the objective does
not push the mask to find it. This script trains DAX's networks on each image exactly as the explainer does
(:func:`jaxplain.explainers.dax.train_networks`) and, over all of the image's perturbations, reports the
objective's two terms (weighted MSE to ``p``, the student in training mode with a fixed dropout key, as in
training) and the correlation of the student's outputs with ``p`` on the kept and on the complementary input:

    python experiments/dax_mask_use.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \\
        --limit 8 --setting masked_fill=zero --setting masked_fill=segment_mean --out results/cifar10_dax_mask_use
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxplain import zoo
from jaxplain.cli import parse_settings
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.explainers.base import ModelHandle
from jaxplain.explainers.dax import (DaxConfig, locality_weights, network_inputs, perturb, query_teacher,
                                    segments_of, straight_through, student_views, train_networks)


def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / jnp.sqrt(jnp.maximum((a * a).sum() * (b * b).sum(), 1e-30))


@functools.partial(jax.jit, static_argnums=0)
def score_image(config: DaxConfig, model: ModelHandle, params, image, label, key) -> dict:
    """The objective's terms after training, and how much of the teacher's ``p`` the student reads from the kept
    and from the complementary input (correlation over the image's samples)."""
    segments = segments_of(config, image[None])[0]
    query_key, train_key, eval_key = jax.random.split(key, 3)
    switches, targets = query_teacher(config, model, params, image, label, segments, query_key)
    (trained, batch_stats), _ = train_networks(config, image, segments, switches, targets, train_key)
    x_small, fill_small, segments_small, student_fill = network_inputs(config, image, segments)
    count = config.steps_per_epoch * config.batch_size
    batches = lambda a: a[:count].reshape(config.steps_per_epoch, config.batch_size, *a.shape[1:])

    def outputs(batch_switches):
        inputs = perturb(x_small, fill_small, segments_small, batch_switches)
        mask = config.mask_net.apply(trained["mask"], inputs)
        mask = straight_through(mask) if config.hard_mask else mask  # as the student saw it in training
        student = lambda view: config.student.apply({"params": trained["student"], "batch_stats": batch_stats}, view,
                                                    train=True, rngs={"dropout": eval_key}, mutable=["batch_stats"])[0]
        return tuple(student(view) for view in student_views(inputs, mask, student_fill))

    kept, removed = (a.reshape(-1) for a in jax.lax.map(outputs, batches(switches)))
    present = jnp.zeros(config.max_segments, bool).at[segments].set(True)
    p, weights = targets[:count], locality_weights(switches, present)[:count]
    return {"kept_error": jnp.mean(weights * (kept - p) ** 2), "complement_error": jnp.mean(weights * (removed - p) ** 2),
            "kept_correlation": pearson(kept, p), "complement_correlation": pearson(removed, p),
            "target_spread": jnp.std(p)}


def summary(values) -> str:
    """Mean ± standard error over images."""
    values = np.asarray(values)
    spread = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():+.3f} ± {spread:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cifar10_resnet_small")
    parser.add_argument("--data", default="tfds:cifar10_jpeg:test[5000:]")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--setting", action="append", default=[],
                        help="one DAX setting per run compared, NAME=VALUE[,NAME=VALUE]; default: the defaults")
    parser.add_argument("--out", type=Path, required=True, help="folder for scores.jsonl")
    args = parser.parse_args(argv)
    model = zoo.load_model(args.model)
    handle = ModelHandle.of(model)
    source, _ = open_source(args.data, num_classes=model.num_classes)
    runs = {text: DaxConfig(**parse_settings(text.split(","), ["dax"])["dax"]) for text in args.setting}
    runs = runs or {"defaults": DaxConfig()}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "scores.jsonl"
    done = {(r["setting"], r["index"]) for r in map(json.loads, path.read_text().splitlines())} if path.exists() else set()
    with path.open("a") as out:
        for index in tqdm(range(args.limit), desc="images"):
            batch = load_items(source, [index], model.preprocessing)
            image = jnp.asarray(batch.images[0])
            label = int(jnp.argmax(model.logits(model.params, image[None])[0]))
            for name, config in runs.items():
                if (name, index) in done:
                    continue
                scores = score_image(config, handle, model.params, image, label, jax.random.key(args.seed + index))
                scores = {key: float(value) for key, value in scores.items()}
                out.write(json.dumps({"setting": name, "index": index, "label": label} | scores) + "\n")
                out.flush()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    print("| setting | n | kept error | complement error | correlation with p, kept | correlation with p, complement |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in runs:
        rows = [r for r in records if r["setting"] == name]
        column = lambda key: summary([r[key] for r in rows])
        print(f"| {name} | {len(rows)} | {column('kept_error')} | {column('complement_error')} | "
              f"{column('kept_correlation')} | {column('complement_correlation')} |")


if __name__ == "__main__":
    main()
