"""Speed race: jaxplain against the PyTorch libraries users run today, same model, photos and sample counts.

EfficientNet-Lite0 with the same weights in both frameworks (``jaxplain.models.torch_reference``), the
scikit-image demo photos, and for each pair the same amount of work per map:

| jaxplain | peer | work per map |
| --- | --- | --- |
| gradcam | pytorch-grad-cam ``GradCAM`` (head activation) | 1 forward + backward |
| scorecam (layer stage7) | pytorch-grad-cam ``ScoreCAM`` (block 15) | 320 masked forwards |
| gradient | captum ``Saliency`` | 1 forward + backward |
| integrated_gradients | captum ``IntegratedGradients`` | ``--ig-steps`` forwards + backwards |
| occlusion | captum ``Occlusion`` (56 px window, stride 28) | 50 forwards |
| lime | captum ``Lime`` (same SLIC superpixels) | ``--samples`` forwards + a linear fit |
| rise | batched PyTorch RISE written here (the reference is a per-image numpy loop) | ``--masks`` forwards |

Each side runs at the batch size given (``--batch``; the peers' internal batch is the same), after a
warm-up call (jaxplain's compilation excluded), median of ``--repeats`` timed calls. Both teachers'
forward throughput at ``--teacher-batch`` is measured in the same run. Writes ``results/race.csv``:

    python experiments/race.py --images 4 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import numpy as np
import torch

from jaxplain import runner
from jaxplain.explainers.lime import host_superpixels
from jaxplain.models.torch_reference import TorchLite0, nchw
from jaxplain.zoo import load_model

from benchmark import append_rows, device_name, photos, timed  # experiments/benchmark.py, beside this script

COLUMNS = ("date", "device", "threads", "dtype", "method", "peer", "images", "batch", "jaxplain_maps_per_s",
           "peer_maps_per_s", "ratio", "jaxplain_teacher_images_per_s", "torch_teacher_images_per_s", "work")


def torch_rise(model, x: torch.Tensor, labels, num_masks: int, batch: int, grid: int = 7, p: float = 0.5,
               seed: int = 0) -> np.ndarray:
    """RISE in batched PyTorch: random grid masks, bilinearly upsampled and randomly shifted, as the
    reference; ``batch`` masked images per forward; zero (the mean colour, normalised) where masked."""
    generator = torch.Generator().manual_seed(seed)
    device = x.device
    _, _, height, width = x.shape
    cell = int(np.ceil(height / grid))
    maps = []
    with torch.no_grad():
        for image, label in zip(x, labels):
            total = torch.zeros(height, width, device=device)
            for start in range(0, num_masks, batch):
                count = min(batch, num_masks - start)
                small = (torch.rand(count, 1, grid, grid, generator=generator) < p).float().to(device)
                up = torch.nn.functional.interpolate(small, size=((grid + 1) * cell, (grid + 1) * cell),
                                                     mode="bilinear", align_corners=False)
                dx, dy = torch.randint(0, cell, (2,), generator=generator).tolist()
                masks = up[:, :, dy:dy + height, dx:dx + width]
                probabilities = torch.softmax(model(image[None] * masks), -1)[:, label]
                total += torch.tensordot(probabilities, masks[:, 0], dims=1)
            maps.append((total / (num_masks * p)).cpu().numpy())
    return np.stack(maps)


def peers(model, x, labels, segments, args):
    """The peer of each jaxplain method: a function computing the maps of the whole image batch."""
    from captum.attr import IntegratedGradients, Lime, Occlusion, Saliency
    from pytorch_grad_cam import GradCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [ClassifierOutputTarget(int(c)) for c in labels]
    target = torch.as_tensor(labels, device=x.device)
    feature_mask = torch.from_numpy(segments.astype(np.int64))[:, None].expand(-1, 3, -1, -1).to(x.device)

    def gradcam():
        with GradCAM(model=model, target_layers=[model.head_act]) as cam:
            return cam(input_tensor=x, targets=targets)

    def scorecam():
        with ScoreCAM(model=model, target_layers=[model.net._blocks[15]]) as cam:
            cam.batch_size = args.batch
            return cam(input_tensor=x, targets=targets)

    def lime():
        explainer = Lime(model)
        return [explainer.attribute(x[i:i + 1], target=int(labels[i]), feature_mask=feature_mask[i:i + 1],
                                    n_samples=args.samples, perturbations_per_eval=args.batch) for i in range(len(x))]

    return {
        "gradcam": ("pytorch-grad-cam GradCAM", gradcam),
        "scorecam": ("pytorch-grad-cam ScoreCAM", scorecam),
        "gradient": ("captum Saliency", lambda: Saliency(model).attribute(x, target=target)),
        "integrated_gradients": ("captum IntegratedGradients", lambda: IntegratedGradients(model).attribute(
            x, baselines=0.0, target=target, n_steps=args.ig_steps + 1, method="riemann_trapezoid",
            internal_batch_size=args.batch)),
        "occlusion": ("captum Occlusion", lambda: Occlusion(model).attribute(
            x, sliding_window_shapes=(3, 56, 56), strides=(3, 28, 28), baselines=0.0, target=target,
            perturbations_per_eval=args.batch)),
        "lime": ("captum Lime", lime),
        "rise": ("batched PyTorch RISE (this script)", lambda: torch_rise(model, x, labels, args.masks, args.batch)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32, help="teacher inputs per forward, both sides")
    parser.add_argument("--teacher-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--masks", type=int, default=1000, help="RISE masks per map")
    parser.add_argument("--samples", type=int, default=500, help="LIME samples per map")
    parser.add_argument("--ig-steps", type=int, default=31)
    parser.add_argument("--methods", default="gradcam,gradient,integrated_gradients,occlusion,rise,lime,scorecam")
    parser.add_argument("--out", type=Path, default=Path("results/race.csv"))
    args = parser.parse_args()

    teacher = load_model("efficientnet_lite0")
    images = photos(teacher, args.images, None)
    labels = runner.predict(teacher, images).argmax(-1)
    torch_model = TorchLite0().eval()
    x = nchw(images)
    segments = host_superpixels(images)  # the same SLIC superpixels for both LIMEs

    batch = photos(teacher, args.teacher_batch, None)
    jax_teacher = args.teacher_batch / timed(lambda: runner.predict(teacher, batch, batch_size=args.teacher_batch),
                                             args.repeats)
    with torch.no_grad():
        xb = nchw(batch)
        torch_teacher = args.teacher_batch / timed(lambda: torch_model(xb), args.repeats)
    device = device_name()
    print(f"teacher forward, images/s: jaxplain {jax_teacher:.1f}, torch {torch_teacher:.1f} "
          f"({device}, torch threads {torch.get_num_threads()})")
    ours = {
        "gradcam": {}, "gradient": {}, "integrated_gradients": {"steps": args.ig_steps, "baseline": "mean"},
        "occlusion": {"window": 56, "stride": 28}, "rise": {"num_masks": args.masks, "chunk": args.batch},
        "lime": {"num_samples": args.samples, "chunk": args.batch}, "scorecam": {"layer": "stage7"},
    }
    rows = []
    table = peers(torch_model, x, labels, segments, args)
    for method in args.methods.split(","):
        settings = ours[method]
        if method in ("rise", "lime") and (settings.get("num_masks", settings.get("num_samples")) % args.batch):
            raise SystemExit(f"--masks and --samples must be multiples of --batch ({args.batch})")
        mine = timed(lambda: runner.explain(teacher, method, images, labels, batch_size=args.images,
                                                     **settings), args.repeats)
        peer_name, peer = table[method]
        theirs = timed(peer, 1 if method in ("lime", "scorecam", "rise") else args.repeats)
        row = {"date": datetime.date.today().isoformat(), "device": device, "threads": torch.get_num_threads(),
               "dtype": "float32", "method": method, "peer": peer_name, "images": args.images, "batch": args.batch,
               "jaxplain_maps_per_s": round(args.images / mine, 3), "peer_maps_per_s": round(args.images / theirs, 3),
               "ratio": round(theirs / mine, 2), "jaxplain_teacher_images_per_s": round(jax_teacher, 1),
               "torch_teacher_images_per_s": round(torch_teacher, 1), "work": str(settings)}
        rows.append(row)
        print(f"| {method} | {row['jaxplain_maps_per_s']} | {peer_name} | {row['peer_maps_per_s']} | "
              f"{row['ratio']}x |", flush=True)
    append_rows(args.out, COLUMNS, rows)


if __name__ == "__main__":
    main()
