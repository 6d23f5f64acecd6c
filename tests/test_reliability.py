"""Nothing lost, nothing mixed: the user's files, interrupts, races on one folder, a full disk, resumes that would
change an answer, and bad values from Python."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxplain import runner
from jaxplain.cli import main
from jaxplain.errors import OutputError, UsageError
from jaxplain.jobs import JobConfig, read_maps, run_job
from jaxplain.zoo import MODELS
from tests.conftest import make_tiny_model, write_labelled_folder

TESTS = str(Path(__file__).parent)


@pytest.fixture
def photo(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(path)
    return path


def test_the_users_files_in_the_output_folder_are_never_deleted(photo, tmp_path):
    out = tmp_path / "out"
    (out / "overlays" / "mine").mkdir(parents=True)
    (out / "overlays" / "notes.txt").write_text("mine")
    (out / "overlays" / "mine" / "x.png").write_bytes(b"mine")
    (out / "audio").mkdir()
    (out / "audio" / "song.wav").write_bytes(b"mine")
    assert main(["explain", str(photo), "--model", "tiny", "--method", "gradcam,gradient", "--out", str(out)]) == 0
    assert main(["explain", str(photo), "--model", "tiny", "--method", "gradcam", "--out", str(out)]) == 0
    assert (out / "overlays" / "notes.txt").read_text() == "mine"
    assert (out / "overlays" / "mine" / "x.png").read_bytes() == b"mine"
    assert (out / "audio" / "song.wav").read_bytes() == b"mine"
    assert not (out / "overlays" / "000_a_gradient.png").exists()  # the tool's own stale overlay went
    assert (out / "overlays" / "000_a_gradcam.png").exists()


def test_a_users_file_where_an_output_must_go_stops_the_run_before_any_work(photo, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("my page")
    assert main(["explain", str(photo), "--model", "tiny", "--method", "gradcam", "--out", str(out)]) == 2
    assert "index.html is a file jaxplain did not write; it is left alone" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "my page"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["index.html"]


SLOW_JOB = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import make_tiny_model
import jaxplain.zoo as zoo
zoo.register_model("tiny", make_tiny_model)
import jaxplain.runs.journal as journal
slow = journal.append_records
def append(*args):
    slow(*args)
    time.sleep(0.5)
import jaxplain.jobs as jobs, jaxplain.evaluation.harness as harness
jobs.append_records = harness.append_records = append
from jaxplain.cli import main
sys.exit(main({arguments!r}))
"""


def start(arguments, tmp_path):
    script = SLOW_JOB.format(tests=TESTS, arguments=arguments)
    return subprocess.Popen([sys.executable, "-c", script], env=os.environ | {"JAX_PLATFORMS": "cpu"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(path: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and (not path.exists() or len(path.read_text().splitlines()) < count):
        time.sleep(0.05)


@pytest.mark.parametrize("number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_job_says_what_is_saved_and_resumes_exactly(number, status, tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    folder = write_labelled_folder(tmp_path / "images", 6, seed=1)
    out = tmp_path / "job"
    arguments = ["explain", "--data", str(folder), "--model", "tiny", "--method", "gradcam,random", "--batch-size",
                 "1", "--out", str(out)]
    process = start(arguments, tmp_path)
    wait_for_records(out / "records-p0.jsonl", 2)
    process.send_signal(number)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "maps are saved in" in last and "rerun the same command" in last
    assert main(arguments) == 0
    assert main([*arguments[:-1], str(tmp_path / "straight")]) == 0
    for method in ("gradcam", "random"):
        indices, maps, _ = read_maps(out, method)
        np.testing.assert_array_equal(indices, np.arange(6))
        np.testing.assert_array_equal(maps, read_maps(tmp_path / "straight", method)[1])


def test_two_jobs_into_one_folder_the_second_stops_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    folder = write_labelled_folder(tmp_path / "images", 8, seed=1)
    out = tmp_path / "job"
    arguments = ["explain", "--data", str(folder), "--model", "tiny", "--method", "gradcam", "--batch-size", "1",
                 "--out", str(out)]
    first = start(arguments, tmp_path)
    wait_for_records(out / "records-p0.jsonl", 1)
    assert main(arguments) == 2
    assert "is in use by process" in capsys.readouterr().err
    first.communicate(timeout=120)
    assert first.returncode == 0
    records = [json.loads(line) for line in (out / "records-p0.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(8))  # once each


def test_a_resume_with_another_dtype_or_reordered_data_is_refused(tmp_path):
    folder = write_labelled_folder(tmp_path / "images", 5, seed=1)
    model = make_tiny_model()
    run_job(model, JobConfig({"gradcam": {}}, str(folder), limit=3, batch_size=2), tmp_path / "job")
    with pytest.raises(UsageError, match="dtype differ"):
        run_job(model, JobConfig({"gradcam": {}}, str(folder), limit=3, dtype="bfloat16"), tmp_path / "job")
    rows = (folder / "labels.tsv").read_text().splitlines()
    (folder / "labels.tsv").write_text("\n".join([rows[0], rows[2], rows[1], *rows[3:]]) + "\n")
    with pytest.raises(UsageError, match="data.fingerprint differ"):
        run_job(model, JobConfig({"gradcam": {}}, str(folder), limit=3), tmp_path / "job")


def test_a_full_disk_is_one_line_leaves_no_half_row_and_the_job_resumes(tmp_path, monkeypatch):
    from jaxplain.runs import store

    folder = write_labelled_folder(tmp_path / "images", 6, seed=1)
    model = make_tiny_model()
    real_fsync, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) == 7:  # the third batch's maps (each batch: the maps, their header, the journal)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store.os, "fsync", full)
    config = JobConfig({"rise": {"num_masks": 20, "chunk": 10}}, str(folder), batch_size=2)
    with pytest.raises(OutputError, match=r"no space left on the device writing .*maps-rise-p0.npy \(about"):
        run_job(model, config, tmp_path / "job")
    maps_file = tmp_path / "job" / "maps-rise-p0.npy"
    assert np.load(maps_file, mmap_mode="r").shape == (4, 16, 16)  # two whole batches, no half row
    assert len((tmp_path / "job" / "records-p0.jsonl").read_text().splitlines()) == 4
    monkeypatch.setattr(store.os, "fsync", real_fsync)
    run_job(model, config, tmp_path / "job")
    run_job(model, config, tmp_path / "straight")
    np.testing.assert_array_equal(read_maps(tmp_path / "job", "rise")[1], read_maps(tmp_path / "straight", "rise")[1])


@pytest.mark.parametrize("call, message", [
    (lambda m, x: runner.explain(m, "gradcam", x, key="abc"), "key must be an int seed or a JAX PRNG key"),
    (lambda m, x: runner.explain(m, "gradcam", [x[0], x[0, :8]]), "cannot form one array"),
    (lambda m, x: runner.explain(m, "gradcam", x, batch_size=0), "batch_size must be a whole number of at least 1"),
    (lambda m, x: runner.explain(3, "gradcam", x), "model must be a jaxplain.Model"),
    (lambda m, x: runner.explain(m, "", x), "a method is named by a non-empty string"),
    (lambda m, x: runner.explain(m, "gradcam:", x), "write NAME or NAME:PRESET"),
    (lambda m, x: runner.predict(m, x, batch_size=-1), "batch_size must be a whole number of at least 1"),
])
def test_bad_values_from_python_are_one_clear_error(call, message, tiny_model, tiny_images):
    with pytest.raises(UsageError, match=message):
        call(tiny_model, tiny_images)


def test_a_model_may_be_named_by_its_zoo_name(tiny_images, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    assert runner.explain("tiny", "gradcam", tiny_images).shape == (3, 16, 16)
