"""What DAX's training does, measured per image: the loss and its two terms per epoch, how far the mask network's
parameters move, how the recorded mask changes, and the deletion/insertion of the untrained network's map, of
each epoch's mask and of the map the settings average, for several variants trained on the same teacher queries.

::

    JAXPLAIN_DATA=../shared/data python experiments/dax_training_study.py --data runs/imagenet-dev-dev.tsv \\
        --images 8 --variants '{"reference": {"preset": "reference"}, "sample_norm": {"mask_normalisation": "sample"}}' \\
        --out runs/dax_study.jsonl

Each line of ``--out`` is one (image, variant): its trace and scores. Variants sharing ``num_samples``,
``segmentation`` and ``chunk`` share one set of teacher queries. ``python experiments/dax_training_study.py
--summarise runs/dax_study.jsonl`` prints paired differences of insertion - deletion between the variants.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.explainers import ModelHandle, configure
from jaxplain.explainers.dax import averaged_masks, query_teacher, segmentation_for, train_networks
from jaxplain.explainers.lime import host_superpixels
from jaxplain.metrics.faithfulness import PROTOCOLS, batch_deletion_insertion
from jaxplain.zoo import load_model


def settings_of(variant: dict):
    overrides = {k: v for k, v in variant.items() if k != "preset"}
    return configure("dax", variant.get("preset"), **overrides)[2]


def study_image(model, image, label, variants: dict, key) -> list[dict]:
    """Every variant on one image: teacher queries shared where the settings allow."""
    rows, queries = [], {}
    for name, variant in variants.items():
        s = settings_of(variant)
        method = segmentation_for(s.segmentation, *image.shape)
        group = (s.num_samples, method, s.max_segments, s.n_segments, s.chunk)
        if group not in queries:
            segments = jnp.asarray(host_superpixels(image[None], method, s.max_segments, s.n_segments)[0])
            handle = ModelHandle.of(model)
            switches, targets = jax.jit(lambda x, seg, k: query_teacher(s, handle, model.params, x, label, seg, k))(
                jnp.asarray(image), segments, jax.random.fold_in(key, 0))
            queries[group] = (segments, switches, targets)
        segments, switches, targets = queries[group]
        train = jax.jit(lambda x, seg, sw, t, k: train_networks(s, x, seg, sw, t, k, trace=True))
        _, masks, history = train(jnp.asarray(image), segments, switches, targets, jax.random.fold_in(key, 1))
        masks = np.asarray(masks)
        averaged = np.asarray(averaged_masks(jnp.asarray(masks), s.first_averaged))
        candidates = {"map": averaged, "untrained": masks[0], **{f"epoch{e}": masks[e] for e in range(1, len(masks))},
                      **{f"upto{e}": np.asarray(averaged_masks(jnp.asarray(masks[:e + 1]), 1)) for e in range(2, len(masks))}}
        maps = jnp.stack([jax.image.resize(jnp.asarray(m), image.shape[:2], "bilinear") for m in candidates.values()])
        scores = batch_deletion_insertion(model.apply_fn, model.params, jnp.broadcast_to(image, (len(maps), *image.shape)),
                                          maps, jnp.full((len(maps),), label), jnp.asarray(model.normalisation.zero_pixel),
                                          PROTOCOLS["rise_fast"])
        flat = masks.reshape(len(masks), -1)
        rows.append({
            "variant": name, "settings": variant,
            "scores": {c: {"deletion": float(scores["deletion"][i]), "insertion": float(scores["insertion"][i])}
                       for i, c in enumerate(candidates)},
            "history": {k: np.asarray(v).tolist() for k, v in history.items()},
            "mask_correlation_to_untrained": [float(np.corrcoef(flat[0], f)[0, 1]) for f in flat],
            "target_mean": float(np.mean(targets)), "target_std": float(np.std(targets)),
        })
    return rows


def summarise(paths: list[Path], baseline: str | None, every_candidate: bool = False) -> None:
    """Prints each variant's candidates: mean insertion - deletion (n) and the paired difference to ``baseline``,
    ``VARIANT[:CANDIDATE]`` (the candidate defaults to the untrained network's map), with the images ahead. The
    records of several runs (on the same images and seed) pair with each other."""
    rows = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    by = {}
    for row in rows:
        for candidate, score in row["scores"].items():
            by.setdefault((row["variant"], candidate), {})[row["id"]] = score["insertion"] - score["deletion"]
    names = sorted({v for v, _ in by})
    base_variant, _, base_candidate = (baseline or names[0]).partition(":")
    base_candidate = base_candidate or "untrained"
    base = by.get((base_variant, base_candidate), {})
    print(f"insertion - deletion: mean (n); paired difference to {base_variant}'s {base_candidate} ± standard error "
          "(images ahead)")
    for name in names:
        candidates = sorted({c for v, c in by if v == name}, key=lambda c: (c[:4], len(c), c))
        for candidate in candidates if every_candidate else ("map", "untrained"):
            values = by.get((name, candidate), {})
            common = sorted(set(values) & set(base))
            diff = np.array([values[i] - base[i] for i in common])
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            print(f"{name:28s} {candidate:9s} {np.mean(list(values.values())):.4f} ({len(values)})  "
                  f"{diff.mean():+.4f} ± {se:.4f} ({int((diff > 0).sum())} of {len(diff)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="runs/imagenet-dev-dev.tsv")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: name -> settings (and 'preset')")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summarise", type=Path, nargs="+", help="print paired differences from --out files")
    parser.add_argument("--baseline", help="VARIANT[:CANDIDATE] the differences are against (default: the first "
                                           "variant's untrained map)")
    parser.add_argument("--every-candidate", action="store_true",
                        help="with --summarise: each epoch's mask (epochN) and the average of epochs up to N (uptoN)")
    args = parser.parse_args()
    if args.summarise:
        summarise(args.summarise, args.baseline, args.every_candidate)
        return
    variants = json.loads(args.variants)
    model = load_model(args.model)
    source, _ = open_source(args.data, num_classes=model.num_classes)
    done = set()
    if args.out.exists():
        done = {(r["id"], r["variant"]) for r in map(json.loads, args.out.read_text().splitlines()) if r}
    for index in range(args.images):
        batch = load_items(source, [index], model.preprocessing)
        todo = {n: v for n, v in variants.items() if (batch.ids[0], n) not in done}
        if not todo:
            continue
        label = int(runner.predict(model, batch.images).argmax())
        key = jax.random.fold_in(jax.random.key(args.seed), index)
        for row in study_image(model, batch.images[0], label, todo, key):
            with open(args.out, "a") as f:
                f.write(json.dumps({"id": batch.ids[0], "index": index, "label": label} | row) + "\n")
            print(batch.ids[0], row["variant"], {c: round(s["insertion"] - s["deletion"], 4)
                                                 for c, s in row["scores"].items()}, flush=True)


if __name__ == "__main__":
    main()
