"""Peak memory of every sample-streaming method is set by its ``chunk``, not by the batch size.

XLA's memory analysis of the compiled program gives the working memory without running it (seconds
per method on the CPU), on the real ImageNet teacher at the CLI's default batch sizes.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxplain import runner

REPO = Path(__file__).resolve().parents[1]
GiB = 2 ** 30
STREAMING = ("relabel", "rise", "lime", "occlusion", "scorecam")


@pytest.mark.real_model
@pytest.mark.parametrize("method", STREAMING)
def test_default_settings_fit_a_16_gb_device_at_the_default_batch(method, teacher):
    one = runner.peak_memory(teacher, method, batch_size=1)
    sixteen = runner.peak_memory(teacher, method, batch_size=16)  # `jaxplain evaluate`'s default batch
    assert sixteen < 4 * GiB, f"{method}: {sixteen / GiB:.2f} GiB at batch 16"
    assert sixteen < 1.25 * one + 64 * 2 ** 20, f"{method}: memory grows with the batch ({one} -> {sixteen} bytes)"


@pytest.mark.real_model
def test_chunk_is_the_memory_knob(teacher):
    small = runner.peak_memory(teacher, "rise", batch_size=4, chunk=20)
    large = runner.peak_memory(teacher, "rise", batch_size=4, chunk=100)
    assert large > 3 * small


@pytest.mark.real_model
def test_the_refined_surrogate_fits_a_16_gb_device_at_the_default_batch(teacher):
    """Refining backpropagates through the teacher on twice the batch: memory grows with the batch, not the steps."""
    ten = runner.peak_memory(teacher, "surrogate", batch_size=16, refine_steps=10)
    forty = runner.peak_memory(teacher, "surrogate", batch_size=16, refine_steps=40)
    assert ten < 4 * GiB, f"{ten / GiB:.2f} GiB at batch 16"
    assert forty < 1.05 * ten


def test_the_memory_table_script_measures_every_row_it_estimates(tmp_path):
    """experiments/memory_table.py end to end on the small CIFAR-10 teacher: one row per method and batch, each with
    an estimate and a measured peak, so the script cannot rot between its runs."""
    out = tmp_path / "memory.csv"
    result = subprocess.run([sys.executable, str(REPO / "experiments" / "memory_table.py"), "--model",
                             "cifar10_resnet_small", "--methods", "gradcam,rise", "--batches", "1", "--chunks",
                             "default", "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=600,
                            env=os.environ | {"JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(out)))
    assert [(r["method"], r["batch"], r["chunk"]) for r in rows] == [("gradcam", "1", ""), ("rise", "1", "100")]
    assert all(int(r["estimate_run_mib"]) > 0 and int(r["measured_peak_mib"]) > 0 for r in rows)
