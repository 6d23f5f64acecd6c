"""Bad input, row by row: each case is a command line, the exit status, a fragment of the one-line
message, and the promise that nothing was written. To add a case, add a row to CASES; ``{folder}``,
``{photo}`` and friends are filled in from the fixtures below, ``{out}`` is the output folder.
"""

import json

import numpy as np
import pytest
from PIL import Image

from jaxplain.cli import main
from jaxplain.zoo import MODELS
from tests.conftest import make_tiny_model

CASES = [
    # (name, arguments, exit status, message fragment)
    ("evaluate with --limit 0", ["evaluate", "--data", "{folder}", "--limit", "0"], 2,
     "--limit must be a whole number of at least 1"),
    ("evaluate with --limit -1", ["evaluate", "--data", "{folder}", "--limit", "-1"], 2,
     "--limit must be a whole number of at least 1"),
    ("evaluate with --batch-size 0", ["evaluate", "--data", "{folder}", "--batch-size", "0"], 2,
     "--batch-size must be a whole number of at least 1"),
    ("labels.tsv with only its header", ["evaluate", "--data", "{empty}"], 2, "no images listed"),
    ("labels.tsv naming a missing file", ["evaluate", "--data", "{missing}"], 2, "do not exist"),
    ("rise.num_masks=0", ["explain", "{photo}", "--method", "rise", "--set", "rise.num_masks=0"], 2,
     "rise.num_masks must be a positive whole number"),
    ("rise.num_masks=-100", ["explain", "{photo}", "--method", "rise", "--set", "rise.num_masks=-100"], 2,
     "rise.num_masks must be a positive whole number"),
    ("rise.num_masks=abc", ["explain", "{photo}", "--method", "rise", "--set", "rise.num_masks=abc"], 2,
     "rise.num_masks must be int"),
    ("rise.num_masks=150 (not a multiple of chunk)", ["explain", "{photo}", "--method", "rise",
                                                      "--set", "rise.num_masks=150"], 2, "multiple of chunk"),
    ("rise.p=2", ["explain", "{photo}", "--method", "rise", "--set", "rise.p=2"], 2, "rise.p must be > 0 and <= 1"),
    ("an unknown setting", ["explain", "{photo}", "--method", "rise", "--set", "rise.masks=3"], 2,
     "has no setting 'masks'"),
    ("relabel.holdout=1", ["explain", "{photo}", "--method", "relabel", "--set", "relabel.holdout=1"], 2,
     "relabel.holdout must be >= 0 and < 1"),
    ("--out is an existing file", ["explain", "{photo}", "--out", "{a_file}"], 2, "is a file"),
    ("explain --batch-size 0", ["explain", "{photo}", "--batch-size", "0"], 2,
     "--batch-size must be a whole number of at least 1"),
    ("a folder given as an image", ["explain", "{folder}"], 2, "is a folder, not an image file"),
    ("a decompression bomb", ["explain", "{bomb}"], 2, "too large to decode safely"),
    ("--memory-budget 0", ["explain", "{photo}", "--method", "rise", "--memory-budget", "0"], 2,
     "--memory-budget must be a positive, finite number"),
    ("a memory budget too small for one image", ["evaluate", "--data", "{folder}", "--methods", "rise",
                                                 "--memory-budget", "1e-6"], 2, "for one image at chunk 1"),
    ("--memory-budget inf", ["explain", "{photo}", "--method", "rise", "--memory-budget", "inf"], 2,
     "--memory-budget must be a positive, finite number"),
    ("a count too large for the device", ["explain", "{photo}", "--method", "rise", "--set",
                                          "rise.num_masks=1000000000000"], 2, "below 2^31"),
    ("an infinite setting", ["explain", "{photo}", "--method", "rise", "--set", "rise.p=inf"], 2,
     "rise.p must be a finite number"),
    ("a method named twice", ["explain", "{photo}", "--method", "gradcam,gradcam"], 2,
     "--method names 'gradcam' twice"),
    ("an empty method name", ["explain", "{photo}", "--method", "gradcam,,rise"], 2, "has an empty name"),
    ("an empty label", ["evaluate", "--data", "{folder}", "--methods", "=gradcam"], 2,
     "write METHOD or LABEL=METHOD, both non-empty"),
    ("an unknown preset", ["explain", "{photo}", "--method", "rise:paper"], 2,
     "method 'rise' has no preset 'paper'; it has: default, reference"),
    ("--limit with image files", ["explain", "{photo}", "--limit", "3"], 2, "--limit applies to a dataset job"),
    ("--target with image files", ["explain", "{photo}", "--target", "label"], 2, "--target applies to a dataset job"),
    ("multi-host options with image files", ["explain", "{photo}", "--coordinator", "h:1", "--num-processes", "2",
                                             "--process-id", "0"], 2, "--coordinator applies to a dataset job"),
    ("a coordinator that is not HOST:PORT", ["explain", "--data", "{folder}", "--coordinator", "nonsense",
                                             "--num-processes", "2", "--process-id", "0"], 2, "give HOST:PORT"),
    ("an unreachable coordinator", ["explain", "--data", "{folder}", "--coordinator", "127.0.0.1:1",
                                    "--num-processes", "2", "--process-id", "1", "--coordinator-timeout", "1"], 2,
     "process 0 did not answer at 127.0.0.1:1 within 1 s"),
    ("a truncated wav header", ["explain", "{truncated_wav}"], 2, "cannot decode audio"),
    ("a clip longer than the model hears", ["explain", "{long_wav}"], 2, "the clip is 3.00 s long but the model hears"),
]


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    rng = np.random.default_rng(0)
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / "a.png")
    (folder / "labels.tsv").write_text("file\tclass_index\na.png\t1\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("file\tclass_index\n")
    missing = tmp_path / "missing.tsv"
    missing.write_text(f"file\tclass_index\n{folder / 'a.png'}\t1\n{folder / 'gone.png'}\t2\n")
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (14000, 14000)).save(bomb)
    from jaxplain.assets import clips
    from jaxplain.audio import write_wav

    truncated_wav = tmp_path / "truncated.wav"
    truncated_wav.write_bytes(clips()[0].read_bytes()[:30])
    long_wav = tmp_path / "long.wav"
    write_wav(long_wav, np.zeros(48000, np.float32), 16000)
    return {"folder": folder, "empty": empty, "missing": missing, "photo": folder / "a.png", "a_file": a_file,
            "bomb": bomb, "truncated_wav": truncated_wav, "long_wav": long_wav, "out": tmp_path / "out"}


@pytest.mark.parametrize("name, arguments, status, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(name, arguments, status, message, inputs, capsys):
    filled = [a.format(**inputs) for a in arguments]
    if "--out" not in filled:
        filled += ["--out", str(inputs["out"])]
    model = "spoken_digits_cnn" if "wav" in " ".join(arguments) else "tiny"
    assert main([*filled, "--model", model]) == status
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err, err
    assert not inputs["out"].exists()


def test_a_dataset_with_another_class_count_is_refused(tmp_path, capsys, monkeypatch):
    """A 10-class TFDS dataset on a 5-class model is caught before any work (not reported as 0 % accuracy)."""
    import tensorflow_datasets as tfds  # noqa: F401  (the builder below needs it)

    from jaxplain.data import tfds_builders

    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    tarball = tmp_path / "raw" / tfds_builders.CIFAR10_TARBALL
    tarball.parent.mkdir()
    import io
    import tarfile

    with tarfile.open(tarball, "w:gz") as archive:
        for split in ("train", "test"):
            buffer = io.BytesIO()
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer, format="JPEG")
            info = tarfile.TarInfo(f"{split}/cat/0000.jpg")
            info.size = len(buffer.getvalue())
            archive.addfile(info, io.BytesIO(buffer.getvalue()))
    code = main(["accuracy", "--model", "tiny", "--data", "tfds:cifar10_jpeg:test", "--tfds-dir", str(tmp_path / "tfds"),
                 "--raw-data", str(tarball.parent)])
    assert code == 2 and "has 10 classes but the model has 5" in capsys.readouterr().err


def test_an_internal_error_is_one_line_with_the_traceback_saved(monkeypatch, capsys, tmp_path):
    from jaxplain import cli

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr("jaxplain.zoo.MODELS", {"broken": broken})
    assert cli.main(["accuracy", "--model", "broken", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("internal error: RuntimeError: something inside broke") and "\n" not in err
    saved = err.split("full traceback in ")[1].split(";")[0]
    assert "Traceback" in open(saved).read()


def test_explaining_into_a_used_folder_leaves_no_stale_overlays(inputs, tmp_path):
    out = tmp_path / "reused"
    assert main(["explain", str(inputs["photo"]), "--model", "tiny", "--method", "gradcam,gradient",
                 "--out", str(out)]) == 0
    assert main(["explain", str(inputs["photo"]), "--model", "tiny", "--method", "gradcam", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["000_a_gradcam.png", "inputs"]
    assert [p.name for p in (out / "overlays" / "inputs").iterdir()] == ["000_a.png"]
    assert json.loads((out / "results.json").read_text())["methods"] == ["gradcam"]


def test_file_names_with_hash_and_percent_link_correctly(inputs, tmp_path):
    import shutil
    import urllib.parse

    odd = tmp_path / "a#b%c.png"
    shutil.copy(inputs["photo"], odd)
    out = tmp_path / "odd"
    assert main(["explain", str(odd), "--model", "tiny", "--method", "gradcam", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    link = page.split('<img src="')[1].split('"')[0]
    assert "#" not in link and (out / urllib.parse.unquote(link)).is_file()
