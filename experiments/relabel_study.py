"""Re-label distillation design study: one neighbourhood per image, many students and maps.

Teacher forwards dominate the cost of a re-label map, so each image's neighbourhood (``--samples``
synthetic images at the probed noise scale, the defaults' way, and 1000 each at half and twice that
scale) is drawn once, and every variant below (student grid, sample count, L2, objective,
attribution, smoothing of the map, noise scale, the student's input) is fitted on it and
scored by deletion/insertion (fast protocol, the predicted class; on localisation grids from ``jaxplain data
grids``, the cell's class, and the grid pointing game too: does the map sit on the object). Records are appended to
``OUT/records.jsonl`` in the format of ``jaxplain evaluate`` (one line per image and variant, written
per image: a killed run resumes), so the paired script compares variants directly. Run it on the
development split only; settle a default there, then report on the held-out split with
``jaxplain evaluate``:

    python experiments/split_labels.py ../shared/data/imagenet-dev even runs/imagenet-dev-dev.tsv
    python experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit 32 --out results/relabel_dev_study
    python experiments/paired.py results/relabel_dev_study --against default

``--variants NAME,...`` runs only those variants beside "default", drawing only the noise scales they read
(the probed scale alone for most: about half the teacher forwards of the full study).
``--baseline NAME=VALUE`` (repeatable) changes the "default" variant's settings from the first studies'
baseline, so a later study starts from the defaults the earlier ones chose, written out so that it re-runs
the same whatever relabel's defaults become.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from jaxplain import zoo
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.evaluation.scoring import grid_scores
from jaxplain.runs.journal import append_records, read_records
from jaxplain.explainers.relabel import (RelabelSettings, attribute, default_vae_name, fit_student,
                                         image_sampler, neighbourhood_for, student_features, student_grid)
from jaxplain.errors import UsageError
from jaxplain.explainers.base import ModelHandle
from jaxplain.imageops import gaussian_kernel
from jaxplain.metrics.faithfulness import FAST, deletion_insertion

GRIDS = (8, 16, 32)
ONE_SCALE = 1000  # samples drawn at half and at twice the probed scale
MULTIPLIERS = (0.5, 1.0, 2.0)  # the multiples of the probed scale a study can draw at
# the "default" variant of --baseline study: relabel's map and student objective when the studies began, so
# that earlier records stay comparable whatever relabel's defaults are now
STUDY_BASELINE = {"attribution": "magnitude", "soft_weight": 0.5, "hard_weight": 0.5, "student_resolution": 16}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One student and map on the shared neighbourhood: config changes, samples used, map smoothing."""

    changes: dict = dataclasses.field(default_factory=dict)
    samples: int = 1000
    smoothing: float = 0.0  # Gaussian sigma of the map, in student-grid cells (0: none)
    scale: float | str = 1.0  # multiple of the probed noise scale (0.5, 1, 2), or "mixed": a third of each
    student_input: str = "change"  # "abs": the size of each pixel's change; "abs_centred": less its mean over the samples


VARIANTS = {
    "default": Variant(),
    "grid8": Variant({"student_resolution": 8}),
    "grid32": Variant({"student_resolution": 32}),
    "samples500": Variant(samples=500),
    "samples2000": Variant(samples=2000),
    "l2_1e-2": Variant({"l2": 1e-2}),
    "l2_0": Variant({"l2": 0.0}),
    "steps1000": Variant({"student_steps": 1000}),
    "hard_only": Variant({"soft_weight": 0.0, "hard_weight": 1.0}),
    "soft_only": Variant({"soft_weight": 1.0, "hard_weight": 0.0}),
    "input_map": Variant({"attribution": "input"}),
    "margin_map": Variant({"attribution": "margin"}),
    "change_map": Variant({"attribution": "change"}),
    "smooth1": Variant(smoothing=1.0),
    "smooth2": Variant(smoothing=2.0),
    "grid32_smooth2": Variant({"student_resolution": 32}, smoothing=2.0),
    "grid32_samples2000": Variant({"student_resolution": 32}, samples=2000),
    "samples4000": Variant(samples=4000),  # RISE's query count; needs --samples 4000
    "grid32_samples4000": Variant({"student_resolution": 32}, samples=4000),
    "scale_half": Variant(scale=0.5),
    "scale_double": Variant(scale=2.0),
    "scale_mixed": Variant(scale="mixed"),
    # a student on how much each pixel changed, not in which direction (the VAE's change at a pixel has no
    # consistent sign from sample to sample, its size does); "change" is then the evidence the average change removes
    "abs_magnitude": Variant(student_input="abs"),
    "abs_change_map": Variant({"attribution": "change"}, student_input="abs"),
    "abs_centred_magnitude": Variant(student_input="abs_centred"),
    "abs_centred_change_map": Variant({"attribution": "change"}, student_input="abs_centred"),
}


def draw(config, handle, params, vae, image, label, key, total, multipliers=MULTIPLIERS):
    """The shared neighbourhood: at the probed scale ``s`` (``total`` samples) and at ``s/2`` and ``2s``
    (``ONE_SCALE`` each; only the ``multipliers`` of ``s`` asked for), as features on every grid of
    :data:`GRIDS`, relabels and soft labels."""
    sample = image_sampler(config, handle, params, vae, image, label)
    probe_key, sample_key = jax.random.split(key)
    scale, share = neighbourhood_for(config, sample, probe_key)

    def at(multiplier, count, stream):
        def chunk(_, index):
            k = jax.random.fold_in(jax.random.fold_in(sample_key, stream), index)
            synthetic, same, soft = sample(scale * multiplier, share, k, config.chunk)
            return None, ({g: student_features(synthetic, image, (g, g)) for g in GRIDS}, same, soft)

        _, (features, same, soft) = jax.lax.scan(chunk, None, jnp.arange(count // config.chunk))
        return {g: f.reshape(count, -1) for g, f in features.items()}, same.reshape(-1), soft.reshape(-1)

    streams = {1.0: (total, 0), 0.5: (ONE_SCALE, 1), 2.0: (ONE_SCALE, 2)}  # the stream keeps each scale's draws
    return {m: at(m, *streams[m]) for m in multipliers}, scale


def scales_of(variants) -> tuple[float, ...]:
    """The multiples of the probed scale that ``variants`` read (``"mixed"`` reads all three)."""
    return tuple(sorted({m for v in variants for m in (MULTIPLIERS if v.scale == "mixed" else (v.scale,))}))


def pick(neighbourhood, variant: Variant):
    """The variant's samples: the first ``samples`` at its scale, or for ``"mixed"`` the three scales
    interleaved (so the student's training and held-out parts both span all three)."""
    if variant.scale != "mixed":
        features, same, soft = neighbourhood[variant.scale]
        return {g: f[: variant.samples] for g, f in features.items()}, same[: variant.samples], soft[: variant.samples]
    parts = [neighbourhood[m] for m in MULTIPLIERS]
    per = -(-variant.samples // 3)
    interleave = lambda arrays: jnp.stack([a[:per] for a in arrays], 1).reshape(-1, *arrays[0].shape[1:])[: variant.samples]
    features = {g: interleave([p[0][g] for p in parts]) for g in GRIDS}
    return features, interleave([p[1] for p in parts]), interleave([p[2] for p in parts])


def smooth(saliency, sigma: float):
    """Separable Gaussian blur of a map ``[h, w]`` with edge padding (zero padding would favour the centre)."""
    kernel = gaussian_kernel(2 * int(np.ceil(3 * sigma)) + 1, sigma)
    pad = kernel.shape[0] // 2
    padded = jnp.pad(saliency, pad, mode="edge")
    rows = jax.vmap(lambda r: jnp.convolve(r, kernel, mode="valid"))(padded)
    return jax.vmap(lambda c: jnp.convolve(c, kernel, mode="valid"), in_axes=1, out_axes=1)(rows)


def variant_map(variant: Variant, baseline: dict, neighbourhood, image, zero_pixel):
    """The map of one variant (``baseline`` settings overlaid by the variant's), fitted on its part of the
    shared neighbourhood (on the size of each change for the ``abs`` inputs, whose ``change`` map then reads the
    mean size); and the student's fidelity."""
    config = dataclasses.replace(RelabelSettings(num_samples=variant.samples, **baseline), **variant.changes)
    features, same, soft = pick(neighbourhood, variant)
    x = features[config.student_resolution]
    if variant.student_input != "change":
        x = jnp.abs(x)
    centred = x - x.mean(0) if variant.student_input == "abs_centred" else x
    weights, _, fidelity = fit_student(config, centred, same, soft)
    grid = student_grid(config, *image.shape[:2])
    low = attribute(config, weights, jax.image.resize(image, (*grid, 3), "linear", antialias=True), x, same,
                    zero_pixel)
    if variant.smoothing:
        low = smooth(low, variant.smoothing)
    return jax.image.resize(low, image.shape[:2], "linear"), fidelity


def baseline_changes(texts: list[str]) -> dict:
    """``["NAME=VALUE", ...]`` read and checked as ``jaxplain --set`` reads and checks relabel's settings."""
    try:
        changes = {}
        for text in texts:
            name, _, raw = text.partition("=")
            try:
                changes[name] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                changes[name] = raw
        RelabelSettings().replace(**changes)  # checked as `--set relabel.NAME=VALUE` is
    except UsageError as e:
        raise SystemExit(f"--baseline: {e}") from e
    if "vae" in changes:  # a setting of the explainer, not of the student and map the variants change
        raise SystemExit("--baseline: the study loads the teacher's default VAE; vae cannot be changed")
    return changes


def chosen_variants(names: str | None, samples: int) -> dict[str, Variant]:
    """``"default"`` and the comma-separated ``names`` of :data:`VARIANTS`; when ``names`` is None, every
    variant that fits in the ``samples`` drawn per image. A named variant that needs more is an error."""
    if names is None:
        return {n: v for n, v in VARIANTS.items() if v.samples <= samples}
    chosen = ["default", *(n.strip() for n in names.split(",") if n.strip() and n.strip() != "default")]
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    short = [n for n in chosen if VARIANTS[n].samples > samples]
    if short:
        raise SystemExit(f"--variants: {short[0]!r} fits its student on {VARIANTS[short[0]].samples} samples; "
                         f"draw that many with --samples")
    return {n: VARIANTS[n] for n in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2000, help="samples drawn per image (the largest variant's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--neighbourhood", default="residual",
                        help="the shared neighbourhood (results/relabel_dev_study was drawn with residual)")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the 'default' variant other than the first studies' (STUDY_BASELINE)")
    parser.add_argument("--variants", default=None, metavar="NAME,...",
                        help="only these variants besides 'default' (and only the noise scales they read): a cheaper study")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    variants = chosen_variants(args.variants, args.samples)

    model = zoo.load_model(args.model)
    handle = ModelHandle.of(model)
    vae = zoo.load_vae(default_vae_name(model.input_shape))
    config = RelabelSettings(neighbourhood=args.neighbourhood)
    baseline = STUDY_BASELINE | baseline_changes(args.baseline)
    source, _ = open_source(args.data, num_classes=model.num_classes)
    args.out.mkdir(parents=True, exist_ok=True)
    records_path = args.out / "records.jsonl"
    done = {r["index"] for r in read_records(records_path) if r["method"] == "default"}
    (args.out / "config.json").write_text(json.dumps(
        {"model": args.model, "data": args.data, "samples": args.samples, "seed": args.seed,
         "neighbourhood": args.neighbourhood, "baseline": baseline,
         "variants": {k: dataclasses.asdict(v) for k, v in variants.items()}}, indent=1) + "\n")

    neighbourhood = jax.jit(lambda params, image, label, key: draw(config, handle, params, vae, image, label, key,
                                                                   args.samples, scales_of(variants.values())))
    prob_fn = lambda params: (lambda x: handle.probabilities(params, x))
    score = jax.jit(lambda params, image, saliency, label: deletion_insertion(
        prob_fn(params), image, saliency, label, handle.zero_pixel, FAST))
    maps = {name: jax.jit(lambda n, image, v=v: variant_map(v, baseline, n, image, handle.zero_pixel))
            for name, v in variants.items()}
    key = jax.random.key(args.seed)
    for index in tqdm([i for i in range(min(args.limit, len(source))) if i not in done], desc="relabel study"):
        batch = load_items(source, [index], model.preprocessing)
        image = jnp.asarray(batch.images[0])
        probabilities = np.asarray(handle.probabilities(model.params, image[None]))[0]
        cell = int(batch.cells[0])
        label = int(batch.labels[0]) if cell >= 0 else int(probabilities.argmax())  # a grid: the cell's class
        start = time.perf_counter()
        shared, scale = jax.block_until_ready(neighbourhood(model.params, image, label, jax.random.fold_in(key, index)))
        same_fraction = float(shared[1.0][1].mean())
        seconds = time.perf_counter() - start
        records = []
        for name in variants:
            saliency, fidelity = maps[name](shared, image)
            scores = score(model.params, image, saliency, label)
            grid = {} if cell < 0 else {"cell": cell, "gridpg": float(
                grid_scores(np.asarray(saliency)[None], np.asarray([cell]), ("gridpg",))["gridpg"][0])}
            records.append({"method": name, "index": index, "id": batch.ids[0], "label": label,
                            "probability": float(probabilities[label]), "deletion": float(scores["deletion"]),
                            "insertion": float(scores["insertion"]), **grid,
                            "details": {"noise_scale": float(scale), "same_fraction": same_fraction,
                                        "fidelity": float(fidelity)},
                            "neighbourhood_seconds": seconds})
        append_records(records_path, records)


if __name__ == "__main__":
    main()
