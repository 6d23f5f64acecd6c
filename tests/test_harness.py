"""The evaluation harness: tables from records, and an interrupted run resumes without loss or duplicates."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import SUMMARY_COLUMNS, EvaluationConfig, evaluate, read_records


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    rows = ["file\tclass_index"]
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png\t{i % 5}")
    (root / "labels.tsv").write_text("\n".join(rows) + "\n")
    return root


def config(folder, **changes):
    methods = {"gradcam": {}, "random": {}, "rise": {"num_masks": 20, "chunk": 10}}
    return EvaluationConfig(methods, str(folder), batch_size=3, examples=2, **changes)


def test_interrupted_evaluation_resumes_without_loss_or_duplicates(folder, tmp_path, tiny_model, monkeypatch):
    out = tmp_path / "run"
    real_explain = runner.explain
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # second batch, second method
            raise KeyboardInterrupt
        return real_explain(*args, **kwargs)

    monkeypatch.setattr(runner, "explain", flaky)
    with pytest.raises(UsageError, match="rerun the same command to resume"):
        evaluate(tiny_model, config(folder), out)
    partial = read_records(out / "records.jsonl")
    assert len(partial) == 3 * 3 + 3  # batch 1: 3 methods x 3 images; batch 2: gradcam only

    monkeypatch.setattr(runner, "explain", real_explain)
    with open(out / "records.jsonl", "a") as f:
        f.write('{"method": "gradcam", "ind')  # a line torn by a kill during the write
    rows = evaluate(tiny_model, config(folder), out)
    records = read_records(out / "records.jsonl")
    keys = [(r["method"], r["index"]) for r in records]
    assert len(keys) == len(set(keys)) == 3 * 7

    with open(out / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == SUMMARY_COLUMNS and [r["method"] for r in table] == ["gradcam", "random", "rise"]
    for row in rows:
        mine = [r for r in records if r["method"] == row["method"]]
        assert row["n"] == 7
        assert row["deletion"] == pytest.approx(np.mean([r["deletion"] for r in mine]))
        assert row["insertion_se"] == pytest.approx(np.std([r["insertion"] for r in mine], ddof=1) / np.sqrt(7))
        assert row["maps_per_s"] > 0
    for name in ("summary.md", "curves.png", "index.html", "overlays/00000_rise.png"):
        assert (out / name).exists(), name


def test_a_different_configuration_cannot_resume_into_the_same_folder(folder, tmp_path, tiny_model):
    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=2), out)
    with pytest.raises(UsageError, match="protocol differ"):
        evaluate(tiny_model, config(folder, limit=2, protocol="exact"), out)
    assert json.loads((out / "config.json").read_text())["protocol"] == "fast"
