"""The leaderboard: run its evaluations (resumable) and regenerate results/README.md's tables from their summaries.

::

    JAXPLAIN_DATA=../shared/data python experiments/leaderboard.py run imagenet_fast imagenet_relabel ...
    python experiments/leaderboard.py write        # results/leaderboard/*, then the tables in results/README.md

``run`` prepares the data splits in ``runs/`` and runs each job file of ``experiments/leaderboard/`` (the same
command resumes an interrupted one); the evaluation folders, with their per-image records and maps, stay in
``runs/leaderboard/`` (not in git). ``write`` keeps what the tables need in ``results/leaderboard/NAME/``: the
summary, the resolved settings (``run.json``) and a compressed table of per-image scores for paired differences.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "experiments" / "leaderboard"
RUNS = REPO / "runs" / "leaderboard"
RESULTS = REPO / "results" / "leaderboard"
SCORES = ("deletion", "insertion", "gridpg", "localisation_miss", "iou", "intensity", "randomisation")


def data_root() -> Path:
    root = os.environ.get("JAXPLAIN_DATA")
    if not root:
        sys.exit("set JAXPLAIN_DATA to the folder holding imagenet-dev/ and cifar10-jpeg.tar.gz")
    return Path(root)


def prepare_splits() -> None:
    """runs/imagenet-dev-test.tsv: the odd rows of imagenet-dev less the first 8 (the test split)."""
    target = REPO / "runs" / "imagenet-dev-test.tsv"
    if not target.exists():
        subprocess.run([sys.executable, str(REPO / "experiments" / "split_labels.py"),
                        str(data_root() / "imagenet-dev"), "odd", str(target), "--skip", "8"], check=True)


def run(names: list[str], limit: int | None = None) -> None:
    os.environ.setdefault("TFDS_DATA_DIR", str(REPO / "runs" / "tfds"))  # CIFAR-10 is prepared there on first use
    prepare_splits()
    for name in names:
        job = JOBS / f"{name}.toml"
        print(f"=== {name}", flush=True)
        first = ["--limit", str(limit)] if limit else []  # a later run without it resumes to the file's limit
        jaxplain = str(Path(sys.executable).with_name("jaxplain"))  # the one installed beside this Python
        child = subprocess.Popen([jaxplain, "evaluate", "--config", str(job), *first], cwd=REPO)
        # as a shell does: Ctrl-C reaches the evaluation, which says what is saved and how to resume, and its
        # status is this script's
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            status = child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        if status:
            sys.exit(status)


def keep(name: str) -> Path:
    """Copies one evaluation's summary and settings into results/leaderboard/NAME with its per-image scores."""
    source, target = RUNS / name, RESULTS / name
    target.mkdir(parents=True, exist_ok=True)
    for file in ("summary.csv", "summary.md", "run.json"):
        (target / file).write_bytes((source / file).read_bytes())
    with open(source / "summary.csv") as f:  # the images of the run's last limit (a later run may go further)
        done = max(int(row["n"]) for row in csv.DictReader(f))
    with open(source / "records.jsonl") as f:
        records = [r for r in map(json.loads, filter(str.strip, f)) if r["index"] < done]
    for r in records:  # an image's file name, not where this machine keeps the data
        r["id"] = Path(r["id"]).name
    columns = ["method", "index", "id", "label"] + [s for s in SCORES if any(s in r for r in records)]
    # mtime 0: the same scores give the same bytes, so a rewrite leaves git's tree unchanged
    with io.TextIOWrapper(gzip.GzipFile(target / "scores.csv.gz", "wb", mtime=0), newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run (or resume) leaderboard evaluations")
    run_parser.add_argument("names", nargs="*", help="job files of experiments/leaderboard/ (default: all)")
    run_parser.add_argument("--limit", type=int, help="only the first N images this time (fewer than the job "
                                                          "file's; the tables say n)")
    commands.add_parser("write", help="regenerate results/leaderboard and the tables in results/README.md")
    args = parser.parse_args()
    if args.command == "run":
        run(args.names or sorted(p.stem for p in JOBS.glob("*.toml")), args.limit)
    else:
        from leaderboard_tables import write_tables  # noqa: PLC0415 - beside this script

        for folder in sorted(RUNS.iterdir()) if RUNS.exists() else ():
            if (folder / "summary.csv").exists():
                keep(folder.name)
        write_tables(REPO / "results", REPO / "results" / "README.md")


if __name__ == "__main__":
    main()
