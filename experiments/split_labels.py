"""Writes a labels .tsv that selects the even or odd rows of a labelled folder (absolute file paths).

The ImageNet VAE trains on the even rows of imagenet-dev; the odd rows are its held-out half:

    python experiments/split_labels.py ../shared/data/imagenet-dev odd runs/imagenet-dev-heldout.tsv

`--skip N` drops the first N chosen rows: the test split of re-label distillation skips the 8 held-out
images on which its earlier defaults were chosen.
"""

import argparse
import csv
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("rows", choices=("even", "odd"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--skip", type=int, default=0, help="drop the first N chosen rows")
    args = parser.parse_args()
    with open(args.folder / "labels.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    chosen = (rows[0::2] if args.rows == "even" else rows[1::2])[args.skip:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        f.write("file\tclass_index\n")
        for row in chosen:
            f.write(f"{(args.folder / row['file']).resolve()}\t{row['class_index']}\n")
    print(f"wrote {args.out}: {len(chosen)} of {len(rows)} images")


if __name__ == "__main__":
    main()
