"""Writes jaxplain/models/imagenet_classes.tsv: index, WordNet synset and name of the 1000 ImageNet classes.

The synset order (sorted WordNet ids) defines the standard class index. The list and lemmas are read
from the `timm` wheel's metadata files (downloaded by pip, not imported), then checked against a
labelled folder such as ../shared/data/imagenet-dev/labels.tsv when one is given.

    python experiments/make_imagenet_classes.py [--check ../shared/data/imagenet-dev/labels.tsv]
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jaxplain" / "models" / "imagenet_classes.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", type=Path, help="labels.tsv whose synsets and indices must agree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "timm"], check=True)
        wheel = next(Path(tmp).glob("timm-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            synsets = zf.read("timm/data/_info/imagenet_synsets.txt").decode().split()
            lemma_lines = zf.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
    lemmas = dict(line.split("\t", 1) for line in lemma_lines if "\t" in line)
    assert len(synsets) == 1000 and synsets == sorted(synsets)
    rows = [(i, s, lemmas[s].split(",")[0].strip().replace(" ", "_"), lemmas[s]) for i, s in enumerate(synsets)]
    if args.check:
        with open(args.check) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                index = int(row["class_index"])
                assert rows[index][1] == row["synset"], (row, rows[index])
    with open(OUT, "w") as f:
        f.write("index\tsynset\tname\tlemmas\n")
        for row in rows:
            f.write("\t".join(map(str, row)) + "\n")
    print(f"wrote {OUT} ({len(rows)} classes)")


if __name__ == "__main__":
    main()
