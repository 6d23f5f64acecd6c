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
from jaxplain.data.loader import iterate_batches
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
        labels = jnp.argmax(model.logits(model.params, images), -1)
        maps = surrogate(model.apply_fn, model.params, images)[1]
        refine = lambda start: refine_maps(handle, model.params, images, start, labels, steps=args.refine_steps)
        finals = {"surrogate": maps, "from_surrogate": refine(maps), "from_constant": refine(jnp.full_like(maps, 0.5))}
        return {name: batch_deletion_insertion(model.apply_fn, model.params, images, final, labels, model.zero_pixel)
                for name, final in finals.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for batch in iterate_batches(source, args.batch, model.preprocessing, indices=rows):
        for name, result in scores(jnp.asarray(batch.images)).items():
            records += [{"method": name, "index": int(index), "deletion": float(result["deletion"][i]),
                         "insertion": float(result["insertion"][i]), "refine_steps": args.refine_steps}
                        for i, index in enumerate(batch.indices)]
    (args.out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    print(f"wrote {len(records)} records to {args.out / 'records.jsonl'}")


if __name__ == "__main__":
    main()
