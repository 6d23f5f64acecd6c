"""The prepared GPU run (experiments/gpu_rows.py) runs end to end on the CPU with tiny sizes, peers included, so it
cannot rot between GPU runs."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.real_model, pytest.mark.reference]


def test_the_dry_run_writes_every_step_flat_and_few(shared_data, tmp_path):
    pytest.importorskip("captum", reason="the race needs the 'reference' extra")
    pytest.importorskip("pytorch_grad_cam", reason="the race needs the 'reference' extra")
    pytest.importorskip("quantus", reason="the metrics race needs the 'reference' extra")
    out = tmp_path / "out"
    env = os.environ | {"JAXPLAIN_DATA": str(shared_data), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, str(REPO / "experiments" / "gpu_rows.py"), "--dry-run", "--out", str(out),
                             "--work", str(tmp_path / "work"), "--budget", "1200"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["decoding.csv", "job.csv", "leaderboard.csv", "memory.csv", "methods.csv", "metrics.csv",
                     "race.csv", "roofline.csv"]  # flat and at most eight: what the device tool brings back
    rows = {name: list(csv.DictReader(open(out / name))) for name in files if name.endswith(".csv")}
    assert {r["method"] for r in rows["methods.csv"]} == {"gradcam", "rise", "surrogate"}
    assert all(float(r["maps_per_s"]) > 0 and not r["error"] for r in rows["methods.csv"])
    assert {r["peer"] for r in rows["race.csv"]} == {"pytorch-grad-cam GradCAM", "batched PyTorch RISE (this script)"}
    assert {r["dtype"] for r in rows["roofline.csv"]} == {"float32", "bfloat16"}
    assert all(r["dry_run"] == "True" and r["jax"] for r in rows["roofline.csv"])
    assert [r["metric"].split(" ")[0] for r in rows["metrics.csv"]] == [
        "sparseness", "complexity", "region_perturbation", "faithfulness_correlation", "road"]
    assert all(float(r["jaxplain_images_per_s"]) > 0 for r in rows["metrics.csv"])
    assert len(rows["leaderboard.csv"]) == 2 and all(0 <= float(r["insertion"]) <= 1 for r in rows["leaderboard.csv"])
    assert all(0 < float(r["ratio"]) for r in rows["job.csv"])
    assert [int(r["workers"]) for r in rows["decoding.csv"]] == [1, 2]
    assert all(float(r["threads_per_s"]) > 0 and float(r["processes_per_s"]) > 0 for r in rows["decoding.csv"])
