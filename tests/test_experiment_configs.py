"""Every job file of the leaderboard (experiments/leaderboard/) is valid today and agrees with the table it made: its
methods configure, and each setting it gives explicitly is the value its kept run.json recorded."""

from pathlib import Path

import pytest

from jaxplain.evaluation.job_file import JOB_OPTIONS, read_job_file
from jaxplain.explainers import Context, configure
from jaxplain.runs.identity import RUN

REPO = Path(__file__).resolve().parents[1]
JOB_FILES = sorted((REPO / "experiments" / "leaderboard").glob("*.toml"))
SHAPES = {"efficientnet_lite0": (224, 224, 3), "cifar10_resnet_small": (32, 32, 3), "cifar10_resnet": (32, 32, 3),
          "spoken_digits_cnn": (96, 64, 1)}


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.stem)
def test_every_job_file_configures_and_agrees_with_its_recorded_table(path):
    import json

    job = read_job_file(path, JOB_OPTIONS)
    model = job["options"].get("model", "efficientnet_lite0")
    context = Context(model, SHAPES[model], 10 if model != "efficientnet_lite0" else 1000)
    configured = {label: configure(job["aliases"].get(label, label), **job["settings"][label])
                  for label in job["methods"]}
    out = REPO / "results" / "leaderboard" / Path(job["options"]["out"]).name  # what experiments/leaderboard.py kept
    if not (out / RUN).exists():
        pytest.skip(f"{out.name} holds no results in this checkout")
    recorded = json.loads((out / RUN).read_text())["methods"]
    assert sorted(recorded) == sorted(configured)
    for label, (method, preset, settings) in configured.items():
        assert (recorded[label]["method"], recorded[label]["preset"]) == (method.name, preset)
        resolved = json.loads(json.dumps(settings.resolve(context).to_json()))
        for name in job["settings"][label]:
            assert resolved[name] == recorded[label]["settings"][name], (label, name)


def test_job_files_take_the_options_of_the_evaluate_command():
    """A job file names `jaxplain evaluate`'s options; the ones left out are given in other ways (methods
    as tables) or do not decide a run's results (where to find the data, the memory budget's plan)."""
    import inspect

    from jaxplain import cli

    parameters = set(inspect.signature(cli.evaluate).parameters)
    assert JOB_OPTIONS <= parameters
    assert parameters - JOB_OPTIONS == {"ctx", "methods", "settings", "memory_budget", "config", "tfds_dir", "raw_data"}
