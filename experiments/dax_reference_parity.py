"""DAX parity: the authors' code (iiscleap/DAX, run from a checkout given by path) beside jaxplain's dax:reference on
the same images, teacher, superpixels, perturbations and teacher probabilities.

The authors' ``LimeImageExplainer.explain_instance`` runs as published, with the PyTorch EfficientNet-Lite0 on
jaxplain's weights as its ``batch_predict``; its segments, perturbation patterns and teacher probabilities are
captured on their way into its ``student_ntw_learn.train`` and handed to jaxplain's :func:`train_networks` with the
``dax:reference`` settings. Both trainings start from random networks, so each runs twice with other seeds: the
rank correlation of the authors' two maps is the floor any reimplementation can reach. Per image the script
reports the rank correlations (theirs-theirs, ours-ours, ours-theirs) and each map's deletion and insertion
(``rise_fast`` protocol, jaxplain's teacher)::

    git clone <mirror of iiscleap/DAX> /tmp/dax     # never copied into this repository
    JAXPLAIN_DATA=../shared/data python experiments/dax_reference_parity.py /tmp/dax --images 6 \\
        --out results/studies/dax_reference_parity.csv
    # on a 2-core CPU: one run of theirs per image, stopped after the epochs their map reads (about an hour)
    ... --images 1 --their-runs 1 --their-epochs 6

Their code writes pictures and losses into ``results/`` and ``perturbations/`` of its working folder, so it runs in
a temporary folder. Modules it imports but never uses on this path (``turtle``, ``pandas``) are stubbed where they are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import os
import sys
import tempfile
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import spearmanr

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.explainers import configure
from jaxplain.explainers.dax import dax_map
from jaxplain.metrics.faithfulness import PROTOCOLS, batch_deletion_insertion
from jaxplain.zoo import load_model


def authors_modules(checkout: Path, epochs: int | None = None):
    """The authors' ``lime_image`` and ``student_ntw_learn``, imported from ``checkout``; with ``epochs``, their
    training stops after that many epochs (their map averages the masks of epochs 0-5 only, so 6 gives the
    same map as their 9 in two thirds of the time)."""
    for name in ("turtle", "pandas"):
        try:
            importlib.import_module(name)
        except ImportError:  # never used on this path: a stub will do
            stub = types.ModuleType(name)
            stub.forward = None
            sys.modules[name] = stub
    sys.path.insert(0, str(checkout))
    from lime import lime_image, student_ntw_learn  # noqa: PLC0415

    if epochs is not None:  # their EPOCHS is a local of train(): re-read their module with another value
        source = Path(student_ntw_learn.__file__).read_text()
        assert source.count("EPOCHS = 9") == 1, "their training's epoch count moved"
        exec(compile(source.replace("EPOCHS = 9", f"EPOCHS = {epochs}"), student_ntw_learn.__file__, "exec"),
             student_ntw_learn.__dict__)
    return lime_image, student_ntw_learn


def torch_predictor():
    import torch

    from jaxplain.models.torch_reference import TorchLite0

    net = TorchLite0().eval()

    def batch_predict(images):  # the authors' xai_evaluate.batch_predict, with this teacher's normalisation
        with torch.no_grad():
            images = images / images.max()
            batch = (images.permute(0, 3, 1, 2) * 255.0 - 127.0) / 128.0
            return torch.softmax(net(batch.float()), dim=1).numpy()

    return batch_predict


def run_authors(lime_image, student, image: np.ndarray, label: int, predict, seeds) -> tuple[dict, list]:
    """Their explanation of ``image`` (HWC in [0, 1]) for ``label`` once per seed; the first run's inputs to their
    training are captured. Returns ``(captured, maps)``."""
    import torch

    captured, maps, original = {}, [], student.train

    def capture(ip_images, targets, label_idx, distances, device_id, random_seed):
        captured.setdefault("targets", np.asarray(targets)[:, label_idx])
        captured.setdefault("distances", np.asarray(distances))
        return original(ip_images, targets, label_idx, distances, "cpu", random_seed)

    data_labels = lime_image.LimeImageExplainer.data_labels

    def keep_patterns(self, image_, img_init, fudged, segments, *args, **kwargs):
        captured.setdefault("segments", np.asarray(segments))
        out = data_labels(self, image_, img_init, fudged, segments, *args, **kwargs)
        captured.setdefault("patterns", np.asarray(out[1]))
        return out

    student.train = capture
    lime_image.LimeImageExplainer.data_labels = keep_patterns
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    try:
        for seed in seeds:
            np.random.seed(seeds[0])  # the same perturbation patterns; the seed sets their networks' start
            torch.manual_seed(seed)
            explainer = lime_image.LimeImageExplainer()
            scaled = (tensor - tensor.min()) / (tensor.max() - tensor.min()) * 255
            maps.append(np.asarray(explainer.explain_instance(
                scaled[0].permute(1, 2, 0).numpy().astype(np.uint8), predict, top_labels=1, img_init=tensor,
                hide_color=None, batch_size=128, num_samples=3000, idx_expl=label, device_id="cpu",
                random_seed=seed), np.float32))
    finally:
        student.train, lime_image.LimeImageExplainer.data_labels = original, data_labels
    return captured, maps


def run_ours(image: np.ndarray, captured: dict, seeds) -> list[np.ndarray]:
    """jaxplain's dax:reference training on the authors' segments, patterns and teacher probabilities."""
    _, _, settings = configure("dax:reference")
    segments = captured["segments"].astype(np.int32)
    switches = np.zeros((len(captured["patterns"]), settings.max_segments), bool)
    switches[:, :captured["patterns"].shape[1]] = captured["patterns"].astype(bool)
    targets = jnp.asarray(captured["targets"], jnp.float32)
    train = jax.jit(lambda key: dax_map(settings, jnp.asarray(image), jnp.asarray(segments), jnp.asarray(switches),
                                        targets, key))
    return [np.asarray(train(jax.random.key(seed))) for seed in seeds]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    side = min(a.shape[0], b.shape[0])
    small = lambda m: np.asarray(jax.image.resize(jnp.asarray(m), (side, side), "bilinear"))
    return float(spearmanr(small(a).ravel(), small(b).ravel())[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of iiscleap/DAX (outside this repository)")
    parser.add_argument("--data", default=None, help="labelled folder (default $JAXPLAIN_DATA/imagenet-dev)")
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--skip", type=int, default=0, help="rows of the data to skip first")
    parser.add_argument("--out", type=Path, required=True, help="a .csv of per-image results (appended, resumable)")
    parser.add_argument("--their-runs", type=int, default=2, choices=(1, 2),
                        help="runs of their code per image (two give the floor any reimplementation can reach)")
    parser.add_argument("--their-epochs", type=int, default=None,
                        help="stop their training after this many epochs (6 gives their map: it averages epochs 0-5)")
    args = parser.parse_args()
    data = args.data or str(Path(os.environ["JAXPLAIN_DATA"]) / "imagenet-dev")
    model = load_model("efficientnet_lite0")
    source, _ = open_source(data, num_classes=1000)
    lime_image, student = authors_modules(args.checkout.resolve(), args.their_epochs)
    predict = torch_predictor()
    done = set()
    if args.out.exists():
        with open(args.out) as f:
            done = {row["id"] for row in csv.DictReader(f)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for index in range(args.skip, args.skip + args.images):
        batch = load_items(source, [index], model.preprocessing)
        if batch.ids[0] in done:
            continue
        image = batch.images[0]
        import torch

        label = int(predict(torch.from_numpy(image)[None]).argmax())  # their code stops unless it is their top-1
        assert label == int(runner.predict(model, batch.images).argmax())
        with tempfile.TemporaryDirectory() as work, contextlib.chdir(work):
            for folder in ("results/masks", "results/plots", "perturbations"):
                os.makedirs(folder)
            captured, theirs = run_authors(lime_image, student, image, label, predict, (42, 43)[:args.their_runs])
        ours = run_ours(image, captured, (0, 1))
        maps = np.stack([np.asarray(jax.image.resize(jnp.asarray(m), image.shape[:2], "bilinear"))
                         for m in (*theirs, *ours)])
        count = len(maps)
        scores = batch_deletion_insertion(model.apply_fn, model.params, jnp.asarray(np.repeat(image[None], count, 0)),
                                          jnp.asarray(maps), jnp.full((count,), label),
                                          jnp.asarray(model.normalisation.zero_pixel), PROTOCOLS["rise_fast"])
        row = {"id": batch.ids[0], "label": label, "segments": int(captured["segments"].max() + 1),
               "their_epochs": args.their_epochs or 9,
               "theirs_theirs": rank_correlation(*theirs) if len(theirs) > 1 else "",
               "ours_ours": rank_correlation(*ours),
               "ours_theirs": np.mean([rank_correlation(o, t) for o in ours for t in theirs])}
        for name, rows in (("theirs", slice(0, len(theirs))), ("ours", slice(len(theirs), count))):
            row[f"{name}_deletion"] = float(np.mean(scores["deletion"][rows]))
            row[f"{name}_insertion"] = float(np.mean(scores["insertion"][rows]))
        new = not args.out.exists()
        with open(args.out, "a", newline="") as f:
            writer = csv.DictWriter(f, list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(row, flush=True)


if __name__ == "__main__":
    main()
