"""The command line: real work end to end, and one clear line (exit 2, no output left) for bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxplain.cli import main
from jaxplain.zoo import MODELS
from tests.conftest import make_tiny_model


@pytest.fixture(autouse=True)
def tiny_in_zoo(monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, mode in (("rgb.jpg", "RGB"), ("rgba.png", "RGBA"), ("gray.png", "L")):
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        array = rng.integers(0, 255, (24, 30, channels), dtype=np.uint8)
        Image.fromarray(array.squeeze(), mode).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


def test_explain_writes_overlays_and_results(pictures, tmp_path):
    out = tmp_path / "out"
    code = main(["explain", *pictures, "--model", "tiny", "--method", "gradcam,rise", "--out", str(out),
                 "--set", "rise.num_masks=20", "--set", "rise.chunk=10"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == ["gradcam", "rise"] and len(results["images"]) == 3
    record = results["images"][1]
    assert record["class_name"].startswith("class") and 0 <= record["probability"] <= 1
    assert len(record["top5"]) == 5
    for method in ("gradcam", "rise"):
        overlay = np.asarray(Image.open(out / record["overlays"][method]))
        assert overlay.shape == (160, 160, 3) and overlay.std() > 1  # a 16-px input enlarged by whole pixels
    arrays = np.load(out / "results.npz")
    assert arrays["maps_rise"].shape == (3, 16, 16)
    assert (out / "index.html").read_text().count("<img") == 3 + 6  # each input once, one overlay per method


@pytest.mark.parametrize("arguments, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "tiny", "--method", "nope"], "unknown method 'nope'"),
    (["--model", "tiny", "--label", "9"], "out of range"),
    (["--model", "tiny", "--set", "rise.x"], "expected NAME=VALUE"),
])
def test_bad_arguments_fail_with_one_line(arguments, message, pictures, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", pictures[0], "--out", str(out), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not out.exists()


def test_a_corrupt_file_is_named_and_nothing_is_written(pictures, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not an image")
    out = tmp_path / "out"
    assert main(["explain", pictures[0], str(bad), "--model", "tiny", "--out", str(out)]) == 2
    assert "broken.jpg: cannot decode image" in capsys.readouterr().err
    assert not out.exists()


def test_listing_commands(capsys):
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    for name in ("relabel", "gradcam", "rise", "lime", "scorecam", "occlusion", "extremal", "smoothgrad"):
        assert name in listed
    assert main(["models"]) == 0
    assert "efficientnet_lite0" in capsys.readouterr().out


def test_demo_help_names_the_methods_the_demo_runs():
    import typer

    from jaxplain.cli import app
    from jaxplain.demo import DEMO_METHODS

    options = {p.name: p for p in typer.main.get_command(app).commands["demo"].params}
    assert options["method"].help.endswith(f"(default: {','.join(DEMO_METHODS)})")


@pytest.mark.real_model
def test_explain_a_real_photo_with_the_imagenet_teacher(tmp_path):
    import skimage.data

    photo = tmp_path / "chelsea.png"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    assert main(["explain", str(photo), "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "results.json").read_text())["images"][0]
    assert record["class_index"] in (281, 282, 285)
    assert np.load(tmp_path / "out" / "results.npz")["maps_gradcam"].shape == (1, 224, 224)


def test_a_job_file_runs_an_evaluation_and_the_command_line_wins(pictures, tmp_path, capsys):
    folder = tmp_path / "labelled"
    folder.mkdir()
    rows = ["file\tclass_index"]
    for i, path in enumerate(pictures):
        Image.open(path).convert("RGB").save(folder / f"{i}.png")
        rows.append(f"{i}.png\t{i}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    job = tmp_path / "job.toml"
    job.write_text(f'model = "tiny"\ndata = "{folder}"\nout = "{tmp_path / "run"}"\nlimit = 3\nbatch_size = 2\n'
                   '[methods.gradcam]\n[methods.rise_small]\nmethod = "rise"\nnum_masks = 20\nchunk = 10\n')
    assert main(["evaluate", "--config", str(job), "--limit", "2", "--set", "rise_small.p=0.25"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["methods"]["gradcam"] == {"method": "gradcam", "preset": "default", "settings": {"layer": "head"},
                                         "learned": None}
    assert run["methods"]["rise_small"]["settings"] == {"num_masks": 20, "grid": 7, "p": 0.25, "mask_resize": "edge",
                                                        "chunk": 10}
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert sorted({r["index"] for r in records}) == [0, 1]  # --limit 2 from the command line, not the file's 3
    job.write_text('model = "tiny"\nmodle = "x"\n')
    assert main(["evaluate", "--config", str(job)]) == 2
    assert "unknown option 'modle'" in capsys.readouterr().err
    job.write_text('model = "tiny"\nlimit = "two"\n')
    assert main(["evaluate", "--config", str(job)]) == 2
    assert "limit must be a whole number; got 'two'" in capsys.readouterr().err
