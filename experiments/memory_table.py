"""Peak memory per method against batch size and chunk: XLA's estimate next to a measured peak.

For each (method, batch, chunk) a fresh Python process loads the teacher, explains a batch of real
photos and reports a measured peak: on a GPU the device's ``peak_bytes_in_use``; on the CPU the
largest rise of the process's resident set during the first call (compiling included, as a user's
first batch) over its size just before, sampled every millisecond from ``/proc/self/statm`` (the resident set before, which holds Python, JAX, the
teacher and the compiled programs, is reported too). The estimate is :func:`jaxplain.runner.peak_memory`
(XLA's memory analysis: temporaries, arguments and outputs per device), which is what
``--memory-budget`` plans with (:mod:`jaxplain.memory`).

Sampling methods hold ``chunk`` teacher inputs at a time whatever their sample count, so the measured
runs draw one chunk of samples (or a few optimisation steps) to keep them short; the estimate is given
for those settings and for the defaults, to show they agree. Appends rows to results/memory.csv.

    python experiments/memory_table.py --batches 1,16 --methods relabel,rise,gradcam
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import append_rows, device_name, photos  # noqa: E402

MiB = 2 ** 20
COLUMNS = ("date", "device", "model", "method", "batch", "chunk", "estimate_default_mib", "estimate_run_mib",
           "measured_peak_mib", "measured_before_mib", "measured_by", "run_settings")
DEFAULT_METHODS = "relabel,rise,lime,occlusion,scorecam,gradcam,gfi,extremal,gradient,integrated_gradients,smoothgrad"


def short_settings(method: str, chunk: int | None) -> dict:
    """Settings that keep a method's peak memory and shorten its run: one chunk of samples, few steps."""
    one_chunk = {"relabel": "num_samples", "rise": "num_masks", "lime": "num_samples", "dax": "num_samples"}
    settings = {} if chunk is None else {"chunk": chunk}
    if method in one_chunk and chunk is not None:
        settings[one_chunk[method]] = chunk
    if method == "extremal":
        settings["iterations"] = 2
    if method == "gfi":
        settings |= {"steps": 4, "inversion_steps": 2}
    return settings


# glibc raises its mmap threshold after large frees and then serves large buffers from heap memory it keeps;
# a fixed threshold maps every large buffer afresh, so the resident set follows the call's own buffers
FIXED_MMAP_THRESHOLD = os.environ | {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_one(model_name: str, method: str, batch: int, settings: dict) -> dict:
    """Runs in a fresh process: the measured peak of one explain call."""
    import jax

    from jaxplain import runner
    from jaxplain.zoo import load_model

    model = load_model(model_name)
    images = photos(model, batch, None)
    labels = runner.predict(model, images).argmax(-1)
    call = lambda: jax.block_until_ready(runner.explain(model, method, images, labels, key=0, batch_size=batch,
                                                        **settings))
    device = jax.devices()[0]
    if device.platform != "cpu" and "peak_bytes_in_use" in (device.memory_stats() or {}):
        call()
        return {"peak": device.memory_stats()["peak_bytes_in_use"], "before": 0, "by": "device peak_bytes_in_use"}
    before = resident_bytes()
    peak, running = [before], threading.Event()
    running.set()

    def sample():
        while running.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    call()  # on the CPU the first call: compiling and running, as a user's first batch
    running.clear()
    sampler.join()
    return {"peak": peak[0] - before, "before": before, "by": "CPU resident-set rise during the first call (compiling included)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--chunks", default="default,25", help="chunks for methods that have one ('default' = theirs)")
    parser.add_argument("--out", type=Path, default=Path("results/memory.csv"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: JSON [method, batch, settings]
    args = parser.parse_args()
    if args.one:
        method, batch, settings = json.loads(args.one)
        print(json.dumps(measure_one(args.model, method, batch, settings)))
        return

    from jaxplain import runner
    from jaxplain.explainers import configure
    from jaxplain.memory import has_chunk
    from jaxplain.zoo import load_model

    model = load_model(args.model)
    device = device_name()
    rows = []
    print("| method | batch | chunk | estimate at defaults (MiB) | estimate of the run (MiB) | measured (MiB) | resident before (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method in args.methods.split(","):
        chunks = [None if c == "default" else int(c) for c in args.chunks.split(",")] if has_chunk(method) else [None]
        for chunk in chunks:
            for batch in map(int, args.batches.split(",")):
                defaults = {} if chunk is None else {"chunk": chunk}
                run = short_settings(method, chunk if chunk is not None else getattr(configure(method)[2], "chunk", None))
                estimate_default = runner.peak_memory(model, method, batch_size=batch, **defaults)
                estimate_run = runner.peak_memory(model, method, batch_size=batch, **run)
                done = subprocess.run([sys.executable, __file__, "--model", args.model,
                                       "--one", json.dumps([method, batch, run])],
                                      capture_output=True, text=True, check=True, env=FIXED_MMAP_THRESHOLD)
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                row = {"date": datetime.date.today().isoformat(), "device": device, "model": args.model,
                       "method": method, "batch": batch, "chunk": run.get("chunk", ""),
                       "estimate_default_mib": round(estimate_default / MiB), "estimate_run_mib": round(estimate_run / MiB),
                       "measured_peak_mib": round(measured["peak"] / MiB),
                       "measured_before_mib": round(measured["before"] / MiB), "measured_by": measured["by"],
                       "run_settings": json.dumps(run)}
                rows.append(row)
                print(f"| {method} | {batch} | {row['chunk'] or '-'} | {row['estimate_default_mib']} | "
                      f"{row['estimate_run_mib']} | {row['measured_peak_mib']} | {row['measured_before_mib']} |",
                      flush=True)
    append_rows(args.out, COLUMNS, rows)


if __name__ == "__main__":
    main()
