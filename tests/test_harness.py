"""The evaluation harness: tables from records, and an interrupted run resumes without loss or duplicates."""

import csv
import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxplain import runner
from jaxplain.errors import Interrupted, UsageError
from jaxplain.evaluation.harness import SUMMARY_COLUMNS, EvaluationConfig, evaluate, markdown_table, summarise
from jaxplain.runs.journal import read_records
from jaxplain.explainers import METHODS
from tests.conftest import custom_method, write_labelled_folder


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
    with pytest.raises(Interrupted, match="12 results are saved .* rerun the same command to resume"):
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
    with pytest.raises(UsageError, match="dtype differ"):
        evaluate(tiny_model, config(folder, limit=2, dtype="bfloat16"), out)
    with pytest.raises(UsageError, match="seed differ"):
        evaluate(tiny_model, config(folder, limit=2, seed=1), out)
    with pytest.raises(UsageError, match="holds the methods"):
        evaluate(tiny_model, dataclasses.replace(config(folder, limit=2), methods={"gradcam": {}}), out)
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["protocol"] == "rise_fast" and recorded["methods"]["rise"]["settings"] == {
        "num_masks": 20, "grid": 7, "p": 0.5, "mask_resize": "edge", "chunk": 10}  # every resolved value
    assert recorded["backend"]["platform"] == "cpu" and recorded["backend"]["processor"]
    recorded["backend"]["processor"] = "another CPU"  # as if the folder were made on another machine
    (out / "run.json").write_text(json.dumps(recorded))
    with pytest.raises(UsageError, match="backend.processor differ"):
        evaluate(tiny_model, config(folder, limit=2), out)


def test_a_changed_default_never_breaks_a_resume_and_never_mixes_maps(folder, tmp_path, tiny_model, monkeypatch):
    """The folder's recorded settings are what a resume runs with: a default changed since neither stops it nor
    changes its maps (the command names the recorded values that differ from today's defaults); a value given
    explicitly that differs from the recorded one is refused, naming it."""
    from jaxplain.explainers import METHODS, Preset
    from jaxplain.explainers.rise import RiseSettings

    out, lines = tmp_path / "run", []
    evaluate(tiny_model, config(folder, limit=4), out)
    (out / "records.jsonl").write_text("".join(l for l in (out / "records.jsonl").read_text().splitlines(True)
                                               if '"index": 3' not in l))  # as if killed before the last image
    monkeypatch.setitem(METHODS["rise"].presets, "default", Preset(RiseSettings(p=0.25, grid=5), "a new default"))
    evaluate(tiny_model, config(folder, limit=4), out, report=lines.append)
    assert any("rise.grid=7 (now 5)" in line and "rise.p=0.5 (now 0.25)" in line for line in lines), lines
    monkeypatch.undo()
    straight = tmp_path / "straight"
    evaluate(tiny_model, config(folder, limit=4), straight)  # the same folder, made at the old default throughout
    for a, b in zip(read_records(out / "records.jsonl"), read_records(straight / "records.jsonl")):
        assert (a["method"], a["index"], a["deletion"]) == pytest.approx((b["method"], b["index"], b["deletion"]))
    explicit = dataclasses.replace(config(folder, limit=4), methods=config(folder).methods | {
        "rise": {"num_masks": 20, "chunk": 10, "p": 0.3}})
    with pytest.raises(UsageError, match=r"rise.p is 0.3 but the folder's maps were made with 0.5"):
        evaluate(tiny_model, explicit, out)


def test_a_folder_of_other_data_or_an_earlier_format_or_in_use_is_refused(folder, tmp_path, tiny_model):
    from jaxplain.runs.folder import RunFolder

    out = tmp_path / "run"
    evaluate(tiny_model, config(folder, limit=3), out)
    labels = (folder / "labels.tsv").read_text().splitlines()
    (folder / "labels.tsv").write_text("\n".join([labels[0], labels[2], labels[1], *labels[3:]]) + "\n")
    with pytest.raises(UsageError, match="data.fingerprint differ"):  # the rows were reordered
        evaluate(tiny_model, config(folder, limit=3), out)
    with RunFolder(out, kind="another evaluation"):  # a second job holds the folder
        with pytest.raises(UsageError, match=r"in use by process \d+ \(another evaluation\)"):
            evaluate(tiny_model, config(folder, limit=3), out)
    (out / "run.json").rename(out / "config.json")
    with pytest.raises(UsageError, match=r"earlier jaxplain \(config.json\); migrate it with experiments/migrate_run_folders.py"):
        evaluate(tiny_model, config(folder, limit=3), out)


def brightness_model(size: int = 16):
    """Four classes by mean brightness (centres 1/8, 3/8, 5/8, 7/8): a teacher whose answers are known."""
    from jaxplain.model import UNIT_RANGE, Preprocessing, from_callable

    centres = jnp.array([0.125, 0.375, 0.625, 0.875])

    def fn(params, x):
        return -40.0 * jnp.abs(x.mean(axis=(1, 2, 3))[:, None] - centres)

    return from_callable("brightness", fn, {}, class_names=["dark", "dim", "light", "bright"],
                         preprocessing=Preprocessing(size, size), normalisation=UNIT_RANGE)


def test_grids_are_scored_for_the_class_of_each_cell(tmp_path, monkeypatch):
    """A grid folder from `jaxplain data grids` is evaluated per cell: GridPG and localisation next to
    deletion/insertion, for the cell's class; a map that marks exactly its cell scores 1 and no miss."""
    from jaxplain.data.folder import FolderSource
    from jaxplain.data.grids import GridSpec, build_grids
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

    monkeypatch.setitem(METHODS, "top_left", custom_method("top_left", oracle))
    cfg = EvaluationConfig({"top_left": {}, "random": {}}, str(grids), batch_size=4, examples=4)
    summary = {r["method"]: r for r in evaluate(model, cfg, tmp_path / "run")}
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


def test_maps_that_rank_nothing_are_flagged_not_hidden(folder, tmp_path, tiny_model, monkeypatch):
    def flat(state, params, images, labels, *, key=None):
        del state, params, labels, key
        return jnp.full(images.shape[:3], jnp.nan).at[0].set(1.0)  # image 0 constant, the rest NaN

    monkeypatch.setitem(METHODS, "flat", custom_method("flat", flat))
    rows = evaluate(tiny_model, EvaluationConfig({"flat": {}}, str(folder), batch_size=3, limit=3), tmp_path / "r")
    records = read_records(tmp_path / "r" / "records.jsonl")
    assert [r["map_flag"] for r in records] == ["constant", "non-finite", "non-finite"]
    assert all(np.isfinite(r["deletion"]) for r in records)
    assert rows[0]["degenerate_maps"] == 3
    assert "rank nothing" in (tmp_path / "r" / "summary.md").read_text()


def test_method_diagnostics_reach_the_records_and_degenerate_neighbourhoods_the_summary(folder, tmp_path, tiny_model,
                                                                                        monkeypatch):
    def details(state, params, images, labels, *, key=None):
        del state, params, key
        maps = images.mean(-1)
        return maps, {"fidelity": labels.astype(jnp.float32) / 10, "degenerate": (labels == labels[0]).astype(jnp.float32)}

    monkeypatch.setitem(METHODS, "diagnosed", custom_method("diagnosed", lambda *a, **k: details(*a, **k)[0], details))
    evaluate(tiny_model, EvaluationConfig({"diagnosed": {}}, str(folder), batch_size=3, limit=3), tmp_path / "r")
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
    from jaxplain.evaluation.scoring import grid_scores

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


def test_the_metrics_beyond_deletion_and_insertion_reach_the_records_and_the_summary(folder, tmp_path, tiny_model):
    metrics = ("deletion_insertion", "road", "faithfulness_correlation", "region_perturbation", "sparseness",
               "complexity", "sensitivity", "randomisation", "random_logit")
    cfg = EvaluationConfig({"gradient": {}, "random": {}}, str(folder), limit=3, batch_size=3, metrics=metrics)
    rows = {r["method"]: r for r in evaluate(tiny_model, cfg, tmp_path / "run")}
    records = read_records(tmp_path / "run" / "records.jsonl")
    for field in ("road_morf", "road_lerf", "faithfulness_correlation", "region_perturbation", "sparseness",
                  "complexity", "max_sensitivity", "avg_sensitivity", "randomisation", "random_logit"):
        assert all(np.isfinite(r[field]) for r in records), field
        assert np.isfinite(rows["gradient"][field])
    for r in (r for r in records if r["method"] == "random"):  # the same key: noise blind to class, input, weights
        assert (r["random_logit"], r["randomisation"], r["max_sensitivity"]) == pytest.approx((1.0, 1.0, 0.0))
    for r in (r for r in records if r["method"] == "gradient"):
        assert r["randomisation"] < 0.9 and r["max_sensitivity"] >= r["avg_sensitivity"] > 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["metric_settings"]["road"]["noise"] == 0.01 and run["protocol"] == "rise_fast"
    assert "faithfulness correlation ↑" in (tmp_path / "run" / "summary.md").read_text()
