"""Paired differences between the methods of one evaluation run (the records of `jaxplain evaluate`).

For every image explained by both methods, the difference of a per-image score: ``ins-del``
(insertion - deletion, the default), ``insertion``, ``deletion`` (sign flipped, so positive is
better), ``gridpg`` or ``localisation`` (hit rate: 1 - miss). Prints mean ± standard error, the
number of images where the first method wins, ties and n, for each method against ``--against``
(default: every pair):

    python experiments/paired.py results/imagenet_dev_heldout --against gradcam
    python experiments/paired.py runs/gfi-dev-layers --metric gridpg --against gfi

Given several runs of the same images with different methods and ``--against``, it compares across
them as if they were one run; given two runs of the same methods (say float32 and bfloat16), it pairs each
method of the second with the same method of the first:

    python experiments/paired.py results/relabel_test results/relabel_test_rise --against relabel
    python experiments/paired.py results/dtype_float32 results/dtype_bfloat16 --metric insertion
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np

SCORES = {
    "ins-del": lambda r: r["insertion"] - r["deletion"],
    "insertion": lambda r: r["insertion"],
    "deletion": lambda r: -r["deletion"],
    "gridpg": lambda r: r["gridpg"],
    "localisation": lambda r: 1.0 - r["localisation_miss"],
    "iou": lambda r: r["iou"],
}


def per_image(records: list[dict], metric: str) -> dict[str, dict[int, float]]:
    """``{method: {image index: score}}`` for the records that carry the metric."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        try:
            out.setdefault(record["method"], {})[record["index"]] = SCORES[metric](record)
        except KeyError:
            continue
    return out


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """Mean and standard error of ``a - b`` over their common images, wins of ``a``, ties and n."""
    common = sorted(set(a) & set(b))
    d = np.asarray([a[i] - b[i] for i in common])
    n = len(d)
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(d.mean()) if n else float("nan"), "se": se, "wins": int((d > 0).sum()),
            "ties": int((d == 0).sum()), "n": n, "mean_abs": float(np.abs(d).mean()) if n else float("nan"),
            "max_abs": float(np.abs(d).max()) if n else float("nan")}


def read_scores(run: Path, metric: str, limit: int | None) -> dict[str, dict[int, float]]:
    """Per-image scores of an evaluation folder's ``records.jsonl``, or of a records file named directly."""
    lines = (run if run.suffix == ".jsonl" else run / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return per_image([r for r in records if limit is None or r["index"] < limit], metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+",
                        help="an evaluation folder (with records.jsonl) or a records file; two of the same images; or, with --against, "
                             "any number of runs of the same images with different methods")
    parser.add_argument("--metric", choices=tuple(SCORES), default="ins-del")
    parser.add_argument("--against", help="compare every method with this one (default: all pairs)")
    parser.add_argument("--methods", help="comma-separated subset of methods")
    parser.add_argument("--limit", type=int, help="only images with index < LIMIT")
    args = parser.parse_args()
    if len(args.runs) > 2 and not args.against:
        parser.error("give one run, two to compare method by method, or any number with --against")

    runs = [read_scores(run, args.metric, args.limit) for run in args.runs]
    if len(runs) >= 2 and args.against:
        merged: dict[str, dict[int, float]] = {}
        for run in runs:
            shared = set(merged) & set(run)
            if shared:
                parser.error(f"two runs have {', '.join(sorted(shared))}; give one run with --against, or two without")
            merged |= run
        runs = [merged]
    if len(runs) == 2:
        first, second = (run.name for run in args.runs)
        scores = {f"{m} ({second})": s for m, s in runs[1].items()} | {f"{m} ({first})": s for m, s in runs[0].items()}
        common = [m for m in runs[1] if m in runs[0] and (not args.methods or m in args.methods.split(","))]
        pairs = [(f"{m} ({second})", f"{m} ({first})") for m in common]
    else:
        scores = runs[0]
        methods = [m for m in (args.methods.split(",") if args.methods else scores) if m in scores]
        if args.against:
            pairs = [(m, args.against) for m in methods if m != args.against]
        else:
            pairs = list(itertools.combinations(methods, 2))
    print(f"{', '.join(map(str, args.runs))}: paired differences of {args.metric} (first minus second; positive "
          "favours the first)\n")
    print("| first | second | mean difference ± SE | first wins | ties | n | mean abs. difference | largest |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for first, second in pairs:
        result = paired(scores[first], scores[second])
        print(f"| {first} | {second} | {result['mean']:+.3f} ± {result['se']:.3f} | {result['wins']} | "
              f"{result['ties']} | {result['n']} | {result['mean_abs']:.4f} | {result['max_abs']:.4f} |")


if __name__ == "__main__":
    main()
