"""Can the host feed the device? Decoded-and-preprocessed images per second, thread pool against process pool.

A dataset job reads each record, decodes it and resizes it on the host (``jaxplain.data.loader.read_item``) on a
thread pool. Threads share one interpreter, so they scale only where the decoder and the resize leave the GIL
(Pillow does, for JPEG decoding and resampling); worker processes (grain's data loader, or any process pool) scale
regardless but pay for pickling every decoded array back. This measures both on the same images, each pool warmed
first (process start-up is not counted), at 1, 2, 4, ... workers up to the machine's cores:

    JAXPLAIN_DATA=../shared/data python experiments/decoding.py --images 256 --out runs/decoding.csv

``experiments/gpu_rows.py`` runs the same measurement in its ``job`` step, beside the end-to-end job rows.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import time
from pathlib import Path

_WORKER: dict = {}


def _open_in_worker(data: str, crop: int, resize: int) -> None:
    from jaxplain.data import open_source
    from jaxplain.images import Preprocessing

    _WORKER["source"], _ = open_source(data)
    _WORKER["preprocessing"] = Preprocessing(resize, crop)


def _read_in_worker(index: int):
    from jaxplain.data.loader import read_item

    return read_item(_WORKER["source"], index, _WORKER["preprocessing"])[0]


def worker_counts(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``, with ``limit`` itself last."""
    counts = [1]
    while counts[-1] * 2 < limit:
        counts.append(counts[-1] * 2)
    return counts + ([limit] if limit > 1 else [])


def rate(pool: concurrent.futures.Executor, read, indices: list[int]) -> float:
    """Items per second of ``read`` over ``indices`` on a warmed ``pool``."""
    list(pool.map(read, indices[: max(1, len(indices) // 8)]))  # warm: workers started, the source opened
    start = time.perf_counter()
    for _ in pool.map(read, indices, chunksize=4):
        pass
    return len(indices) / (time.perf_counter() - start)


def measure(data: str, crop: int = 224, resize: int = 256, images: int = 256, max_workers: int | None = None) -> list[dict]:
    """One row per (pool, workers): items/s of reading, decoding and preprocessing ``images`` records."""
    from jaxplain.data import open_source
    from jaxplain.data.loader import read_item
    from jaxplain.images import Preprocessing

    source, _ = open_source(data)
    preprocessing = Preprocessing(resize, crop)
    indices = [i % len(source) for i in range(images)]
    cores = os.cpu_count() or 1
    rows = []
    for workers in worker_counts(max_workers or cores):
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            threads = rate(pool, lambda i: read_item(source, i, preprocessing)[0], indices)
        context = multiprocessing.get_context("spawn")  # never fork a process that runs XLA's threads
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_open_in_worker,
                                                    initargs=(data, crop, resize)) as pool:
            processes = rate(pool, _read_in_worker, indices)
        rows.append({"host": platform.node(), "cores": cores, "workers": workers, "images": images, "crop": crop,
                     "threads_per_s": round(threads, 1), "processes_per_s": round(processes, 1),
                     "processes_over_threads": round(processes / threads, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="default $JAXPLAIN_DATA/imagenet-dev")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--max-workers", type=int, default=None, help="default: the machine's cores")
    parser.add_argument("--out", type=Path, default=None, help="a CSV to append the rows to")
    args = parser.parse_args()
    data = args.data or str(Path(os.environ.get("JAXPLAIN_DATA", "../shared/data")) / "imagenet-dev")
    rows = measure(data, images=args.images, max_workers=args.max_workers)
    for row in rows:
        print(row)
    if args.out:
        from benchmark import append_rows  # beside this script; imported here, not in the spawned workers

        append_rows(args.out, list(rows[0]), rows)


if __name__ == "__main__":
    main()
