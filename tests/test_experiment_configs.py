"""Every job file in experiments/configs resumes against the results it wrote: a change of a method's
default must be pinned in the configs whose records were made before it, or re-running a table's command
would refuse (or, worse, mix two settings in one table)."""

import functools
from pathlib import Path

import pytest

from jaxplain import runner, zoo
from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import CONFIG, GRID_METRICS, claim_evaluation_folder
from jaxplain.evaluation.job_file import JOB_OPTIONS, evaluation_config, read_job_file
from jaxplain.explainers import get, resolved_settings

REPO = Path(__file__).resolve().parents[1]
JOB_FILES = sorted((REPO / "experiments" / "configs").glob("*.toml"))


def job_and_results(path):
    job = read_job_file(path, JOB_OPTIONS)
    return job, REPO / job["options"]["out"]


@functools.lru_cache(maxsize=None)
def teacher(name):
    return zoo.load_model(name)


def claim(job, out):
    """The harness's resume check for ``job`` against ``out`` (raises if it would refuse), with what the
    methods' input-dependent defaults stand for on the job's teacher."""
    config = evaluation_config(job["options"], {label: job["settings"][label] for label in job["methods"]},
                               job["aliases"])
    # the grid data sets live outside the repository; a job naming a grid metric runs on grids
    config = config.resolved(grid=any(m in GRID_METRICS for m in config.metrics or ()))
    model = teacher(job["options"].get("model", "efficientnet_lite0"))  # the CLI's default
    explainers = {label: get(config.aliases.get(label, label), **settings) for label, settings in config.methods.items()}
    states = runner.initial_states(explainers, model, config.seed)
    claim_evaluation_folder(out, config, model.name, resolved_settings(explainers, states, model.input_shape))


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.stem)
def test_every_job_file_resumes_against_its_results(path):
    job, out = job_and_results(path)
    if not (out / CONFIG).exists():
        pytest.skip(f"{out.name} holds no results yet")
    unshipped = [s["checkpoint"] for s in job["settings"].values()
                 if str(s.get("checkpoint", "")).startswith("runs/") and not (REPO / s["checkpoint"]).exists()]
    if unshipped:  # a development variant that was not shipped: its training command is in the job file
        pytest.skip(f"{out.name} reads {', '.join(unshipped)}, a training run's output not in this checkout")
    claim(job, out)


def test_a_changed_setting_is_refused(tmp_path):
    """The check above can fail: the same job with one relabel setting changed does not resume."""
    path = next(p for p in JOB_FILES if "relabel" in read_job_file(p, JOB_OPTIONS)["methods"]
                and (job_and_results(p)[1] / CONFIG).exists())
    job, out = job_and_results(path)
    job["settings"]["relabel"] = job["settings"]["relabel"] | {"l2": 0.123}
    with pytest.raises(UsageError, match="methods"):
        claim(job, out)


def test_job_files_take_the_options_of_the_evaluate_command():
    """A job file names `jaxplain evaluate`'s options; the ones left out are given in other ways (methods
    as tables) or do not decide a run's results (where to find the data, the memory budget's plan)."""
    import inspect

    from jaxplain import cli

    parameters = set(inspect.signature(cli.evaluate).parameters)
    assert JOB_OPTIONS <= parameters
    assert parameters - JOB_OPTIONS == {"ctx", "methods", "settings", "memory_budget", "config", "tfds_dir", "raw_data"}
