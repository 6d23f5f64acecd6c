"""The leaderboard's tables (experiments/leaderboard_tables.py) from hand-made per-image scores: means, paired
differences to the best row over the images both explained, and the sanity column."""

import csv
import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
tables = pytest.importorskip("leaderboard_tables")


def write_scores(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True)
    columns = sorted({k for r in rows for k in r})
    with gzip.open(folder / "scores.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_rows_rank_by_insertion_minus_deletion_with_paired_differences_and_the_sanity_column(tmp_path):
    results = tmp_path / "results"
    write_scores(results / "leaderboard" / "main", [
        {"method": "a", "index": i, "deletion": d, "insertion": n} for i, (d, n) in enumerate([(0.1, 0.9), (0.2, 0.6),
                                                                                              (0.3, 0.9)])
    ] + [{"method": "b", "index": i, "deletion": d, "insertion": n} for i, (d, n) in enumerate([(0.2, 0.4), (0.2, 0.5)])])
    write_scores(results / "leaderboard" / "checks", [
        {"method": "a", "index": 0, "randomisation": 0.2}, {"method": "a", "index": 1, "randomisation": 0.4}])
    table = tables.Table("T", "caption", (tables.Row("a", "main", "a"), tables.Row("b", "main", "b"),
                                          tables.Row("c", "main", "c")), sanity="checks",
                         comparisons=(("a", "b"), ("a", "c")))
    text = tables.render(table, results)
    rows = [line for line in text.splitlines() if line.startswith("| a") or line.startswith("| b")]
    assert [r.split(" |")[0] for r in rows] == ["| a", "| b"]  # c has no scores: no row
    a, b = ([cell.strip() for cell in r.strip("|").split("|")] for r in rows)
    # a: gaps 0.8, 0.4, 0.6 -> 0.600 ± 0.115; b: gaps 0.2, 0.3 -> 0.250; paired over images 0, 1: -0.6, -0.1
    assert a[1:5] == ["3", "0.200 ± 0.058", "0.800 ± 0.100", "0.600 ± 0.115"] and a[5] == "best"
    assert b[4] == "0.250 ± 0.050" and b[5] == "-0.350 ± 0.250 (2)"
    assert a[7] == "0.30 ± 0.10 (2)" and b[7] == "—"  # the sanity run has a's two images and nothing of b's
    stated = [line for line in text.splitlines() if line.startswith("* ")]
    assert stated == ["* a − b: +0.350 ± 0.250 over 2 images (1.4 standard errors; ahead on 2)"]  # c has no scores


def test_a_table_whose_runs_are_missing_says_how_to_run_them(tmp_path):
    table = tables.Table("T", "caption", (tables.Row("a", "main", "a"),))
    assert "not run yet" in tables.render(table, tmp_path)


def test_a_row_with_few_images_is_not_the_best_however_high_its_mean(tmp_path):
    many = [{"method": "many", "index": i, "deletion": 0.2, "insertion": 0.5 + 0.02 * (i % 3)} for i in range(20)]
    few = [{"method": "few", "index": i, "deletion": 0.0, "insertion": 0.9 + 0.01 * i} for i in range(4)]
    write_scores(tmp_path / "leaderboard" / "main", many + few)
    table = tables.Table("T", "caption", (tables.Row("many", "main", "many"), tables.Row("few", "main", "few")))
    lines = {line.split(" |")[0]: line for line in tables.render(table, tmp_path).splitlines() if line.startswith("| ")}
    assert "| best |" in lines["| many"]
    assert "+0.600 ± 0.011 (4)" in lines["| few"]  # listed first by its mean, paired with the best over its 4 images
