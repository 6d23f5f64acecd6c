"""Speed of every method next to the teacher's own forward throughput, measured in the same run.

One definition of maps/s is used by every table of the project (this script, `experiments/race.py`,
`experiments/job_benchmark.py` and the evaluation summaries): maps divided by the wall-clock seconds of
``runner.explain`` on a batch of decoded images in host memory, with host-side preparation (superpixels)
and transfers included and compilation excluded (one warm-up call first; median of ``--repeats``). The
teacher's images/s is measured the same way (``runner.predict``), on the same device mesh (every local
device, the batch sharded along it) and in the same ``--dtype``; the dtype recorded is read from the
compiled program's convolutions next to the one asked for (XLA on the CPU computes bfloat16 convolutions in
float32, rounding their inputs to bfloat16; GPUs and TPUs run them in bfloat16).

The *roofline* of a method that needs F teacher forward passes per map is ``teacher images/s / F``
(F = number of samples for relabel, masks for RISE, ...); ``fraction`` is maps/s divided by that
roofline. Prints a Markdown table and appends rows to a CSV file.

    python experiments/benchmark.py --model efficientnet_lite0 --methods relabel,gradcam --batch 16

A method may be run twice under two labels, ``LABEL=METHOD``, each with its own ``--settings``:

    python experiments/benchmark.py --methods surrogate,refined=surrogate --settings '{"refined": {"refine_steps": 10}}'
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import re
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxplain import explainers, runner
from jaxplain.model import computing_in, probabilities_of
from jaxplain.parallel import data_mesh
from jaxplain.zoo import load_model

DEFAULT_METHODS = "relabel,gradcam,scorecam,rise,lime,occlusion,extremal,gradient,integrated_gradients,smoothgrad"
COLUMNS = ("date", "device", "devices", "dtype", "convolutions_dtype", "model", "method", "batch", "maps_per_s", "teacher_images_per_s",
           "teacher_batch", "forwards_per_map", "roofline_maps_per_s", "fraction_of_roofline", "settings")


def forwards_per_map(method: str, settings: dict, model) -> float | None:
    """Teacher forward passes one map needs at least (a backward pass counts as two forwards)."""
    from jaxplain.explainers import Context

    name = method.partition(":")[0]
    context = Context(model.name, model.input_shape, model.num_classes)
    s = explainers.configure(method, **settings)[2].resolve(context).to_json()
    height = model.input_shape[0]
    counts = {
        "relabel": lambda: s["num_samples"],
        "dax": lambda: s["num_samples"],
        "rise": lambda: s["num_masks"],
        "lime": lambda: s["num_samples"],
        "occlusion": lambda: ((height - s["window"]) // s["stride"] + 1) ** 2 + 1,
        "extremal": lambda: 3 * s["iterations"] * len(s["areas"]),
        "gradient": lambda: 3,
        "gradcam": lambda: 3,
        "integrated_gradients": lambda: 3 * (s["steps"] + 1),
        "smoothgrad": lambda: 3 * s["samples"],
        # the teacher's features; refining adds its logits and, per step, a forward and a backward pass on the
        # kept and on the removed image
        "surrogate": lambda: 1 + (1 + 6 * s["refine_steps"] if s["refine_steps"] else 0),
    }
    return counts[name]() if name in counts else None


def photos(model, batch: int, data: str | None) -> np.ndarray:
    """``batch`` real images: from a labelled folder if given, else the scikit-image photos, repeated."""
    from jaxplain.data import open_source
    from jaxplain.data.loader import load_items

    if data:
        source, _ = open_source(data, num_classes=model.num_classes)
        return load_items(source, np.arange(batch) % len(source), model.preprocessing).images
    import skimage.data

    from jaxplain.assets import PHOTOS
    from jaxplain.images import resize_and_crop, to_unit_float

    base = [to_unit_float(resize_and_crop(getattr(skimage.data, n)(), model.preprocessing)) for n in PHOTOS]
    return np.stack([base[i % len(base)] for i in range(batch)])


def compiled_dtype(model, images) -> str:
    """The element type of the convolutions in the compiled forward program: the dtype that really runs."""
    text = jax.jit(lambda p, x: probabilities_of(model.apply_fn, p, x)).lower(model.params, images).compile().as_text()
    kinds = {m for line in text.splitlines() if "convolution" in line or "cudnn$conv" in line for m in re.findall(r"=\s*\(?(bf16|f16|f32)\[", line)}
    names = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}
    return "+".join(sorted(names[k] for k in kinds)) or "unknown"


def device_name() -> str:
    """The device a result row was measured on: the machine's architecture on a CPU, else the device kind."""
    device = jax.devices()[0]
    return f"{platform.machine()} CPU" if device.platform == "cpu" else device.device_kind


def append_rows(path: Path, columns, rows: list[dict]) -> None:
    """Appends result rows to a CSV file (with its header when the file is new) and says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"appended {len(rows)} rows to {path}")


def timed(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--batch", type=int, default=16, help="images per explain call")
    parser.add_argument("--teacher-batch", type=int, default=256, help="images per teacher forward call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", help="labelled folder or tfds:NAME[:SPLIT] to take images from")
    parser.add_argument("--dtype", default="float32", help="the teacher's compute dtype: float32 or bfloat16")
    parser.add_argument("--settings", default="{}", help='JSON {method: {hyper-parameter: value}}')
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks.csv"))
    args = parser.parse_args()

    model = computing_in(load_model(args.model), args.dtype)
    mesh = data_mesh()
    settings = json.loads(args.settings)
    teacher_images = photos(model, args.teacher_batch, args.data)
    teacher_ips = args.teacher_batch / timed(
        lambda: runner.predict(model, teacher_images, batch_size=args.teacher_batch, mesh=mesh), args.repeats)
    convolutions = compiled_dtype(model, teacher_images[:1])  # XLA:CPU computes bf16 convolutions in f32
    images = photos(model, args.batch, args.data)
    labels = runner.predict(model, images, mesh=mesh).argmax(-1)
    device = device_name()
    rows = []
    print(f"{args.model} on {mesh.size} x {device} ({args.dtype}, convolutions in {convolutions}): teacher {teacher_ips:.1f} images/s at batch "
          f"{args.teacher_batch}")
    for label, _, method in (item.partition("=") for item in args.methods.split(",")):
        method = method or label
        options = settings.get(label, {})
        seconds = timed(lambda: runner.explain(model, method, images, labels, key=0, batch_size=args.batch,
                                               mesh=mesh, **options), args.repeats)
        maps_per_s = args.batch / seconds
        forwards = forwards_per_map(method, options, model)
        roofline = teacher_ips / forwards if forwards else None
        rows.append({
            "date": datetime.date.today().isoformat(), "device": device, "devices": mesh.size,
            "dtype": args.dtype, "convolutions_dtype": convolutions, "model": args.model, "method": method, "batch": args.batch,
            "maps_per_s": round(maps_per_s, 3), "teacher_images_per_s": round(teacher_ips, 1),
            "teacher_batch": args.teacher_batch, "forwards_per_map": forwards,
            "roofline_maps_per_s": round(roofline, 3) if roofline else "",
            "fraction_of_roofline": round(maps_per_s / roofline, 3) if roofline else "",
            "settings": json.dumps(options),
        })
        print(f"| {label} | {maps_per_s:.3g} maps/s | roofline {roofline or float('nan'):.3g} | "
              f"fraction {maps_per_s / roofline if roofline else float('nan'):.2f} |", flush=True)
    append_rows(args.out, COLUMNS, rows)


if __name__ == "__main__":
    main()
