"""Dataset jobs: streamed maps equal the in-memory ones, and a job killed at any point resumes to the same result."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxplain import runner
from jaxplain.data import open_source
from jaxplain.data.loader import load_items
from jaxplain.errors import UsageError
from jaxplain.jobs import JobConfig, read_maps, run_job
from tests.conftest import write_labelled_folder

METHODS = {"gradcam": {}, "rise": {"num_masks": 20, "chunk": 10}}


@pytest.fixture
def folder(tmp_path):
    return write_labelled_folder(tmp_path / "images", 7, seed=1)


def test_streamed_maps_equal_in_memory_maps(folder, tmp_path, tiny_model):
    run_job(tiny_model, JobConfig(METHODS, str(folder), batch_size=3, examples=2), tmp_path / "job")
    source, _ = open_source(str(folder), num_classes=5)
    images = load_items(source, range(7), tiny_model.preprocessing).images
    for method, settings in METHODS.items():
        indices, maps, records = read_maps(tmp_path / "job", method)
        expected = runner.explain(tiny_model, method, images, key=0, batch_size=3, **settings)
        np.testing.assert_array_equal(indices, np.arange(7))
        scale = np.abs(expected).reshape(7, -1).max(1)[:, None, None]
        np.testing.assert_allclose(maps, expected, atol=1e-3 * scale.max(), rtol=2e-3)
        assert [r["explained"] for r in records] == [r["predicted"] for r in records]
    assert sorted(p.name for p in (tmp_path / "job" / "overlays").iterdir()) == [
        "000000_gradcam.png", "000000_rise.png", "000001_gradcam.png", "000001_rise.png"]


def test_a_job_with_other_settings_is_refused_and_a_finished_one_skips_everything(folder, tmp_path, tiny_model):
    cheap = {"gradcam": {}, "random": {}}
    run_job(tiny_model, JobConfig(cheap, str(folder), limit=4, batch_size=2), tmp_path / "job")
    again = run_job(tiny_model, JobConfig(cheap, str(folder), limit=4, batch_size=3), tmp_path / "job")
    assert again == {"images": 4, "explained": 0, "skipped": 4}
    with pytest.raises(UsageError, match="limit differ"):
        run_job(tiny_model, JobConfig(cheap, str(folder), limit=5), tmp_path / "job")
    with pytest.raises(UsageError, match="the folder holds the methods gradcam, random, not gradcam"):
        run_job(tiny_model, JobConfig({"gradcam": {}}, str(folder), limit=4), tmp_path / "job")


def test_processes_split_the_images_and_read_back_as_one(folder, tmp_path, tiny_model):
    for process in (0, 1):
        run_job(tiny_model, JobConfig(METHODS, str(folder), batch_size=2, process_index=process, process_count=2),
                tmp_path / "parts")
    run_job(tiny_model, JobConfig(METHODS, str(folder), batch_size=2), tmp_path / "whole")
    parts, whole = read_maps(tmp_path / "parts", "rise"), read_maps(tmp_path / "whole", "rise")
    np.testing.assert_array_equal(parts[0], np.arange(7))
    np.testing.assert_allclose(parts[1], whole[1], atol=1e-6)
    assert len(open(tmp_path / "parts" / "records-p0.jsonl").readlines()) == 2 * 4  # images 0-3, both methods


KILLED_JOB = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import make_tiny_model
import jaxplain.jobs as jobs
slow = jobs.append_records
def append(*args):
    slow(*args)
    time.sleep(0.4)
jobs.append_records = append
jobs.run_job(make_tiny_model(), jobs.JobConfig({methods!r}, {folder!r}, batch_size=1), {out!r})
"""


def test_a_job_killed_with_sigkill_resumes_to_the_uninterrupted_result(folder, tmp_path, tiny_model):
    out = tmp_path / "killed"
    script = KILLED_JOB.format(tests=str(Path(__file__).parent), methods=METHODS, folder=str(folder), out=str(out))
    env = os.environ | {"JAX_PLATFORMS": "cpu"}
    records = out / "records-p0.jsonl"
    for _ in range(2):  # killed twice, at a different point each time
        process = subprocess.Popen([sys.executable, "-c", script], env=env)
        before = len(records.read_text().splitlines()) if records.exists() else 0
        deadline = time.time() + 120
        while time.time() < deadline and (not records.exists() or len(records.read_text().splitlines()) < before + 3):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert len(records.read_text().splitlines()) < 14, "the job finished before it was killed"
    run_job(tiny_model, JobConfig(METHODS, str(folder), batch_size=1), out)
    run_job(tiny_model, JobConfig(METHODS, str(folder), batch_size=1), tmp_path / "whole")
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert sorted((r["method"], r["index"]) for r in lines) == sorted((m, i) for m in METHODS for i in range(7))
    for method in METHODS:
        np.testing.assert_array_equal(read_maps(out, method)[1], read_maps(tmp_path / "whole", method)[1])


def _cli_job(folder, out, process, port, limit=7):
    """``jaxplain explain --data`` as one of two processes with two CPU devices each."""
    env = os.environ | {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "from conftest import make_tiny_model\n"
              "import jaxplain.zoo as zoo; zoo.register_model('tiny', make_tiny_model)\n"
              "from jaxplain.cli import main; main()")
    args = ["explain", "--data", str(folder), "--model", "tiny", "--method", "gradcam,rise", "--set",
            "rise.num_masks=20", "--set", "rise.chunk=10", "--batch-size", "1", "--limit", str(limit),
            "--out", str(out), "--coordinator", f"localhost:{port}", "--num-processes", "2",
            "--process-id", str(process)]
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_two_processes_over_localhost_equal_one_and_resume_after_one_is_killed(folder, tmp_path, tiny_model):
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("localhost", 0))
            return s.getsockname()[1]

    out = tmp_path / "two"
    first = [_cli_job(folder, out, p, port) for port in [free_port()] for p in (0, 1)]
    records = out / "records-p1.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and (not records.exists() or not records.read_text().strip()):
        time.sleep(0.05)
    first[1].kill()  # process 1 dies mid-run; process 0 may finish its share, then waits for its lost peer
    try:
        first[0].wait(timeout=10)
    except subprocess.TimeoutExpired:
        first[0].kill()  # as a cluster scheduler would
    first[0].wait()
    second = [_cli_job(folder, out, p, port) for port in [free_port()] for p in (0, 1)]
    for process in second:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    run_job(tiny_model, JobConfig({"gradcam": {}, "rise": {"num_masks": 20, "chunk": 10}}, str(folder),
                                  batch_size=1), tmp_path / "one")
    for method in ("gradcam", "rise"):
        indices, maps, records_read = read_maps(out, method)
        np.testing.assert_array_equal(indices, np.arange(7))  # every image once, none twice
        np.testing.assert_allclose(maps, read_maps(tmp_path / "one", method)[1], atol=1e-6)


def test_a_half_given_cluster_is_an_error_and_a_plain_machine_is_one_process(monkeypatch):
    from jaxplain.parallel import CLUSTER_VARIABLES, initialise_distributed

    for name in (*CLUSTER_VARIABLES, "SLURM_NTASKS", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialise_distributed() == (0, 1)
    with pytest.raises(UsageError, match="all of --coordinator"):
        initialise_distributed("localhost:1234", None, 0)
    with pytest.raises(UsageError, match="process-id must be in"):
        initialise_distributed("localhost:1234", 2, 2)
