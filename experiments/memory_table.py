"""Peak memory per method against batch size and chunk: XLA's estimate next to a measured peak.

For each (method, batch, chunk) a fresh Python process loads the teacher, explains a batch of real
photos once and reports its measured peak: on a GPU the device's ``peak_bytes_in_use``, on the CPU the
process's peak resident set (``ru_maxrss``; it includes Python, JAX, the teacher and the compiler, so
the resident set before explaining is reported too). The estimate is :func:`jaxplain.runner.peak_memory`
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
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import append_rows, photos  # noqa: E402

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


def measure_one(model_name: str, method: str, batch: int, settings: dict) -> dict:
    """Runs in a fresh process: the measured peak of one explain call."""
    import jax

    from jaxplain import runner
    from jaxplain.zoo import load_model

    model = load_model(model_name)
    images = photos(model, batch, None)
    labels = runner.predict(model, images).argmax(-1)
    device = jax.devices()[0]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    jax.block_until_ready(runner.explain(model, method, images, labels, key=0, batch_size=batch, **settings))
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        return {"peak": stats["peak_bytes_in_use"], "before": 0, "by": "device peak_bytes_in_use"}
    return {"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "before": before,
            "by": "process peak RSS"}


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

    import jax

    from jaxplain import runner
    from jaxplain.memory import has_chunk
    from jaxplain.zoo import load_model

    model = load_model(args.model)
    device = jax.devices()[0].device_kind
    rows = []
    print("| method | batch | chunk | estimate at defaults (MiB) | estimate of the run (MiB) | measured peak (MiB) | before (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method in args.methods.split(","):
        chunks = [None if c == "default" else int(c) for c in args.chunks.split(",")] if has_chunk(method) else [None]
        for chunk in chunks:
            for batch in map(int, args.batches.split(",")):
                defaults = {} if chunk is None else {"chunk": chunk}
                run = short_settings(method, chunk if chunk is not None else _default_chunk(method))
                estimate_default = runner.peak_memory(model, method, batch_size=batch, **defaults)
                estimate_run = runner.peak_memory(model, method, batch_size=batch, **run)
                done = subprocess.run([sys.executable, __file__, "--model", args.model,
                                       "--one", json.dumps([method, batch, run])],
                                      capture_output=True, text=True, check=True)
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


def _default_chunk(method: str) -> int | None:
    import inspect

    from jaxplain import explainers

    parameter = inspect.signature(explainers.EXPLAINERS[method]).parameters.get("chunk")
    return parameter.default if parameter is not None else None


if __name__ == "__main__":
    main()
