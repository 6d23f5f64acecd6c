"""The evaluation harness: tables from records, and an interrupted run resumes without loss or duplicates."""

import csv
import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.evaluation.harness import (SUMMARY_COLUMNS, EvaluationConfig, evaluate, markdown_table, read_records,
                                        summarise)
from tests.conftest import write_labelled_folder


@pytest.fixture
def folder(tmp_path):
    return write_labelled_folder(tmp_path / "images", 7)


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
    evaluate(tiny_model, config(folder), tmp_path / "straight")  # the same job, never interrupted
    straight = {(r["method"], r["index"]): r for r in read_records(tmp_path / "straight" / "records.jsonl")}
    for record in records:
        twin = straight[(record["method"], record["index"])]
        for name in ("deletion", "insertion", "intensity", "label"):
            assert record[name] == pytest.approx(twin[name], abs=1e-6), (record["method"], record["index"], name)


def test_a_different_configuration_cannot_resume_into_the_same_folder(folder, tmp_path, tiny_model):
    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=2), out)
    with pytest.raises(UsageError, match="protocol differ"):
        evaluate(tiny_model, config(folder, limit=2, protocol="exact"), out)
    assert json.loads((out / "config.json").read_text())["protocol"] == "fast"


def test_a_method_default_changed_since_the_run_began_stops_the_resume(folder, tmp_path, tiny_model, monkeypatch):
    """A config naming a method without settings means "its defaults": when a default changes between
    two sessions, resuming would mix maps made two ways, so it is refused, naming the setting; writing the
    old value out in the config (a pin) resumes; runs from before the defaults were recorded (no
    "defaults" in config.json) still resume."""
    from jaxplain.evaluation import harness

    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=2), out)
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["defaults"]["rise"]["p"] == 0.5 and recorded["defaults"]["random"] == {}
    before = recorded["defaults"]
    changed = lambda labels, aliases=None: before | {"rise": before["rise"] | {"p": 0.25}}  # as if rise's p moved
    monkeypatch.setattr(harness, "defaults_of", changed)
    with pytest.raises(UsageError, match=r"\(methods.rise.p differ\)"):
        evaluate(tiny_model, config(folder, limit=2), out)
    pin = lambda p: dataclasses.replace(config(folder, limit=2), methods=config(folder).methods | {
        "rise": {"num_masks": 20, "chunk": 10, "p": p}})
    with pytest.raises(UsageError, match=r"\(methods.rise.p differ\)"):
        evaluate(tiny_model, pin(0.3), out)
    evaluate(tiny_model, pin(0.5), out)  # the new default pinned back to the value the run began with
    added = lambda labels, aliases=None: {label: before[label] | {"new_setting": 1} for label in labels}
    monkeypatch.setattr(harness, "defaults_of", added)  # a setting added since: its default keeps the old behaviour
    evaluate(tiny_model, config(folder, limit=2), out)
    del recorded["defaults"]
    (out / "config.json").write_text(json.dumps(recorded))
    evaluate(tiny_model, config(folder, limit=2), out)  # an older run: taken at its word


def test_a_default_whose_meaning_changed_stops_the_resume(folder, tmp_path, tiny_model, monkeypatch):
    """A default can keep its value while what it stands for changes (``"auto"`` picking another
    segmentation): the resolved settings recorded in config.json catch that too; runs from before they were
    recorded still resume."""
    from jaxplain.evaluation import harness

    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=2), out)
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["resolved"] == {}  # gradcam, random and rise have no input-dependent defaults
    monkeypatch.setattr(harness, "resolved_settings", lambda *_: {"rise": {"masks": "other"}})
    with pytest.raises(UsageError, match=r"\(resolved.rise differ\)"):
        evaluate(tiny_model, config(folder, limit=2), out)
    del recorded["resolved"]
    (out / "config.json").write_text(json.dumps(recorded))
    evaluate(tiny_model, config(folder, limit=2), out)  # an older run: taken at its word


def test_a_resolved_setting_recorded_since_the_run_began_takes_the_value_earlier_runs_used(folder, tmp_path, tiny_model,
                                                                                          monkeypatch):
    """A resolved setting first recorded after a run began (relabel's ``student_input``) is read, for that
    run, as the value every earlier run used (EARLIER_RESOLVED): it resumes when the setting still resolves
    to that value and is refused, naming it, when it now resolves otherwise."""
    from jaxplain.evaluation import harness

    out = tmp_path / "run"
    monkeypatch.setattr(harness, "resolved_settings", lambda *_: {"rise": {"masks": "smooth"}})
    evaluate(tiny_model, config(folder, limit=2), out)
    monkeypatch.setattr(harness, "EARLIER_RESOLVED", {"student_input": "change"})
    monkeypatch.setattr(harness, "resolved_settings",
                        lambda *_: {"rise": {"masks": "smooth", "student_input": "change"}})
    evaluate(tiny_model, config(folder, limit=2), out)  # what the earlier run did: it resumes
    monkeypatch.setattr(harness, "resolved_settings", lambda *_: {"rise": {"masks": "smooth", "student_input": "size"}})
    with pytest.raises(UsageError, match=r"\(resolved.rise.student_input differ\)"):
        evaluate(tiny_model, config(folder, limit=2), out)


def test_a_setting_added_since_with_a_new_default_takes_the_value_earlier_runs_used(folder, tmp_path, tiny_model,
                                                                                  monkeypatch):
    """A setting added after a run began whose default is not what the run did (GFI's ``channel_weights``, now
    "rectified") is read, for that run, as EARLIER_DEFAULTS names: the unpinned config is refused, naming it (taken
    at today's default it would mix two kinds of map), and the config pinning the old value resumes."""
    from jaxplain.evaluation import harness

    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=2), out)
    recorded = json.loads((out / "config.json").read_text())
    del recorded["defaults"]["rise"]["p"]  # as if rise's p were added since, at a default of 0.5 ...
    (out / "config.json").write_text(json.dumps(recorded))
    monkeypatch.setattr(harness, "EARLIER_DEFAULTS", {"p": 0.25})  # ... while the run had used 0.25
    with pytest.raises(UsageError, match=r"\(methods.rise.p differ\)"):
        evaluate(tiny_model, config(folder, limit=2), out)
    pinned = config(folder).methods | {"rise": config(folder).methods["rise"] | {"p": 0.25}}
    evaluate(tiny_model, dataclasses.replace(config(folder, limit=2), methods=pinned), out)
    monkeypatch.setattr(harness, "EARLIER_DEFAULTS", {})  # without it, the added setting keeps its default: resumes
    evaluate(tiny_model, config(folder, limit=2), out)


def brightness_model(size: int = 16):
    """Four classes by mean brightness (centres 1/8, 3/8, 5/8, 7/8): a teacher whose answers are known."""
    from jaxplain.model import UNIT_RANGE, Preprocessing, from_callable

    centres = jnp.array([0.125, 0.375, 0.625, 0.875])

    def fn(params, x):
        return -40.0 * jnp.abs(x.mean(axis=(1, 2, 3))[:, None] - centres)

    return from_callable("brightness", fn, {}, class_names=["dark", "dim", "light", "bright"],
                         preprocessing=Preprocessing(size, size), normalisation=UNIT_RANGE)


def test_grids_are_scored_for_the_class_of_each_cell(tmp_path):
    """A grid folder from `jaxplain data grids` is evaluated per cell: GridPG and localisation next to
    deletion/insertion, for the cell's class; a map that marks exactly its cell scores 1 and no miss."""
    from jaxplain.data.folder import FolderSource
    from jaxplain.data.grids import GridSpec, build_grids
    from jaxplain.explainers import EXPLAINERS
    from jaxplain.explainers.base import stateless
    from jaxplain.metrics import grid_cell_mask

    model = brightness_model()
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    rows = ["file\tclass_index"]
    for i in range(10):
        level = 0.125 + 0.25 * (i % 4)
        pixels = np.clip(level + rng.normal(0, 0.02, (40, 48, 3)), 0, 1)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png\t{i % 4 if i != 9 else 0}")  # image 9 is mislabelled: never used
    (root / "labels.tsv").write_text("\n".join(rows) + "\n")
    grids = build_grids(model, FolderSource(root), tmp_path / "grids", GridSpec(count=3, seed=1, min_confidence=0.9))
    source = FolderSource(grids)
    assert len(source) == 12 and source.has_cells
    assert all(sorted(source.rows[4 * g + c][1] for c in range(4)) == [0, 1, 2, 3] for g in range(3))
    assert "9.png" not in (grids / "labels.tsv").read_text()

    def oracle(state, params, images, labels, *, key=None):  # marks the top-left cell, whatever the class
        del state, params, labels, key
        return jnp.broadcast_to(grid_cell_mask(0, 2, 16, 16).astype(jnp.float32), images.shape[:3])

    EXPLAINERS["top_left"] = lambda: stateless("top_left", oracle)
    try:
        cfg = EvaluationConfig({"top_left": {}, "random": {}}, str(grids), batch_size=4, examples=4)
        summary = {r["method"]: r for r in evaluate(model, cfg, tmp_path / "run")}
    finally:
        del EXPLAINERS["top_left"]
    records = [r for r in read_records(tmp_path / "run" / "records.jsonl") if r["method"] == "top_left"]
    assert [r["cell"] for r in records] == [0, 1, 2, 3] * 3
    assert [r["label"] for r in records] == [row[1] for row in source.rows]  # the cell's class, not the prediction
    assert [r["gridpg"] for r in records] == [1.0, 0.0, 0.0, 0.0] * 3
    assert [r["localisation_miss"] for r in records] == [0.0, 1.0, 1.0, 1.0] * 3
    assert summary["top_left"]["gridpg"] == pytest.approx(0.25)
    assert summary["top_left"]["localisation_error"] == pytest.approx(0.75)
    assert 0.1 < summary["random"]["gridpg"] < 0.4 and "deletion" in records[0]
    table = (tmp_path / "run" / "summary.md").read_text()
    assert "GridPG" in table and "localisation error" in table


def test_a_smaller_limit_reports_only_its_images(folder, tmp_path, tiny_model):
    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=5), out)
    rows = evaluate(tiny_model, config(folder, limit=2), out)
    assert {r["n"] for r in rows} == {2}


def test_maps_that_rank_nothing_are_flagged_not_hidden(folder, tmp_path, tiny_model):
    from jaxplain.explainers import EXPLAINERS
    from jaxplain.explainers.base import stateless

    def flat(state, params, images, labels, *, key=None):
        del state, params, labels, key
        return jnp.full(images.shape[:3], jnp.nan).at[0].set(1.0)  # image 0 constant, the rest NaN

    EXPLAINERS["flat"] = lambda: stateless("flat", flat)
    try:
        rows = evaluate(tiny_model, EvaluationConfig({"flat": {}}, str(folder), batch_size=3, limit=3), tmp_path / "r")
    finally:
        del EXPLAINERS["flat"]
    records = read_records(tmp_path / "r" / "records.jsonl")
    assert [r["map_flag"] for r in records] == ["constant", "non-finite", "non-finite"]
    assert all(np.isfinite(r["deletion"]) for r in records)
    assert rows[0]["degenerate_maps"] == 3
    assert "rank nothing" in (tmp_path / "r" / "summary.md").read_text()


def test_method_diagnostics_reach_the_records_and_degenerate_neighbourhoods_the_summary(folder, tmp_path, tiny_model):
    from jaxplain.explainers import EXPLAINERS
    from jaxplain.explainers.base import Explainer, ModelHandle, State

    def details(state, params, images, labels, *, key=None):
        del state, params, key
        maps = images.mean(-1)
        return maps, {"fidelity": labels.astype(jnp.float32) / 10, "degenerate": (labels == labels[0]).astype(jnp.float32)}

    EXPLAINERS["diagnosed"] = lambda: Explainer("diagnosed", lambda key, model, sample=None: State(ModelHandle.of(model)),
                                                lambda *a, **k: details(*a, **k)[0], details=details)
    try:
        evaluate(tiny_model, EvaluationConfig({"diagnosed": {}}, str(folder), batch_size=3, limit=3), tmp_path / "r")
    finally:
        del EXPLAINERS["diagnosed"]
    records = read_records(tmp_path / "r" / "records.jsonl")
    assert [r["details"]["fidelity"] for r in records] == pytest.approx([r["label"] / 10 for r in records])
    flagged = sum(r["details"]["degenerate"] for r in records)
    assert flagged >= 1
    assert f"Degenerate neighbourhoods (nearly every sample relabelled alike; see `details` in records.jsonl): " \
           f"diagnosed {int(flagged)} of 3" in (tmp_path / "r" / "summary.md").read_text()


def test_the_vae_loader_reads_the_artefacts_bottleneck(tmp_path):
    import jax

    from jaxplain.artefacts import save_artefact
    from jaxplain.nets.vae import VAE
    from jaxplain.zoo import load_vae

    vae = VAE(16, 8, (8, 8), bottleneck=8)
    params = vae.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), jax.random.key(1))
    save_artefact(tmp_path / "v", params, {"resolution": 16, "latent": 8, "widths": [8, 8], "bottleneck": 8})
    handle = load_vae(tmp_path / "v")
    assert handle.module.bottleneck == 8
    assert handle.module.apply(handle.params, jnp.zeros((1, 8)), method=VAE.decode).shape == (1, 16, 16, 3)


def test_maps_per_second_leaves_out_the_batches_that_compiled():
    def record(index, seconds, includes_compile):
        return {"method": "m", "index": index, "deletion": 0.1, "insertion": 0.9, "intensity": 0.5,
                "seconds": seconds, "includes_compile": includes_compile}

    [row] = summarise([record(0, 10.0, True), record(1, 0.5, False), record(2, 0.25, False)], ["m"])
    assert row["maps_per_s"] == pytest.approx(2 / 0.75)
    [only_compiled] = summarise([record(0, 10.0, True)], ["m"])
    assert np.isnan(only_compiled["maps_per_s"])
    assert "| m | 1 |" in markdown_table([only_compiled]) and "| — |" in markdown_table([only_compiled])


def test_grid_scores_compute_only_the_metrics_asked_for_with_iou_by_hand():
    """IoU with the cell (DAX paper, map thresholded at 0.2 of its range): a map of exactly the cell scores 1,
    of the top half 1/2 for a top cell and 0 for a bottom one; metrics not asked for are absent."""
    from jaxplain.evaluation.harness import grid_scores

    top_left = np.zeros((8, 8), np.float32)
    top_left[:4, :4] = 1.0
    top_half = np.zeros((8, 8), np.float32)
    top_half[:4] = 0.9
    top_half[6, 6] = 0.1  # below 0.2 of the range: not selected
    maps = np.stack([top_left, top_left, top_half, top_half])
    scores = grid_scores(maps, np.array([0, 1, 0, 3]), metrics=("iou",))
    assert set(scores) == {"iou"}
    np.testing.assert_allclose(scores["iou"], [1.0, 0.0, 0.5, 0.0])
    both = grid_scores(maps, np.array([0, 1, 0, 3]), metrics=("gridpg", "iou"), iou_threshold=0.05)
    assert set(both) == {"gridpg", "iou"}
    np.testing.assert_allclose(both["iou"][2], 16 / 33)  # the speck at 0.1 now counts: union 33
