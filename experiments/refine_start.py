"""Does the refined surrogate owe its faithfulness to the surrogate? The same refinement started from the surrogate's
map and from a constant map (0.5 everywhere), on the same images.

Refining (``surrogate`` with ``refine_steps`` > 0; :func:`jaxplain.explainers.surrogate.refine_maps`) is a short
per-image optimisation; started from nothing, it is a mask optimisation in the manner of extremal perturbation. The
gap between the two starts is what the amortized network adds. Writes deletion and insertion per image and start to
``OUT/records.jsonl`` (methods ``surrogate``, ``from_surrogate``, ``from_constant``) for ``experiments/paired.py``:

    python experiments/refine_start.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \\
        --limit 64 --out results/cifar10_surrogate_dev_refine_start
    python experiments/paired.py results/cifar10_surrogate_dev_refine_start --against from_constant
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxplain.data import open_source
from jaxplain.data.loader import load_arrays
from jaxplain.explainers.base import ModelHandle
from jaxplain.explainers.surrogate import refine_maps
from jaxplain.metrics.faithfulness import batch_deletion_insertion
from jaxplain.zoo import load_model, load_surrogate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cifar10_resnet_small")
    parser.add_argument("--data", required=True, help="labelled folder, .tsv or tfds:NAME[:SPLIT]")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--refine-steps", type=int, default=10)
    parser.add_argument("--checkpoint", help="surrogate artefact (default: the shipped one for the model)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    model = load_model(args.model)
    handle, surrogate = ModelHandle.of(model), load_surrogate(args.model, args.checkpoint)
    source, _ = open_source(args.data, num_classes=model.num_classes)
    rows = np.arange(min(args.limit, len(source)))

    @jax.jit
    def scores(images):
        logits = model.logits(model.params, images)
        labels = jnp.argmax(logits, -1)
        maps = surrogate(model.apply_fn, model.params, images)[1]
        starts = {"surrogate": None, "from_surrogate": maps, "from_constant": jnp.full_like(maps, 0.5)}
        out = {}
        for name, start in starts.items():
            final = maps if start is None else refine_maps(handle, model.params, images, start, labels,
                                                           steps=args.refine_steps)
            out[name] = batch_deletion_insertion(model.apply_fn, model.params, images, final, labels, model.zero_pixel)
        return out

    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for begin in range(0, len(rows), args.batch):
        batch = load_arrays(source, rows[begin:begin + args.batch], model.preprocessing, description="images")
        for name, result in scores(jnp.asarray(batch.images)).items():
            for i, index in enumerate(rows[begin:begin + args.batch]):
                records.append({"method": name, "index": int(index), "deletion": float(result["deletion"][i]),
                                "insertion": float(result["insertion"][i]), "refine_steps": args.refine_steps})
    (args.out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    print(f"wrote {len(records)} records to {args.out / 'records.jsonl'}")


if __name__ == "__main__":
    main()
