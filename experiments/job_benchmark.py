"""Does the input pipeline keep the device busy? End-to-end maps/s of a dataset job against device-only maps/s.

For each method, in one run on the same images: *device-only* is ``runner.explain`` on images already
decoded in memory; *end-to-end* is ``jobs.run_job`` reading, decoding and resizing the files on host
threads (one batch ahead), explaining, and writing maps and records. Compilation is excluded from
both: a warm-up job on the first batch compiles the programs that the timed job then reuses (the
Python API compiles once per method, settings and shape; the first and second calls of
``jaxplain.explain`` are timed as well). Appends rows to ``results/job_benchmark.csv``:

    python experiments/job_benchmark.py --data runs/imagenet-dev-heldout.tsv --limit 64 --methods gradcam,rise
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import jax

import jaxplain
from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.jobs import JobConfig, run_job
from jaxplain.zoo import load_model

from benchmark import append_rows, device_name  # experiments/benchmark.py, beside this script

COLUMNS = ("date", "device", "devices", "model", "method", "settings", "batch", "images", "first_call_s",
           "second_call_s", "device_only_maps_per_s", "end_to_end_maps_per_s", "ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--methods", default="gradcam,rise")
    parser.add_argument("--settings", default="{}", help='JSON {method: {setting: value}}')
    parser.add_argument("--out", type=Path, default=Path("results/job_benchmark.csv"))
    args = parser.parse_args()

    model = load_model(args.model)
    settings = json.loads(args.settings)
    source, _ = open_source(args.data, num_classes=model.num_classes)
    count = min(args.limit, len(source))
    images = load_items(source, range(count), model.preprocessing).images
    rows = []
    for method in args.methods.split(","):
        options = settings.get(method, {})
        first = time.perf_counter()
        jaxplain.explain(model, method, images[: args.batch], key=0, batch_size=args.batch, **options)
        first = time.perf_counter() - first
        second = time.perf_counter()
        jaxplain.explain(model, method, images[: args.batch], key=0, batch_size=args.batch, **options)
        second = time.perf_counter() - second
        labels = runner.predict(model, images).argmax(-1)
        device = lambda: runner.explain(model, method, images, labels, key=0, batch_size=args.batch, fixed_shape=True,
                                        **options)
        device()  # compiles the last, shorter batch's padding path too
        start = time.perf_counter()
        device()
        device_only = count / (time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            config = JobConfig({method: options}, args.data, limit=count, batch_size=args.batch, examples=0)
            run_job(model, JobConfig({method: options}, args.data, limit=args.batch, batch_size=args.batch,
                                     examples=0), Path(tmp) / "warm-up")
            start = time.perf_counter()
            run_job(model, config, Path(tmp) / "job")
            end_to_end = count / (time.perf_counter() - start)
        rows.append({"date": datetime.date.today().isoformat(), "device": device_name(),
                     "devices": jax.device_count(), "model": args.model, "method": method,
                     "settings": json.dumps(options), "batch": args.batch, "images": count,
                     "first_call_s": round(first, 2), "second_call_s": round(second, 2),
                     "device_only_maps_per_s": round(device_only, 3), "end_to_end_maps_per_s": round(end_to_end, 3),
                     "ratio": round(end_to_end / device_only, 3)})
        print(f"| {method} | first call {first:.1f} s, second {second:.1f} s | device-only {device_only:.2f} maps/s | "
              f"end-to-end {end_to_end:.2f} maps/s | ratio {end_to_end / device_only:.2f} |", flush=True)
    append_rows(args.out, COLUMNS, rows)


if __name__ == "__main__":
    main()
