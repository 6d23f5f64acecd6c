"""experiments/paired.py: the paired differences every claim in results/README.md is stated with."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "experiments" / "paired.py"
spec = importlib.util.spec_from_file_location("paired", SCRIPT)
paired_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_script)


def test_paired_differences_on_a_hand_computed_case():
    a = {0: 0.5, 1: 0.2, 2: 0.9, 3: 0.4}
    b = {0: 0.3, 1: 0.4, 2: 0.6, 7: 1.0}  # image 7 has no partner and image 3 none either
    result = paired_script.paired(a, b)
    # differences 0.2, -0.2, 0.3: mean 0.1, sample sd sqrt(0.07) -> SE sqrt(0.07 / 3)
    assert result["n"] == 3 and result["wins"] == 2 and result["ties"] == 0
    assert result["mean"] == pytest.approx(0.1)
    assert result["se"] == pytest.approx((0.07 / 3) ** 0.5)
    assert result["mean_abs"] == pytest.approx(0.7 / 3) and result["max_abs"] == pytest.approx(0.3)


def write_run(folder: Path, scores: dict[str, list[tuple[float, float]]]) -> Path:
    folder.mkdir()
    with open(folder / "records.jsonl", "w") as f:
        for method, rows in scores.items():
            for index, (deletion, insertion) in enumerate(rows):
                f.write(json.dumps({"method": method, "index": index, "deletion": deletion, "insertion": insertion}) + "\n")
    return folder


def test_two_runs_are_compared_method_by_method(tmp_path):
    first = write_run(tmp_path / "float32", {"gradcam": [(0.2, 0.8), (0.3, 0.6)], "random": [(0.5, 0.5)]})
    second = write_run(tmp_path / "bfloat16", {"gradcam": [(0.25, 0.8), (0.3, 0.7)]})
    out = subprocess.run([sys.executable, str(SCRIPT), str(first), str(second), "--metric", "insertion"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| gradcam")]
    assert rows == ["| gradcam (bfloat16) | gradcam (float32) | +0.050 ± 0.050 | 1 | 1 | 2 | 0.0500 | 0.1000 |"]


def test_runs_of_different_methods_merge_for_against(tmp_path):
    first = write_run(tmp_path / "cheap", {"relabel": [(0.2, 0.8), (0.3, 0.6)]})
    second = write_run(tmp_path / "slow", {"rise": [(0.3, 0.8), (0.1, 0.6)]})
    third = write_run(tmp_path / "amortized", {"surrogate": [(0.4, 0.8), (0.3, 0.5)]})
    out = subprocess.run([sys.executable, str(SCRIPT), str(first), str(second), str(third), "--against", "relabel"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith(("| rise", "| surrogate"))]
    assert rows == ["| rise | relabel | +0.050 ± 0.150 | 1 | 0 | 2 | 0.1500 | 0.2000 |",
                    "| surrogate | relabel | -0.150 ± 0.050 | 0 | 0 | 2 | 0.1500 | 0.2000 |"]
    named = subprocess.run([sys.executable, str(SCRIPT), str(first), str(second / "records.jsonl"), "--against", "relabel"],
                           capture_output=True, text=True, check=True).stdout  # a records file named directly
    assert [line for line in named.splitlines() if line.startswith("| rise")] == rows[:1]
    clash = subprocess.run([sys.executable, str(SCRIPT), str(first), str(first), str(third), "--against", "relabel"],
                           capture_output=True, text=True)
    assert clash.returncode == 2 and "two runs have relabel" in clash.stderr


def test_grid_scores_read_from_their_records():
    records = [{"method": "dax", "index": 0, "gridpg": 0.7, "localisation_miss": 1.0, "iou": 0.25},
               {"method": "dax", "index": 1, "deletion": 0.1, "insertion": 0.4}]  # a record without grid scores
    assert paired_script.per_image(records, "iou") == {"dax": {0: 0.25}}
    assert paired_script.per_image(records, "localisation") == {"dax": {0: 0.0}}
    assert paired_script.per_image(records, "ins-del") == {"dax": {1: pytest.approx(0.3)}}
